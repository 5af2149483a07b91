"""The `dnn` family: an MLP (models/dnn.py) as a fixed-context LM or a feature classifier; width x depth."""

import ml_collections

from scaling import errors
from scaling.models import accounting, activations, checks, gpt_family, registry, sizes
from scaling.models.dnn import DNN

ID_EXEMPT = ("head", "width", "depth", "dtype", "vocab_size", "d_embed", "context", "num_features", "num_classes",
             "parametrization", "base_width")


def tag(m: ml_collections.ConfigDict) -> str:
  return (f"w{m.width}-D{m.depth}{gpt_family.mup_suffix(m)}"
          + checks.recipe_tag(m, sizes.dnn_model(32, 1, head=m.get("head", "lm")), ID_EXEMPT))


def validate(m: ml_collections.ConfigDict) -> None:
  checks.choice(m, "head", ("lm", "classify"))
  checks.positive(m, ["width"] + (["d_embed", "context"] if m.head == "lm" else ["num_features", "num_classes"]))
  if not isinstance(m.depth, int) or m.depth < 0:
    raise errors.ConfigError(f"model.depth: must be an integer >= 0, got {m.depth!r}")


def finalize(c: ml_collections.ConfigDict, info: dict) -> None:
  if c.model.head == "classify":
    c.model.num_features, c.model.num_classes = int(info["num_features"]), int(info["num_classes"])


def check_task(c: ml_collections.ConfigDict, task: str) -> None:
  if c.model.get("head", "lm") != ("classify" if task == "classify" else "lm"):
    raise errors.ConfigError(f"model.head: {c.model.get('head')!r} does not fit data.task={task!r}; allowed: "
                     f"{'classify' if task == 'classify' else 'lm'}")


def for_task(m: ml_collections.ConfigDict, task: str) -> None:
  m.head = "classify" if task == "classify" else "lm"


FAMILY = registry.register(registry.Family(
    name="dnn", module=DNN, sizes={k: (lambda v=v: sizes.dnn_model(*v)) for k, v in sizes.DNN_SIZES.items()},
    from_params=sizes.dnn_from_params, params=accounting.dnn_params, forward_flops=accounting.dnn_forward_flops,
    tag=tag, width_field="width", tasks=("lm", "classify"), validate=validate, finalize=finalize, mup=True,
    seq_input=False, for_task=for_task, check_task=check_task, uses_vocab=lambda m: m.head == "lm",
    activations=activations.mlp))
