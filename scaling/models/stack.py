"""The layer stack of the Transformers: n blocks unrolled (an nnx.List) or scanned (one block whose
parameters carry a leading `layers` axis), each block optionally rematerialized.

`model.scan_layers`: scanned, XLA compiles one block and loops over the stacked parameters, so compile time
is flat in depth (benchmarks/compile_time.py); unrolled, it sees every layer. `model.remat` picks which
forward intermediates of a block the backward keeps (jax.checkpoint policies); the rest is recomputed.

Checkpoint layouts: the pure-dict params of an unrolled stack are {0: block, 1: block, ...}, of a scanned
one {name: [n, ...]}. `to_layout` converts between them (fine-tuning and sampling restore either way).
"""

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

REMAT = {
    "none": None,
    "block": jax.checkpoint_policies.nothing_saveable,  # keep only each block's input
    "dots_saveable": jax.checkpoint_policies.dots_saveable,  # keep matmul outputs, recompute elementwise
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
# Pure-dict keys of the layer stacks (GPT.blocks, Transformer.encoder / .decoder).
STACK_KEYS = ("blocks", "encoder", "decoder")
LAYERS_AXIS = "layers"


def scanned(m) -> bool:
  # A config without the field predates it: its checkpoints are unrolled.
  return bool(m.get("scan_layers", False))


def make(block_fn: Callable[[nnx.Rngs], nnx.Module], n: int, scan: bool, rngs: nnx.Rngs):
  """n blocks: a list, or one block built n times under vmap (parameters [n, ...], axis `layers`)."""
  if not scan:
    return nnx.List([block_fn(rngs) for _ in range(n)])

  @nnx.split_rngs(splits=n)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: LAYERS_AXIS})
  def build(r):
    return block_fn(r)

  return build(rngs)


def run(stack, body: Callable, carry, xs=None, *, scan: bool, remat: str = "none"):
  """carry, ys = body(block, carry, x_i) over the blocks; xs / ys: per-layer inputs / outputs (a list
  unrolled, a pytree with a leading layer axis scanned) or None.

  Plain jax.lax.scan / jax.checkpoint over each block's split state (nnx.merge inside): the blocks only
  read their parameters, and unlike nnx.scan this also works on a model merged outside an enclosing
  trace (sampling's decode loop)."""
  graphdef = nnx.graphdef(stack if scan else stack[0])  # every block of an unrolled stack has the same

  def step(state, carry, x):
    return body(nnx.merge(graphdef, state), carry, x)

  if remat != "none":
    # Inside scan XLA cannot CSE the recomputation away across iterations, so prevent_cse is not needed.
    step = jax.checkpoint(step, policy=REMAT[remat], prevent_cse=not scan)
  if scan:
    states = nnx.state(stack)
    return jax.lax.scan(lambda c, layer: step(layer[0], c, layer[1]), carry, (states, xs))
  ys = []
  for i, block in enumerate(stack):
    carry, y = step(nnx.state(block), carry, None if xs is None else xs[i])
    ys.append(y)
  return carry, (None if xs is None else ys)


def _unrolled(d) -> bool:
  return isinstance(d, dict) and bool(d) and all(str(k).isdigit() for k in d)


def _stack_leaf(xs):
  x = xs[0]
  if isinstance(x, jax.ShapeDtypeStruct):
    sh = getattr(x, "sharding", None)
    if isinstance(sh, jax.sharding.NamedSharding):
      sh = jax.sharding.NamedSharding(sh.mesh, jax.sharding.PartitionSpec(None, *sh.spec))
    return jax.ShapeDtypeStruct((len(xs),) + tuple(x.shape), x.dtype, sharding=sh)
  return jnp.stack(xs)


def _unstack_leaf(x, i):
  if isinstance(x, jax.ShapeDtypeStruct):
    sh = getattr(x, "sharding", None)
    if isinstance(sh, jax.sharding.NamedSharding):
      sh = jax.sharding.NamedSharding(sh.mesh, jax.sharding.PartitionSpec(*sh.spec[1:]))
    return jax.ShapeDtypeStruct(tuple(x.shape[1:]), x.dtype, sharding=sh)
  return x[i]


def layout(params: dict) -> bool | None:
  """True if the layer stacks of a params pure dict are scanned, False if unrolled, None if it has none."""
  for k in STACK_KEYS:
    if k in params and isinstance(params[k], dict):
      return not _unrolled(params[k])
  return None


def to_layout(params: dict, scan: bool) -> dict:
  """params (pure dict of arrays or ShapeDtypeStructs) with every layer stack in the scanned or unrolled
  layout; leaves already in that layout pass through. Unrolled keys come back as ints (nnx.List's)."""
  out = dict(params)
  for k in STACK_KEYS:
    d = params.get(k)
    if not isinstance(d, dict) or _unrolled(d) != scan:
      continue
    if scan:
      layers = [d[j] for j in sorted(d, key=int)]
      out[k] = jax.tree.map(lambda *xs: _stack_leaf(xs), *layers)
    else:
      n = jax.tree.leaves(d)[0].shape[0]
      out[k] = {i: jax.tree.map(lambda x, i=i: _unstack_leaf(x, i), d) for i in range(n)}
  return out
