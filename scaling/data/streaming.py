"""Streaming LM / span pipeline for corpora too big to tokenize up front (c4, lm1b, ...).

Records are shuffled by index with grain (one permutation per epoch), sharded per process by record,
tokenized on the fly, and packed with grain's ConcatThenSplitIterDataset into windows of seq_len + 1
tokens (inputs / targets shifted by one; the token shared by two consecutive windows is predicted in
neither, a 1/(seq_len+1) loss of targets). State is grain's (parent index + packing remainder), so
resume is exact. Unlike the in-memory path, the global batch depends on the number of processes.
"""

import grain
import numpy as np

from scaling.data import tasks
from scaling.data.sources import Source
from scaling.data.tokenizer import Tokenizer
from scaling.data.tokens import TokenSplit
from scaling import errors

STREAM_BYTES = 1 << 30  # 'auto': stream public splits bigger than this on disk.


def wanted(setting, source: Source, split: str) -> bool:
  """data.streaming: True, False or 'auto' (validated in pipeline.spec_of)."""
  if setting != "auto":
    return bool(setting)
  if source.metadata.get("sha256"):  # Built-in corpora are small.
    return False
  try:
    return source.builder.info.splits[source.split_names[split]].num_bytes > STREAM_BYTES
  except (KeyError, ValueError, AttributeError):
    return False


def _encoder(source: Source, tok: Tokenizer):
  key = source.text_key

  def encode(record) -> dict:
    t = record[key]
    ids = tok.encode_bytes_batch([t if isinstance(t, bytes) else str(t).encode()])[0]
    if source.separator:
      ids = np.append(ids.astype(np.int32), np.int32(tok.eos_id))
    return {"tokens": ids.astype(np.int32)}
  return encode


def _pad_rows(batch: dict, rows: int) -> dict:
  n = len(next(iter(batch.values())))
  if n == rows:
    return batch
  return {k: np.concatenate([v, np.zeros((rows - n, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}


def make_loader(source: Source, tok: Tokenizer, split: str, *, task: str, seq_len: int, rows: int,
                span: tasks.SpanLengths | None, order_seed: int | None, noise_seed: int,
                num_epochs: int | None, process_index: int, process_count: int, read_options) -> grain.IterDataset:
  if source.text_key is None:
    raise errors.ConfigError(f"data.name: {source.name!r} has no text feature; data.task={task!r} needs text")
  ds = grain.MapDataset.source(source.split(split))
  if order_seed is not None:  # None: record order.
    ds = ds.shuffle(seed=order_seed)
  ds = ds.repeat(num_epochs)[process_index::process_count].map(_encoder(source, tok))
  length = {"lm": seq_len + 1, "prefix_lm": seq_len}.get(task) or span.raw
  packed = grain.experimental.ConcatThenSplitIterDataset(ds.to_iter_dataset(read_options),
                                                         length_struct={"tokens": length})
  packed = packed.batch(rows, drop_remainder=False)
  if task == "lm":

    def lm(b):
      b = _pad_rows(b, rows)
      w = b["tokens"]
      keep = (b["tokens_segment_ids"][:, 1:] > 0) & (b["tokens_segment_ids"][:, :-1] > 0)
      return {"inputs": np.where(keep, w[:, :-1], tok.pad_id).astype(np.int32),
              "targets": np.where(keep, w[:, 1:], tok.pad_id).astype(np.int32),
              "weights": keep.astype(np.float32)}
    return packed.map(lm)
  if task == "prefix_lm":

    def prefix_lm(b):
      b = _pad_rows(b, rows)
      return tasks.prefix_lm_batch(b["tokens"].astype(np.int32), b["tokens_segment_ids"] > 0, tok.pad_id)
    return packed.map(prefix_lm)

  def corrupt(index, b):
    b = _pad_rows(b, rows)
    valid = (b["tokens_segment_ids"] > 0).all(axis=1)  # Only the very last window can be short.
    rngs = [np.random.default_rng([noise_seed, process_index, process_count, index, r]) for r in range(rows)]
    out = tasks.span_corrupt(b["tokens"].astype(np.int32), tasks.noise_mask(rngs, span), span, tok)
    for k in ("weights", "input_mask"):
      out[k] = out[k] * valid[:, None]
    return out
  return packed.map_with_index(corrupt)


def _first_docs(source: Source, tok: Tokenizer, split: str, limit: int) -> list[np.ndarray]:
  """Tokenized documents in record order until they hold `limit` tokens (the last one whole)."""
  recs = source.split(split)
  encode = _encoder(source, tok)
  out, n = [], 0
  for lo in range(0, len(recs), 1024):
    for r in recs.__getitems__(list(range(lo, min(len(recs), lo + 1024)))):
      out.append(encode(r)["tokens"])
      n += len(out[-1])
      if n >= limit:
        return out
  return out


def load_tokens(source: Source, tok: Tokenizer, split: str, limit: int) -> np.ndarray:
  """The first `limit` tokens of a split in record order (whole documents, EOS-separated)."""
  docs = _first_docs(source, tok, split, limit)
  return np.concatenate(docs)[:limit] if docs else np.zeros((0,), np.int32)


def first_tokens(source: Source, tok: Tokenizer, split: str, limit: int) -> TokenSplit:
  """At least the first `limit` tokens of a split (fewer if the split is shorter) as an in-memory
  TokenSplit with its document offsets: the same stream `tokens.split_tokens` would start with."""
  docs = _first_docs(source, tok, split, limit)
  lens = np.array([len(d) for d in docs], dtype=np.int64)
  stream = np.concatenate(docs).astype(np.int32) if docs else np.zeros((0,), np.int32)
  return TokenSplit(stream, np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
