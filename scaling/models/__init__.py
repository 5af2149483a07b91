"""Model families by size. `build(family, model_cfg, seed)` makes a member; `validate` checks a config."""

import ml_collections
from flax import nnx

from scaling.models import accounting, mup, sizes
from scaling.models.dnn import DNN
from scaling.models.gpt import GPT
from scaling.models.transformer import Transformer
from scaling import errors

# The built-in families register themselves on import (each module owns one family).
from scaling.models import gpt_family  # noqa: F401  (registration, in this order: error messages list it)
from scaling.models import transformer_family  # noqa: F401
from scaling.models import dnn_family  # noqa: F401
from scaling.models import checks, registry


def validate(family: str, m: ml_collections.ConfigDict) -> None:
  """Raises errors.ConfigError naming the field and what is allowed; called before anything compiles."""
  fam = registry.get(family)
  checks.choice(m, "dtype", ("float32", "bfloat16"))
  if fam.validate is not None:
    fam.validate(m)
  mup.validate(family, m)
  if fam.uses_vocab(m):
    if not isinstance(m.vocab_size, int) or m.vocab_size < 2:
      raise errors.ConfigError(f"model.vocab_size: must be an integer >= 2, got {m.vocab_size!r}")


def build(family: str, m: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  validate(family, m)
  model = registry.get(family).build(m, nnx.Rngs(params=seed))
  if mup.enabled(m):
    mup.rescale_init(model, family, m)
  return model


__all__ = ["accounting", "mup", "registry", "sizes", "build", "validate", "GPT", "Transformer", "DNN"]
