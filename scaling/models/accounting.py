"""Exact parameter counts and FLOPs, from a model config alone.

Parameters: `embed` = token embedding + learned position tables + an untied output head (the vocabulary
projection, whatever family); `nonembed` = everything else, LayerNorm scales/biases included (Kaplan's N).

FLOPs: 2 per multiply-accumulate of every matmul as executed — all weight matmuls including the output
logits, plus attention scores (QK^T) and the weighted sum (AV) over the *full* context, because XLA
executes the causal mask densely: 4 * n_ctx * d_attn per token per attention layer. Norms, softmax,
activations and embedding lookups are not counted (< 5 % of a step for d_model >= 128). A training step
costs 3x the forward pass (backward = 2x forward). Kaplan's approximation C_fwd = 2N + 2 n_layer n_ctx
d_attn counts the causal half of the attention; `kaplan_forward_flops` gives it for comparison.
"""

import ml_collections

from scaling.models import registry, xla_flops

# GPT recipe fields (scaling/models/layers.py) and the values that build the GPT-2 recipe every run used before
# they existed (also runid.ADDED_DEFAULTS). tie_embeddings is older and stays a required field.
RECIPE_DEFAULTS = {"norm": "layernorm", "mlp": "gelu", "qk_norm": False, "bias": True}
SWIGLU_MULTIPLE = 8


def _attn_block(d: int, hk: int) -> int:
  return 4 * d * hk  # q, k, v, o projections


def _recipe(m: ml_collections.ConfigDict, name: str):
  return m[name] if name in m else RECIPE_DEFAULTS[name]


def swiglu_hidden(d_ff: int) -> int:
  """SwiGLU's hidden width for a GELU-equivalent d_ff: 2/3 d_ff rounded to the nearest multiple of 8 (at least
  8), so its 3 d x f matrices hold ~ the GELU MLP's 2 d x d_ff (exactly when d_ff is a multiple of 12)."""
  return max(SWIGLU_MULTIPLE, SWIGLU_MULTIPLE * round(2 * d_ff / 3 / SWIGLU_MULTIPLE))


def _mlp_params(m: ml_collections.ConfigDict) -> int:
  return 3 * m.d_model * swiglu_hidden(m.d_ff) if _recipe(m, "mlp") == "swiglu" else 2 * m.d_model * m.d_ff


def _mlp_flops(m: ml_collections.ConfigDict) -> int:
  """Forward matmul FLOPs of one MLP per token (2 per multiply-accumulate)."""
  return 2 * _mlp_params(m)


def _norm_params(m: ml_collections.ConfigDict, d: int) -> int:
  return d * (2 if _recipe(m, "bias") else 1)  # scale (+ bias); RMSNorm and LayerNorm alike


def _qk_norm_params(m: ml_collections.ConfigDict) -> int:
  """Per layer: one norm on q and one on k, over head_dim, shared by the heads."""
  return 2 * _norm_params(m, m.d_model // m.n_heads) if _recipe(m, "qk_norm") else 0


def gpt_params(m: ml_collections.ConfigDict) -> dict:
  d, hk, v = m.d_model, (m.d_model // m.n_heads) * m.n_heads, m.vocab_size
  ln = _norm_params(m, d)
  nonembed = m.n_layers * (_attn_block(d, hk) + _mlp_params(m) + 2 * ln + _qk_norm_params(m)) + ln
  # `in`, not ConfigDict.get: a missing key's get builds a difflib "did you mean" message, which was
  # 40 % of expanding a 54-run sweep (sizes.from_params calls this for ~150 candidates per member).
  nc = m.num_classes if "num_classes" in m else 0
  nonembed += d * nc + nc  # classification head + bias
  embed = v * d + (m.max_len * d if m.pos == "learned" else 0) + (0 if m.tie_embeddings else d * v)
  return {"total": embed + nonembed, "embed": embed, "nonembed": nonembed}


def transformer_params(m: ml_collections.ConfigDict) -> dict:
  d, hk, f, v = m.d_model, (m.d_model // m.n_heads) * m.n_heads, m.d_ff, m.vocab_size
  ln, mlp = 2 * d, 2 * d * f
  enc = m.n_layers * (_attn_block(d, hk) + mlp + 2 * ln) + ln
  dec = m.n_dec_layers * (2 * _attn_block(d, hk) + mlp + 3 * ln) + ln
  embed = v * d + (2 * m.max_len * d if m.pos == "learned" else 0)
  return {"total": embed + enc + dec, "embed": embed, "nonembed": enc + dec}


def dnn_params(m: ml_collections.ConfigDict) -> dict:
  d_in = m.context * m.d_embed if m.head == "lm" else m.num_features
  dims = [d_in] + [m.width] * m.depth
  body = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
  n_out = m.vocab_size if m.head == "lm" else m.num_classes
  out = dims[-1] * n_out + n_out
  if m.head == "lm":
    embed, nonembed = m.vocab_size * m.d_embed + out, body
  else:
    embed, nonembed = 0, body + out
  return {"total": embed + nonembed, "embed": embed, "nonembed": nonembed}


def params(family: str, m: ml_collections.ConfigDict) -> dict:
  """{'total', 'embed', 'nonembed'} for a model config of `family`."""
  return registry.get(family).params(m)


def gpt_forward_flops(m: ml_collections.ConfigDict, seq_len: int, dec_len: int | None = None) -> float:
  d, hk = m.d_model, (m.d_model // m.n_heads) * m.n_heads
  body = m.n_layers * (2 * _attn_block(d, hk) + _mlp_flops(m))
  if "num_classes" in m and m.num_classes:  # a classifier runs its head once on pooled features, not the vocab head
    return seq_len * (body + m.n_layers * 4 * seq_len * hk) + 2 * d * m.num_classes
  return seq_len * (body + 2 * d * m.vocab_size + m.n_layers * 4 * seq_len * hk)


def transformer_forward_flops(m: ml_collections.ConfigDict, seq_len: int, dec_len: int | None = None) -> float:
  d, hk, s, t = m.d_model, (m.d_model // m.n_heads) * m.n_heads, seq_len, dec_len or seq_len
  enc = s * m.n_layers * (2 * (_attn_block(d, hk) + 2 * d * m.d_ff) + 4 * s * hk)
  dec_self = t * (2 * (_attn_block(d, hk) + 2 * d * m.d_ff) + 4 * t * hk)
  # Cross-attention: q/o on decoder tokens, k/v on encoder tokens, scores over the encoder length.
  dec_cross = t * 2 * (2 * d * hk) + s * 2 * (2 * d * hk) + t * 4 * s * hk
  return enc + m.n_dec_layers * (dec_self + dec_cross) + t * 2 * d * m.vocab_size


def dnn_forward_flops(m: ml_collections.ConfigDict, seq_len: int, dec_len: int | None = None) -> float:
  d_in = m.context * m.d_embed if m.head == "lm" else m.num_features
  dims = [d_in] + [m.width] * m.depth + [m.vocab_size if m.head == "lm" else m.num_classes]
  per_position = sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))
  return per_position * (seq_len if m.head == "lm" else 1)


def forward_flops(family: str, m: ml_collections.ConfigDict, seq_len: int, dec_len: int | None = None) -> float:
  """Forward FLOPs per *example*: a sequence of `seq_len` tokens (GPT, DNN-LM), a feature vector
  (DNN classifier), or `seq_len` encoder + `dec_len` decoder tokens (Transformer). A family without its
  own count gets XLA's cost analysis of its compiled forward pass (xla_flops.py)."""
  fam = registry.get(family)
  if fam.forward_flops is None:
    return xla_flops.forward_flops(fam, m, seq_len)
  return fam.forward_flops(m, seq_len, dec_len)


def flops_source(family: str) -> str:
  """Where `train_flops` comes from: 'analytic' (the family's own count) or 'xla_cost_analysis'."""
  return "analytic" if registry.get(family).forward_flops is not None else "xla_cost_analysis"


def train_flops(family: str, m: ml_collections.ConfigDict, seq_len: int, dec_len: int | None = None) -> float:
  """Training FLOPs per example (forward + backward = 3x forward)."""
  return 3 * forward_flops(family, m, seq_len, dec_len)


def kaplan_forward_flops(m: ml_collections.ConfigDict, seq_len: int) -> float:
  """Kaplan et al. (2020) Table 1 estimate per token for a decoder: 2N + 2 n_layer n_ctx d_attn."""
  return 2 * gpt_params(m)["nonembed"] + 2 * m.n_layers * seq_len * m.d_model
