"""The `transformer` family: encoder-decoder for seq2seq tasks (models/transformer.py), sizes, accounting, tag."""

import ml_collections

from scaling.models import accounting, activations, checks, gpt_family, registry, sizes
from scaling.models.transformer import Transformer

ID_EXEMPT = tuple(f for f in gpt_family.ID_EXEMPT if f != "tie_embeddings") + ("n_dec_layers",)
SEQ2SEQ_TASKS = ("span", "prefix_lm")  # encoder-decoder batches: inputs, input_mask, decoder_inputs, targets


def tag(m: ml_collections.ConfigDict) -> str:
  return (f"d{m.d_model}-E{m.n_layers}-D{m.n_dec_layers}{gpt_family.mup_suffix(m)}"
          + checks.recipe_tag(m, sizes.transformer_model(64, 2), ID_EXEMPT))


def validate(m: ml_collections.ConfigDict) -> None:
  checks.attention_stack(m, extra=("n_dec_layers",))
  checks.no_recipe(m, "transformer")


FAMILY = registry.register(registry.Family(
    name="transformer", module=Transformer,
    sizes={k: (lambda v=v: sizes.transformer_model(*v)) for k, v in sizes.GPT_SIZES.items()},
    from_params=sizes.transformer_from_params, params=accounting.transformer_params,
    forward_flops=accounting.transformer_forward_flops, tag=tag, tasks=SEQ2SEQ_TASKS, validate=validate,
    finalize=gpt_family.finalize, scan_layers=True, mup=True, activations=activations.encoder_decoder))
