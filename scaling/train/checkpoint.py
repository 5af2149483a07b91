"""orbax checkpoints of the train state plus each process's data-iterator position.

Layout under `<workdir>/checkpoints/`: orbax's `<step>/` directories (committed atomically by orbax; a
save killed mid-write leaves only a temporary directory that orbax ignores) and `data/<step>.p<i>.json`,
the grain iterator state of process i, written *before* the orbax save so that any committed step
has its data position. A step missing either part is skipped on restore, never fatal.
Steps in `pinned` (a trunk's branch points) are never deleted; `keep` counts the others.
"""

import logging
import base64
import os

import jax
import orbax.checkpoint as ocp

from scaling import faults, io

log = logging.getLogger(__name__)


class Checkpointer:
  def __init__(self, workdir: str, keep: int = 2, pinned=()):
    self.dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.data_dir = os.path.join(self.dir, "data")
    self.keep, self.pinned = keep, {int(s) for s in pinned}
    self.reopen()

  def reopen(self) -> None:
    """(Re)create the directory and its manager, e.g. after the old checkpoints were moved aside."""
    os.makedirs(self.data_dir, exist_ok=True)
    # Synchronous saves: a checkpoint either exists completely when save() returns or not at all, and a
    # SIGKILL cannot leave a committed step without its data state. With pinned steps orbax keeps all and
    # save() deletes the surplus itself (orbax 0.12 has no per-step keep rule).
    self.manager = ocp.CheckpointManager(
        self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=None if self.pinned else self.keep, create=True,
                                                       enable_async_checkpointing=False))

  def _data_path(self, step: int) -> str:
    return os.path.join(self.data_dir, f"{step}.p{jax.process_index()}.json")

  def save(self, step: int, state, data_state, extra: dict | None = None) -> None:
    if isinstance(data_state, bytes):
      data_state = {"bytes_b64": base64.b64encode(data_state).decode()}
    io.atomic_write_json(self._data_path(step), {"data": data_state, "extra": extra or {}})
    faults.point("checkpoint_data_written")
    if step in self.manager.all_steps():  # a group resumed below a member's newest step redoes it identically
      self.manager.delete(step)
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self.manager.wait_until_finished()
    if self.pinned:
      for old in [s for s in sorted(self.manager.all_steps()) if s not in self.pinned][:-self.keep]:
        self.manager.delete(old)
    for f in os.listdir(self.data_dir):  # drop data states of steps orbax no longer keeps
      s = f.split(".")[0]
      if s.isdigit() and int(s) not in self.manager.all_steps() and int(s) != step:
        os.unlink(os.path.join(self.data_dir, f))
    faults.point("checkpoint_saved")

  def complete_steps(self) -> list[int]:
    """Committed orbax steps that also have this process's data state, oldest first."""
    return [s for s in sorted(self.manager.all_steps()) if os.path.exists(self._data_path(s))]

  def restore_latest(self, abstract_state, at_most: int | None = None):
    """-> (step, state, data_state, extra) of the newest complete checkpoint (at or below `at_most`), or None."""
    for step in reversed(self.complete_steps()):
      if at_most is not None and step > at_most:
        continue
      try:
        state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      except Exception as e:  # a torn or foreign directory: try the previous step
        log.info(f"checkpoint {step} unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]}); skipping")
        continue
      saved = io.read_json(self._data_path(step))
      data = saved["data"]
      if isinstance(data, dict) and "bytes_b64" in data:
        data = base64.b64decode(data["bytes_b64"])
      return step, state, data, saved.get("extra", {})
    return None

  def close(self):
    self.manager.close()


def abstract_like(state, shardings):
  """ShapeDtypeStructs carrying the target shardings: orbax restores straight onto the mesh."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


def has_step(workdir: str, step: int) -> bool:
  """Another run's step is committed (orbax step directory and process 0's data state): what a cooldown
  branch waits for before it starts from its trunk."""
  d = os.path.join(os.path.abspath(workdir), "checkpoints")
  return os.path.isdir(os.path.join(d, str(step))) and os.path.exists(os.path.join(d, "data", f"{step}.p0.json"))


def restore_step(workdir: str, step: int, abstract_state):
  """-> (state, data_state) of another run's committed step, read without touching its directory
  (the run may still be training and saving)."""
  d = os.path.join(os.path.abspath(workdir), "checkpoints")
  manager = ocp.CheckpointManager(d, options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  finally:
    manager.close()
  data = io.read_json(os.path.join(d, "data", f"{step}.p{jax.process_index()}.json"))["data"]
  if isinstance(data, dict) and "bytes_b64" in data:
    data = base64.b64decode(data["bytes_b64"])
  return state, data
