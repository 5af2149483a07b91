"""Device mesh, logical-axis -> mesh-axis rules, shardings for state and batches, multi-host start-up.

Mesh axes: `data` (pure data parallel), `fsdp` (data parallel whose members also shard parameters and
optimizer state along `embed`), `tensor` (Megatron-style: heads / mlp / vocab split across devices).
The batch is split over data x fsdp. Any axis may be 1; one may be -1 ("the rest of the devices").
"""

import math
import os

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import errors

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")
# Logical axis name (model annotations) -> mesh axes. Anything absent is replicated.
RULES = {
    "batch": BATCH_AXES,
    "embed": ("fsdp",),
    "heads": ("tensor",),
    "mlp": ("tensor",),
    "vocab": ("tensor",),
    # The stacked blocks of a scanned layer stack (scaling.models.stack): every device holds every layer's
    # slice (scan reads one layer per iteration; splitting layers across devices is pipelining).
    "layers": (),
}


def maybe_initialize_distributed(cfg: ml_collections.ConfigDict | None = None) -> None:
  """`jax.distributed.initialize` when the config or the environment says multi-host.

  Config: mesh.coordinator ('host:port'), mesh.num_processes, mesh.process_id. Environment: SLURM /
  TPU / JAX_COORDINATOR_ADDRESS are auto-detected by jax itself when mesh.distributed is 'auto'.
  """
  m = cfg.mesh if cfg is not None else ml_collections.ConfigDict()
  mode = m.get("distributed", "auto")
  if mode == "off" or jax.distributed.is_initialized():
    return
  if m.get("coordinator"):
    # CPU collectives across processes need gloo; the setting is inert on GPU/TPU. (Asking
    # jax.default_backend() here would itself start the backend, which initialize() forbids.)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(m.coordinator, num_processes=m.num_processes, process_id=m.process_id)
  elif mode == "on" or (mode == "auto" and (os.environ.get("JAX_COORDINATOR_ADDRESS")
                                            or int(os.environ.get("SLURM_NTASKS", "1")) > 1)):
    jax.distributed.initialize()


def mesh_shape(m: ml_collections.ConfigDict, n_devices: int) -> tuple[int, ...]:
  """Resolves -1 and checks the product against the device count (ValueError naming the axes)."""
  shape = [int(m.get(a, 1)) for a in MESH_AXES]
  if any(s == 0 or s < -1 for s in shape) or shape.count(-1) > 1:
    raise errors.ConfigError(f"mesh: axes must be positive or a single -1, got "
                     f"{dict(zip(MESH_AXES, shape))}")
  if -1 in shape:
    known = math.prod(s for s in shape if s != -1)
    if n_devices % known:
      raise errors.ConfigError(f"mesh: {dict(zip(MESH_AXES, shape))} does not divide {n_devices} devices")
    shape[shape.index(-1)] = n_devices // known
  if math.prod(shape) != n_devices:
    raise errors.ConfigError(f"mesh: data*fsdp*tensor = {math.prod(shape)} ({dict(zip(MESH_AXES, shape))}) "
                     f"but there are {n_devices} devices; allowed: products equal to {n_devices}")
  return tuple(shape)


def make_mesh(m: ml_collections.ConfigDict, devices=None) -> jax.sharding.Mesh:
  """`mesh.num_devices` > 0 uses only the first that many devices (e.g. a 1-device baseline)."""
  if devices is None:
    devices = jax.devices()[:m.get("num_devices", 0) or None]
  shape = mesh_shape(m, len(devices))
  # Auto axes: GSPMD propagates shardings through the model (jax's default is now Explicit).
  return jax.make_mesh(shape, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3, devices=devices)


def spec_for(shape: tuple[int, ...], logical: tuple[str | None, ...] | None, mesh) -> P:
  """PartitionSpec for one array. A dimension not divisible by its mesh axes is replicated rather
  than padded (e.g. a 259-token byte vocabulary on tensor=2); a mesh axis is used at most once."""
  if not logical:
    return P()
  used, out = set(), []
  for dim, name in zip(shape, logical):
    axes = tuple(a for a in RULES.get(name, ()) if a not in used and mesh.shape[a] > 1)
    if axes and dim % math.prod(mesh.shape[a] for a in axes) == 0:
      used.update(axes)
      out.append(axes[0] if len(axes) == 1 else axes)
    else:
      out.append(None)
  return P(*out)


def state_shardings(abstract_state, mesh):
  """NamedShardings for an nnx State (or any pytree holding nnx Variables / arrays)."""
  def one(x):
    if isinstance(x, nnx.Variable):
      return x.replace(NamedSharding(mesh, spec_for(x.shape, x.get_metadata().get("out_sharding"), mesh)))
    return NamedSharding(mesh, P())
  return jax.tree.map(one, abstract_state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def batch_sharding(mesh, ndim: int = 2) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def batch_size_divisor(mesh) -> int:
  return mesh.shape["data"] * mesh.shape["fsdp"]


def global_batch(local_batch: dict, mesh) -> dict:
  """Per-process numpy batch -> global jax arrays sharded over data x fsdp (works across hosts)."""
  def one(x):
    x = np.asarray(x)
    s = batch_sharding(mesh, x.ndim)
    return jax.make_array_from_process_local_data(s, x)
  return jax.tree.map(one, local_batch)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def describe(tree) -> dict:
  """path -> PartitionSpec of each array's sharding (for logs and tests)."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k): getattr(v.sharding, "spec", None) for k, v in flat if hasattr(v, "sharding")}

