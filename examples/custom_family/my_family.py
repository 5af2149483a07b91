"""A researcher's own model family in one file: `mixer`, a causal token-mixing MLP LM (MLP-Mixer for text).

Each block mixes across positions with a lower-triangular (causal) learned matrix per block, then across
channels with a squared-ReLU MLP; pre-RMS-norm residuals. It registers itself as family 'mixer' with its size
rule and parameter count; it has no FLOP formula, so the project takes XLA's cost analysis of its forward
pass (result.json: flops_source='xla_cost_analysis').

Use it: `family_file="examples/custom_family/my_family.py"` at the top of a run or sweep config, and
`family="mixer"`.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.models import registry, sizes


def _param(rngs: nnx.Rngs, shape: tuple, axes: tuple, std: float | None = 0.02) -> nnx.Param:
  """normal(std) init (ones when std is None) with logical axis names, which scaling.parallel maps onto the
  mesh (fsdp / tensor). eager_sharding=False: placed later, inside the jitted init, so building needs no mesh."""
  init = nnx.initializers.ones_init() if std is None else nnx.initializers.normal(std)
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=axes, eager_sharding=False)


def _rms(x, scale):
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


class MixerBlock(nnx.Module):
  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    d, f, L = cfg.d_model, cfg.d_ff, cfg.max_len
    self.norm_t = _param(rngs, (d,), ("embed",), std=None)
    self.mix_LxL = _param(rngs, (L, L), (None, None))  # token mixing; masked causal at use
    self.norm_c = _param(rngs, (d,), ("embed",), std=None)
    self.w_in = _param(rngs, (d, f), ("embed", "mlp"))
    self.w_out = _param(rngs, (f, d), ("mlp", "embed"), std=0.02 / (2 * cfg.n_layers) ** 0.5)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    L = x_BxLxD.shape[1]
    mix_LxL = jnp.tril(self.mix_LxL[...][:L, :L])  # position t sees positions <= t only
    x_BxLxD = x_BxLxD + jnp.einsum("ts,bsd->btd", mix_LxL, _rms(x_BxLxD, self.norm_t[...]))
    h_BxLxF = jnp.square(jax.nn.relu(_rms(x_BxLxD, self.norm_c[...]) @ self.w_in[...]))
    return x_BxLxD + h_BxLxF @ self.w_out[...]


class Mixer(nnx.Module):
  """tokens_BxL -> logits_BxLxV (f32); the output head is tied to the embedding."""

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.embed = _param(rngs, (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    self.blocks = nnx.List([MixerBlock(cfg, rngs=rngs) for _ in range(cfg.n_layers)])
    self.norm_f = _param(rngs, (cfg.d_model,), ("embed",), std=None)

  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    x_BxLxD = jnp.take(self.embed[...], tokens_BxL, axis=0)
    for block in self.blocks:
      x_BxLxD = block(x_BxLxD)
    return _rms(x_BxLxD, self.norm_f[...]) @ self.embed[...].T


def model(d_model: int, n_layers: int, **kw) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(d_model=d_model, n_layers=n_layers, d_ff=4 * d_model, vocab_size=259,
                                        max_len=32, dtype="float32") | kw)


def params(m: ml_collections.ConfigDict) -> dict:
  embed = m.vocab_size * m.d_model  # tied head: counted once
  per_block = 2 * m.d_model + m.max_len ** 2 + 2 * m.d_model * m.d_ff
  nonembed = m.n_layers * per_block + m.d_model
  return {"total": embed + nonembed, "embed": embed, "nonembed": nonembed}


def from_params(target_nonembed: float, **kw) -> ml_collections.ConfigDict:
  """Width ~ 32 x depth, the count closest to the target (the built-in decoder's search)."""
  return sizes.aspect_from_params(lambda d, n, **k: model(d, n, **k), params, 1, 8 * 32 ** 2, target_nonembed, **kw)


def finalize(c: ml_collections.ConfigDict, info: dict) -> None:
  c.model.max_len = max(c.model.max_len, c.data.seq_len)  # the mixing matrix covers the context


registry.register(registry.Family(
    name="mixer", module=Mixer, sizes={"nano": lambda: model(32, 1), "tiny": lambda: model(64, 2)},
    from_params=from_params, params=params, forward_flops=None,  # None: XLA's cost analysis
    tag=lambda m: f"d{m.d_model}-L{m.n_layers}", finalize=finalize))
