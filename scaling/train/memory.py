"""Memory per device before the first step: XLA's analysis of the compiled train step (the authority), an
analytic estimate from the config alone (planning, and a refusal before any compile when even the estimate,
allowing for its error, does not fit), and the device's capacity.

The analytic estimate counts f32 params, grads and optimizer moments split over the mesh's parameter
shards, plus the activations backward keeps of one micro-batch per device. Measured against XLA
(benchmarks/memory.py) it is 0.6-0.7x the compiled step's peak without remat and 1.1-1.6x with it.
"""

import math
import os

import jax
import ml_collections

from scaling import parallel
from scaling import errors
from scaling.models import accounting, registry

F32 = 4
MOMENTS = {"adamw": 2, "momentum": 1, "sgd": 0}
# Fraction of capacity a step may plan to use: allocator fragmentation and the runtime's own buffers
# (cuDNN workspaces, host staging) need the rest.
HEADROOM = 0.9
# The analytic estimate refuses a run before compiling only when over capacity by more than its error
# (0.6-1.6x XLA's peak, above); the compiled step's own figure decides the close calls.
ANALYTIC_SLACK = 2.0
# XLA's compiled peak / the analytic estimate, the largest measured (XLA:CPU, jax 0.10; benchmarks/RESULTS.md
# "Remat: memory per policy" and "The memory rule's margin"): without remat 1.37-1.65 at d_model 256-768 x seq
# 1024, 1.42 at d64 x 128, 2.22 at d64 x 512 scanned (attention-dominated); with a remat policy, scanned,
# 0.63-0.93 at seq 1024 but 1.63 at d64 x 512. A plan that must hold on the compiled step scales the estimate
# by this (scaling/train/fit_memory.py). Unrolled, remat did not lower XLA:CPU's peak at all (same figure):
# the rule scans the layers when it turns remat on.
XLA_OVER_ANALYTIC = {"none": 2.25, "remat": 1.65}
# Published memory per device (bytes) of the chips `scaling plan --chip` and a sweep's executor.chip name.
HBM = {"h100": 80e9, "h200": 141e9, "a100": 80e9, "v5e": 16e9}
CHIP_NAMES = {"h100": "H100", "h200": "H200", "a100": "A100", "v5e": "TPU v5e", "cpu": "cpu"}


class TooBig(errors.ConfigError):
  """A run whose step cannot fit in device memory (a user error: the config asks for too much)."""


def fmt(n: float) -> str:
  for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if abs(n) >= scale:
      return f"{n / scale:.3g} {unit}"
  return f"{int(n)} B"


def capacity() -> tuple[int, str]:
  """(bytes one device may use, where the number comes from). Fake CPU devices share the host's RAM."""
  d = jax.local_devices()[0]
  if d.platform != "cpu":
    stats = d.memory_stats() or {}
    if stats.get("bytes_limit"):
      return int(stats["bytes_limit"]), f"{d.device_kind} memory_stats bytes_limit"
  ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  n = jax.local_device_count()
  return ram // n, f"host RAM / {n} local device{'s' if n > 1 else ''}"


def chip_capacity(chip: str) -> tuple[float, str]:
  """(bytes of one device, where the number comes from) of a named chip; 'cpu': this host (capacity())."""
  if chip == "cpu":
    return capacity()
  if chip not in HBM:
    raise errors.ConfigError(f"chip: {chip!r}; allowed: {', '.join(CHIP_NAMES)}")
  return HBM[chip], f"published memory of the {CHIP_NAMES[chip]}"


def _mesh_axes(c: ml_collections.ConfigDict, n_devices: int) -> dict:
  n = c.mesh.get("num_devices", 0) or n_devices
  return dict(zip(parallel.MESH_AXES, parallel.mesh_shape(c.mesh, n)))


def _activations_per_example(family: str, m: ml_collections.ConfigDict, shapes: dict, tensor: int) -> float:
  """Bytes backward keeps per example: the family's estimate (scaling/models/activations.py), 0 without one."""
  act = 2 if m.get("dtype", "float32") == "bfloat16" else F32
  fn = registry.get(family).activations
  return fn(m, shapes, tensor, act) if fn is not None else 0.0


def analytic(c: ml_collections.ConfigDict, shapes: dict, n_devices: int | None = None) -> dict:
  """Bytes per device from the config alone: {'params', 'grads', 'optimizer', 'activations', 'total'}.
  `shapes`: the batch's array shapes (loop.py's probe; sweep planning derives them from data.seq_len)."""
  axes = _mesh_axes(c, n_devices or jax.device_count())
  p = accounting.params(c.family, c.model)["total"]
  shards = axes["fsdp"] * axes["tensor"]  # a dimension an axis does not divide stays replicated: a floor
  params = p * F32 / shards
  micro = c.data.batch_size / c.train.accum_steps / (axes["data"] * axes["fsdp"])
  out = {"params": params, "grads": params, "optimizer": MOMENTS[c.train.optimizer] * params,
         "activations": math.ceil(micro) * _activations_per_example(c.family, c.model, shapes, axes["tensor"])}
  out["total"] = sum(out.values())
  return {k: int(v) for k, v in out.items()}


def from_compiled(compiled) -> dict:
  """XLA's figures for one device's program: arguments, outputs, temporaries, and the peak."""
  s = compiled.memory_analysis()
  if s is None:  # some backends do not report
    return {}
  out = {"argument": s.argument_size_in_bytes, "output": s.output_size_in_bytes,
         "alias": s.alias_size_in_bytes, "temp": s.temp_size_in_bytes,
         "code": s.generated_code_size_in_bytes}
  # Donated state is aliased to the outputs: it is counted once. XLA:CPU (jax 0.10) reports a peak equal to
  # the arguments alone (0.22 GB for a 19M GPT at 8x1024 whose temporaries are 7.7 GB: benchmarks/memory.py),
  # so the peak is at least the sum.
  peak = max(getattr(s, "peak_memory_in_bytes", 0) or 0, out["argument"] + out["output"] - out["alias"] + out["temp"])
  out["peak"] = int(peak)
  return {k: int(v) for k, v in out.items()}


def advice(c: ml_collections.ConfigDict) -> str:
  """What a user can change, with the current values."""
  t, d = c.train, c.data
  tips = [f"a smaller data.batch_size ({d.batch_size})", f"more train.accum_steps ({t.accum_steps})"]
  if registry.get(c.family).seq_input:
    tips.append(f"a shorter data.seq_len ({d.seq_len})")
  tips.append(f"mesh.fsdp > 1 ({c.mesh.get('fsdp', 1)})")
  if "remat" in c.model:
    tips.append(f"model.remat ({c.model.remat!r})")
  return ", ".join(tips)


def check(c: ml_collections.ConfigDict, need: int, what: str, cap: int | None = None,
          cap_src: str = "", slack: float = 1.0) -> None:
  """Raises TooBig (one line) when `need` bytes per device do not fit in HEADROOM of the capacity (times
  `slack`, for an estimate's error)."""
  if cap is None:
    cap, cap_src = capacity()
  if need > HEADROOM * cap * slack:
    raise TooBig(f"memory: the train step needs {fmt(need)} per device ({what}), over the {fmt(HEADROOM * cap)} "
                 f"usable of {fmt(cap)} ({cap_src}); allowed: {advice(c)}")
