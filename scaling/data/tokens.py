"""A split as one flat token stream on disk (nanoGPT-style .bin), tokenized once and memory-mapped.

Documents are joined with EOS (none for the Markov chain, whose stream is the chain itself). The
cache lives next to the TFDS data: <data_dir>/_tokens/<dataset>-<content hash>-<split>-<tokenizer>.
Files are written to a temp name and renamed, and the .json index is written last, so a killed build
never leaves a cache that looks complete.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from scaling import io
from scaling.data import corpus
from scaling.data.sources import Source
from scaling.data.tokenizer import Tokenizer
from scaling import errors

_READ_CHUNK = 1024  # Records per read/encode call.


@dataclasses.dataclass
class TokenSplit:
  tokens: np.ndarray  # [T] uint16 or int32 (memory-mapped).
  doc_starts: np.ndarray  # [num_docs + 1] int64 offsets into `tokens`; the last is T.

  def __len__(self) -> int:
    return len(self.tokens)


def _key(source: Source, tok: Tokenizer, split: str) -> str:
  info = source.builder.info  # full_name carries the builder version (which changes with split rules).
  ident = (f"{source.name}|{source.hash}|{info.full_name}|{source.split_names[split]}|"
           f"{info.splits[source.split_names[split]].num_examples}|{source.separator}|{tok.fingerprint}")
  safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source.name)[:40]
  return f"{safe}-{split}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def _build(source: Source, tok: Tokenizer, split: str, path: str, dtype) -> None:
  records = source.split(split)
  if source.text_key is None:
    raise errors.ConfigError(f"data.name: {source.name!r} has no text feature; use data.task='classify' for it")
  n = len(records)
  tmp_bin, tmp_docs = path + ".bin.tmp", path + ".docs.tmp"
  starts = [0]
  with open(tmp_bin, "wb") as f:
    for lo in range(0, n, _READ_CHUNK):
      batch = records.__getitems__(list(range(lo, min(n, lo + _READ_CHUNK))))
      texts = [r[source.text_key] for r in batch]
      texts = [t if isinstance(t, bytes) else str(t).encode() for t in texts]
      for ids in tok.encode_bytes_batch(texts):
        if source.separator:
          ids = np.concatenate([ids.astype(dtype), np.array([tok.eos_id], dtype=dtype)])
        f.write(np.ascontiguousarray(ids, dtype=dtype).tobytes())
        starts.append(starts[-1] + len(ids))
  np.asarray(starts, dtype=np.int64).tofile(tmp_docs)
  os.replace(tmp_bin, path + ".bin")
  os.replace(tmp_docs, path + ".docs")
  io.atomic_write_json(path + ".json", dict(dtype=np.dtype(dtype).name, num_tokens=starts[-1],
                                            num_docs=len(starts) - 1, dataset=source.name,
                                            hash=source.hash, tokenizer=tok.fingerprint, split=split))


def split_tokens(source: Source, tok: Tokenizer, split: str, data_dir: str) -> TokenSplit:
  cache = os.path.join(data_dir, "_tokens")
  path = os.path.join(cache, _key(source, tok, split))
  if not os.path.exists(path + ".json"):
    with corpus.build_lock(cache, os.path.basename(path)):
      if not os.path.exists(path + ".json"):
        _build(source, tok, split, path, np.uint16 if tok.vocab_size <= 1 << 16 else np.int32)
  with open(path + ".json") as f:
    meta = json.load(f)
  if meta["num_tokens"] == 0:
    raise errors.ConfigError(f"data.name: split {split!r} of {source.name!r} is empty (no tokens)")
  tokens = np.memmap(path + ".bin", dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))
  return TokenSplit(tokens, np.fromfile(path + ".docs", dtype=np.int64))


def head(ts: TokenSplit, n: int, name: str) -> TokenSplit:
  """The first n tokens of a split (data.unique_tokens); the document cut at n ends there."""
  if n > len(ts):
    raise errors.ConfigError(f"data.unique_tokens: {n} is more than the {len(ts)} tokens of the training split of "
                     f"{name!r}; allowed: 0 (all) or 1 .. {len(ts)}")
  docs = ts.doc_starts[ts.doc_starts < n]
  return TokenSplit(ts.tokens[:n], np.append(docs, np.int64(n)))
