"""One sweep task in the process that trains it: claim the runs, train them, record the outcome.

A task is one run, or several runs trained together in one vmapped step (`pack`). Every executor ends
up here: in-process (`local`), in a child process (`pool`: `python -m scaling.sweep.worker TASK.json`)
or in a SLURM job (submitit pickles `run_task`). The process that trains a run is the one that holds
its lock, so killing the sweep process that launched it never frees a run that is still training.

Each run directory gets an `events.jsonl` audit trail (start / end / skip with host, pid, the
checkpoint step it resumed from, and the status), so "who trained this, and how often" is on disk.
"""

import json
import os
import shutil
import socket
import sys
import time
import traceback

import ml_collections

from scaling import faults, io, runid
from scaling.sweep import locks
from scaling.models import registry

EXIT_OK = 0


def usable_cpus() -> list[int]:
  """The CPU cores this process may run on; all of them where the OS has no affinity API (macOS)."""
  if hasattr(os, "sched_getaffinity"):
    return sorted(os.sched_getaffinity(0))
  return list(range(os.cpu_count() or 1))


def read_result(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, "result.json")
  try:
    return io.read_json(path)
  except (FileNotFoundError, json.JSONDecodeError):
    return None


def checkpoint_steps(run_dir: str) -> set[int]:
  """Committed orbax steps of a run (orbax renames a step directory into place when it is complete)."""
  d = os.path.join(run_dir, "checkpoints")
  return {int(x) for x in os.listdir(d) if x.isdigit()} if os.path.isdir(d) else set()


def checkpoint_step(run_dir: str) -> int:
  return max(checkpoint_steps(run_dir), default=0)


def event(run_dir: str, kind: str, **kw) -> None:
  row = {"event": kind, "time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), **kw}
  with open(os.path.join(run_dir, "events.jsonl"), "a") as f:
    f.write(json.dumps(row, default=io._default) + "\n")


def set_aside(run_dir: str, fresh: bool) -> str:
  """Moves the previous attempt's result (and, for a fresh start, its checkpoints and metrics) into
  `attempts/<k>/`; a retry without `fresh` resumes from the checkpoints."""
  k = 1
  while os.path.exists(os.path.join(run_dir, "attempts", str(k))):
    k += 1
  dst = os.path.join(run_dir, "attempts", str(k))
  os.makedirs(dst)
  names = ["result.json"] + (["checkpoints", "metrics.jsonl", "tb", "config.json"] if fresh else [])
  for name in names:
    if os.path.exists(os.path.join(run_dir, name)):
      shutil.move(os.path.join(run_dir, name), os.path.join(dst, name))
  return dst


def failed_result(cfg: dict, error: str) -> dict:
  return {"family": cfg.get("family"), "size": cfg.get("size"), "seed": cfg.get("seed"),
          "tags": cfg.get("tags", {}), "status": "failed", "error": error, "steps": 0, "tokens": 0,
          "flops": 0.0}


def record_failure(run_dir: str, cfg: dict, error: str) -> dict:
  """result.json for a run whose trainer could not write one (config error, crash, killed job)."""
  result = failed_result(cfg, error)
  io.atomic_write_json(os.path.join(run_dir, "result.json"), result)
  event(run_dir, "end", status="failed", error=error)
  return result


def _agree(flag: bool) -> bool:
  """Multi-host runs: every process follows process 0's decision (only it touches the lock)."""
  import jax
  if jax.process_count() == 1:
    return flag
  import numpy as np
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _train(cfgs: list[ml_collections.ConfigDict], run_dirs: list[str]) -> list[dict]:
  # Imported here, not at the top: `scaling status` reads run files through this module without jax.
  from scaling import config as config_lib
  c, d = cfgs[0], run_dirs[0]
  if len(cfgs) == 1 and c.family in config_lib.BASELINES:
    from scaling.baselines import run as baseline_run
    return [baseline_run.run(c, d)]
  from scaling.train import loop
  return loop.train_members(cfgs, run_dirs)


def run_task(sweep_dir: str, run_ids: list[str], configs: list[dict], *, retry_failed: bool = False,
             lock_timeout_s: float = 600.0, compile_cache: str = "") -> dict[str, str]:
  """Claims and trains the task's runs; -> {run_id: 'trained' | 'done' | 'held'} ('done': it already
  had a result; 'held': another live process owns it). Never raises for a failing run: the failure is
  in its result.json. `compile_cache`: a JAX persistent compilation cache directory for this process."""
  from scaling import parallel
  dirs = {r: os.path.join(sweep_dir, "runs", r) for r in run_ids}
  cfgs = {r: ml_collections.ConfigDict(c) for r, c in zip(run_ids, configs)}
  if registry.is_neural_config(cfgs[run_ids[0]]):
    import jax
    if compile_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
      jax.config.update("jax_compilation_cache_dir", compile_cache)
    parallel.maybe_initialize_distributed(cfgs[run_ids[0]])
    main = jax.process_index() == 0
  else:
    main = True
  outcome, held = {}, {}
  try:
    for r in run_ids:
      lock = locks.claim(dirs[r], lock_timeout_s) if main else None
      if not _agree(lock is not None):
        outcome[r] = "held"
        continue
      prev = read_result(dirs[r]) if main else None
      redo = prev is not None and retry_failed and prev.get("status") != "completed"
      if not _agree(prev is None or redo):
        outcome[r] = "done"
        if lock:
          lock.release()
        continue
      held[r] = lock
      if main:
        old = io.read_json(os.path.join(dirs[r], "config.json")) if os.path.exists(
            os.path.join(dirs[r], "config.json")) else None
        changed = old is not None and bool(runid.config_diff(old, cfgs[r]))
        if redo or (changed and (checkpoint_step(dirs[r]) or os.path.exists(os.path.join(dirs[r], "metrics.jsonl")))):
          set_aside(dirs[r], fresh=changed)
        io.atomic_write_json(os.path.join(dirs[r], "config.json"), runid.plain(cfgs[r]))
        event(dirs[r], "start", resumed_from=checkpoint_step(dirs[r]), retry=redo,
              packed_with=[x for x in run_ids if x != r], cpus=usable_cpus())
        faults.point("run_claimed")
    todo = list(held)
    if todo:
      _run_and_record([cfgs[r] for r in todo], [dirs[r] for r in todo], main)
      outcome.update({r: "trained" for r in todo})
      faults.point("run_recorded")
  finally:
    for lock in held.values():
      if lock is not None:
        lock.release()
  return outcome


def _run_and_record(cfgs, run_dirs, main: bool) -> None:
  t0 = time.time()
  try:
    results = _train(cfgs, run_dirs)
  except Exception as e:  # recorded in result.json (never swallowed): the sweep goes on
    traceback.print_exc()
    error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if not main:
      return
    for c, d in zip(cfgs, run_dirs):
      # The trainer writes a 'failed' result itself once it has started; before that (a config the
      # device count rejects, a data error) we write it.
      r = read_result(d)
      if r is None:
        record_failure(d, runid.plain(c), error)
      else:
        event(d, "end", status=r.get("status"), wall_time_s=time.time() - t0, error=r.get("error", error))
    return
  if main:
    for d, r in zip(run_dirs, results):
      event(d, "end", status=r.get("status"), wall_time_s=time.time() - t0, error=r.get("error"))


def main(argv: list[str]) -> int:
  """`python -m scaling.sweep.worker TASK.json`: the pool executor's child process."""
  task = io.read_json(argv[1])
  if task.get("cpus"):  # before jax is imported: XLA sizes its thread pools from the affinity
    os.sched_setaffinity(0, task["cpus"])
  out = run_task(task["sweep_dir"], task["run_ids"], task["configs"], retry_failed=task["retry_failed"],
                 lock_timeout_s=task["lock_timeout_s"], compile_cache=task.get("compile_cache", ""))
  io.atomic_write_json(argv[1] + ".out", out)
  return EXIT_OK


if __name__ == "__main__":
  sys.exit(main(sys.argv))
