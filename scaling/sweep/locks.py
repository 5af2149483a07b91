"""Run claims: an O_EXCL lock file per run directory, so that sweeps sharing a directory never train
the same run twice.

`runs/<id>/.lock` holds the owner (host, pid, process start time, SLURM job, a random token) and is
touched by a heartbeat thread while the run trains. A lock is stale when its owner is gone: the same
host and the pid is dead (or is now another process: the start time differs), or no heartbeat for
`timeout_s` (the owner's host died, or the process froze whole). A stale lock is broken under a second O_EXCL file
(`.lock.break`), re-checking the token, so two sweeps never both break it and both claim. A SLURM job
requeued after preemption takes over the lock its earlier incarnation left (same job id).
"""

import logging
import json
import os
import socket
import threading
import time
import uuid

log = logging.getLogger(__name__)

LOCK = ".lock"
BREAK_TIMEOUT_S = 60.0  # a breaker that died mid-break leaves .lock.break; older than this is ignored


def _start_time(pid: int) -> str | None:
  """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _slurm_job() -> str | None:
  job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
  if not job:
    return None
  task = os.environ.get("SLURM_ARRAY_TASK_ID")
  return f"{job}_{task}" if task and os.environ.get("SLURM_ARRAY_JOB_ID") else job


def owner() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
          "slurm_job": _slurm_job(), "time": time.time(), "token": uuid.uuid4().hex}


def read(run_dir: str) -> dict | None:
  """The lock's owner dict; {} while it is being written or unreadable; None when there is no lock."""
  try:
    with open(os.path.join(run_dir, LOCK)) as f:
      text = f.read()
  except FileNotFoundError:
    return None
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return {}


def _alive(info: dict) -> bool | None:
  """True / False when the owner's liveness can be told from this host, None otherwise."""
  if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
    return None
  try:
    os.kill(info["pid"], 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass
  start = _start_time(info["pid"])
  return start is None or info.get("start") is None or start == info["start"]


def is_stale(run_dir: str, timeout_s: float, info: dict | None = None) -> bool:
  info = read(run_dir) if info is None else info
  if info is None:
    return False
  try:
    age = time.time() - os.path.getmtime(os.path.join(run_dir, LOCK))
  except FileNotFoundError:
    return False
  if age > timeout_s:
    return True
  mine = _slurm_job()
  if mine and info.get("slurm_job") == mine and info.get("pid") != os.getpid():
    return True  # our own job, requeued: its previous incarnation is gone
  return _alive(info) is False


def holder(run_dir: str, timeout_s: float) -> dict | None:
  """The live owner of the run's lock, or None when it is free or stale."""
  info = read(run_dir)
  if info is None or is_stale(run_dir, timeout_s, info):
    return None
  return info


class Lock:
  """A claimed run. `release()` (or the context manager) removes it if it is still ours."""

  def __init__(self, run_dir: str, info: dict, heartbeat_s: float):
    self.run_dir, self.info = run_dir, info
    self.path = os.path.join(run_dir, LOCK)
    self.lost = False
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True,
                                    name=f"lock-heartbeat:{os.path.basename(run_dir)}")
    self._thread.start()

  def _mine(self) -> bool:
    cur = read(self.run_dir)
    return bool(cur) and cur.get("token") == self.info["token"]

  def _beat(self, every: float):
    while not self._stop.wait(every):
      if not self._mine():
        self.lost = True  # broken by someone who judged us stale; nothing sane to do but say so
        log.info(f"warning: lost the lock of {self.run_dir} (another sweep broke it as stale)")
        return
      try:
        os.utime(self.path)
      except FileNotFoundError:
        pass

  def release(self) -> None:
    self._stop.set()
    self._thread.join(timeout=5)
    if self._mine():
      try:
        os.unlink(self.path)
      except FileNotFoundError:
        pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def _break(run_dir: str, stale_token: str | None, timeout_s: float) -> None:
  brk = os.path.join(run_dir, LOCK + ".break")
  try:
    fd = os.open(brk, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    try:
      if time.time() - os.path.getmtime(brk) > BREAK_TIMEOUT_S:
        os.unlink(brk)
    except FileNotFoundError:
      pass
    return
  try:
    info = read(run_dir)  # re-check under the breaker lock: still the stale owner we judged?
    if info is not None and (info or {}).get("token") == stale_token and is_stale(run_dir, timeout_s, info):
      os.unlink(os.path.join(run_dir, LOCK))
  finally:
    os.close(fd)
    os.unlink(brk)


def claim(run_dir: str, timeout_s: float = 600.0, heartbeat_s: float | None = None) -> Lock | None:
  """Claims the run for this process, breaking a stale lock; None when a live owner holds it."""
  os.makedirs(run_dir, exist_ok=True)
  path = os.path.join(run_dir, LOCK)
  heartbeat_s = heartbeat_s or max(min(timeout_s / 4, 30.0), 0.05)
  for _ in range(5):
    info = owner()
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      cur = read(run_dir)
      if cur is None:
        continue  # released between our open and read: try again
      if not is_stale(run_dir, timeout_s, cur):
        return None
      _break(run_dir, (cur or {}).get("token"), timeout_s)
      continue
    with os.fdopen(fd, "w") as f:
      json.dump(info, f)
      f.flush()
      os.fsync(f.fileno())
    return Lock(run_dir, info, heartbeat_s)
  return None
