"""μP (Yang et al. 2022, "Tensor Programs V", Tab. 8 for Adam) relative to a base shape.

`model.parametrization = 'mup'` with `model.base_width` (d_model, or the DNN's width) makes a member the
μP scaling of the *same* SP model at the base width: at `width == base_width` every init, multiplier and
learning rate is SP's, so a learning rate tuned there transfers. With width multiplier m = width / base_width:

  role    what                                     init std           Adam lr    forward
  input   finite fan-in: embeddings, input layer,  SP's               x 1        -
          biases, norm gains
  hidden  fan-in and fan-out both grow with m      SP(base) / sqrt(m)  x 1/m      -
  output  only fan-in grows (readout)              SP(base)            x 1        logits x 1/m
  attention logits: q.k * sqrt(base_head_dim) / head_dim (1/d_head, = 1/sqrt(d_head) at the base head dim)

Which dimensions "grow" is found as in microsoft/mup's base/delta shapes: the model is built abstractly at
the base width and at twice it, and a parameter dimension that differs is infinite. Weight decay per step is
kept width-independent (mup's default: its lr/m comes with weight_decay*m), so only Adam's direction is scaled.
"""

import math

import jax
import ml_collections
from flax import nnx

from scaling.models import registry
from scaling import errors

PARAMETRIZATIONS = ("sp", "mup")
ROLES = ("input", "hidden", "output")
ATTENTION_PARAMS = ("wq", "wk", "wv")  # [.., d_model, heads, head_dim]: fan-out is the last two dims


def enabled(m: ml_collections.ConfigDict) -> bool:
  return m.get("parametrization", "sp") == "mup"


def width(family: str, m: ml_collections.ConfigDict) -> int:
  return registry.get(family).width(m)


def width_mult(family: str, m: ml_collections.ConfigDict) -> float:
  return width(family, m) / m.base_width if enabled(m) else 1.0


def output_mult(family: str, m: ml_collections.ConfigDict) -> float:
  """Multiplier on the readout's logits: 1/m under μP (a DNN without hidden layers has no readout of width)."""
  if "depth" in m and m.depth == 0:  # the MLP family
    return 1.0
  return 1.0 / width_mult(family, m)


def base_head_dim(m: ml_collections.ConfigDict) -> int:
  return m.get("base_head_dim", 0) or m.base_width // m.n_heads


def attention_scale(m: ml_collections.ConfigDict) -> float:
  """Logit scale of q.k: 1/sqrt(head_dim) (SP); sqrt(base_head_dim)/head_dim (μP: 1/d_head, equal at the base)."""
  head_dim = m.d_model // m.n_heads
  return math.sqrt(base_head_dim(m)) / head_dim if enabled(m) else 1 / math.sqrt(head_dim)


def validate(family: str, m: ml_collections.ConfigDict) -> None:
  p = m.get("parametrization", "sp")
  if p not in PARAMETRIZATIONS:
    raise errors.ConfigError(f"model.parametrization: {p!r} not allowed; allowed: {', '.join(PARAMETRIZATIONS)}")
  if p == "sp":
    return
  b = m.get("base_width")
  if not isinstance(b, int) or isinstance(b, bool) or b <= 0:
    raise errors.ConfigError(f"model.base_width: μP needs the width its hyperparameters are tuned at, got {b!r}; "
                     "allowed: a positive integer (d_model, or the DNN's width)")
  if "n_heads" not in m:  # no attention: nothing below applies
    return
  if (m.d_ff * b) % m.d_model:
    raise errors.ConfigError(f"model.base_width: d_ff={m.d_ff} must scale with d_model={m.d_model} to an integer at "
                     f"base_width={b}; allowed: base_width with d_ff*base_width divisible by d_model")
  h = m.get("base_head_dim", 0)
  if not isinstance(h, int) or isinstance(h, bool) or h < 0:
    raise errors.ConfigError(f"model.base_head_dim: got {h!r}; allowed: an integer > 0, or 0 (base_width / n_heads)")
  if b % (h or m.n_heads):
    what = f"base_head_dim={h}" if h else f"n_heads={m.n_heads} (base_head_dim 0: base_width / n_heads)"
    raise errors.ConfigError(f"model.base_head_dim: base_width={b} is not a multiple of {what}; "
                     "allowed: a base_head_dim dividing base_width")


def at_width(family: str, m: ml_collections.ConfigDict, w: int) -> ml_collections.ConfigDict:
  """The same member at width `w` (GPT/encoder-decoder: d_ff in proportion, heads of the base head dim)."""
  c = ml_collections.ConfigDict(m.to_dict())
  field = registry.get(family).width_field
  if field != "d_model":  # no attention heads to keep whole
    c[field] = w
  else:
    c.d_ff, c.d_model, c.n_heads = c.d_ff * w // c.d_model, w, w // base_head_dim(m)
  return c


def _fans(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
  n_out = 2 if name in ATTENTION_PARAMS else 1
  return math.prod(shape[:-n_out]), math.prod(shape[-n_out:])


def _leaf_name(path) -> str:
  return str(getattr(path[-1], "key", path[-1]))


def _shapes(cls, m: ml_collections.ConfigDict) -> dict:
  abstract = nnx.eval_shape(lambda: cls(m, rngs=nnx.Rngs(params=0)))
  return jax.tree.map(lambda x: x.shape, nnx.to_pure_dict(nnx.split(abstract)[1]))


def roles(cls, family: str, m: ml_collections.ConfigDict) -> dict:
  """'input' | 'hidden' | 'output' per parameter (a pure dict shaped like the model's params)."""
  base, delta = (_shapes(cls, at_width(family, m, k * m.base_width)) for k in (1, 2))

  def role(path, s0, s1):
    (i0, o0), (i1, o1) = _fans(_leaf_name(path), s0), _fans(_leaf_name(path), s1)
    if i0 == i1:
      return "input"
    return "hidden" if o0 != o1 else "output"

  is_shape = lambda x: isinstance(x, tuple)
  return jax.tree_util.tree_map_with_path(role, base, delta, is_leaf=is_shape)


def rescale_init(model: nnx.Module, family: str, m: ml_collections.ConfigDict) -> None:
  """SP init -> μP init, in place. The class says how its SP init std depends on fan-in
  (`INIT_STD_FAN_IN_POWER` p: std ∝ fan_in^p); μP wants hidden std ∝ fan_in^-1/2 and a readout std
  fixed at the base's, both anchored at the base width (factor 1 there)."""
  p = type(model).INIT_STD_FAN_IN_POWER
  r = width_mult(family, m)
  factor = {"input": 1.0, "hidden": r ** (-0.5 - p), "output": r ** (-p)}
  graphdef, state = nnx.split(model)
  labels = roles(type(model), family, m)
  params = jax.tree.map(lambda x, role: x * factor[role] if factor[role] != 1.0 else x,
                        nnx.to_pure_dict(state), labels)
  nnx.replace_by_pure_dict(state, params)
  nnx.update(model, state)


def lr_scales(family: str, m: ml_collections.ConfigDict) -> dict[str, float]:
  """Adam lr multiplier per role (Tab. 8): hidden 1/m, input and output 1 (the readout's 1/m is its multiplier)."""
  return {"input": 1.0, "hidden": 1.0 / width_mult(family, m), "output": 1.0}
