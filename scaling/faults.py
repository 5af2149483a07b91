"""Named fault points: `SCALING_FAULT=<point>[@<n>]` makes the process SIGKILL itself the n-th time
(default: the first) it reaches <point>. Tests use it to kill a run or sweep at an exact phase boundary
instead of sleeping and hoping to hit a window; unset, a point costs one dict lookup.
`SCALING_FAULT_ACTION=wait`: the process blocks there instead (until something outside ends it: a SLURM
requeue, scancel, a time limit). `SCALING_FAULT_MARK=<path>`: hitting the point creates <path> first, and
a later process finding <path> (a requeued job's next incarnation) passes the point untouched.

Points (where they sit):
  checkpoint_data_written  Checkpointer.save: the data-iterator state is on disk, the orbax step is not
  checkpoint_saved         Checkpointer.save: a step is committed (intermediate or final)
  eval_batch               loop / packed evaluate: after each eval batch
  before_result            loop / packed: after the final eval row, before result.json
  write:<file name>        io.atomic_write_text: the temp file is written, not yet renamed (e.g. write:result.json)
  run_claimed              sweep worker: the run's lock is held and its start event written, nothing trained
  run_recorded             sweep worker: result.json and the end event written, the lock not yet released
  sweep_between_runs       sweep runner: a task has ended, the next not yet started
  reuse_copied             sweep --reuse_from: a run is copied and retagged under .reuse/, not yet renamed into runs/
"""

import os
import signal
import time

_hits: dict[str, int] = {}


def point(name: str) -> None:
  spec = os.environ.get("SCALING_FAULT")
  if not spec:
    return
  want, _, nth = spec.partition("@")
  if want != name:
    return
  _hits[name] = _hits.get(name, 0) + 1
  if _hits[name] != int(nth or 1):
    return
  mark = os.environ.get("SCALING_FAULT_MARK")
  if mark:
    try:
      os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
      return
  if os.environ.get("SCALING_FAULT_ACTION") == "wait":
    while True:
      time.sleep(1)  # Python runs signal handlers here (submitit's SIGUSR2 requeue)
  os.kill(os.getpid(), signal.SIGKILL)
