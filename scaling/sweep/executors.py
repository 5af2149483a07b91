"""Where sweep tasks run: in this process ('local'), in child processes ('pool'), or as SLURM jobs
through submitit ('slurm'). Every executor ends in `worker.run_task`, which claims each run's lock,
trains, and writes the run's result.json; an executor only launches, waits and reports.

A task is a list of run ids trained together (one run, or `pack` runs in one vmapped step).
`run(tasks, on_start, on_done)` returns when every task has ended; `on_done(task, outcome)` gets
{run_id: 'trained' | 'done' | 'held'} (see worker.run_task).
"""

import logging
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from concurrent import futures
from typing import Callable

import ml_collections

from scaling import io
from scaling.sweep import locks, slurm_jobs, worker
from scaling import errors

log = logging.getLogger(__name__)

RESULT_GRACE_S = 30.0  # a job SLURM says ended may take this long to show its result pickle (NFS)


@dataclasses.dataclass
class Task:
  run_ids: list[str]
  configs: list[dict]  # plain dicts (JSON / pickle friendly)


OnStart = Callable[[Task], None]
OnDone = Callable[[Task, dict], None]


def compile_cache_dir(e: ml_collections.ConfigDict, sweep_dir: str) -> str:
  """'auto' -> SWEEP_DIR/jax_cache: relaunches and pool/SLURM workers reuse compiled steps. An
  environment that sets JAX_COMPILATION_CACHE_DIR wins (workers inherit it)."""
  if not e.compile_cache or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return ""
  return os.path.join(sweep_dir, "jax_cache") if e.compile_cache == "auto" else e.compile_cache


def _crashed(sweep_dir: str, task: Task, error: str, lock_timeout_s: float) -> dict:
  """A worker died without finishing (OOM kill, segfault, SLURM timeout): every run of its task that
  has no result and is not held by someone alive gets a 'failed' result.json saying so."""
  outcome = {}
  for r, cfg in zip(task.run_ids, task.configs):
    run_dir = os.path.join(sweep_dir, "runs", r)
    if worker.read_result(run_dir) is not None:
      outcome[r] = "trained"
      continue
    lock = locks.claim(run_dir, lock_timeout_s)  # the dead worker's lock is stale by now
    if lock is None:
      outcome[r] = "held"
      continue
    with lock:
      worker.record_failure(run_dir, cfg, error)
    outcome[r] = "trained"
  return outcome


class Local:
  """Sequential, in this process: simplest, and the run's exceptions stay in one traceback."""

  def __init__(self, e: ml_collections.ConfigDict, sweep_dir: str, retry_failed: bool):
    self.e, self.sweep_dir, self.retry = e, sweep_dir, retry_failed

  def queued(self, run_dir: str) -> bool:
    """Whether the run waits in a queue this executor launched earlier (only SLURM has one)."""
    return False

  def run(self, tasks: list[Task], on_start: OnStart, on_done: OnDone) -> None:
    for t in tasks:
      on_start(t)
      on_done(t, worker.run_task(self.sweep_dir, t.run_ids, t.configs, retry_failed=self.retry,
                                 lock_timeout_s=self.e.lock_timeout_s))


class Pool(Local):
  """`workers` child processes at a time, one task each (`python -m scaling.sweep.worker`): a crash or
  an OOM kill ends that child only. With gpus_per_worker > 0, slot i sees GPUs [i*g, (i+1)*g); with
  cpus_per_worker > 0 it is pinned to CPU cores [i*c, (i+1)*c) of this process's (wrapping around;
  Linux only, where the OS lets a process set its affinity)."""

  def __init__(self, e: ml_collections.ConfigDict, sweep_dir: str, retry_failed: bool):
    self.e, self.sweep_dir, self.retry = e, sweep_dir, retry_failed
    self.workers = max(1, int(e.workers))

  def _cpus(self, slot: int) -> list[int]:
    """The cores slot `slot` is pinned to ([]: unpinned). The child pins itself before importing jax: a
    preexec_fn here would make subprocess fork() this multi-threaded process (JAX's os.fork() warning)."""
    if not self.e.cpus_per_worker or not hasattr(os, "sched_setaffinity"):  # Linux; elsewhere unpinned
      return []
    cores, c = worker.usable_cpus(), int(self.e.cpus_per_worker)
    return sorted({cores[(slot * c + j) % len(cores)] for j in range(c)})

  def _one(self, t: Task, slot: int) -> dict:
    tasks_dir = os.path.join(self.sweep_dir, ".tasks")
    path = os.path.join(tasks_dir, f"{t.run_ids[0]}.{uuid.uuid4().hex[:8]}.json")
    io.atomic_write_json(path, {"sweep_dir": self.sweep_dir, "run_ids": t.run_ids, "configs": t.configs,
                                "retry_failed": self.retry, "lock_timeout_s": self.e.lock_timeout_s,
                                "compile_cache": compile_cache_dir(self.e, self.sweep_dir), "cpus": self._cpus(slot)})
    env = dict(os.environ)
    if self.e.gpus_per_worker:
      g = int(self.e.gpus_per_worker)
      env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(slot * g, (slot + 1) * g))
    log = os.path.join(self.sweep_dir, "runs", t.run_ids[0], "worker.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    try:
      with open(log, "a") as f:
        rc = subprocess.run([sys.executable, "-m", "scaling.sweep.worker", path], env=env, stdout=f,
                            stderr=subprocess.STDOUT, cwd=os.getcwd()).returncode
      if rc == 0 and os.path.exists(path + ".out"):
        return io.read_json(path + ".out")
      how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
      hint = " (SIGKILL: out of memory?)" if rc == -9 else ""
      return _crashed(self.sweep_dir, t, f"WorkerCrashed: worker process {how}{hint}; see {log}",
                      self.e.lock_timeout_s)
    finally:
      for p in (path, path + ".out"):
        if os.path.exists(p):
          os.unlink(p)

  def run(self, tasks: list[Task], on_start: OnStart, on_done: OnDone) -> None:
    free = list(range(self.workers))
    with futures.ThreadPoolExecutor(self.workers) as pool:
      running = {}
      queue = list(tasks)
      while queue or running:
        while queue and free:
          t, slot = queue.pop(0), free.pop(0)
          on_start(t)
          running[pool.submit(self._one, t, slot)] = (t, slot)
        done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
        for f in done:
          t, slot = running.pop(f)
          free.append(slot)
          on_done(t, f.result())


class Slurm(Local):
  """One SLURM job per task through submitit, as a job array (`executor.batch()`) by default. Jobs
  call `worker.run_task`; multi-node / multi-task jobs initialize `jax.distributed` from the SLURM
  environment (`parallel.maybe_initialize_distributed`) and process 0 holds the run's lock. A job
  preempted or timed out is requeued by submitit (`checkpoint`) and resumes from the run's checkpoint.
  `slurm.cluster='local'` runs the same code path with submitit's local executor (tests, laptops)."""

  def __init__(self, e: ml_collections.ConfigDict, sweep_dir: str, retry_failed: bool):
    self.e, self.sweep_dir, self.retry = e, sweep_dir, retry_failed
    self.folder = os.path.join(sweep_dir, "slurm", "%j")

  def queued(self, run_dir: str) -> bool:
    """A job submitted for this run by an earlier launch is still pending or running (squeue, then sacct:
    slurm_jobs), so a relaunch does not submit it again. Unknown (no SLURM here, local cluster): not queued;
    the run's lock still keeps a duplicate job from training it twice."""
    path = os.path.join(run_dir, "slurm.json")
    if not os.path.exists(path) or (self.e.slurm.cluster or "slurm") != "slurm":
      return False
    job = str(io.read_json(path)["job_id"])
    now = slurm_jobs.states([job])
    return now is not None and job in now and not slurm_jobs.ended(now[job])

  def executor(self):
    import submitit
    s = self.e.slurm
    ex = submitit.AutoExecutor(folder=self.folder, cluster=s.cluster or None)
    params = dict(timeout_min=int(s.timeout_min), nodes=int(s.nodes), tasks_per_node=int(s.tasks_per_node),
                  cpus_per_task=int(s.cpus_per_task), name=os.path.basename(os.path.normpath(self.sweep_dir)))
    if s.gpus_per_node:
      params["gpus_per_node"] = int(s.gpus_per_node)
    if s.mem_gb:
      params["mem_gb"] = int(s.mem_gb)
    if s.partition:
      params["slurm_partition"] = s.partition
    params["slurm_array_parallelism"] = int(s.array_parallelism)
    extra = {k: s[k] for k in ("account", "qos", "constraint") if s[k]}
    if extra:
      params["slurm_additional_parameters"] = extra
    if s.setup:
      params["slurm_setup"] = list(s.setup)
    ex.update_parameters(**params)
    return ex

  def run(self, tasks: list[Task], on_start: OnStart, on_done: OnDone) -> None:
    ex = self.executor()
    fn = RunTask(self.sweep_dir, self.retry, self.e.lock_timeout_s, compile_cache_dir(self.e, self.sweep_dir))
    if self.e.slurm.array and len(tasks) > 1:
      with ex.batch():
        jobs = [ex.submit(fn, t.run_ids, t.configs) for t in tasks]
    else:
      jobs = [ex.submit(fn, t.run_ids, t.configs) for t in tasks]
    for t, j in zip(tasks, jobs):
      for r in t.run_ids:
        io.atomic_write_json(os.path.join(self.sweep_dir, "runs", r, "slurm.json"),
                             {"job_id": j.job_id, "submitted": time.time(), "folder": self.folder})
      on_start(t)
    log.info(f"submitted {len(jobs)} {ex.cluster} job(s): {', '.join(j.job_id for j in jobs[:8])}"
          f"{' ...' if len(jobs) > 8 else ''} (logs in {os.path.dirname(self.folder)})")
    if not self.e.slurm.wait:
      return
    pending = dict(zip(range(len(jobs)), zip(tasks, jobs)))
    ended_at: dict[int, float] = {}
    while pending:
      # SLURM's state from squeue (slurm_jobs), never submitit's sacct watcher: without accounting that
      # warns on every poll and never sees a cancelled job end.
      real = (self.e.slurm.cluster or "slurm") == "slurm"
      now = slurm_jobs.states([j.job_id for _, j in pending.values()]) if real else None
      for i, (t, j) in list(pending.items()):
        pickles = [j.task(k).paths.result_pickle for k in range(j.num_tasks)]
        have = all(p.exists() for p in pickles)
        if not real:
          if not j.done():
            continue
        elif not have:
          if now is None or not slurm_jobs.ended(now.get(j.job_id)):
            continue
          state = now.get(j.job_id) or "ENDED"
          ended_at.setdefault(i, time.time())
          if state != "CANCELLED" and time.time() - ended_at[i] < RESULT_GRACE_S:
            continue  # its result pickle may still be on its way (a shared filesystem's lag)
          del pending[i]
          if state == "CANCELLED":  # scancel: not a failure of the run; a relaunch resumes it
            out = {r: "trained" if worker.read_result(os.path.join(self.sweep_dir, "runs", r)) else "cancelled"
                   for r in t.run_ids}
            log.info(f"sweep: SLURM job {j.job_id} was cancelled ({', '.join(t.run_ids)}); relaunch to resume")
          else:
            out = _crashed(self.sweep_dir, t, f"JobFailed: SLURM job {j.job_id} ended {state} without a result;"
                           f" see {j.paths.stderr}", self.e.lock_timeout_s)
          on_done(t, out)
          continue
        del pending[i]
        try:
          out = j.results()[0]
        except Exception as e:  # the job raised, or timed out too often to requeue: record it
          msg = str(e).strip().splitlines()
          out = _crashed(self.sweep_dir, t, f"JobFailed: SLURM job {j.job_id}: {msg[0] if msg else type(e).__name__}",
                         self.e.lock_timeout_s)
        on_done(t, out)
      if pending:
        time.sleep(min(self.e.poll_s, 5.0))


class RunTask:
  """The SLURM job's callable (pickled by submitit). `checkpoint` makes submitit requeue a job that
  is preempted or reaches its time limit; the requeued job resumes the run from its checkpoint."""

  def __init__(self, sweep_dir: str, retry_failed: bool, lock_timeout_s: float, compile_cache: str = ""):
    self.sweep_dir, self.retry, self.lock_timeout_s = sweep_dir, retry_failed, lock_timeout_s
    self.compile_cache = compile_cache

  def __call__(self, run_ids: list[str], configs: list[dict]) -> dict:
    return worker.run_task(self.sweep_dir, run_ids, configs, retry_failed=self.retry,
                           lock_timeout_s=self.lock_timeout_s, compile_cache=self.compile_cache)

  def checkpoint(self, run_ids, configs):
    import submitit
    return submitit.helpers.DelayedSubmission(self, run_ids, configs)


def make(e: ml_collections.ConfigDict, sweep_dir: str, retry_failed: bool):
  kinds = {"local": Local, "pool": Pool, "slurm": Slurm}
  if e.kind not in kinds:
    raise errors.ConfigError(f"executor.kind: unknown {e.kind!r}; allowed: {', '.join(kinds)}")
  return kinds[e.kind](e, sweep_dir, retry_failed)
