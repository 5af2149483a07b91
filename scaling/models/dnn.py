"""DNN (MLP) family: width x depth. Two heads of use on the same body:
  - classification of feature vectors (`x_BxF` -> class logits);
  - a fixed-context neural LM (Bengio et al. 2003): embed the previous `context` tokens, concatenate,
    MLP, softmax over the vocabulary — so the DNN family sits on the same nats/token axis as GPT.
"""

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from scaling.models import layers, mup


class MLPBody(nnx.Module):
  def __init__(self, d_in: int, width: int, depth: int, *, dtype, rngs: nnx.Rngs):
    self.dtype = dtype
    dims = [d_in] + [width] * depth
    # He-normal init for ReLU layers, zero biases.
    self.weights = nnx.List([
        layers.param(rngs, (a, b), ("embed" if i == 0 else "mlp", "mlp"), std=(2.0 / a) ** 0.5)
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))])
    self.biases = nnx.List([layers.param(rngs, (b,), ("mlp",), std=None) for b in dims[1:]])

  def __call__(self, h_BxF: jax.Array) -> jax.Array:
    h_BxF = h_BxF.astype(self.dtype)
    for w, b in zip(self.weights, self.biases):
      h_BxF = jax.nn.relu(h_BxF @ w[...].astype(self.dtype) + b[...].astype(self.dtype))
    return h_BxF


class DNN(nnx.Module):
  INIT_STD_FAN_IN_POWER = -0.5  # SP init std ∝ fan_in^-1/2 (He / LeCun), see models/mup.py

  def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
    self.cfg = cfg
    self.out_mult = mup.output_mult("dnn", cfg)  # μP readout multiplier 1/m (1.0 under SP)
    dt = layers.compute_dtype(cfg.dtype)
    self.dtype = dt
    if cfg.head == "lm":
      self.embed = layers.param(rngs, (cfg.vocab_size, cfg.d_embed), ("vocab", "embed"))
      d_in, n_out, out_axis = cfg.context * cfg.d_embed, cfg.vocab_size, "vocab"
    else:
      d_in, n_out, out_axis = cfg.num_features, cfg.num_classes, "classes"
    self.body = MLPBody(d_in, cfg.width, cfg.depth, dtype=dt, rngs=rngs)
    d_last = cfg.width if cfg.depth > 0 else d_in
    self.w_out = layers.param(rngs, (d_last, n_out), ("mlp", out_axis), std=d_last ** -0.5)
    self.b_out = layers.param(rngs, (n_out,), (out_axis,), std=None)

  def __call__(self, x: jax.Array) -> jax.Array:
    """LM head: tokens_BxL -> logits_BxLxV, position t sees tokens t-context+1..t (zeros before the start).
    Classification head: x_BxF -> logits_BxC."""
    if self.cfg.head == "lm":
      tokens_BxL = x
      e_BxLxE = jnp.take(self.embed[...], tokens_BxL, axis=0)
      # Window of the last `context` embeddings at every position, built from shifted copies.
      shifted = [jnp.pad(e_BxLxE, ((0, 0), (k, 0), (0, 0)))[:, :tokens_BxL.shape[1]] for k in range(self.cfg.context)]
      h = jnp.concatenate(shifted, axis=-1)
    else:
      h = x
    h = self.body(h)
    out = h @ self.w_out[...].astype(self.dtype)
    if self.out_mult != 1.0:
      out = out * jnp.asarray(self.out_mult, out.dtype)
    return (out + self.b_out[...].astype(self.dtype)).astype(jnp.float32)
