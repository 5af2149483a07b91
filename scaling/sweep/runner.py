"""`scaling sweep`: expand a sweep config, write sweep.json, run what is left, summarize.

Relaunching is the way to resume: completed runs are skipped, partial ones resume from their
checkpoints (train() does that), failed / diverged ones are re-run only with `retry_failed` (the old
result moves to runs/<id>/attempts/<k>/). Sweeps started on the same directory share the work through
per-run locks; one that finds a run held by a live owner waits for it (or breaks the lock when the owner
dies) and returns when every run has ended.
"""

import logging
import os
import socket
import sys
import threading
import time

import ml_collections
import pandas as pd
from tqdm.auto import tqdm

from scaling import faults, io, runid
from scaling.models import accounting, registry
from scaling.train import budget, memory, progress
from scaling.sweep import branches, executors, ladders, ledger, locks, packed, results, reuse, status, worker
from scaling import errors

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["run_id", "params", "tokens", "eval_loss", "status"]


def _state(run_dir: str, retry_failed: bool, attempted: set, timeout_s: float, queued, cfg: dict | None = None) -> str:
  """'done' | 'held' (a live owner is training it, its SLURM job is queued, or it is a cooldown branch whose
  trunk has not committed its step yet) | 'todo'."""
  r = worker.read_result(run_dir)
  rid = os.path.basename(run_dir)
  if r is not None and (r.get("status") == "completed" or not retry_failed or rid in attempted):
    return "done"
  if locks.holder(run_dir, timeout_s) is not None or (rid not in attempted and queued(run_dir)):
    return "held"
  if rid not in attempted and cfg is not None and branches.waiting(run_dir, cfg, retry_failed, attempted):
    return "held"
  return "done" if rid in attempted else "todo"  # never run one run twice in one invocation


def check_conflicts(sweep_dir: str, runs, retry_failed: bool) -> None:
  """A run directory trained under a different config is never silently mixed into this sweep."""
  for run_id, c in runs:
    d = os.path.join(sweep_dir, "runs", run_id)
    path = os.path.join(d, "config.json")
    if not os.path.exists(path):
      continue
    diff = runid.config_diff(io.read_json(path), c)
    if not diff:
      continue
    r = worker.read_result(d)
    redo = r is not None and retry_failed and r.get("status") != "completed"
    if (r is not None and not redo) or (r is None and (worker.checkpoint_step(d) or os.path.exists(
        os.path.join(d, "metrics.jsonl")))):
      raise errors.ConfigError(f"sweep_dir: run {run_id} in {sweep_dir} was trained with another config "
                       f"({'; '.join(diff[:3])}); allowed: the same config, a new --sweep_dir, or removing "
                       f"runs/{run_id}" + ("" if r is None or r.get("status") == "completed"
                                           else " (or --retry_failed to redo it)"))


def write_sweep_json(sweep_dir: str, s: ml_collections.ConfigDict, runs) -> None:
  rows = []
  for run_id, c in runs:
    row = {"run_id": run_id, "family": c.family, "size": c.size, "seed": c.seed, "tags": c.tags.to_dict()}
    if registry.is_neural_config(c):
      p = budget.plan(c)
      row.update(params=p["params"]["total"], params_nonembed=p["params"]["nonembed"], steps=p["steps"],
                 tokens=p["tokens"], flops=p["flops"], lr=c.train.lr, batch_size=c.data.batch_size)
    rows.append(row)
  io.atomic_write_json(os.path.join(sweep_dir, "sweep.json"), {
      "name": s.name, "config": s.to_dict(), "runs": rows, "started": time.time(),
      "host": socket.gethostname(), "argv": sys.argv})


class Progress:
  """Runs done / total. On a terminal: a tqdm bar whose postfix shows the active run's last logged loss.
  Otherwise (a log file, SLURM, CI): a flushed line per run start and end, and every `progress.every_s()`
  seconds one per running run (step, loss, tokens/s, ETA from `status.run_state`)."""

  def __init__(self, sweep_dir: str, total: int, done: int, enabled: bool, timeout_s: float, poll_s: float = 2.0):
    self.sweep_dir, self.active, self.total, self.done, self.timeout_s = sweep_dir, [], total, done, timeout_s
    self.lines = enabled and not progress.interactive()
    self.bar = tqdm(total=total, initial=done, unit="run", desc="sweep", disable=not enabled or self.lines,
                    dynamic_ncols=True)
    self.planned = {r["run_id"]: r for r in io.read_json(os.path.join(sweep_dir, "sweep.json"))["runs"]}
    self._printed = time.monotonic()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._watch, args=(poll_s,), daemon=True)
    self._thread.start()

  def _row(self, run_id: str) -> dict:
    return status.run_state(os.path.join(self.sweep_dir, "runs", run_id), self.planned.get(run_id, {}),
                            self.timeout_s)

  def _watch(self, poll_s: float):
    while not self._stop.wait(poll_s):
      self.refresh()

  def refresh(self):
    active = list(self.active)
    if not active:
      return
    if self.lines:
      if time.monotonic() - self._printed >= progress.every_s():
        self._printed = time.monotonic()
        for r in active:
          progress.line(f"sweep: {status.describe(self._row(r))}")
      return
    row, _ = status.last_rows(os.path.join(self.sweep_dir, "runs", active[-1]))
    post = {"run": active[-1] + (f" +{len(active) - 1}" if len(active) > 1 else "")}
    if row:
      post.update(step=row.get("step"), loss=f"{row.get('train_loss', float('nan')):.3f}")
    self.bar.set_postfix(post, refresh=True)

  def started(self, run_ids: list[str]):
    self.active.extend(run_ids)
    if self.lines:
      for r in run_ids:
        progress.line(f"sweep: start {r} ({self.done}/{self.total} runs done)")

  def ended(self, run_ids: list[str], outcome: dict, done: int):
    for r in run_ids:
      if r in self.active:
        self.active.remove(r)
    self.update_done(done)
    if self.lines:
      for r in run_ids:
        what = status.describe(self._row(r)) if outcome.get(r) == "trained" else f"{r}: {outcome.get(r)}"
        progress.line(f"sweep: end {what} ({self.done}/{self.total} runs done)")

  def update_done(self, n: int):
    self.done = self.bar.n = n
    self.bar.refresh()

  def close(self):
    self._stop.set()
    self._thread.join(timeout=5)
    self.bar.close()


def cost(c: ml_collections.ConfigDict) -> float:
  """Rough training FLOPs of a run (6 x params x tokens when the budget is not FLOPs); baselines 0."""
  if not registry.is_neural_config(c):
    return 0.0
  t = c.train
  if t.flops:
    return float(t.flops)
  tokens = t.tokens or t.steps * c.data.batch_size * c.data.get("seq_len", 1)
  return 6.0 * accounting.params(c.family, c.model)["total"] * tokens


def run_sweep(s: ml_collections.ConfigDict, sweep_dir: str, *, executor: str | None = None,
              workers: int = 0, retry_failed: bool = False, progress: bool = True,
              reuse_from: tuple[str, ...] = ()) -> pd.DataFrame:
  """Runs (or resumes) a sweep into `sweep_dir`; -> its results, one row per run (results.load).
  `progress`: a bar on a terminal, log lines otherwise (scaling/train/progress.py); False: quiet.
  `reuse_from`: other sweep directories whose completed runs of an equal config are copied in (reuse.py)."""
  s = ml_collections.ConfigDict(s.to_dict())
  if executor:
    s.executor.kind = executor
  if workers:
    s.executor.workers = int(workers)
  runs = ladders.expand(s)  # every config error surfaces here, before anything runs
  reuse.check_sources(reuse_from)
  if s.executor.kind != "slurm":  # this machine trains them: a run that cannot fit is refused now
    for run_id, c in runs:
      if registry.is_neural_config(c):
        memory.check(c, memory.analytic(c, budget.shapes(c))["total"], f"run {run_id}, analytic estimate",
                     slack=memory.ANALYTIC_SLACK)
  sweep_dir = os.path.abspath(sweep_dir)
  os.makedirs(os.path.join(sweep_dir, "runs"), exist_ok=True)
  check_conflicts(sweep_dir, runs, retry_failed)
  write_sweep_json(sweep_dir, s, runs)
  reused = reuse.adopt(sweep_dir, runs, list(reuse_from))
  if reused and progress:
    log.info(f"sweep: reused {len(reused)} completed runs of an equal config from {', '.join(reuse_from)}")
  configs = dict(runs)
  plain = {r: runid.plain(c) for r, c in runs}
  ids = [r for r, _ in runs]
  ex = executors.make(s.executor, sweep_dir, retry_failed)
  timeout = s.executor.lock_timeout_s
  attempted: set[str] = set()

  def states():
    return {r: _state(os.path.join(sweep_dir, "runs", r), retry_failed, attempted, timeout, ex.queued,
                      plain[r]) for r in ids}

  st = states()
  bar = Progress(sweep_dir, len(ids), sum(v == "done" for v in st.values()), progress, timeout)

  def on_start(t):
    bar.started(t.run_ids)

  progressed = []

  def on_done(t, outcome):
    for r in t.run_ids:
      if outcome.get(r) in ("trained", "cancelled"):  # cancelled (scancel): not resubmitted by this launch
        attempted.add(r)
      progressed.append(outcome.get(r) in ("trained", "done"))
    bar.ended(t.run_ids, outcome, sum(v == "done" for v in states().values()))
    faults.point("sweep_between_runs")

  no_wait = s.executor.kind == "slurm" and not s.executor.slurm.wait  # submit and return
  try:
    while True:
      todo = [(r, configs[r]) for r in ids if st[r] == "todo"]
      if todo:
        progressed.clear()
        groups = packed.groups(todo, s.pack, lambda r: worker.checkpoint_steps(os.path.join(sweep_dir, "runs", r)))
        tasks = [executors.Task(g, [runid.plain(configs[r]) for r in g]) for g in groups]
        if s.executor.kind == "pool":  # longest first: the big members do not start last and run alone
          tasks.sort(key=lambda t: -sum(cost(configs[r]) for r in t.run_ids))
        ex.run(tasks, on_start, on_done)
        if no_wait:
          break
        if not any(progressed):
          time.sleep(s.executor.poll_s)  # every claim lost a race: let the winners get going
      elif any(v == "held" for v in st.values()) and not no_wait:
        time.sleep(s.executor.poll_s)  # another sweep is training these: wait for it or its death
      else:
        break
      st = states()
      bar.update_done(sum(v == "done" for v in st.values()))
  finally:
    bar.close()
  df = results.load(sweep_dir, trunks=True)
  df = df[df["run_id"].isin(ids)].reset_index(drop=True)
  spent = branches.flops_summary(df)
  if spent:
    log.info(spent)
  if "role" in df.columns:  # trunks are not results of a budget (results.load leaves them out too)
    df = df[df["role"] != "trunk"].reset_index(drop=True)
  ledger.score_sweep(sweep_dir, df, announce=progress)  # forecasts of these runs get their actual loss
  return df


def summary(df: pd.DataFrame) -> str:
  t = df[SUMMARY_COLUMNS].copy()
  t["params"] = t["params"].map(lambda v: f"{int(v):,}" if pd.notna(v) else "-")
  t["tokens"] = t["tokens"].map(lambda v: f"{float(v):.3g}" if pd.notna(v) and v else "-")
  t["eval_loss"] = t["eval_loss"].map(lambda v: f"{float(v):.4f}" if pd.notna(v) else "-")
  counts = ", ".join(f"{n} {k}" for k, n in df["status"].value_counts().items())
  return t.to_string(index=False) + f"\n{len(df)} runs: {counts}"


def main(config: ml_collections.ConfigDict, sweep_dir: str, *, executor: str | None = None,
         workers: int = 0, retry_failed: bool = False, reuse_from: tuple[str, ...] = ()) -> pd.DataFrame:
  """The `scaling sweep` command. Exits 1 when a run failed (diverged runs are results, not errors); a config
  error raises ValueError before anything runs (the CLI prints it as one line)."""
  cache = executors.compile_cache_dir(config.executor, os.path.abspath(sweep_dir))
  if cache:
    import jax  # this process is ours: the in-process executor reuses compiles across relaunches
    jax.config.update("jax_compilation_cache_dir", cache)
  df = run_sweep(config, sweep_dir, executor=executor, workers=workers, retry_failed=retry_failed,
                 reuse_from=reuse_from)
  print(summary(df))
  print(f"results: scaling.results.load({sweep_dir!r})")
  if (df["status"] == "failed").any():
    sys.exit(1)
  return df
