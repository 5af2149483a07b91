"""Tokenizers: byte-level (default) or a SentencePiece model file.

Byte ids: 0..255 are the raw UTF-8 bytes themselves (so a token stream is readable with
`bytes(ids)`), PAD=256, BOS=257, EOS=258; vocab_size=259. Span-corruption sentinels are
appended after the tokenizer's vocabulary (see tasks.py), never inside it.
"""

import functools
import hashlib
import os

import numpy as np

from scaling import errors

BYTE_PAD, BYTE_BOS, BYTE_EOS = 256, 257, 258


class ByteTokenizer:
  name = "byte"
  pad_id, bos_id, eos_id = BYTE_PAD, BYTE_BOS, BYTE_EOS
  vocab_size = 259
  # Identifies the id mapping in cache keys; bump if the mapping ever changes.
  fingerprint = "byte-v1"

  def encode(self, text: str | bytes) -> np.ndarray:
    if isinstance(text, str):
      text = text.encode("utf-8")
    return np.frombuffer(text, dtype=np.uint8).astype(np.int32)

  def encode_bytes_batch(self, docs: list[bytes]) -> list[np.ndarray]:
    return [np.frombuffer(d, dtype=np.uint8) for d in docs]

  def decode(self, ids) -> str:
    ids = np.asarray(ids).reshape(-1)
    return bytes(ids[ids < 256].astype(np.uint8)).decode("utf-8", errors="replace")


class SentencePieceTokenizer:
  """A trained SentencePiece .model; PAD/BOS/EOS the model lacks get fresh ids after its vocab."""

  def __init__(self, path: str):
    import sentencepiece as spm  # Imported lazily: only needed for this option.
    with open(path, "rb") as f:
      proto = f.read()
    self.path = path
    self.sp = spm.SentencePieceProcessor(model_proto=proto)
    self.fingerprint = "spm-" + hashlib.sha256(proto).hexdigest()[:16]
    n = self.sp.get_piece_size()
    ids = {}
    for kind, got in (("pad", self.sp.pad_id()), ("bos", self.sp.bos_id()), ("eos", self.sp.eos_id())):
      if got < 0:  # SentencePiece disables PAD (and sometimes BOS/EOS) by default.
        got, n = n, n + 1
      ids[kind] = got
    self.pad_id, self.bos_id, self.eos_id = ids["pad"], ids["bos"], ids["eos"]
    self.vocab_size = n
    self.name = path

  def encode(self, text: str | bytes) -> np.ndarray:
    if isinstance(text, bytes):
      text = text.decode("utf-8")
    return np.asarray(self.sp.encode(text), dtype=np.int32)

  def encode_bytes_batch(self, docs: list[bytes]) -> list[np.ndarray]:
    # SentencePiece batches in C++ (and releases the GIL) when given a list.
    ids = self.sp.encode([d.decode("utf-8") for d in docs])
    return [np.asarray(x, dtype=np.int32) for x in ids]

  def decode(self, ids) -> str:
    n = self.sp.get_piece_size()
    ids = [int(i) for i in np.asarray(ids).reshape(-1) if 0 <= i < n and i != self.pad_id]
    return self.sp.decode(ids)


Tokenizer = ByteTokenizer | SentencePieceTokenizer


@functools.lru_cache(maxsize=8)
def _spm(path: str, mtime_ns: int) -> SentencePieceTokenizer:
  return SentencePieceTokenizer(path)


def get_tokenizer(spec: str = "byte") -> Tokenizer:
  """'byte', or a path to a SentencePiece .model file."""
  if spec in (None, "", "byte", "bytes"):
    return ByteTokenizer()
  path = os.path.expanduser(str(spec))
  if not os.path.isfile(path):
    raise errors.ConfigError(f"data.tokenizer: {spec!r} is neither 'byte' nor an existing SentencePiece .model file")
  try:
    return _spm(os.path.abspath(path), os.stat(path).st_mtime_ns)
  except (RuntimeError, OSError) as e:
    raise errors.ConfigError(f"data.tokenizer: {spec!r} is not a loadable SentencePiece model ({e})") from None
