"""Forward FLOPs of a family without its own count: XLA's cost analysis of the compiled forward pass.

The model is traced abstractly (nnx.eval_shape: no weights are allocated) and compiled for one example of
`seq_len` tokens; the figure is cached per (family, model config, seq_len) since planning asks often.
"""

import functools
import json

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.models import registry


@functools.lru_cache(maxsize=256)
def _cached(name: str, model_json: str, seq_len: int) -> float:
  family = registry.get(name)
  m = ml_collections.ConfigDict(json.loads(model_json))
  abstract = nnx.eval_shape(lambda: family.build(m, nnx.Rngs(params=0)))
  graphdef, state = nnx.split(abstract)

  def forward(state, tokens_BxL):
    return nnx.merge(graphdef, state)(tokens_BxL)

  tokens = jax.ShapeDtypeStruct((1, seq_len), jnp.int32)
  cost = jax.jit(forward).lower(state, tokens).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older jax: one dict per computation
  return float(cost["flops"])


def forward_flops(family, m: ml_collections.ConfigDict, seq_len: int) -> float:
  """FLOPs XLA counts for the forward pass of one example of `seq_len` tokens."""
  return _cached(family.name, json.dumps(m.to_dict(), sort_keys=True), int(seq_len))
