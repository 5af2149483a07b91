"""GPT: decoder-only, pre-norm, causal attention; learned or rotary positions; tied or untied head.

The recipe fields (model.norm, mlp, qk_norm, bias, tie_embeddings) pick GPT-2's or a modern recipe
(sizes.RECIPES; layers.py builds each part).

With `num_classes` > 0 in the config the model also has a classification head (`classify`): final-LN
features mean-pooled over the sequence -> linear. Fine-tuning adds it to a pretrained LM (whose checkpoint
has no such head), so it is the only freshly initialized part.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.models import layers, mup, stack


class GPT(nnx.Module):
  INIT_STD_FAN_IN_POWER = 0.0  # SP init std is a constant (0.02), whatever the fan-in (models/mup.py)

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.cfg = cfg
    self.out_mult = mup.output_mult("gpt", cfg)  # μP readout multiplier 1/m (1.0 under SP)
    self.dtype = layers.compute_dtype(cfg.dtype)
    self.embed = layers.param(rngs, (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    if cfg.pos == "learned":
      self.pos_embed = layers.param(rngs, (cfg.max_len, cfg.d_model), (None, "embed"))
    self.scan = stack.scanned(cfg)
    self.blocks = stack.make(lambda r: layers.Block(cfg, rngs=r), cfg.n_layers, self.scan, rngs)
    self.ln_f = layers.norm(cfg, cfg.d_model, rngs=rngs)
    if not cfg.tie_embeddings:
      self.head = layers.param(rngs, (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))
    if cfg.get("num_classes", 0):
      self.cls_head = layers.param(rngs, (cfg.d_model, cfg.num_classes), ("embed", "classes"))
      self.cls_bias = layers.param(rngs, (cfg.num_classes,), ("classes",), std=None)

  def __call__(self, tokens_BxL: jax.Array, *, cache=None) -> jax.Array | tuple:
    """Logits (f32) for every position. With `cache` (see `init_cache`), decodes from cache position
    `index` and returns (logits, new_cache)."""
    x_BxLxD, new_cache = self.features(tokens_BxL, cache)
    w_DxV = self.embed[...].T if self.cfg.tie_embeddings else self.head[...]
    logits_BxLxV = layers.dense(x_BxLxD, w_DxV.astype(self.dtype)).astype(jnp.float32)
    if self.out_mult != 1.0:
      logits_BxLxV = logits_BxLxV * self.out_mult
    return logits_BxLxV if cache is None else (logits_BxLxV, new_cache)

  def classify(self, tokens_BxL: jax.Array) -> jax.Array:
    """Class logits (f32) [B, num_classes] from the final-LN features averaged over all positions (each
    sees its causal prefix), so every position passes gradient to the body, not only the last one."""
    x_BxLxD, _ = self.features(tokens_BxL, None)
    pooled_BxD = x_BxLxD.astype(jnp.float32).mean(axis=1)
    return (pooled_BxD @ self.cls_head[...]) * self.out_mult + self.cls_bias[...]

  def features(self, tokens_BxL: jax.Array, cache=None) -> tuple:
    """Final-LN hidden states [B, L, D] (compute dtype) and the new cache (None without one)."""
    start = 0 if cache is None else (cache["index"][0] if self.scan else cache[0]["index"])
    positions_BxL = start + jnp.broadcast_to(jnp.arange(tokens_BxL.shape[1]), tokens_BxL.shape)
    x_BxLxD = jnp.take(self.embed[...], tokens_BxL, axis=0)
    if self.cfg.pos == "learned":
      x_BxLxD = x_BxLxD + jnp.take(self.pos_embed[...], positions_BxL, axis=0)
    x_BxLxD = x_BxLxD.astype(self.dtype)

    def body(block, x_BxLxD, c):
      return block(x_BxLxD, positions_BxL, is_causal=True, cache=c)

    x_BxLxD, new_cache = stack.run(self.blocks, body, x_BxLxD, cache, scan=self.scan,
                                   remat=self.cfg.get("remat", "none"))
    return self.ln_f(x_BxLxD), new_cache

  def init_cache(self, batch: int, dtype=jnp.float32) -> list | dict:
    """Empty KV cache for `max_len` positions: one {k, v, index} per layer, or (scanned) one with a
    leading layer axis on each."""
    c = self.cfg
    shape = (batch, c.max_len, c.n_heads, c.d_model // c.n_heads)
    if self.scan:
      n = c.n_layers
      return {"k": jnp.zeros((n,) + shape, dtype), "v": jnp.zeros((n,) + shape, dtype),
              "index": jnp.zeros((n,), jnp.int32)}
    return [{"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype), "index": jnp.array(0, jnp.int32)}
            for _ in range(c.n_layers)]
