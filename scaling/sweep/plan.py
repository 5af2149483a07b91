"""`scaling plan --config=configs/sweeps/X.py[:arg] [--chip=...] [--mfu=F]`: a sweep's budget before it runs.

Every run's id, parameters, tokens, FLOPs (the loop's own accounting, `ladders.plan`), steps, batch and its
time at an assumed MFU on a named accelerator, with totals in device-hours. Nothing is compiled and no
model is built: `ladders.expand` finalizes the configs from the dataset's metadata (the corpus is built on
first use, as the sweep itself would) and the rest is arithmetic.

Time = FLOPs / (devices x peak x MFU). Peaks are the published dense bf16 ones (scaling/train/metrics.py
PEAK_BF16); `cpu` measures this host's f32 matmul peak (one small jitted matmul). Devices per run: the
sweep's SLURM allocation (gpus_per_node x nodes) when its executor is slurm, else 1.
"""

import dataclasses

import ml_collections
import pandas as pd

from scaling import config as config_lib
from scaling.sweep import ladders, status
from scaling.train import budget, memory, metrics, progress

# --chip -> the key of metrics.PEAK_BF16 (None: measured on this host).
CHIPS = {"h100": "H100", "h200": "H200", "a100": "A100", "v5e": "TPU v5e", "cpu": None}
# Default MFU per chip, and where it comes from (benchmarks/RESULTS.md where measured).
DEFAULT_MFU = {
    "h200": (0.336, "measured: GPT-2 124M bf16 train step on an H200, benchmarks/RESULTS.md"),
    "h100": (0.336, "the H200's measured 33.6 % (same compute units and bf16 peak; not measured on an H100)"),
    "a100": (0.30, "assumed, not measured on this chip"),
    "v5e": (0.30, "assumed, not measured on this chip"),
    "cpu": (0.30, "measured: GPT d_model 128 train step at 29-30 % of the f32 matmul peak, benchmarks/RESULTS.md; "
                  "smaller models are overhead-bound and run lower"),
}
# Published memory per device (bytes); cpu: this host's RAM.
HBM = {"h100": 80e9, "h200": 141e9, "a100": 80e9, "v5e": 16e9}


@dataclasses.dataclass
class Budget:
  chip: str
  peak: float        # FLOP/s of one device
  peak_source: str
  mfu: float
  mfu_source: str
  devices: int       # devices per run
  capacity: float    # bytes of one device
  capacity_source: str


def budget(s: ml_collections.ConfigDict, chip: str, mfu: float = 0.0) -> Budget:
  if chip not in CHIPS:
    raise ValueError(f"chip: {chip!r}; allowed: {', '.join(CHIPS)}")
  if mfu and not 0 < mfu <= 1:
    raise ValueError(f"mfu: {mfu}; allowed: a fraction in (0, 1] (0: the chip's default)")
  if CHIPS[chip] is None:
    peak, src = metrics.measure_matmul_peak(), "this host's measured f32 matmul peak"
  else:
    peak, src = metrics.PEAK_BF16[CHIPS[chip]], f"published dense bf16 peak of the {CHIPS[chip]}"
  m, m_src = (mfu, "--mfu") if mfu else DEFAULT_MFU[chip]
  sl = s.executor.slurm
  devices = max(sl.gpus_per_node, 1) * max(sl.nodes, 1) if s.executor.kind == "slurm" and chip != "cpu" else 1
  if chip == "cpu":
    cap, cap_src = memory.capacity()
  else:
    cap, cap_src = HBM[chip], f"published memory of the {CHIPS[chip]}"
  return Budget(chip, peak, src, m, m_src, devices, cap, cap_src)


def table(s: ml_collections.ConfigDict, b: Budget) -> pd.DataFrame:
  """One row per run of the sweep: run_id, family, params, params_nonembed, tokens, flops, steps, batch_size,
  seq_len, bytes_per_device (memory.analytic: params, grads, optimizer state, activations over `b.devices`
  devices), fits (within memory.HEADROOM of the chip's memory), device_hours, hours (wall, on `b.devices`
  devices). Baselines have no FLOPs (NA)."""
  rows = []
  for run_id, c in ladders.expand(s):
    row = {"run_id": run_id, "family": c.family}
    if c.family in config_lib.NEURAL:
      p = budget.plan(c)
      mem = memory.analytic(c, budget.shapes(c), b.devices)["total"]
      device_s = p["flops"] / (b.peak * b.mfu)
      row.update(params=p["params"]["total"], params_nonembed=p["params"]["nonembed"], tokens=p["tokens"],
                 flops=p["flops"], steps=p["steps"], batch_size=c.data.batch_size, seq_len=c.data.get("seq_len"),
                 bytes_per_device=mem, fits=mem <= memory.HEADROOM * b.capacity,
                 device_hours=device_s / 3600, hours=device_s / 3600 / b.devices)
    rows.append(row)
  return pd.DataFrame(rows, columns=["run_id", "family", "params", "params_nonembed", "tokens", "flops", "steps",
                                     "batch_size", "seq_len", "bytes_per_device", "fits", "device_hours", "hours"])


def _g(v, spec: str = ".3g") -> str:
  return "-" if pd.isna(v) else format(v, spec)


def format_table(df: pd.DataFrame, b: Budget) -> str:
  t = pd.DataFrame({
      "run_id": df["run_id"], "params": df["params"].map(lambda v: _g(v, ",.0f")),
      "tokens": df["tokens"].map(_g), "FLOPs": df["flops"].map(_g), "steps": df["steps"].map(lambda v: _g(v, ",.0f")),
      "batch": df["batch_size"].map(lambda v: _g(v, ".0f")),
      "mem/device": [("-" if pd.isna(m) else memory.fmt(m) + ("" if f else " !"))
                     for m, f in zip(df["bytes_per_device"], df["fits"])],
      "time": df["hours"].map(lambda h: "-" if pd.isna(h) else progress.duration(h * 3600)),
      "device-h": df["device_hours"].map(_g)})
  per = f"{b.devices} device{'s' if b.devices > 1 else ''} per run"
  over = int((df["fits"] == False).sum())  # noqa: E712 (NA for baselines)
  return "\n".join([
      f"chip {b.chip}: {b.peak:.3g} FLOP/s ({b.peak_source}) x MFU {b.mfu:.1%} ({b.mfu_source}); {per}; "
      f"{memory.fmt(b.capacity)} per device ({b.capacity_source})",
      status.text_table(t),
      f"{len(df)} runs, {df['flops'].sum():.3g} FLOPs: {df['device_hours'].sum():,.3g} device-hours "
      f"({progress.duration(df['hours'].sum() * 3600)} one run after another on {per})"]
      + ([f"{over} run{'s' if over > 1 else ''} marked ! need more than {memory.HEADROOM:.0%} of a device's "
          f"memory (memory.analytic: params, grads, optimizer state, activations): more devices per run "
          f"(mesh.fsdp), a smaller batch or train.accum_steps"] if over else []))


def main(s: ml_collections.ConfigDict, chip: str = "h100", mfu: float = 0.0) -> pd.DataFrame:
  """The `scaling plan` command; ValueError (a bad chip, mfu or sweep config) -> one line, exit 2 in cli.py."""
  b = budget(s, chip, mfu)
  df = table(s, b)
  print(format_table(df, b))
  return df
