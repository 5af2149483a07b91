"""Model families by size. `build(family, model_cfg, seed)` makes a member; `validate` checks a config."""

import ml_collections
from flax import nnx

from scaling.models import accounting, layers, mup, sizes, stack
from scaling.models.dnn import DNN
from scaling.models.gpt import GPT
from scaling.models.transformer import Transformer
from scaling import errors

CLASSES = {"gpt": GPT, "transformer": Transformer, "dnn": DNN}


def _positive(m, fields):
  for f in fields:
    v = m.get(f)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise errors.ConfigError(f"model.{f}: must be a positive integer, got {v!r}")


def _choice(m, field, allowed):
  if m.get(field) not in allowed:
    raise errors.ConfigError(f"model.{field}: {m.get(field)!r} not allowed; allowed: {', '.join(map(str, allowed))}")


def validate(family: str, m: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field and what is allowed; called before anything compiles."""
  if family not in CLASSES:
    raise errors.ConfigError(f"family: unknown {family!r}; allowed: {', '.join(CLASSES)}")
  _choice(m, "dtype", ("float32", "bfloat16"))
  if family in ("gpt", "transformer"):
    _positive(m, ["d_model", "n_layers", "n_heads", "d_ff", "max_len"] + (["n_dec_layers"] if family == "transformer" else []))
    if m.d_model % m.n_heads:
      raise errors.ConfigError(f"model.d_model: {m.d_model} is not divisible by model.n_heads={m.n_heads}; "
                       f"allowed n_heads: divisors of {m.d_model}")
    _choice(m, "pos", ("learned", "rope"))
    if m.pos == "rope" and (m.d_model // m.n_heads) % 2:
      raise errors.ConfigError(f"model.n_heads: rope needs an even head dim, got d_model/n_heads={m.d_model // m.n_heads}")
    if not isinstance(m.get("scan_layers", False), bool):
      raise errors.ConfigError(f"model.scan_layers: {m.get('scan_layers')!r} not allowed; allowed: True, False")
    if "remat" in m:
      _choice(m, "remat", tuple(stack.REMAT))
    if "attention" in m:  # absent: "auto"
      _choice(m, "attention", layers.ATTENTION_IMPLS)
    if family == "gpt":
      if "norm" in m:
        _choice(m, "norm", ("layernorm", "rmsnorm"))
      if "mlp" in m:
        _choice(m, "mlp", ("gelu", "swiglu"))
      for f in ("qk_norm", "bias", "tie_embeddings"):
        if f in m and not isinstance(m[f], bool):
          raise ValueError(f"model.{f}: {m[f]!r} not allowed; allowed: True, False")
    else:
      for f in accounting.RECIPE_DEFAULTS:
        if f in m and m[f] != accounting.RECIPE_DEFAULTS[f]:
          raise ValueError(f"model.{f}: {m[f]!r} is a GPT recipe field; allowed for {family}: "
                           f"{accounting.RECIPE_DEFAULTS[f]!r}")
  else:
    _choice(m, "head", ("lm", "classify"))
    _positive(m, ["width"] + (["d_embed", "context"] if m.head == "lm" else ["num_features", "num_classes"]))
    if not isinstance(m.depth, int) or m.depth < 0:
      raise errors.ConfigError(f"model.depth: must be an integer >= 0, got {m.depth!r}")
  mup.validate(family, m)
  if family != "dnn" or m.head == "lm":
    if not isinstance(m.vocab_size, int) or m.vocab_size < 2:
      raise errors.ConfigError(f"model.vocab_size: must be an integer >= 2, got {m.vocab_size!r}")


def build(family: str, m: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  validate(family, m)
  model = CLASSES[family](m, rngs=nnx.Rngs(params=seed))
  if mup.enabled(m):
    mup.rescale_init(model, family, m)
  return model


__all__ = ["accounting", "mup", "sizes", "build", "validate", "GPT", "Transformer", "DNN"]
