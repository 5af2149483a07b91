"""The `gpt` family: decoder-only LM (models/gpt.py), its sizes, size rule, accounting, tasks and run-id tag."""

import ml_collections

from scaling.models import accounting, activations, checks, mup, registry, sizes
from scaling.models.gpt import GPT

# Fields that existed before run ids carried a recipe hash: they never enter it (old run ids stay).
ID_EXEMPT = ("d_model", "n_layers", "n_heads", "d_ff", "vocab_size", "max_len", "pos", "tie_embeddings", "dtype",
             "scan_layers", "remat", "parametrization", "base_width", "base_head_dim", "num_classes")


def mup_suffix(m: ml_collections.ConfigDict) -> str:
  return f"-mup{m.base_width}" if mup.enabled(m) else ""


# The recipe fields are in the id by name ('-modern', sizes.recipe_name); the attention kernel computes the
# same function, so it never enters the id.
NAMED = (*accounting.RECIPE_DEFAULTS, "attention")


def tag(m: ml_collections.ConfigDict) -> str:
  recipe = sizes.recipe_name(m)  # GPT-2's recipe adds nothing: the ids of runs made before recipes stay
  return (f"d{m.d_model}-L{m.n_layers}{mup_suffix(m)}" + ("" if recipe == "gpt2" else f"-{recipe}")
          + checks.recipe_tag(m, sizes.gpt_model(64, 2), ID_EXEMPT + NAMED))


def finalize(c: ml_collections.ConfigDict, info: dict) -> None:
  if not c.get("init_from"):  # a checkpoint fixes max_len
    c.model.max_len = max(c.model.max_len, c.data.seq_len)


def validate(m: ml_collections.ConfigDict) -> None:
  checks.attention_stack(m)
  checks.gpt_recipe(m)


def _size(spec):
  return (lambda: sizes.gpt_model(**spec)) if isinstance(spec, dict) else (lambda: sizes.gpt_model(*spec))


FAMILY = registry.register(registry.Family(
    name="gpt", module=GPT, sizes={k: _size(v) for k, v in (sizes.GPT_SIZES | sizes.GPT_EXTRA).items()},
    from_params=sizes.gpt_from_params, params=accounting.gpt_params, forward_flops=accounting.gpt_forward_flops,
    tag=tag, tasks=("lm", "module_cls"), validate=validate, finalize=finalize, scan_layers=True, mup=True,
    activations=activations.decoder))
