"""The memory rule of one run: the cheapest remat policy / accum_steps / fsdp degree that fits a target chip.

A sweep applies it to every member where it expands them (scaling/sweep/ladders.py), when it knows the chip
(the sweep's `executor.chip`, or `scaling plan --chip`); a field the sweep's `overrides` set is kept as
written. The estimate is the preflight's (memory.analytic) times XLA's measured excess over it for the
policy (memory.XLA_OVER_ANALYTIC), so a setting chosen here also passes the run's check of the compiled step.

Candidates, cheapest first (a member that fits as written is left alone):
  accum_steps 2 / 4 / 8   same FLOPs, the batch in k sequential micro-batches: the step's matmuls get k times
                          smaller (lower utilization once the micro-batch is small: not modelled)
  fsdp over the devices   parameters, grads and moments split over the run's devices (mesh.fsdp = devices):
                          an all-gather of the parameters per step (within a node over NVLink: small; not modelled)
  remat 'block'           recomputes each block's forward in the backward: one more forward on top of
                          forward + backward (3 forwards of FLOPs), ~4/3 the time (REMAT_COST); with the
                          layers scanned (model.scan_layers, unless the sweep pins it): unrolled, remat did not
                          lower XLA:CPU's compiled peak at all (memory.XLA_OVER_ANALYTIC)
each also with accum_steps, then remat with fsdp and accum_steps. None fits: the member stays as written
(the plan marks it; its preflight refuses it with what to change).
"""

import dataclasses

import ml_collections

from scaling import config as config_lib
from scaling.train import memory
from scaling.models import registry
from scaling import errors

ACCUM = (1, 2, 4, 8)
# Step time relative to no remat: `block` reruns each block's forward (1 of the step's 3 forward-equivalents);
# the dots_* policies save every matmul output but the attention dots and rerun elementwise ops: ~1 (a floor).
REMAT_COST = {"none": 1.0, "block": 4 / 3, "dots_saveable": 1.0, "dots_with_no_batch_dims_saveable": 1.0}
# What `overrides` may pin (then the rule keeps it): the remat policy, the micro-batches, the mesh.
FIELDS = {"remat": ("model.remat",), "accum_steps": ("train.accum_steps",),
          "fsdp": ("mesh.data", "mesh.fsdp", "mesh.tensor", "mesh.num_devices"), "scan": ("model.scan_layers",)}


@dataclasses.dataclass(frozen=True)
class Target:
  chip: str
  capacity: float      # bytes of one device
  capacity_source: str
  devices: int         # devices per run


def devices_per_run(executor: ml_collections.ConfigDict, chip: str) -> int:
  """A SLURM run gets its allocation's GPUs (gpus_per_node x nodes); anything else one device."""
  sl = executor.slurm
  if executor.kind == "slurm" and chip != "cpu":
    return max(sl.gpus_per_node, 1) * max(sl.nodes, 1)
  return 1


def target(executor: ml_collections.ConfigDict) -> Target | None:
  """The sweep's target from `executor.chip` ('' : none, the rule is off)."""
  chip = executor.get("chip", "")
  if not chip:
    return None
  if chip not in memory.CHIP_NAMES:
    raise errors.ConfigError(f"executor.chip: {chip!r}; allowed: '' (no memory rule), {', '.join(memory.CHIP_NAMES)}")
  cap, src = memory.chip_capacity(chip)
  return Target(chip, cap, src, devices_per_run(executor, chip))


def pinned(overrides) -> set[str]:
  """The rule's knobs ('remat', 'accum_steps', 'fsdp', 'scan') that a sweep's `overrides` set explicitly."""
  def has(path: str) -> bool:
    node = overrides
    for k in path.split("."):
      if not hasattr(node, "keys") or k not in node:
        return False
      node = node[k]
    return True
  return {knob for knob, paths in FIELDS.items() if any(has(p) for p in paths)}


def need(c: ml_collections.ConfigDict, shapes: dict, devices: int) -> int:
  """Bytes per device the compiled step is planned to need: memory.analytic, times XLA's measured excess."""
  est = memory.analytic(c, shapes, devices)["total"]
  return int(est * memory.XLA_OVER_ANALYTIC["none" if c.model.get("remat", "none") == "none" else "remat"])


def label(c: ml_collections.ConfigDict, devices: int) -> str:
  """The setting as a plan shows it: 'remat block, accum 4, fsdp 8'; '-' for none of them."""
  parts = []
  if c.model.get("remat", "none") != "none":
    parts.append(f"remat {c.model.remat}" + (" (scan)" if c.model.get("scan_layers") else ""))
  if c.train.accum_steps > 1:
    parts.append(f"accum {c.train.accum_steps}")
  if c.mesh.get("fsdp", 1) != 1:
    parts.append(f"fsdp {devices if c.mesh.fsdp == -1 else c.mesh.fsdp}")
  return ", ".join(parts) or "-"


def _candidates(c: ml_collections.ConfigDict, devices: int, keep: set[str]):
  remats = [c.model.get("remat", "none")] if "remat" in keep or "remat" not in c.model else ["none", "block"]
  fsdps = [None] if "fsdp" in keep or devices == 1 else [None, devices]
  accums = [c.train.accum_steps] if "accum_steps" in keep else ACCUM
  # As written first, then in order of cost (module docstring).
  yield None, None, None
  for remat in remats:
    for fsdp in fsdps:
      for accum in accums:
        yield remat, fsdp, accum


def fit(c: ml_collections.ConfigDict, shapes: dict, t: Target, keep: set[str] = frozenset()
        ) -> tuple[ml_collections.ConfigDict, bool]:
  """(the cheapest config that fits `t`, whether it fits). `keep`: knobs not to change (pinned)."""
  for remat, fsdp, accum in _candidates(c, t.devices, keep):
    cand = ml_collections.ConfigDict(c.to_dict())
    if remat is not None:
      cand.model.remat = remat
      if remat != "none" and "scan" not in keep:
        cand.model.scan_layers = True
    if fsdp is not None:
      cand.mesh.data, cand.mesh.fsdp = 1, fsdp
    if accum is not None:
      cand.train.accum_steps = accum
    try:
      config_lib.validate(cand, t.devices)  # accum_steps and the mesh must divide the batch
    except ValueError:
      continue
    if need(cand, shapes, t.devices) <= memory.HEADROOM * t.capacity:
      return cand, True
  return c, False


def apply(runs: list, overrides, t: Target | None, shapes) -> list:
  """The sweep's call: every neural member of `runs` ([(run_id, config)]) fitted to `t` (None: unchanged),
  tagged `memory_fit` with its setting. `shapes(config)`: its batch shapes (ladders.shapes)."""
  if t is None:
    return runs
  keep = pinned(overrides)
  out = []
  for run_id, c in runs:
    if registry.is_neural_config(c):
      c, _ = fit(c, shapes(c), t, keep)
      with c.tags.unlocked():
        c.tags.memory_fit = f"{label(c, t.devices)} ({t.chip})"
    out.append((run_id, c))
  return out
