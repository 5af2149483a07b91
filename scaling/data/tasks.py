"""What a batch means, per task: LM windows, T5 span corruption, prefix LM, classification arrays, module_cls.

The functions here are pure numpy on whole batches (vectorized); pipeline.py decides which rows
form a batch (shuffle, repeat, per-process shard) with grain.
"""

import dataclasses
import functools

import numpy as np

from scaling.data import corpus, sources, stdlib
from scaling.data.tokenizer import Tokenizer
from scaling import errors

# ----------------------------------------------------------------------------------------------------
# LM: windows of seq_len + 1 tokens with stride seq_len, so every token is an input exactly once per
# epoch and targets are the inputs shifted by one. For the Markov corpus windows stay inside documents
# (independent chains), so each window is one stationary stretch and its optimal loss is exact.


def window_starts(doc_starts: np.ndarray, num_tokens: int, length: int, stride: int,
                  within_docs: bool) -> np.ndarray:
  """Offsets of windows of `length` tokens every `stride` tokens, over the whole stream or per document."""
  lo = doc_starts[:-1] if within_docs else np.array([0], dtype=np.int64)
  hi = doc_starts[1:] if within_docs else np.array([num_tokens], dtype=np.int64)
  per_doc = np.where(hi - lo >= length, (hi - lo - length) // stride + 1, 0)
  doc_of = np.repeat(np.arange(len(lo)), per_doc)
  offset = np.arange(per_doc.sum()) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
  return (lo[doc_of] + offset * stride).astype(np.int64)


def lm_starts(doc_starts: np.ndarray, num_tokens: int, seq_len: int, within_docs: bool) -> np.ndarray:
  """LM window offsets. Over a whole stream the last, partial window is kept (its missing positions
  get weight 0), so an epoch scores every token but the first exactly once."""
  starts = window_starts(doc_starts, num_tokens, seq_len + 1, seq_len, within_docs)
  if not within_docs:
    tail = len(starts) * seq_len
    if num_tokens - 1 - tail >= 1:
      starts = np.append(starts, tail)
  return starts


def gather(tokens: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
  idx = np.minimum(starts[:, None] + np.arange(length), len(tokens) - 1)  # Clipped rows are masked later.
  return np.asarray(tokens[idx], dtype=np.int32)


def lm_batch(tokens, starts_B: np.ndarray, valid_B: np.ndarray, seq_len: int, pad_id: int) -> dict:
  w = gather(tokens, starts_B, seq_len + 1)
  n_targets = np.where(valid_B, np.minimum(seq_len, len(tokens) - 1 - starts_B), 0)
  keep_BxL = np.arange(seq_len) < n_targets[:, None]
  return {"inputs": np.where(keep_BxL, w[:, :-1], pad_id), "targets": np.where(keep_BxL, w[:, 1:], pad_id),
          "weights": keep_BxL.astype(np.float32)}


# ----------------------------------------------------------------------------------------------------
# Span corruption (T5, Raffel et al. 2020): drop ~noise_density of a window's tokens in spans of mean
# length mean_noise_span_length; inputs keep the rest with sentinel i where span i was, targets are
# sentinel i + span i for every span, both end in EOS. Sentinel i = tokenizer.vocab_size + i.


@dataclasses.dataclass(frozen=True)
class SpanLengths:
  raw: int  # Tokens taken from the stream per example.
  noise: int
  spans: int
  inputs: int  # Encoder length (= seq_len; the corrupted raw window + EOS fits, rest is PAD).
  targets: int  # Decoder length: noise + spans + EOS, exact (no padding).


def span_lengths(seq_len: int, noise_density: float, mean_span: float) -> SpanLengths:
  """The longest raw window whose corrupted form (+ EOS) fits in seq_len (T5's random_spans_helper)."""

  def sizes(raw):
    noise = min(max(int(round(raw * noise_density)), 1), raw - 1)
    spans = min(max(int(round(noise / mean_span)), 1), noise, raw - noise)
    return noise, spans, raw - noise + spans + 1

  raw = seq_len
  while raw > 2 and sizes(raw)[2] > seq_len:
    raw -= 1
  while sizes(raw + 1)[2] <= seq_len:
    raw += 1
  noise, spans, inputs = sizes(raw)
  if raw < 2 or inputs > seq_len:
    raise errors.ConfigError(f"data.seq_len: {seq_len} is too short for span corruption (need >= 4)")
  return SpanLengths(raw, noise, spans, seq_len, noise + spans + 1)


def _random_composition(u_RxK: np.ndarray, total: int, parts: int) -> np.ndarray:
  """[rows, parts] positive ints summing to `total`, uniform over compositions (u: uniforms, K=total-1)."""
  rows = u_RxK.shape[0]
  if parts == 1:
    return np.full((rows, 1), total, dtype=np.int64)
  cuts = np.sort(np.argsort(u_RxK, axis=1)[:, :parts - 1] + 1, axis=1)
  edges = np.concatenate([np.zeros((rows, 1), np.int64), cuts, np.full((rows, 1), total)], axis=1)
  return np.diff(edges, axis=1)


def noise_mask(rngs: list[np.random.Generator], sl: SpanLengths) -> np.ndarray:
  """[rows, raw] bool, one row per generator: alternating clean / noise spans, clean first (as in T5)."""
  rows = len(rngs)
  clean = sl.raw - sl.noise
  u = np.stack([r.random(clean - 1 + sl.noise - 1) for r in rngs]) if rows else np.zeros((0, sl.raw))
  lens = np.empty((rows, 2 * sl.spans), dtype=np.int64)
  lens[:, 0::2] = _random_composition(u[:, :clean - 1], clean, sl.spans)
  lens[:, 1::2] = _random_composition(u[:, clean - 1:], sl.noise, sl.spans)
  starts = np.cumsum(lens, axis=1)[:, :-1]
  marks = np.zeros((rows, sl.raw), dtype=np.int64)
  np.put_along_axis(marks, starts, 1, axis=1)
  return np.cumsum(marks, axis=1) % 2 == 1


def span_corrupt(x_BxR: np.ndarray, mask_BxR: np.ndarray, sl: SpanLengths, tok: Tokenizer) -> dict:
  b = x_BxR.shape[0]
  first_noise = mask_BxR & ~np.pad(mask_BxR, ((0, 0), (1, 0)))[:, :-1]
  sentinel_BxR = tok.vocab_size + np.cumsum(first_noise, axis=1) - 1  # Span number of each noise token.
  # Inputs: the clean tokens, with sentinel i in place of noise span i.
  ins = np.where(first_noise, sentinel_BxR, x_BxR)[~mask_BxR | first_noise].reshape(b, -1)
  # Targets: for each noise token, sentinel i first if it starts span i, then the token itself.
  pairs = np.stack([np.where(first_noise, sentinel_BxR, -1), np.where(mask_BxR, x_BxR, -1)], axis=2)
  pairs = pairs.reshape(b, -1)
  tgt = pairs[pairs >= 0].reshape(b, -1)
  eos = np.full((b, 1), tok.eos_id, dtype=np.int32)
  ins = np.concatenate([ins, eos], axis=1).astype(np.int32)
  tgt = np.concatenate([tgt, eos], axis=1).astype(np.int32)
  inputs = np.full((b, sl.inputs), tok.pad_id, dtype=np.int32)
  inputs[:, :ins.shape[1]] = ins
  input_mask = np.zeros((b, sl.inputs), dtype=np.float32)
  input_mask[:, :ins.shape[1]] = 1.0
  dec = np.concatenate([np.full((b, 1), tok.bos_id, dtype=np.int32), tgt[:, :-1]], axis=1)
  return {"inputs": inputs, "decoder_inputs": dec, "targets": tgt,
          "weights": np.ones_like(tgt, dtype=np.float32), "input_mask": input_mask}


# Prefix LM (T5's "prefix language modeling" objective, Raffel et al. 2020 §3.3): a window of seq_len
# tokens, the encoder reads the first half, the decoder predicts the second half token by token. Its
# loss is next-token nats on the continuation: the same quantity as a GPT's (given >= seq_len/2 context).


def prefix_lm_batch(w_BxS: np.ndarray, keep_BxS: np.ndarray, pad_id: int) -> dict:
  """Windows (and which of their tokens are real) -> encoder inputs = first half, decoder targets = the
  rest, decoder inputs = targets shifted right by one (starting from the prefix's last token)."""
  p = w_BxS.shape[1] // 2
  keep_BxP, keep_BxT = keep_BxS[:, :p], keep_BxS[:, p:] & keep_BxS[:, p - 1:-1]
  return {"inputs": np.where(keep_BxP, w_BxS[:, :p], pad_id).astype(np.int32),
          "input_mask": keep_BxP.astype(np.float32),
          "decoder_inputs": np.where(keep_BxT, w_BxS[:, p - 1:-1], pad_id).astype(np.int32),
          "targets": np.where(keep_BxT, w_BxS[:, p:], pad_id).astype(np.int32),
          "weights": keep_BxT.astype(np.float32)}


# ----------------------------------------------------------------------------------------------------
# Classification arrays (sklearn digits by default, TFDS image sets by name).

CLASSIFY_FRACTIONS = (0.8, 0.1, 0.1)


def _subset_train(arrays: dict, n: int | None, seed: int) -> dict:
  """The first n of a fixed permutation: nested subsets for data-scaling curves."""
  if n is None:
    return arrays
  x, y = arrays["train"]
  if not 1 <= n <= len(y):
    raise errors.ConfigError(f"data.train_examples: {n} not in [1, {len(y)}]")
  idx = np.random.default_rng(seed).permutation(len(y))[:n]
  return {**arrays, "train": (x[idx], y[idx])}


@functools.lru_cache(maxsize=4)
def _digits(split_seed: int) -> dict:
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split
  d = load_digits()
  x = (d.data / 16.0).astype(np.float32)  # Pixel intensities are 0..16.
  y = d.target.astype(np.int32)
  held = CLASSIFY_FRACTIONS[1] + CLASSIFY_FRACTIONS[2]
  x_tr, x_h, y_tr, y_h = train_test_split(x, y, test_size=held, random_state=split_seed, stratify=y)
  x_va, x_te, y_va, y_te = train_test_split(x_h, y_h, test_size=CLASSIFY_FRACTIONS[2] / held,
                                            random_state=split_seed, stratify=y_h)
  return {"train": (x_tr, y_tr), "validation": (x_va, y_va), "test": (x_te, y_te)}


def _tfds_images(data_cfg) -> tuple[dict, list[str] | None]:
  import tensorflow_datasets as tfds
  src = sources.open_source(data_cfg)
  feats = src.builder.info.features
  keys = list(feats.keys())
  x_key = "image" if "image" in keys else next((k for k in keys if k != "label"), None)
  if "label" not in keys or x_key is None:
    raise errors.ConfigError(f"data.name: TFDS dataset {src.name!r} has no image/label features ({keys}); "
                     "data.task='classify' needs them")
  out = {}
  for s in corpus.SPLITS:
    recs = src.split(s)
    rows = recs.__getitems__(list(range(len(recs))))
    x = np.stack([np.asarray(r[x_key]).reshape(-1) for r in rows]).astype(np.float32)
    if np.issubdtype(np.asarray(rows[0][x_key]).dtype, np.integer):
      x /= 255.0
    out[s] = (x, np.asarray([r["label"] for r in rows], dtype=np.int32))
  label = feats["label"]
  names = list(label.names) if isinstance(label, tfds.features.ClassLabel) else None
  return out, names


def classification(data_cfg) -> tuple[dict, dict]:
  """(arrays, info) for task 'classify'."""
  name = str(data_cfg.get("name", "digits"))
  split_seed = int(data_cfg.get("split_seed", 0))
  if name == "digits":
    arrays = {s: (x.copy(), y.copy()) for s, (x, y) in _digits(split_seed).items()}  # Callers may mutate.
    names = [str(i) for i in range(10)]
  elif name in ("stdlib", "markov") or name.startswith("text_dir:"):
    raise errors.ConfigError(f"data.name: {name!r} is a text corpus; data.task='classify' needs 'digits' or a TFDS "
                     "image dataset such as 'mnist'")
  else:
    arrays, names = _tfds_images(data_cfg)
  arrays = _subset_train(arrays, data_cfg.get("train_examples", None), split_seed)
  num_classes = int(max(int(y.max()) for _, y in arrays.values()) + 1) if names is None else len(names)
  info = dict(name=name, num_classes=num_classes, num_features=int(arrays["train"][0].shape[1]),
              label_names=names, num_examples={s: len(y) for s, (_, y) in arrays.items()})
  return arrays, info


def classification_arrays(data_cfg) -> dict:
  """dict(train=(X, y), validation=(X, y), test=(X, y)): float32 X [n, F], int32 y [n]."""
  return classification(data_cfg)[0]


# ----------------------------------------------------------------------------------------------------
# module_cls: which top-level stdlib package a snippet of seq_len tokens comes from.


def module_labels(paths_and_sizes: list[tuple[str, int]]) -> list[str]:
  """The label set: the first NUM_MODULE_LABELS candidates with >= 3 held-out-eligible files here."""
  count = stdlib.held_out_eligible(paths_and_sizes)
  labels = [m for m in stdlib.MODULE_CANDIDATES if count.get(m, 0) >= 3][:stdlib.NUM_MODULE_LABELS]
  if len(labels) < 2:
    raise errors.ConfigError("data.task: 'module_cls' found fewer than 2 stdlib packages with >= 3 files")
  return labels


def module_snippets(doc_starts: np.ndarray, doc_labels: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
  """Non-overlapping seq_len snippets inside each labelled document (EOS excluded): (starts, labels)."""
  lo, hi = doc_starts[:-1], doc_starts[1:] - 1  # Drop the EOS separator.
  per_doc = np.where(doc_labels >= 0, np.maximum(hi - lo, 0) // seq_len, 0)
  doc_of = np.repeat(np.arange(len(lo)), per_doc)
  offset = np.arange(per_doc.sum()) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
  return (lo[doc_of] + offset * seq_len).astype(np.int64), doc_labels[doc_of].astype(np.int32)
