"""Model-field checks shared by the family modules: one ConfigError naming the field and what is allowed."""

import hashlib

import ml_collections

from scaling import errors
from scaling.models import accounting, layers, stack


def positive(m: ml_collections.ConfigDict, fields) -> None:
  for f in fields:
    v = m.get(f)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise errors.ConfigError(f"model.{f}: must be a positive integer, got {v!r}")


def choice(m: ml_collections.ConfigDict, field: str, allowed) -> None:
  if m.get(field) not in allowed:
    raise errors.ConfigError(f"model.{field}: {m.get(field)!r} not allowed; allowed: {', '.join(map(str, allowed))}")


def attention_stack(m: ml_collections.ConfigDict, extra=()) -> None:
  """A stack of attention blocks (GPT, encoder-decoder)."""
  positive(m, ["d_model", "n_layers", "n_heads", "d_ff", "max_len", *extra])
  if m.d_model % m.n_heads:
    raise errors.ConfigError(f"model.d_model: {m.d_model} is not divisible by model.n_heads={m.n_heads}; "
                     f"allowed n_heads: divisors of {m.d_model}")
  choice(m, "pos", ("learned", "rope"))
  if m.pos == "rope" and (m.d_model // m.n_heads) % 2:
    raise errors.ConfigError(f"model.n_heads: rope needs an even head dim, got d_model/n_heads={m.d_model // m.n_heads}")
  if not isinstance(m.get("scan_layers", False), bool):
    raise errors.ConfigError(f"model.scan_layers: {m.get('scan_layers')!r} not allowed; allowed: True, False")
  if "remat" in m:
    choice(m, "remat", tuple(stack.REMAT))
  if "attention" in m:  # absent: "auto"
    choice(m, "attention", layers.ATTENTION_IMPLS)


def gpt_recipe(m: ml_collections.ConfigDict) -> None:
  """The GPT recipe fields (accounting.RECIPE_DEFAULTS); absent ones mean GPT-2's."""
  if "norm" in m:
    choice(m, "norm", ("layernorm", "rmsnorm"))
  if "mlp" in m:
    choice(m, "mlp", ("gelu", "swiglu"))
  for f in ("qk_norm", "bias", "tie_embeddings"):
    if f in m and not isinstance(m[f], bool):
      raise errors.ConfigError(f"model.{f}: {m[f]!r} not allowed; allowed: True, False")


def no_recipe(m: ml_collections.ConfigDict, family: str) -> None:
  """A family built without the GPT recipe fields accepts only their GPT-2 values."""
  for f, v in accounting.RECIPE_DEFAULTS.items():
    if f in m and m[f] != v:
      raise errors.ConfigError(f"model.{f}: {m[f]!r} is a GPT recipe field; allowed for {family}: {v!r}")


def recipe_tag(m: ml_collections.ConfigDict, reference: ml_collections.ConfigDict, exempt) -> str:
  """'-r<hash>' of the model fields outside `exempt` that differ from `reference` (the family's default
  member), '' when none: two ladders of one family whose members share a size but not a recipe get
  different run ids (DESIGN.md: a sweep cannot hold two members with one run id)."""
  diff = {k: m[k] for k in sorted(m.keys()) if k not in exempt and (k not in reference or m[k] != reference[k])}
  if not diff:
    return ""
  return "-r" + hashlib.sha1(repr(sorted(diff.items())).encode()).hexdigest()[:6]
