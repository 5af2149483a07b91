"""Bytes backward keeps per example, from the model config (the memory rule, train/memory.py).

Per layer the residual-stream tensors (~8 x d_model per token: inputs of the norms, q/k/v, attention output,
MLP input) and the MLP hidden (2 x d_ff), the attention probabilities (heads x L x L, split over `tensor`),
and the f32 logits with their softmax. With `model.remat` (scaling/models/stack.py) only what the policy
saves per layer, plus one layer recomputed.
"""

import ml_collections

F32 = 4


def mlp(m: ml_collections.ConfigDict, shapes: dict, tensor: int, act: int) -> float:
  n_out = m.vocab_size if m.head == "lm" else m.num_classes
  L = shapes["inputs"][1] if "inputs" in shapes else 1
  return L * (m.depth * 2 * m.width * act + 2 * n_out * F32)


def _stack(m: ml_collections.ConfigDict, L: int, layers: int, tensor: int, act: int, cross_len: int = 0) -> float:
  d, f, h = m.d_model, m.d_ff, m.n_heads
  remat = m.get("remat", "none")
  probs = h * L * (L + cross_len) * F32 / tensor
  per_layer = L * (8 * d + 2 * f) * act + probs
  if remat == "none":
    return layers * per_layer
  if remat == "block":  # each block's input; one block's activations live again while it is recomputed
    return layers * L * d * act + per_layer
  # dots_*: the matmul outputs (q, k, v, attention output projection, MLP in and out) and the block input;
  # dots_saveable also keeps the attention scores (a dot with batch dims)
  saved = L * (6 * d + f) * act + (probs if remat == "dots_saveable" else 0)
  return layers * saved + (per_layer - saved)


def decoder(m: ml_collections.ConfigDict, shapes: dict, tensor: int, act: int) -> float:
  L = shapes["inputs"][1]
  return _stack(m, L, m.n_layers, tensor, act) + 2 * L * m.vocab_size * F32 / tensor


def encoder_decoder(m: ml_collections.ConfigDict, shapes: dict, tensor: int, act: int) -> float:
  S, T = shapes["inputs"][1], shapes["targets"][1]
  return (_stack(m, S, m.n_layers, tensor, act) + _stack(m, T, m.n_dec_layers, tensor, act, cross_len=S)
          + 2 * T * m.vocab_size * F32 / tensor)
