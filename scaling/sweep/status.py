"""`scaling status SWEEP_DIR [--watch]`: where a sweep stands, from its files alone.

Reads sweep.json (the planned runs, their steps / tokens / FLOPs), each run's result.json, the tail of its
metrics.jsonl, its lock (scaling/sweep/locks.py) and events.jsonl; nothing else, so it works from any host
that sees the directory (a SLURM sweep on a shared filesystem) and never blocks the runs. A run is

  pending     no result and no lock (a relaunch trains it, from its last checkpoint if it has one)
  running     a live lock: step, train loss, last eval loss, tokens/s and the run's ETA
  completed / failed / diverged    its result.json (the error's one line, the divergence step)
  stale lock  a lock whose owner is gone (dead pid on this host, or no heartbeat for the sweep's
              executor.lock_timeout_s): nothing trains it until a sweep is relaunched

A SLURM sweep's runs also show their job and SLURM's own state for it (PENDING, RUNNING, CANCELLED, ...:
one squeue call, sacct for jobs squeue has forgotten; blank where SLURM cannot be asked from this host).

The sweep's ETA is the FLOPs left (running runs' remainders + pending runs) over the FLOP/s of the runs
running now.
"""

import json
import os
import sys
import time

import pandas as pd

from scaling import io
from scaling.sweep import locks, slurm_jobs, worker
from scaling.train import progress

ENDED = ("completed", "failed", "diverged")
STATES = ("running", "stale lock", "pending") + ENDED
TAIL_BYTES = 16384  # the last rows of metrics.jsonl: enough for the last train and eval rows


def last_rows(run_dir: str) -> tuple[dict | None, dict | None]:
  """(last train row, last eval row) of metrics.jsonl, read from its tail (the file may be huge)."""
  path = os.path.join(run_dir, "metrics.jsonl")
  try:
    with open(path, "rb") as f:
      size = f.seek(0, os.SEEK_END)
      f.seek(max(size - TAIL_BYTES, 0))
      lines = f.read().decode(errors="ignore").splitlines()[1 if size > TAIL_BYTES else 0:]
  except OSError:
    return None, None
  train = ev = None
  for text in reversed(lines):
    try:
      row = json.loads(text)
    except ValueError:
      continue  # a torn last line (the writer is mid-append)
    if train is None and "train_loss" in row:
      train = row
    if ev is None and "eval_loss" in row:
      ev = row
    if train is not None and ev is not None:
      break
  return train, ev


def _last_start(run_dir: str) -> dict | None:
  starts = [e for e in io.read_jsonl(os.path.join(run_dir, "events.jsonl")) if e.get("event") == "start"]
  return starts[-1] if starts else None


def run_state(run_dir: str, planned: dict, timeout_s: float, now: float | None = None) -> dict:
  """One run's row: run_id, status, step, steps, train_loss, eval_loss, tokens_per_s, eta_s, note, and
  the FLOPs planned / done / per second (for the sweep's totals)."""
  now = time.time() if now is None else now
  run_id = os.path.basename(os.path.normpath(run_dir))
  row = {"run_id": run_id, "status": "pending", "step": None, "steps": planned.get("steps"),
         "train_loss": None, "eval_loss": None, "tokens_per_s": None, "eta_s": None, "note": "",
         "flops": planned.get("flops") or 0.0, "flops_done": 0.0, "flops_per_s": 0.0}
  result = worker.read_result(run_dir)
  if result is not None and result.get("status") in ENDED:
    st = result["status"]
    row.update(status=st, step=result.get("steps"), steps=result.get("planned_steps") or row["steps"],
               train_loss=result.get("train_loss"), eval_loss=result.get("eval_loss"),
               flops_done=float(result.get("flops") or 0.0))  # what it trained (failed: 0)
    if st == "failed":
      row["note"] = (result.get("error") or "no error recorded").splitlines()[0]
    elif st == "diverged":
      row["note"] = f"diverged at step {result.get('diverged_step')} (train loss {result.get('train_loss')})"
    elif result.get("wall_time_s") is not None:
      row["note"] = f"took {progress.duration(result['wall_time_s'])}"
    return row
  train, ev = last_rows(run_dir)
  if train:
    row.update(step=train.get("step"), train_loss=train.get("train_loss"), tokens_per_s=train.get("tokens_per_s"))
  if ev:
    row["eval_loss"] = ev.get("eval_loss")
  info = locks.read(run_dir)
  if info is None:
    ck = worker.checkpoint_step(run_dir)
    row["note"] = f"checkpoint at step {ck}: a relaunch resumes there" if ck else ""
    return row
  if locks.is_stale(run_dir, timeout_s, info):
    try:
      beat = now - os.path.getmtime(os.path.join(run_dir, locks.LOCK))
    except OSError:
      beat = None
    ck = worker.checkpoint_step(run_dir)
    row.update(status="stale lock", tokens_per_s=None,
               note=f"owner {info.get('host')}:{info.get('pid')} gone (last heartbeat {progress.duration(beat)} ago);"
                    f" a relaunched sweep breaks the lock and " + (f"resumes from step {ck}" if ck else "starts it over"))
    return row
  row["status"] = "running"
  start = _last_start(run_dir)
  since = (start or {}).get("time") or info.get("time")
  where = f"{info.get('host')}:{info.get('pid')}" + (f" job {info['slurm_job']}" if info.get("slurm_job") else "")
  row["note"] = f"on {where}" + (f", started {progress.duration(now - since)} ago" if since else "")
  tok_s, done_tok, plan_tok = row["tokens_per_s"], (train or {}).get("tokens"), planned.get("tokens")
  if tok_s and done_tok is not None and plan_tok:
    row["eta_s"] = max(plan_tok - done_tok, 0) / tok_s
    flops_per_token = row["flops"] / plan_tok
    row.update(flops_done=done_tok * flops_per_token, flops_per_s=tok_s * flops_per_token)
  return row


def _num(v, spec: str) -> str:
  return "-" if v is None else format(v, spec)


def describe(row: dict) -> str:
  """One log line for a run's row (the sweep runner prints these when stdout is not a terminal)."""
  st, r = row["status"], row
  if st == "running":
    step = f"step {r['step']}/{r['steps'] or '?'}" if r["step"] is not None else "(no step logged yet: compiling?)"
    loss = f" train_loss {r['train_loss']:.3f}" if r["train_loss"] is not None else ""
    speed = f" {r['tokens_per_s']:,.0f} tok/s ETA {progress.duration(r['eta_s'])}" if r["tokens_per_s"] else ""
    return f"{r['run_id']}: running {step}{loss}{speed}"
  if st == "completed":
    return (f"{r['run_id']}: completed eval_loss {_num(r['eval_loss'], '.4f')} train_loss "
            f"{_num(r['train_loss'], '.4f')} ({r['note']})")
  return f"{r['run_id']}: {st}" + (f": {r['note']}" if r["note"] else "")


def sweep_runs(sweep_dir: str) -> tuple[dict, list[str]]:
  """(sweep.json, run ids: the planned ones in order, then any other run directory)."""
  if not os.path.isdir(sweep_dir):
    raise FileNotFoundError(f"sweep_dir: {sweep_dir!r} is not a directory; allowed: a directory written by "
                            f"`scaling sweep` (with sweep.json and runs/)")
  try:
    sweep = io.read_json(os.path.join(sweep_dir, "sweep.json"))
  except (FileNotFoundError, ValueError):
    sweep = None
  runs_dir = os.path.join(sweep_dir, "runs")
  if sweep is None and not os.path.isdir(runs_dir):
    raise FileNotFoundError(f"sweep_dir: {sweep_dir!r} has no sweep.json and no runs/; allowed: a directory "
                            f"written by `scaling sweep`")
  ids = [r["run_id"] for r in (sweep or {}).get("runs", [])]
  on_disk = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
  return sweep or {}, ids + [r for r in on_disk if r not in ids and os.path.isdir(os.path.join(runs_dir, r))]


def add_slurm(sweep_dir: str, rows: list[dict]) -> None:
  """row['slurm'] = 'JOB STATE' for every run that has not ended and has a slurm.json (its last job)."""
  jobs = {}
  for r in rows:
    path = os.path.join(sweep_dir, "runs", r["run_id"], "slurm.json")
    if r["status"] not in ENDED and os.path.exists(path):
      jobs[r["run_id"]] = str(io.read_json(path)["job_id"])
  now = slurm_jobs.states(sorted(set(jobs.values()))) if jobs else None
  for r in rows:
    if r["run_id"] in jobs:
      j = jobs[r["run_id"]]
      r["slurm"] = f"{j} {(now or {}).get(j, '?' if now is None else 'ENDED')}"


def collect(sweep_dir: str, now: float | None = None) -> tuple[list[dict], dict]:
  """(one row per run, totals: counts per status, FLOPs planned / done, FLOP/s now, the sweep's ETA)."""
  sweep, ids = sweep_runs(sweep_dir)
  planned = {r["run_id"]: r for r in sweep.get("runs", [])}
  timeout = float(sweep.get("config", {}).get("executor", {}).get("lock_timeout_s", 600.0))
  rows = [run_state(os.path.join(sweep_dir, "runs", r), planned.get(r, {}), timeout, now) for r in ids]
  add_slurm(sweep_dir, rows)
  flops = sum(r["flops"] for r in rows)
  done = sum(r["flops_done"] for r in rows)
  rate = sum(r["flops_per_s"] for r in rows)
  left = sum(r["flops"] - r["flops_done"] for r in rows if r["status"] not in ENDED)
  totals = {"runs": len(rows), "counts": {s: sum(r["status"] == s for r in rows) for s in STATES},
            "flops": flops, "flops_done": done, "flops_per_s": rate,
            "eta_s": left / rate if rate else (0.0 if not left else None), "name": sweep.get("name", "")}
  return rows, totals


def text_table(t: pd.DataFrame, left: tuple[str, ...] = ("run_id", "slurm", "note")) -> str:
  """`t` (all strings) as aligned text: numbers right-aligned, the `left` columns (names, notes) left-aligned."""
  t = t.copy()
  for c in [c for c in left if c in t.columns]:
    w = max(int(t[c].str.len().max() or 0), len(c))
    t[c] = t[c].str.ljust(w)
    t = t.rename(columns={c: c.ljust(w)})
  return t.to_string(index=False)


def format_table(rows: list[dict], totals: dict) -> str:
  t = pd.DataFrame({
      "run_id": [r["run_id"] for r in rows],
      "status": [r["status"] for r in rows],
      "step": [f"{r['step'] if r['step'] is not None else '-'}/{r['steps'] if r['steps'] else '?'}" for r in rows],
      "train_loss": [_num(r["train_loss"], ".3f") for r in rows],
      "eval_loss": [_num(r["eval_loss"], ".3f") for r in rows],
      "tok/s": [_num(r["tokens_per_s"], ",.0f") for r in rows],
      "ETA": [progress.duration(r["eta_s"]) if r["status"] == "running" else "" for r in rows],
      "note": [r["note"] for r in rows],
  })
  if any("slurm" in r for r in rows):
    t.insert(len(t.columns) - 1, "slurm", [r.get("slurm", "") for r in rows])
  counts = ", ".join(f"{n} {s}" for s, n in totals["counts"].items() if n)
  lines = [text_table(t) if rows else "(no runs yet)",
           f"{totals['runs']} runs: {counts or 'none'}"]
  if totals["flops"] and all(r["status"] in ENDED for r in rows):
    lines.append(f"every run has ended: {totals['flops_done']:.3g} of {totals['flops']:.3g} planned FLOPs trained")
  elif totals["flops"]:
    lines.append(f"FLOPs done {totals['flops_done']:.3g} of {totals['flops']:.3g} "
                 f"({totals['flops_done'] / totals['flops']:.0%}); {totals['counts']['running']} running at "
                 f"{totals['flops_per_s']:.3g} FLOP/s; sweep ETA {progress.duration(totals['eta_s'])}"
                 + ("" if totals["flops_per_s"] or totals["eta_s"] == 0 else " (nothing running)"))
  return "\n".join(lines)


def show(sweep_dir: str, rows: list[dict] | None = None, totals: dict | None = None) -> str:
  if rows is None:
    rows, totals = collect(sweep_dir)
  head = f"sweep {totals['name'] or os.path.basename(os.path.abspath(sweep_dir))} ({sweep_dir})"
  return head + "\n" + format_table(rows, totals)


def watch(sweep_dir: str, every_s: float = 5.0, sleep=time.sleep, out=print) -> None:
  """Prints the table every `every_s` seconds (clearing a terminal first) until every run has ended."""
  clear = "\x1b[H\x1b[J" if progress.interactive() else ""
  while True:
    rows, totals = collect(sweep_dir)
    out(clear + time.strftime("%H:%M:%S ") + show(sweep_dir, rows, totals))
    if all(r["status"] in ENDED for r in rows):
      return
    sleep(every_s)


def main(sweep_dir: str, watch_: bool = False, every_s: float = 5.0) -> None:
  """`scaling status`: FileNotFoundError (bad directory) -> one stderr line and exit 2 in cli.py."""
  if not watch_:
    print(show(sweep_dir))
    return
  try:
    watch(sweep_dir, every_s)
  except KeyboardInterrupt:
    sys.stdout.write("\n")
