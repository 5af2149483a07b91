"""Encoder–decoder Transformer (Vaswani et al. 2017), pre-LayerNorm, for seq2seq tasks (span corruption).

One embedding table shared by encoder input, decoder input and (tied) output, as in T5.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.models import layers, mup, stack


class DecoderBlock(nnx.Module):
  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    dt, out_std = layers.compute_dtype(cfg.dtype), layers.residual_std(cfg.n_layers)
    head_dim, logit_scale = cfg.d_model // cfg.n_heads, mup.attention_scale(cfg)
    self.ln_self = layers.LayerNorm(cfg.d_model, rngs=rngs)
    self.self_attn = layers.Attention(cfg.d_model, cfg.n_heads, head_dim, out_std=out_std,
                                      use_rope=cfg.pos == "rope", dtype=dt, rngs=rngs,
                                      logit_scale=logit_scale, impl=cfg.get("attention", "auto"))
    self.ln_cross = layers.LayerNorm(cfg.d_model, rngs=rngs)
    self.cross_attn = layers.Attention(cfg.d_model, cfg.n_heads, head_dim, out_std=out_std,
                                       use_rope=False, dtype=dt, rngs=rngs,
                                       logit_scale=logit_scale, impl=cfg.get("attention", "auto"))
    self.ln_mlp = layers.LayerNorm(cfg.d_model, rngs=rngs)
    self.mlp = layers.MLP(cfg.d_model, cfg.d_ff, out_std=out_std, dtype=dt, rngs=rngs)

  def __call__(self, x_BxTxD, enc_BxSxD, cross_mask_BxTxS, positions_BxT):
    y_BxTxD, _ = self.self_attn(self.ln_self(x_BxTxD), is_causal=True, positions_BxL=positions_BxT)
    x_BxTxD = x_BxTxD + y_BxTxD
    y_BxTxD, _ = self.cross_attn(self.ln_cross(x_BxTxD), kv_BxSxD=enc_BxSxD, mask_BxLxS=cross_mask_BxTxS)
    x_BxTxD = x_BxTxD + y_BxTxD
    return x_BxTxD + self.mlp(self.ln_mlp(x_BxTxD))


class Transformer(nnx.Module):
  INIT_STD_FAN_IN_POWER = 0.0  # SP init std is a constant (0.02), whatever the fan-in (models/mup.py)

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.cfg = cfg
    self.dtype = layers.compute_dtype(cfg.dtype)
    self.embed = layers.param(rngs, (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    if cfg.pos == "learned":
      self.enc_pos = layers.param(rngs, (cfg.max_len, cfg.d_model), (None, "embed"))
      self.dec_pos = layers.param(rngs, (cfg.max_len, cfg.d_model), (None, "embed"))
    self.scan, self.remat = stack.scanned(cfg), cfg.get("remat", "none")
    self.encoder = stack.make(lambda r: layers.Block(cfg, rngs=r), cfg.n_layers, self.scan, rngs)
    self.ln_enc = layers.LayerNorm(cfg.d_model, rngs=rngs)
    self.decoder = stack.make(lambda r: DecoderBlock(cfg, rngs=r), cfg.n_dec_layers, self.scan, rngs)
    self.ln_dec = layers.LayerNorm(cfg.d_model, rngs=rngs)
    self.out_mult = mup.output_mult("transformer", cfg)

  def _embed(self, tokens_BxL, pos_table):
    positions_BxL = jnp.broadcast_to(jnp.arange(tokens_BxL.shape[1]), tokens_BxL.shape)
    x_BxLxD = jnp.take(self.embed[...], tokens_BxL, axis=0)
    if self.cfg.pos == "learned":
      x_BxLxD = x_BxLxD + jnp.take(pos_table[...], positions_BxL, axis=0)
    return x_BxLxD.astype(self.dtype), positions_BxL

  def encode(self, inputs_BxS: jax.Array, input_mask_BxS: jax.Array) -> jax.Array:
    x_BxSxD, positions_BxS = self._embed(inputs_BxS, getattr(self, "enc_pos", None))
    valid_BxS = input_mask_BxS > 0
    mask_BxSxS = valid_BxS[:, :, None] & valid_BxS[:, None, :]

    def body(block, x_BxSxD, _):
      return block(x_BxSxD, positions_BxS, mask_BxLxS=mask_BxSxS)[0], None

    x_BxSxD, _ = stack.run(self.encoder, body, x_BxSxD, scan=self.scan, remat=self.remat)
    return self.ln_enc(x_BxSxD)

  def decode(self, decoder_inputs_BxT, enc_BxSxD, input_mask_BxS) -> jax.Array:
    x_BxTxD, positions_BxT = self._embed(decoder_inputs_BxT, getattr(self, "dec_pos", None))
    cross_mask_BxTxS = jnp.broadcast_to((input_mask_BxS > 0)[:, None, :],
                                        (x_BxTxD.shape[0], x_BxTxD.shape[1], input_mask_BxS.shape[1]))

    def body(block, x_BxTxD, _):
      return block(x_BxTxD, enc_BxSxD, cross_mask_BxTxS, positions_BxT), None

    x_BxTxD, _ = stack.run(self.decoder, body, x_BxTxD, scan=self.scan, remat=self.remat)
    x_BxTxD = self.ln_dec(x_BxTxD)
    logits_BxTxV = jnp.einsum("btd,vd->btv", x_BxTxD, self.embed[...].astype(self.dtype)).astype(jnp.float32)
    return logits_BxTxV * self.out_mult if self.out_mult != 1.0 else logits_BxTxV

  def __call__(self, inputs_BxS, decoder_inputs_BxT, input_mask_BxS=None) -> jax.Array:
    if input_mask_BxS is None:
      input_mask_BxS = jnp.ones(inputs_BxS.shape, jnp.float32)
    return self.decode(decoder_inputs_BxT, self.encode(inputs_BxS, input_mask_BxS), input_mask_BxS)
