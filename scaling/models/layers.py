"""Blocks shared by the families: attention (self / causal / cross, with KV cache), MLP, norms, rotary.

The GPT recipe fields (`model.norm`, `mlp`, `qk_norm`, `bias`; defaults = the GPT-2 recipe, read with
`recipe_field` so configs written before they existed build the same model) choose LayerNorm or RMSNorm,
a GELU or SwiGLU MLP, an optional norm on q and k per head, and whether norms have an additive bias.

Every parameter carries *logical* axis names (`vocab`, `embed`, `heads`, `kv`, `mlp`, `classes`);
`scaling.parallel` maps them onto whatever mesh the run uses, so model code never names a mesh axis.
Parameters are kept in `param_dtype` (f32) and cast to the compute `dtype` at use (mixed precision).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling import errors
from scaling.models import accounting, mup

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


def recipe_field(cfg, name: str):
  """A recipe field of a model config, its GPT-2 default where the config predates it (or is a Transformer's)."""
  return cfg[name] if name in cfg else accounting.RECIPE_DEFAULTS[name]


class LayerNorm(nnx.Module):
  def __init__(self, d: int, *, rngs: nnx.Rngs, bias: bool = True, axis: str | None = "embed"):
    self.scale = param(rngs, (d,), (axis,), std=None, value=1.0)
    self.bias = param(rngs, (d,), (axis,), std=None, value=0.0) if bias else None

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    # Statistics in f32 whatever the compute dtype.
    b = self.bias[...] if self.bias is not None else jnp.zeros_like(self.scale[...])
    return layer_norm(x_BxLxD.astype(jnp.float32), self.scale[...], b).astype(x_BxLxD.dtype)


class RMSNorm(nnx.Module):
  """x / rms(x) * scale (+ bias) over the last axis (Zhang & Sennrich 2019): no mean subtraction."""

  def __init__(self, d: int, *, rngs: nnx.Rngs, bias: bool = False, axis: str | None = "embed"):
    self.scale = param(rngs, (d,), (axis,), std=None, value=1.0)
    self.bias = param(rngs, (d,), (axis,), std=None, value=0.0) if bias else None

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    x = x_BxLxD.astype(jnp.float32)
    y = x * jax.lax.rsqrt(jnp.square(x).mean(-1, keepdims=True) + 1e-6) * self.scale[...]
    if self.bias is not None:
      y = y + self.bias[...]
    return y.astype(x_BxLxD.dtype)


def norm(cfg, d: int, *, rngs: nnx.Rngs, axis: str | None = "embed") -> nnx.Module:
  """The norm `cfg` asks for (model.norm, model.bias) over a last axis of width d."""
  cls = {"layernorm": LayerNorm, "rmsnorm": RMSNorm}[recipe_field(cfg, "norm")]
  return cls(d, rngs=rngs, bias=recipe_field(cfg, "bias"), axis=axis)


@jax.custom_vjp
def layer_norm(x_xD: jax.Array, scale_D: jax.Array, bias_D: jax.Array) -> jax.Array:
  """(x - mean) / std * scale + bias over the last axis. The backward is the closed form (one pass over
  the saved normalized input) instead of autodiff's chain through mean and variance: 2-6 % of a CPU
  train step at d_model 256-512, measured in one process alternating steps."""
  return _layer_norm_fwd(x_xD, scale_D, bias_D)[0]


def _layer_norm_fwd(x_xD, scale_D, bias_D):
  xc_xD = x_xD - x_xD.mean(-1, keepdims=True)
  rstd_x1 = jax.lax.rsqrt(jnp.square(xc_xD).mean(-1, keepdims=True) + 1e-5)
  xhat_xD = xc_xD * rstd_x1
  return xhat_xD * scale_D + bias_D, (xhat_xD, rstd_x1, scale_D)


def _layer_norm_bwd(res, g_xD):
  xhat_xD, rstd_x1, scale_D = res
  rows = tuple(range(g_xD.ndim - 1))
  gs_xD = g_xD * scale_D
  dx_xD = rstd_x1 * (gs_xD - gs_xD.mean(-1, keepdims=True) - xhat_xD * (gs_xD * xhat_xD).mean(-1, keepdims=True))
  return dx_xD, (g_xD * xhat_xD).sum(rows), g_xD.sum(rows)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


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


# Which attention kernel `attention` runs (model.attention, a config field: part of what jit traces): "auto" =
# cuDNN's fused (flash) attention where it applies (GPU, 16-bit inputs, no padding mask, head_dim a multiple of 8
# up to 128), the XLA form below elsewhere; "xla" / "cudnn" force one.
ATTENTION_IMPLS = ("auto", "xla", "cudnn")


def _use_cudnn(q_BxLxHxK: jax.Array, mask_BxLxS: jax.Array | None, impl: str) -> bool:
  if impl not in ATTENTION_IMPLS:
    raise errors.ConfigError(f"model.attention: {impl!r}; allowed: {', '.join(ATTENTION_IMPLS)}")
  if impl != "auto":
    return impl == "cudnn"
  k = q_BxLxHxK.shape[-1]
  return (jax.default_backend() == "gpu" and mask_BxLxS is None and k % 8 == 0 and k <= 128
          and q_BxLxHxK.dtype in (jnp.bfloat16, jnp.float16))


def attention(q_BxLxHxK: jax.Array, k_BxSxHxK: jax.Array, v_BxSxHxK: jax.Array, *,
              mask_BxLxS: jax.Array | None = None, is_causal: bool = False,
              scale: float | None = None, impl: str = "auto") -> jax.Array:
  """softmax(q k^T * scale) v per head (scale 1/sqrt(K) unless given), logits and softmax in f32. On GPU (see
  ATTENTION_IMPLS) cuDNN's fused kernel, which never materializes the [B, H, L, S] scores. Otherwise written out rather than
  jax.nn.dot_product_attention (whose default is this same XLA computation) because that one contracts
  in [B, L, H, K] layout and masks with a select: on CPU this runs the d_model 256 / 512 train step
  6 % / 4 % faster (benchmarks/RESULTS.md). Here: one transpose per operand into [B, H, L, K],
  the causal mask as an additive bias (nothing to select in the backward), the scale folded into q."""
  if _use_cudnn(q_BxLxHxK, mask_BxLxS, impl):
    return jax.nn.dot_product_attention(q_BxLxHxK, k_BxSxHxK, v_BxSxHxK, implementation="cudnn",
                                        mask=None if mask_BxLxS is None else mask_BxLxS[:, None],
                                        is_causal=is_causal, scale=scale)
  scale = 1 / math.sqrt(q_BxLxHxK.shape[-1]) if scale is None else scale
  q_BxHxLxK = jnp.swapaxes(q_BxLxHxK * jnp.asarray(scale, q_BxLxHxK.dtype), 1, 2)
  k_BxHxSxK, v_BxHxSxK = jnp.swapaxes(k_BxSxHxK, 1, 2), jnp.swapaxes(v_BxSxHxK, 1, 2)
  s_BxHxLxS = jnp.einsum("bhlk,bhsk->bhls", q_BxHxLxK, k_BxHxSxK, preferred_element_type=jnp.float32)
  L, S = s_BxHxLxS.shape[-2:]
  causal_LxS = jnp.arange(S)[None, :] <= jnp.arange(L)[:, None]
  if mask_BxLxS is not None:  # a select: a row with every key masked must pass no gradient to q, k
    keep_Bx1xLxS = mask_BxLxS[:, None] & causal_LxS if is_causal else mask_BxLxS[:, None]
    s_BxHxLxS = jnp.where(keep_Bx1xLxS, s_BxHxLxS, _MASKED)
  elif is_causal:  # every row keeps its diagonal, so masked probabilities are exactly 0: no select needed
    s_BxHxLxS = s_BxHxLxS + jnp.where(causal_LxS, 0.0, _MASKED)
  p_BxHxLxS = jax.nn.softmax(s_BxHxLxS, axis=-1).astype(v_BxSxHxK.dtype)
  return jnp.swapaxes(jnp.einsum("bhls,bhsk->bhlk", p_BxHxLxS, v_BxHxSxK), 1, 2)


# Finite, so a fully masked row (padding) softmaxes to uniform instead of NaN; as jax.nn's attention.
_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


class Attention(nnx.Module):
  """Multi-head attention. Self-attention when `kv_BxSxD` is None, cross-attention otherwise."""

  def __init__(self, d_model: int, n_heads: int, head_dim: int, *, out_std: float, use_rope: bool,
               dtype: jnp.dtype, rngs: nnx.Rngs, logit_scale: float | None = None, qk_norm=None, impl: str = "auto"):
    self.n_heads, self.head_dim, self.use_rope, self.dtype, self.impl = n_heads, head_dim, use_rope, dtype, impl
    # qk_norm: a model config whose model.qk_norm is True -> its norm (model.norm) on each head's q and k,
    # over head_dim, before rope (Wortsman et al. 2023: keeps attention logits from growing); scales shared
    # across heads.
    on = qk_norm is not None and recipe_field(qk_norm, "qk_norm")
    self.q_norm = norm(qk_norm, head_dim, rngs=rngs, axis="kv") if on else None
    self.k_norm = norm(qk_norm, head_dim, rngs=rngs, axis="kv") if on else None
    self.logit_scale = logit_scale  # None: 1/sqrt(head_dim); μP passes its 1/head_dim form (models/mup.py)
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
    # Three GEMMs, not one over [wq | wk | wv]: that concatenation runs along the tensor-parallel axis
    # (heads), which GSPMD can only do by resharding; fused, CPU gained 1-2 % (benchmarks/RESULTS.md).
    q_BxLxHxK = dense(x_BxLxD.astype(dt), self.wq[...].astype(dt).reshape(d, h * k)).reshape(*x_BxLxD.shape[:2], h, k)
    k_BxSxHxK = dense(src_BxSxD.astype(dt), self.wk[...].astype(dt).reshape(d, h * k)).reshape(*src_BxSxD.shape[:2], h, k)
    v_BxSxHxK = dense(src_BxSxD.astype(dt), self.wv[...].astype(dt).reshape(d, h * k)).reshape(*src_BxSxD.shape[:2], h, k)
    if self.q_norm is not None:
      q_BxLxHxK, k_BxSxHxK = self.q_norm(q_BxLxHxK), self.k_norm(k_BxSxHxK)
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
    y_BxLxHxK = attention(q_BxLxHxK, k_BxSxHxK, v_BxSxHxK, mask_BxLxS=mask_BxLxS, is_causal=is_causal,
                          scale=self.logit_scale, impl=self.impl)
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


class SwiGLU(nnx.Module):
  """(silu(x W_gate) * x W_up) W_down (Shazeer 2020) with hidden width accounting.swiglu_hidden(d_ff): three
  matrices at ~2/3 the width hold as many parameters as the GELU MLP's two at d_ff."""

  def __init__(self, d_model: int, d_ff: int, *, out_std: float, dtype: jnp.dtype, rngs: nnx.Rngs):
    self.dtype = dtype
    f = accounting.swiglu_hidden(d_ff)
    self.w_gate = param(rngs, (d_model, f), ("embed", "mlp"))
    self.w_up = param(rngs, (d_model, f), ("embed", "mlp"))
    self.w_out = param(rngs, (f, d_model), ("mlp", "embed"), std=out_std)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    dt = self.dtype
    x_BxLxD = x_BxLxD.astype(dt)
    h_BxLxF = jax.nn.silu(dense(x_BxLxD, self.w_gate[...].astype(dt))) * dense(x_BxLxD, self.w_up[...].astype(dt))
    return dense(h_BxLxF, self.w_out[...].astype(dt))


def mlp(cfg, *, out_std: float, dtype: jnp.dtype, rngs: nnx.Rngs) -> nnx.Module:
  cls = {"gelu": MLP, "swiglu": SwiGLU}[recipe_field(cfg, "mlp")]
  return cls(cfg.d_model, cfg.d_ff, out_std=out_std, dtype=dtype, rngs=rngs)


class Block(nnx.Module):
  """Pre-LayerNorm self-attention + MLP: a GPT layer (causal, optional KV cache) or an encoder layer
  (padding mask)."""

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    dt, out_std = compute_dtype(cfg.dtype), residual_std(cfg.n_layers)
    self.ln_attn = norm(cfg, cfg.d_model, rngs=rngs)
    self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.d_model // cfg.n_heads, out_std=out_std,
                          use_rope=cfg.pos == "rope", dtype=dt, rngs=rngs, logit_scale=mup.attention_scale(cfg),
                          qk_norm=cfg, impl=cfg.get("attention", "auto"))
    self.ln_mlp = norm(cfg, cfg.d_model, rngs=rngs)
    self.mlp = mlp(cfg, out_std=out_std, dtype=dt, rngs=rngs)

  def __call__(self, x_BxLxD, positions_BxL, *, is_causal: bool = False, mask_BxLxS=None, cache=None):
    y_BxLxD, cache = self.attn(self.ln_attn(x_BxLxD), is_causal=is_causal, mask_BxLxS=mask_BxLxS,
                               positions_BxL=positions_BxL, cache=cache)
    x_BxLxD = x_BxLxD + y_BxLxD
    return x_BxLxD + self.mlp(self.ln_mlp(x_BxLxD)), cache


def residual_std(n_layers: int) -> float:
  return INIT_STD / math.sqrt(2 * n_layers)


def compute_dtype(name: str) -> jnp.dtype:
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]
