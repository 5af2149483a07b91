"""Autoregressive generation from a trained GPT run: `scaling sample --workdir=RUN --prompt=...`.

One jitted function does the whole generation: prefill the prompt into the KV cache, then a
`jax.lax.scan` of single-token decode steps with fixed shapes (no recompilation per token). Token i is
drawn with key fold_in(seed_key, i), so a seed fixes the output, and `generate_naive` (full recompute of
the growing sequence, the reference the tests compare against) draws exactly the same tokens.
The prompt is preceded by EOS, the document separator of the training stream, so an empty prompt
means "start of a new file". Generation stops at EOS or when the sequence reaches the model's max_len.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling import models
from scaling.data.tokenizer import get_tokenizer
from scaling import config as config_lib
from scaling.train import finetune
from scaling import errors


def sample_logits(logits_BxV: jax.Array, key: jax.Array, temperature: float, top_k: int) -> jax.Array:
  """-> token ids [B]. temperature 0 is greedy; top_k > 0 keeps the k most likely tokens."""
  if temperature == 0:
    return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
  logits_BxV = logits_BxV.astype(jnp.float32) / temperature
  if top_k:
    kth_Bx1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_Bx1, -jnp.inf, logits_BxV)
  return jax.random.categorical(key, logits_BxV, axis=-1).astype(jnp.int32)


def _check(temperature: float, top_k: int, vocab_size: int) -> None:
  if not temperature >= 0:
    raise errors.ConfigError(f"temperature: {temperature!r} not allowed; allowed: >= 0 (0 is greedy)")
  if not 0 <= top_k <= vocab_size:
    raise errors.ConfigError(f"top_k: {top_k!r} not allowed; allowed: 0 (all) to vocab_size={vocab_size}")


def make_generate(graphdef, n_new: int, temperature: float, top_k: int):
  """jit(params, prompt_BxP int32, key) -> new tokens [B, n_new], decoded with the KV cache."""

  def run(params, prompt_BxP, key):
    model = nnx.merge(graphdef, params)
    cache = model.init_cache(prompt_BxP.shape[0])
    logits_BxPxV, cache = model(prompt_BxP, cache=cache)  # prefill: the whole prompt in one pass
    first_B = sample_logits(logits_BxPxV[:, -1], jax.random.fold_in(key, 0), temperature, top_k)

    def step(carry, i):
      tok_B, cache = carry
      logits_Bx1xV, cache = model(tok_B[:, None], cache=cache)
      nxt_B = sample_logits(logits_Bx1xV[:, 0], jax.random.fold_in(key, i), temperature, top_k)
      return (nxt_B, cache), nxt_B

    _, rest_NxB = jax.lax.scan(step, (first_B, cache), jnp.arange(1, n_new))
    return jnp.concatenate([first_B[:, None], rest_NxB.T], axis=1)

  return jax.jit(run)


def generate(model: nnx.Module, prompt_BxP, n_new: int, *, key: jax.Array, temperature: float = 1.0,
             top_k: int = 0) -> np.ndarray:
  """n_new tokens after each prompt row (KV-cache decoding). Rows share the prompt length."""
  graphdef, params = nnx.split(model)
  fn = make_generate(graphdef, n_new, temperature, top_k)
  return np.asarray(fn(params, jnp.asarray(prompt_BxP, jnp.int32), key))


def generate_naive(model: nnx.Module, prompt_BxP, n_new: int, *, key: jax.Array, temperature: float = 1.0,
                   top_k: int = 0) -> np.ndarray:
  """Reference decoder without a cache: every token re-runs the model over the whole sequence so far.
  The sequence is kept padded to its final length so one compile serves every step; causal attention
  makes the padding after position t invisible to the logits at t."""
  graphdef, params = nnx.split(model)
  b, p = np.shape(prompt_BxP)

  @jax.jit
  def next_token(params, seq_BxT, t, key):
    logits_BxTxV = nnx.merge(graphdef, params)(seq_BxT)
    return sample_logits(jax.lax.dynamic_index_in_dim(logits_BxTxV, t - 1, axis=1, keepdims=False), key,
                         temperature, top_k)

  seq_BxT = jnp.zeros((b, p + n_new), jnp.int32).at[:, :p].set(jnp.asarray(prompt_BxP, jnp.int32))
  for i in range(n_new):
    tok_B = next_token(params, seq_BxT, p + i, jax.random.fold_in(key, i))
    seq_BxT = seq_BxT.at[:, p + i].set(tok_B)
  return np.asarray(seq_BxT[:, p:])


def load_model(workdir: str):
  """-> (model, config) of a GPT run, parameters from its newest checkpoint, on one device."""
  c = config_lib.run_config(workdir, field="workdir")
  if c.get("family") != "gpt":
    raise errors.ConfigError(f"workdir: {workdir!r} is a {c.get('family')!r} run; allowed: a 'gpt' run")
  abstract = nnx.eval_shape(lambda: models.build("gpt", c.model, c.seed))
  graphdef, abs_state = nnx.split(abstract)
  dev = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  want = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=dev),
                      nnx.to_pure_dict(abs_state))
  step, params = finetune.restore_params(workdir, want, field="workdir")
  missing = len(jax.tree.leaves(want)) - len(jax.tree.leaves(params))
  if missing:
    raise errors.ConfigError(f"workdir: the checkpoint at step {step} lacks {missing} of the model's parameters")
  nnx.replace_by_pure_dict(abs_state, params)
  return nnx.merge(graphdef, abs_state), c


def sample_run(workdir: str, *, prompt: str = "", temperature: float = 1.0, top_k: int = 0,
               max_tokens: int = 200, seed: int = 0) -> str:
  """The prompt followed by up to `max_tokens` sampled tokens, decoded to text."""
  if not isinstance(max_tokens, int) or max_tokens < 1:
    raise errors.ConfigError(f"max_tokens: {max_tokens!r} not allowed; allowed: a positive integer")
  model, c = load_model(workdir)
  _check(temperature, top_k, c.model.vocab_size)
  tok = get_tokenizer(c.data.get("tokenizer", "byte"))
  prompt_P = np.concatenate([[tok.eos_id], tok.encode(prompt)]).astype(np.int32)
  room = c.model.max_len - len(prompt_P)
  if room < 1:
    raise errors.ConfigError(f"prompt: {len(prompt_P) - 1} tokens leave no room in model.max_len={c.model.max_len}; "
                     f"allowed: at most {c.model.max_len - 2} tokens")
  n_new = min(max_tokens, room)
  new_N = generate(model, prompt_P[None], n_new, key=jax.random.key(seed), temperature=temperature,
                   top_k=top_k)[0]
  hit_eos = np.flatnonzero(new_N == tok.eos_id)
  if len(hit_eos):
    new_N = new_N[:hit_eos[0]]
    print(f"[stopped at end-of-document after {len(new_N)} tokens]", file=sys.stderr)
  elif n_new < max_tokens:
    print(f"[stopped at the model's max_len={c.model.max_len}: {n_new} of {max_tokens} tokens generated]",
          file=sys.stderr)
  return prompt + tok.decode(new_N)
