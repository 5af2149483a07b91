"""What a researcher sees of a sweep: `scaling status` on a sweep directory with runs in every state,
`scaling plan`'s budget against what the runs then record, the log lines a sweep prints when stdout is
not a terminal, and results.load's config columns."""

import contextlib
import dataclasses
import io as stdio
import json
import math
import os
import re
import socket
import subprocess
import sys
import time

import ml_collections
import pandas as pd
import pytest

from scaling import cli, io, results
from scaling.sweep import locks, plan, runner, status
from scaling.train import memory
from scaling.train import progress as train_progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALING = os.path.join(os.path.dirname(sys.executable), "scaling")

# ---------------------------------------------------------------------------------------------------
# A fabricated sweep directory: every state a run can be in, no training.

PLANNED = {"steps": 100, "tokens": 25600, "flops": 1e12}  # 256 tokens per step


def _run(d, run_id) -> str:
  r = os.path.join(d, "runs", run_id)
  os.makedirs(r, exist_ok=True)
  return r


def _lock(run_dir, info: dict, age_s: float = 0.0):
  path = os.path.join(run_dir, locks.LOCK)
  with open(path, "w") as f:
    json.dump(info, f)
  t = time.time() - age_s
  os.utime(path, (t, t))


def _dead_pid() -> int:
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()  # reaped: the pid names no process now (and a reuse would differ in start time, below)
  return p.pid


@pytest.fixture
def fabricated(tmp_path):
  d = str(tmp_path / "sweep")
  ids = ["a-completed", "b-running", "c-remote", "d-pending", "e-resumable", "f-failed", "g-diverged",
         "h-stale-local", "i-stale-remote"]
  io.atomic_write_json(os.path.join(d, "sweep.json"), {
      "name": "fab", "config": {"executor": {"lock_timeout_s": 60.0}},
      "runs": [dict(run_id=r, **PLANNED) for r in ids]})
  io.atomic_write_json(os.path.join(_run(d, "a-completed"), "result.json"), {
      "status": "completed", "steps": 100, "planned_steps": 100, "train_loss": 2.25, "eval_loss": 2.125,
      "wall_time_s": 65.0, "flops": 1e12})
  r = _run(d, "b-running")
  _lock(r, locks.owner())  # this test process: alive
  worker_event = {"event": "start", "time": time.time() - 30, "host": socket.gethostname(), "pid": os.getpid()}
  with open(os.path.join(r, "events.jsonl"), "w") as f:
    f.write(json.dumps(worker_event) + "\n")
  with open(os.path.join(r, "metrics.jsonl"), "w") as f:
    for row in ({"step": 10, "tokens": 2560, "train_loss": 3.0, "tokens_per_s": 1000.0},
                {"step": 20, "tokens": 5120, "eval_loss": 2.875},
                {"step": 40, "tokens": 10240, "train_loss": 2.5, "tokens_per_s": 2048.0}):
      f.write(json.dumps(row) + "\n")
    f.write('{"step": 50, "tok')  # the writer is mid-append
  # Another host's run with a fresh heartbeat: alive as far as anyone can tell from here.
  _lock(_run(d, "c-remote"), {"host": "gpu-node-7", "pid": 4242, "slurm_job": "991_3", "time": time.time(),
                              "token": "x"})
  os.makedirs(os.path.join(_run(d, "e-resumable"), "checkpoints", "40"))
  io.atomic_write_json(os.path.join(_run(d, "f-failed"), "result.json"), {
      "status": "failed", "steps": 0, "error": "RuntimeError: out of memory\nsecond line"})
  io.atomic_write_json(os.path.join(_run(d, "g-diverged"), "result.json"), {
      "status": "diverged", "steps": 7, "diverged_step": 7, "train_loss": math.inf})
  _lock(_run(d, "h-stale-local"), {"host": socket.gethostname(), "pid": _dead_pid(), "start": "0",
                                   "time": time.time(), "token": "y"})
  _lock(_run(d, "i-stale-remote"), {"host": "gpu-node-8", "pid": 17, "time": time.time() - 3600,
                                    "token": "z"}, age_s=3600)  # no heartbeat for an hour > 60 s
  return d


def test_status_every_state(fabricated):
  rows, totals = status.collect(fabricated)
  by = {r["run_id"]: r for r in rows}
  assert {r: by[r]["status"] for r in by} == {
      "a-completed": "completed", "b-running": "running", "c-remote": "running", "d-pending": "pending",
      "e-resumable": "pending", "f-failed": "failed", "g-diverged": "diverged", "h-stale-local": "stale lock",
      "i-stale-remote": "stale lock"}
  a, b = by["a-completed"], by["b-running"]
  assert (a["step"], a["eval_loss"], a["train_loss"]) == (100, 2.125, 2.25)
  # The running run: its last train row (the torn line skipped), its last eval, and the ETA from the
  # tokens left at its current rate: (25600 - 10240) / 2048 = 7.5 s.
  assert (b["step"], b["train_loss"], b["eval_loss"], b["tokens_per_s"]) == (40, 2.5, 2.875, 2048.0)
  assert b["eta_s"] == pytest.approx(7.5)
  assert socket.gethostname() in b["note"] and "started 30s ago" in b["note"]
  assert "gpu-node-7:4242 job 991_3" in by["c-remote"]["note"]
  assert "step 40" in by["e-resumable"]["note"]
  assert by["f-failed"]["note"] == "RuntimeError: out of memory"
  assert by["g-diverged"]["note"] == "diverged at step 7 (train loss inf)"
  assert "gone" in by["h-stale-local"]["note"] and "1:00:00 ago" in by["i-stale-remote"]["note"]
  assert totals["counts"] == {"running": 2, "stale lock": 2, "pending": 2, "completed": 1, "failed": 1,
                              "diverged": 1}
  # Sweep ETA: FLOPs left (b's 60 %, c, two pending, two stale) over the FLOP/s of b, the only run with a
  # measured rate (2048 tokens/s x 1e12 / 25600 FLOPs per token).
  left = 0.6e12 + 5 * 1e12
  assert totals["eta_s"] == pytest.approx(left / (2048 * 1e12 / 25600))
  assert totals["flops_done"] == pytest.approx(1e12 + 0.4e12)  # a's whole run, b's first 40 %
  text = status.show(fabricated)
  for r in by:
    assert r in text
  assert "RuntimeError: out of memory" in text and "second line" not in text
  assert "9 runs: 2 running, 2 stale lock, 2 pending, 1 completed, 1 failed, 1 diverged" in text


def test_status_watch_refreshes_until_every_run_has_ended(fabricated):
  shown = []
  ended = {"status": "completed", "steps": 100, "eval_loss": 2.0, "train_loss": 2.0}

  def finish_everything(_):  # injected in place of time.sleep: the runs end between two refreshes
    for r in os.listdir(os.path.join(fabricated, "runs")) + ["d-pending"]:
      d = _run(fabricated, r)
      if not os.path.exists(os.path.join(d, "result.json")):
        io.atomic_write_json(os.path.join(d, "result.json"), ended)

  status.watch(fabricated, every_s=0.0, sleep=finish_everything, out=shown.append)
  assert len(shown) == 2
  assert "2 running" in shown[0] and "7 completed, 1 failed, 1 diverged" in shown[1]


def test_status_cli(fabricated, tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  ok = subprocess.run([SCALING, "status", fabricated], capture_output=True, text=True, env=env, timeout=120)
  assert ok.returncode == 0 and "b-running" in ok.stdout and "9 runs:" in ok.stdout, ok.stderr
  for bad in (str(tmp_path / "nowhere"), str(tmp_path)):  # missing; a directory that is no sweep
    p = subprocess.run([SCALING, "status", bad], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and re.match(r"scaling status: (SWEEP_DIR|sweep_dir): .*; allowed: ",
                                                  p.stderr), p.stderr
  assert {"status", "plan"} <= set(cli.COMMANDS)


# ---------------------------------------------------------------------------------------------------
# A real 2-run sweep with stdout not a terminal: its log lines, plan vs what the runs recorded, columns.


def _tiny_sweep() -> ml_collections.ConfigDict:
  from scaling.sweep import ladders
  s = ladders.defaults()
  s.name = "ui"
  s.sizes = (1.2e4, 2.5e4)
  s.tokens = 8 * 32 * 10  # 10 steps
  s.rule.lr, s.rule.width = 3e-3, 32
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=2, log_every=5, peak_flops=1e11))
  s.executor.compile_cache = ""
  return s


@pytest.fixture(scope="module")
def ran(tmp_path_factory, data_dir):
  d = str(tmp_path_factory.mktemp("ui") / "sweep")
  out = stdio.StringIO()  # not a TTY, like `make sweep > log`
  with contextlib.redirect_stdout(out):
    runner.run_sweep(_tiny_sweep(), d)
  return d, out.getvalue()


def test_non_tty_sweep_prints_a_line_per_run_start_and_end(ran):
  d, log = ran
  lines = log.splitlines()
  ids = [r["run_id"] for r in io.read_json(os.path.join(d, "sweep.json"))["runs"]]
  ends = []
  for r in ids:
    res = io.read_json(os.path.join(d, "runs", r, "result.json"))
    start = [i for i, x in enumerate(lines) if x.startswith(f"sweep: start {r} ")]
    end = [i for i, x in enumerate(lines) if x.startswith(f"sweep: end {r}: completed eval_loss {res['eval_loss']:.4f}")]
    assert len(start) == 1 and len(end) == 1 and start[0] < end[0], log
    ends.append(end[0])
  # As it happens: the first run's end line comes before the second run starts, with the count so far.
  assert ends[0] < [i for i, x in enumerate(lines) if x.startswith(f"sweep: start {ids[1]} ")][0]
  assert lines[ends[0]].endswith("(1/2 runs done)") and lines[ends[1]].endswith("(2/2 runs done)")
  assert "\r" not in log  # no tqdm bar in a log file


def test_plan_flops_equal_what_each_run_recorded(ran):
  d, _ = ran
  s = _tiny_sweep()
  b = plan.budget(s, "h200")
  df = plan.table(s, b)
  assert (b.peak, b.mfu, b.devices) == (989e12, 0.336, 1)
  for _, row in df.iterrows():
    res = io.read_json(os.path.join(d, "runs", row["run_id"], "result.json"))
    assert (row["flops"], row["tokens"], row["steps"], row["params"]) == (
        res["flops"], res["tokens"], res["steps"], res["params"])
    assert row["batch_size"] == 8 and row["seq_len"] == 32
    assert row["device_hours"] == pytest.approx(res["flops"] / (989e12 * 0.336) / 3600, rel=1e-12)
  text = plan.format_table(df, b)
  assert "2 runs" in text and "device-hours" in text and all(r in text for r in df["run_id"])
  # Memory per device (memory.analytic): the larger model needs more; on a device whose memory lies
  # between the two, only the larger one is marked as not fitting.
  small, large = df["bytes_per_device"]
  assert 0 < small < large and df["fits"].all() and "!" not in text
  tight = dataclasses.replace(b, capacity=(small + large) / 2 / memory.HEADROOM)
  df2 = plan.table(s, tight, rule=False)  # the members as written (the memory rule would fit the larger one)
  assert df2["fits"].tolist() == [True, False]
  assert "1 run marked ! need more than 90% of a device's memory" in plan.format_table(df2, tight)
  with pytest.raises(ValueError, match=r"^mfu: .*allowed: a fraction in \(0, 1\]"):
    plan.budget(s, "h200", mfu=1.5)
  with pytest.raises(ValueError, match=r"^chip: .*allowed: h100"):
    plan.budget(s, "tpu9")
  s.executor.kind, s.executor.slurm.gpus_per_node, s.executor.slurm.nodes = "slurm", 8, 2
  assert plan.budget(s, "h100").devices == 16  # a SLURM run gets 8 GPUs x 2 nodes


def test_results_columns_equal_the_configs(ran):
  d, _ = ran
  df = results.load(d)
  assert len(df) == 2
  aliases = {"d_model": "model.d_model", "n_layers": "model.n_layers", "n_heads": "model.n_heads",
             "lr": "train.lr", "batch_size": "data.batch_size", "seq_len": "data.seq_len"}
  for _, row in df.iterrows():
    cfg = io.read_json(os.path.join(d, "runs", row["run_id"], "config.json"))
    res = io.read_json(os.path.join(d, "runs", row["run_id"], "result.json"))
    for section in ("model", "train", "data", "mesh"):
      for k, v in cfg[section].items():
        assert row[f"{section}.{k}"] == v, (section, k)
    for alias, col in aliases.items():
      section, k = col.split(".")
      assert row[alias] == cfg[section][k]
    for k in ("tokens_per_s", "mfu", "step_time_s", "compile_time_s", "peak_bytes_per_device"):
      assert k in df.columns
      assert (row[k] == res[k]) if res.get(k) is not None else pd.isna(row[k]), k
  assert df["lr"].nunique() == 2  # the 1/width rule: the two widths got different lrs, each in its row


@pytest.mark.parametrize("seconds, text", [(None, "-"), (float("nan"), "-"), (0.0, "0s"), (0.004, "<1s"), (42.4, "42s"),
                                           (187, "3:07"), (7387, "2:03:07"), (3 * 86400 + 14700, "3d 4:05:00")])
def test_duration_text(seconds, text):
  assert train_progress.duration(seconds) == text
