"""The parts of `bash benchmarks/gpu.sh` (one process each, so a part that runs out of memory or time leaves
the others' figures), and the report that merges them into one JSON and prints benchmarks/RESULTS.md rows.

  python benchmarks/gpu_suite.py steps   --mode gpu|cpu-smoke --out steps.json
  python benchmarks/gpu_suite.py packing --mode ... --out packing.json
  python benchmarks/gpu_suite.py sweep   --mode ... --out sweep.json --dir SWEEP_DIR
  python benchmarks/gpu_suite.py report  --mode ... --dir OUTDIR          # -> OUTDIR/gpu.json + the rows

steps:   the GPT-2 124M shape (d_model 768, 12 layers, vocab 50304, seq 1024, bf16) at batch 8 / 16 / 32 / 64,
         layers scanned, each with the remat policy the memory rule picks for this device (fit_memory.fit with
         only model.remat free: none when it fits, else block); ~350M (d1024 x 24, GPT-2 medium) and ~774M
         (d1280 x 36, GPT-2 large) scanned at batch 8; last the 124M unrolled at batch 8 (scanned vs
         unrolled: compile seconds and step time). Per entry: compile seconds (state init, trace, XLA compile: as
         compile_time.py splits them), XLA's memory peak, median step time, tokens/s, model FLOP/s (exact
         accounting) and MFU against the chip's published dense bf16 peak (CPU: the measured f32 matmul peak).
packing: packing.py's end-to-end measurement (K runs through loop.train vs one packed run, with compile,
         data, eval, checkpoints) and its steady-state steps.
sweep:   `scaling sweep --config=configs/sweeps/kaplan.py:smoke` end to end, then its results (statuses, losses,
         device_seconds, NVML energy where reported) next to `scaling plan`'s device-hours for the same sweep.
Every part writes its JSON after each measurement, so one killed by gpu.sh's timeout keeps what it measured.
--mode cpu-smoke runs the same code at tiny sizes (d_model 32-64, 2 layers, seq 64; a minute or two on CPU).
"""

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
import types

import jax
import numpy as np

from scaling import config as config_lib
from scaling import io
from scaling.models import accounting, sizes
from scaling.train import fit_memory, memory, metrics
import packing  # benchmarks/ is the script's directory
from train_step import timed_compile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (name, d_model, layers, heads, batches, scan) per mode; seq, vocab, dtype and steps below.
MODELS = {
    # The unrolled 124M last: its compile is the longest (111 s on an H200 with jax 0.11.2, RESULTS.md).
    "gpu": [("gpt2-124M", 768, 12, 12, (8, 16, 32, 64), True), ("gpt2-350M", 1024, 24, 16, (8,), True),
            ("gpt2-774M", 1280, 36, 20, (8,), True), ("gpt2-124M", 768, 12, 12, (8,), False)],
    "cpu-smoke": [("smoke-124M", 32, 2, 2, (2, 4, 8, 16), True), ("smoke-350M", 48, 2, 2, (2,), True),
                  ("smoke-774M", 64, 2, 2, (2,), True), ("smoke-124M", 32, 2, 2, (2,), False)],
}
SHAPE = {"gpu": dict(seq=1024, vocab=50304, dtype="bfloat16", steps=10),
         "cpu-smoke": dict(seq=64, vocab=259, dtype="float32", steps=3)}
PACKING = {"gpu": dict(d_model=32, n_layers=1, seq_len=32, batch=8, ks=(4,), steps=20, run_steps=200),
           "cpu-smoke": dict(d_model=16, n_layers=1, seq_len=16, batch=4, ks=(2,), steps=3, run_steps=6)}


def _write(path: str, obj) -> None:
  io.atomic_write_json(path, obj)


def device_info() -> dict:
  d = jax.devices()[0]
  peak, src = metrics.peak_flops()
  return {"device_kind": d.device_kind, "platform": d.platform, "devices": jax.device_count(),
          "peak_flops_per_device": peak / (jax.device_count() if d.platform != "cpu" else 1), "peak_source": src,
          "jax": jax.__version__, "python": platform.python_version()}


def best_remat(m, batch: int, seq: int) -> tuple[str, str]:
  """(policy, why): the memory rule with only model.remat free, for this device's memory."""
  c = config_lib.base("gpt", "nano")
  with c.unlocked():
    c.model = m
  c.data.update(seq_len=seq, batch_size=batch)
  c.mesh.update(data=1, num_devices=1)
  cap, src = memory.capacity()
  t = fit_memory.Target(jax.devices()[0].device_kind, cap, src, 1)
  fitted, fits = fit_memory.fit(c, {"inputs": (batch, seq)}, t, keep={"accum_steps", "fsdp", "scan"})
  return fitted.model.remat, ("fits" if fits else "over memory even with remat")


def measure(m, batch: int, seq: int, steps: int, peak: float) -> dict:
  """One train step: compile seconds, XLA's memory, median step time, tokens/s, FLOP/s, MFU."""
  (compiled, state, b), seconds = timed_compile(m, batch, seq)
  mem = memory.from_compiled(compiled)
  times = []
  for i in range(steps + 2):  # two warm-up steps
    s = time.perf_counter()
    state, out = compiled(state, b)
    jax.block_until_ready(out)
    if i >= 2:
      times.append(time.perf_counter() - s)
  dt = float(np.median(times))
  flops = accounting.train_flops("gpt", m, seq) * batch
  return {**seconds, "peak_bytes": mem.get("peak"),
          "step_s": dt, "tokens_per_s": batch * seq / dt, "flops_per_s": flops / dt, "mfu": flops / dt / peak,
          "loss": float(out["loss"])}


def part_steps(a) -> None:
  info = device_info()
  sh = SHAPE[a.mode]
  res = {"device": info, "entries": []}
  _write(a.out, res)
  for name, d, n, h, batches, scan in MODELS[a.mode]:
    for batch in batches:
      m = sizes.gpt_model(d, n, n_heads=h, vocab_size=sh["vocab"], max_len=sh["seq"], dtype=sh["dtype"],
                          scan_layers=scan)
      e = {"model": name, "params": accounting.params("gpt", m)["total"], "d_model": d, "n_layers": n,
           "batch": batch, "seq": sh["seq"], "scan_layers": scan}
      try:
        e["remat"], e["remat_why"] = best_remat(m, batch, sh["seq"])
        m.remat = e["remat"]
        e.update(measure(m, batch, sh["seq"], sh["steps"], info["peak_flops_per_device"]))
      except Exception as ex:
        e["error"] = f"{type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}"[:300]
      res["entries"].append(e)
      _write(a.out, res)
      print(json.dumps(e), flush=True)
      gc.collect()


def part_packing(a) -> None:
  p = PACKING[a.mode]
  args = types.SimpleNamespace(**{k: v for k, v in p.items() if k != "ks"})
  res = {"config": p, "entries": []}
  for k in p["ks"]:
    e = {"k": k}
    for what, fn in (("run", packing.bench_runs), ("step", packing.bench_steps)):
      t = time.perf_counter()
      try:
        one, many = fn(args, k)
        e[what] = {"one_at_a_time_models_per_h": one, "packed_models_per_h": many, "ratio": many / one,
                   "wall_s": time.perf_counter() - t}
      except Exception as ex:
        e[what] = {"error": f"{type(ex).__name__}: {str(ex).splitlines()[0] if str(ex) else ''}"[:300]}
      res["entries"] = [x for x in res["entries"] if x["k"] != k] + [e]
      _write(a.out, res)
      print(json.dumps(e), flush=True)


def part_sweep(a) -> None:
  from scaling import results
  cfg = "configs/sweeps/kaplan.py:smoke"
  res = {"config": cfg, "sweep_dir": a.dir}
  cli = [sys.executable, "-m", "scaling.cli"]
  t = time.perf_counter()
  p = subprocess.run([*cli, "sweep", f"--config={cfg}", f"--sweep_dir={a.dir}"], cwd=REPO, capture_output=True,
                     text=True)
  res.update(rc=p.returncode, wall_s=time.perf_counter() - t, log_tail=(p.stdout + p.stderr)[-2000:])
  _write(a.out, res)
  df = results.load(a.dir)
  cols = ["run_id", "status", "params", "eval_loss", "wall_time_s", "device_seconds", "energy_j", "compile_time_s"]
  res["runs"] = json.loads(df[cols].to_json(orient="records"))
  chip = "h200" if "H200" in jax.devices()[0].device_kind else "h100" if "H100" in jax.devices()[0].device_kind \
      else "cpu"
  p = subprocess.run([*cli, "plan", f"--config={cfg}", f"--chip={chip}"], cwd=REPO, capture_output=True, text=True)
  res["plan"] = {"chip": chip, "rc": p.returncode, "total": [ln for ln in p.stdout.splitlines() if " runs, " in ln]}
  _write(a.out, res)
  print(json.dumps({k: res[k] for k in ("rc", "wall_s", "runs", "plan")}), flush=True)


def _f(v, spec: str) -> str:
  return "-" if v is None else format(v, spec)


def part_report(a) -> None:
  """OUTDIR/{steps,packing,sweep}.json -> OUTDIR/gpu.json and the RESULTS.md rows on stdout."""
  parts = {p: (io.read_json(os.path.join(a.dir, f"{p}.json")) if os.path.exists(os.path.join(a.dir, f"{p}.json"))
               else None) for p in ("steps", "packing", "sweep")}
  out = {"mode": a.mode, "date": time.strftime("%Y-%m-%d", time.gmtime()), **parts}
  _write(os.path.join(a.dir, "gpu.json"), out)
  st = parts["steps"] or {}
  dev = st.get("device", {})
  peak = dev.get("peak_flops_per_device")
  print(f"\n## {a.mode}: {dev.get('device_kind', '?')} ({out['date']}; jax {dev.get('jax', '?')}), MFU against "
        f"{_f(peak and peak / 1e12, '.4g')} TFLOP/s ({dev.get('peak_source', '?')})\n")
  print("| model | params | layers | batch x seq | remat | compile s (init + lower + compile) | XLA peak GB | "
        "ms / step | tokens/s | TFLOP/s | MFU |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for e in st.get("entries", []):
    lay = f"{e['n_layers']} {'scanned' if e['scan_layers'] else 'unrolled'}"
    if "error" in e:
      print(f"| {e['model']} | {e['params'] / 1e6:.3g}M | {lay} | {e['batch']} x {e['seq']} | {e.get('remat', '-')} "
            f"| failed: {e['error'][:80]} | | | | | |")
      continue
    comp = e["init_s"] + e["lower_s"] + e["compile_s"]
    print(f"| {e['model']} | {e['params'] / 1e6:.3g}M | {lay} | {e['batch']} x {e['seq']} | {e['remat']} | "
          f"{comp:.1f} ({e['init_s']:.1f} + {e['lower_s']:.1f} + {e['compile_s']:.1f}) | "
          f"{_f(e['peak_bytes'] and e['peak_bytes'] / 1e9, '.3g')} | {e['step_s'] * 1e3:.1f} | "
          f"{e['tokens_per_s']:,.0f} | {e['flops_per_s'] / 1e12:.3g} | {e['mfu']:.1%} |")
  pk = parts["packing"] or {}
  if pk:
    print("\n| packing K | measure | one at a time (models/h) | packed (models/h) | ratio |\n|---|---|---|---|---|")
    for e in pk.get("entries", []):
      for what in ("run", "step"):
        r = e.get(what, {})
        if "ratio" in r:
          print(f"| {e['k']} | {what} | {r['one_at_a_time_models_per_h']:,.0f} | {r['packed_models_per_h']:,.0f} | "
                f"{r['ratio']:.2f}x |")
        elif r:
          print(f"| {e['k']} | {what} | failed: {r.get('error', '')[:80]} | | |")
  sw = parts["sweep"] or {}
  if sw:
    runs = sw.get("runs", [])
    done = sum(r["status"] == "completed" for r in runs)
    dev_s = sum(r.get("device_seconds") or 0 for r in runs)
    energy = [r["energy_j"] for r in runs if r.get("energy_j") is not None]
    print(f"\nsweep {sw['config']}: rc {sw.get('rc')}, {done}/{len(runs)} runs completed in {sw.get('wall_s', 0):.0f} s "
          f"end to end; eval losses {', '.join(_f(r['eval_loss'], '.4f') for r in runs)}; {dev_s:.0f} device-seconds "
          f"recorded" + (f", {sum(energy) / 3.6e6:.4f} kWh measured by NVML" if energy else ", no energy counter")
          + (f"; plan ({sw['plan']['chip']}): {sw['plan']['total'][0]}" if sw.get("plan", {}).get("total") else ""))


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("part", choices=["steps", "packing", "sweep", "report"])
  ap.add_argument("--mode", choices=list(MODELS), default="gpu")
  ap.add_argument("--out", default="")
  ap.add_argument("--dir", default="")
  a = ap.parse_args()
  {"steps": part_steps, "packing": part_packing, "sweep": part_sweep, "report": part_report}[a.part](a)


if __name__ == "__main__":
  main()
