"""Size ladders: named members of each family, and members built from a target parameter count.

GPT / Transformer keep Kaplan's fixed aspect ratio d_model = 32 * n_layers (4 heads up to d_model 256,
64-dim heads above) and d_ff = 4 * d_model. DNN keeps depth fixed per rung and grows width.
"""

import math

import ml_collections

from scaling import errors
from scaling.models import accounting, registry

# name -> (d_model, n_layers); d_model = 32 * n_layers.
GPT_SIZES = {
    "nano": (64, 2), "micro": (96, 3), "tiny": (128, 4), "mini": (192, 6), "small": (256, 8),
    "base": (384, 12), "medium": (512, 16), "large": (768, 24), "xl": (1024, 32),
}
# GPT-2 small shape (124M with a 50k vocab): the GPU MFU benchmark's reference point.
GPT_EXTRA = {"gpt2": dict(d_model=768, n_layers=12, n_heads=12)}
# name -> (width, depth)
DNN_SIZES = {
    "nano": (32, 1), "micro": (64, 2), "tiny": (128, 2), "mini": (256, 2), "small": (512, 3),
    "base": (1024, 3), "medium": (2048, 4), "large": (4096, 4),
}
# model.scan_layers of new configs (scaling.models.stack; the measurements behind it: benchmarks/RESULTS.md).
SCAN_LAYERS = False
# Standard parametrization unless asked (models/mup.py). Added after runs existed: a config.json without
# these fields means these values (runid.ADDED_DEFAULTS).
MUP_DEFAULTS = {"parametrization": "sp", "base_width": 0}


# Named GPT recipes: model fields to set on any size (a sweep's overrides.model, or `sizes.gpt_model(d, L,
# **sizes.RECIPES['modern'])`). 'gpt2' is every field's default (GPT-2: LayerNorm with biases, GELU MLP,
# tied embeddings). 'modern' is the usual recent LM baseline ("Transformer++", LLaMA-style): RMSNorm without
# biases, SwiGLU MLP at GELU-equal parameters (accounting.swiglu_hidden), qk-norm (Wortsman et al. 2023),
# untied output embedding. Positions are not part of either (model.pos: set 'rope' for LLaMA's), so that a
# comparison of the two isolates these fields; z-loss is an optimizer field (train.z_loss).
RECIPES = {
    "gpt2": dict(norm="layernorm", mlp="gelu", qk_norm=False, bias=True, tie_embeddings=True),
    "modern": dict(norm="rmsnorm", mlp="swiglu", qk_norm=True, bias=False, tie_embeddings=False),
}


def recipe_name(m: ml_collections.ConfigDict) -> str:
  """'gpt2' / 'modern' when the recipe fields added with them (norm, mlp, qk_norm, bias) match one, otherwise
  a code of the non-default ones ('rmsnorm-swiglu-qknorm-nobias'). Run ids carry it when it is not 'gpt2'."""
  new = tuple(accounting.RECIPE_DEFAULTS)
  fields = {k: m[k] if k in m else accounting.RECIPE_DEFAULTS[k] for k in new}
  for name, r in RECIPES.items():
    if all(fields[k] == r[k] for k in new):
      return name
  code = {"norm": str, "mlp": str, "qk_norm": lambda v: "qknorm", "bias": lambda v: "nobias"}
  return "-".join(code[k](v) for k, v in fields.items() if v != accounting.RECIPE_DEFAULTS[k])


def _heads(d_model: int) -> int:
  """4 heads (at least 16 wide) until they are 64 wide, then 64-dim heads (GPT-2 / Kaplan shapes from d_model 256 on).
  Why not 64-dim heads everywhere: tiny members would get one head at d_model 64 and five 16-dim heads
  at 80 (the old rule), and that erratic head count made a CPU ladder non-monotonic (d80 worse than d64)."""
  target = min(64, max(16, d_model // 4))
  for head_dim in range(target, 7, -1):  # the nearest width <= target that divides d_model
    if d_model % head_dim == 0:
      return d_model // head_dim
  return 1


def gpt_model(d_model: int, n_layers: int, n_heads: int | None = None, **kw) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      d_model=d_model, n_layers=n_layers, n_heads=n_heads or _heads(d_model), d_ff=4 * d_model,
      vocab_size=259, max_len=128, pos="learned", tie_embeddings=True, dtype="float32",
      scan_layers=SCAN_LAYERS, remat="none", **MUP_DEFAULTS, base_head_dim=0,
      **accounting.RECIPE_DEFAULTS) | kw)


def transformer_model(d_model: int, n_layers: int, **kw) -> ml_collections.ConfigDict:
  # Encoder and decoder each get half the depth of the GPT rung, so members have similar size.
  n = max(1, n_layers // 2)
  cfg = gpt_model(d_model, n, **kw)
  cfg.n_dec_layers = n
  del cfg.tie_embeddings  # always shared (T5-style)
  for k in accounting.RECIPE_DEFAULTS:  # the GPT-2 recipe only (its accounting has no recipe terms)
    del cfg[k]
  return cfg


def dnn_model(width: int, depth: int, **kw) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      head="lm", width=width, depth=depth, dtype="float32", vocab_size=259, d_embed=32, context=8,
      num_features=64, num_classes=10, **MUP_DEFAULTS) | kw)


def named(family: str, size: str) -> ml_collections.ConfigDict:
  """The model config of a named member: `named('gpt', 'tiny')`."""
  return registry.get(family).named(size)


def _grid(d_model: int) -> int:
  """Width granularity of `from_params`: fine for tiny models, multiples of 64 (whole heads) from 512."""
  return 16 if d_model < 128 else 32 if d_model < 512 else 64


def _err(params, target_nonembed: float):
  def err(cfg):
    n = params(cfg)["nonembed"]
    return abs(math.log(max(n, 1) / target_nonembed))
  return err


def _check_target(target_nonembed: float) -> None:
  if target_nonembed <= 0:
    raise errors.ConfigError(f"target_nonembed: must be > 0, got {target_nonembed}")


def aspect_from_params(make, params, depth_mult: int, per_layer: float, target_nonembed: float, *,
                       aspect: int = 32, **kw) -> ml_collections.ConfigDict:
  """A decoder-like stack: d_model ~ aspect * n_layers on the `_grid` of widths, the closest count.
  `make(d_model, n_layers, **kw)`: the family's model config; `per_layer`: ~params per layer (per layer and
  side for the encoder-decoder) at the aspect width, so l0 ~ n_layers of the target."""
  _check_target(target_nonembed)
  err = _err(params, target_nonembed)
  l0 = max(1, round((target_nonembed / per_layer) ** (1 / 3)))
  cands = [make(d, n * depth_mult, **kw) for n in range(max(1, l0 - 2), l0 + 3)
           for d in range(16, 16 * (aspect * depth_mult * n // 16 + 8), 16) if d % _grid(d) == 0]
  # Closest count, with a mild preference for the fixed aspect ratio d_model = aspect * (GPT-rung depth);
  # an encoder-decoder with n layers per side stands for a GPT rung of 2n layers (transformer_model).
  return min(cands, key=lambda m: err(m) + 0.5 * abs(math.log(m.d_model / (aspect * m.n_layers * depth_mult))))


def width_from_params(make, params, target_nonembed: float, **kw) -> ml_collections.ConfigDict:
  """Fixed depth, width varies: non-embedding count grows monotonically with width, so bisect for the
  first width reaching the target. `make(width, **kw)`: the family's model config."""
  _check_target(target_nonembed)
  lo, hi = 1, 1
  while params(make(hi, **kw))["nonembed"] < target_nonembed:
    hi *= 2
  while lo < hi:
    mid = (lo + hi) // 2
    if params(make(mid, **kw))["nonembed"] < target_nonembed:
      lo = mid + 1
    else:
      hi = mid
  return min([make(w, **kw) for w in (max(1, lo - 1), lo)], key=_err(params, target_nonembed))


def gpt_from_params(target_nonembed: float, *, aspect: int = 32, **kw) -> ml_collections.ConfigDict:
  return aspect_from_params(gpt_model, accounting.gpt_params, 1, 12 * aspect ** 2, target_nonembed,
                            aspect=aspect, **kw)


def transformer_from_params(target_nonembed: float, *, aspect: int = 32, **kw) -> ml_collections.ConfigDict:
  # 12 d^2 encoder + 16 d^2 decoder per layer and side, at twice the aspect width of its GPT rung
  return aspect_from_params(transformer_model, accounting.transformer_params, 2, 28 * (aspect * 2) ** 2,
                            target_nonembed, aspect=aspect, **kw)


def dnn_from_params(target_nonembed: float, *, depth: int = 2, **kw) -> ml_collections.ConfigDict:
  return width_from_params(lambda w, **k: dnn_model(w, depth, **k), accounting.dnn_params, target_nonembed, **kw)


def from_params(family: str, target_nonembed: float, **kw) -> ml_collections.ConfigDict:
  """The member whose exact non-embedding parameter count is closest (in log) to `target_nonembed`
  (the family's size rule)."""
  return registry.get(family).from_params(target_nonembed, **kw)
