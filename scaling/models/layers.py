"""Blocks shared by the families: attention (self / causal / cross, with KV cache), MLP, norms, rotary.

Every parameter carries *logical* axis names (`vocab`, `embed`, `heads`, `kv`, `mlp`, `classes`);
`scaling.parallel` maps them onto whatever mesh the run uses, so model code never names a mesh axis.
Parameters are kept in `param_dtype` (f32) and cast to the compute `dtype` at use (mixed precision).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

INIT_STD = 0.02  # GPT-2 style init; residual output projections are scaled by 1/sqrt(2 * n_layers).


def param(rngs: nnx.Rngs, shape: tuple[int, ...], axes: tuple[str | None, ...], std: float | None = INIT_STD,
          value: float = 0.0) -> nnx.Param:
  """A parameter with logical axis names; normal(std) init, or the constant `value` when std is None."""
  if std is None:
    init = nnx.initializers.constant(value)
  else:
    init = nnx.initializers.normal(std)
  # Not sharded at creation (eager_sharding=False): `scaling.parallel` places the whole state at once
  # inside a jitted init, so building a model needs no mesh and never materializes it on one device.
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=axes, eager_sharding=False)


class LayerNorm(nnx.Module):
  def __init__(self, d: int, *, rngs: nnx.Rngs):
    self.scale = param(rngs, (d,), ("embed",), std=None, value=1.0)
    self.bias = param(rngs, (d,), ("embed",), std=None, value=0.0)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    # Statistics in f32 whatever the compute dtype.
    x = x_BxLxD.astype(jnp.float32)
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + 1e-5) * self.scale[...] + self.bias[...]
    return y.astype(x_BxLxD.dtype)


def rope(x_BxLxHxK: jax.Array, positions_BxL: jax.Array, base: float = 10_000.0) -> jax.Array:
  """Rotary position embedding (Su et al. 2021), half-split layout."""
  k = x_BxLxHxK.shape[-1]
  freqs_K2 = base ** (-jnp.arange(0, k // 2, dtype=jnp.float32) * 2 / k)
  angles_BxLx1xK2 = positions_BxL[:, :, None, None].astype(jnp.float32) * freqs_K2
  sin, cos = jnp.sin(angles_BxLx1xK2), jnp.cos(angles_BxLx1xK2)
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxLxHxK.dtype)


@jax.custom_vjp
def dense(x_xD: jax.Array, w_DxF: jax.Array) -> jax.Array:
  """x_...xD @ w_DxF, with a backward pass written for XLA:CPU. The weight gradient is a contraction over
  every token; left to autodiff, XLA transposes the *cotangent* for it and fuses the whole backward
  elementwise chain (norms, residual adds, GELU') into that transpose, recomputed with strided reads
  once per consumer: 25 % of a d_model 512 step. Transposing the saved input instead (a plain copy) and
  contracting it in canonical [D, T] @ [T, F] form removes most of that (benchmarks/train_step.py)."""
  return jnp.einsum("...d,df->...f", x_xD, w_DxF)


def _dense_fwd(x_xD, w_DxF):
  return dense(x_xD, w_DxF), (x_xD, w_DxF)


def _dense_bwd(res, g_xF):
  x_xD, w_DxF = res
  dx_xD = jnp.einsum("...f,df->...d", g_xF, w_DxF)
  x_TxD, g_TxF = x_xD.reshape(-1, x_xD.shape[-1]), g_xF.reshape(-1, g_xF.shape[-1])
  dw_DxF = jax.lax.dot_general(x_TxD.T, g_TxF, (((1,), (0,)), ((), ())))
  return dx_xD, dw_DxF.astype(w_DxF.dtype)


dense.defvjp(_dense_fwd, _dense_bwd)


class Attention(nnx.Module):
  """Multi-head attention. Self-attention when `kv_BxSxD` is None, cross-attention otherwise."""

  def __init__(self, d_model: int, n_heads: int, head_dim: int, *, out_std: float, use_rope: bool,
               dtype: jnp.dtype, rngs: nnx.Rngs):
    self.n_heads, self.head_dim, self.use_rope, self.dtype = n_heads, head_dim, use_rope, dtype
    self.wq = param(rngs, (d_model, n_heads, head_dim), ("embed", "heads", "kv"))
    self.wk = param(rngs, (d_model, n_heads, head_dim), ("embed", "heads", "kv"))
    self.wv = param(rngs, (d_model, n_heads, head_dim), ("embed", "heads", "kv"))
    self.wo = param(rngs, (n_heads, head_dim, d_model), ("heads", "kv", "embed"), std=out_std)

  def __call__(self, x_BxLxD: jax.Array, *, kv_BxSxD: jax.Array | None = None,
               mask_BxLxS: jax.Array | None = None, is_causal: bool = False,
               positions_BxL: jax.Array | None = None, cache: dict | None = None):
    """Returns (y_BxLxD, new_cache). With `cache` (self-attention decoding), keys/values of the L new
    tokens are written at `cache['index']` and attention runs over the whole cache with a causal mask."""
    dt = self.dtype
    src_BxSxD = x_BxLxD if kv_BxSxD is None else kv_BxSxD
    d, h, k = self.wq.shape
    q_BxLxHxK = dense(x_BxLxD.astype(dt), self.wq[...].astype(dt).reshape(d, h * k)).reshape(*x_BxLxD.shape[:2], h, k)
    k_BxSxHxK = dense(src_BxSxD.astype(dt), self.wk[...].astype(dt).reshape(d, h * k)).reshape(*src_BxSxD.shape[:2], h, k)
    v_BxSxHxK = dense(src_BxSxD.astype(dt), self.wv[...].astype(dt).reshape(d, h * k)).reshape(*src_BxSxD.shape[:2], h, k)
    if self.use_rope and kv_BxSxD is None:
      q_BxLxHxK = rope(q_BxLxHxK, positions_BxL)
      k_BxSxHxK = rope(k_BxSxHxK, positions_BxL)
    new_cache = None
    if cache is not None:
      idx = cache["index"]
      k_cache = jax.lax.dynamic_update_slice_in_dim(cache["k"], k_BxSxHxK.astype(cache["k"].dtype), idx, 1)
      v_cache = jax.lax.dynamic_update_slice_in_dim(cache["v"], v_BxSxHxK.astype(cache["v"].dtype), idx, 1)
      new_cache = {"k": k_cache, "v": v_cache, "index": idx + x_BxLxD.shape[1]}
      k_BxSxHxK, v_BxSxHxK = k_cache.astype(dt), v_cache.astype(dt)
      q_pos_L = idx + jnp.arange(x_BxLxD.shape[1])
      mask_BxLxS = (jnp.arange(k_cache.shape[1])[None, :] <= q_pos_L[:, None])[None]
      is_causal = False
    mask = None if mask_BxLxS is None else mask_BxLxS[:, None, :, :]
    y_BxLxHxK = jax.nn.dot_product_attention(q_BxLxHxK, k_BxSxHxK, v_BxSxHxK, mask=mask, is_causal=is_causal)
    y_BxLxD = dense(y_BxLxHxK.reshape(*y_BxLxHxK.shape[:2], h * k), self.wo[...].astype(dt).reshape(h * k, d))
    return y_BxLxD, new_cache


class MLP(nnx.Module):
  def __init__(self, d_model: int, d_ff: int, *, out_std: float, dtype: jnp.dtype, rngs: nnx.Rngs):
    self.dtype = dtype
    self.w_in = param(rngs, (d_model, d_ff), ("embed", "mlp"))
    self.w_out = param(rngs, (d_ff, d_model), ("mlp", "embed"), std=out_std)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    dt = self.dtype
    h_BxLxF = jax.nn.gelu(dense(x_BxLxD.astype(dt), self.w_in[...].astype(dt)))
    return dense(h_BxLxF, self.w_out[...].astype(dt))


class Block(nnx.Module):
  """Pre-LayerNorm self-attention + MLP: a GPT layer (causal, optional KV cache) or an encoder layer
  (padding mask)."""

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    dt, out_std = compute_dtype(cfg.dtype), residual_std(cfg.n_layers)
    self.ln_attn = LayerNorm(cfg.d_model, rngs=rngs)
    self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.d_model // cfg.n_heads, out_std=out_std,
                          use_rope=cfg.pos == "rope", dtype=dt, rngs=rngs)
    self.ln_mlp = LayerNorm(cfg.d_model, rngs=rngs)
    self.mlp = MLP(cfg.d_model, cfg.d_ff, out_std=out_std, dtype=dt, rngs=rngs)

  def __call__(self, x_BxLxD, positions_BxL, *, is_causal: bool = False, mask_BxLxS=None, cache=None):
    y_BxLxD, cache = self.attn(self.ln_attn(x_BxLxD), is_causal=is_causal, mask_BxLxS=mask_BxLxS,
                               positions_BxL=positions_BxL, cache=cache)
    x_BxLxD = x_BxLxD + y_BxLxD
    return x_BxLxD + self.mlp(self.ln_mlp(x_BxLxD)), cache


def residual_std(n_layers: int) -> float:
  return INIT_STD / math.sqrt(2 * n_layers)


def compute_dtype(name: str) -> jnp.dtype:
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]
