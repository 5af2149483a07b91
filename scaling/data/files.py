"""A corpus of parquet / jsonl / jsonl.gz shards (FineWeb, SlimPajama, C4 dumps...), `data.name='files:GLOB'`.

The shards are read once (pyarrow for parquet, the text column `data.text_field`, default 'text'; one
JSON object per line for jsonl) into a TFDS array_record dataset like text_dir's, one example per
document, so grain can index it: the in-memory and streamed pipelines, per-process sharding, packing
and exact resume are the ones every corpus uses (pipeline.py, streaming.py).

Held-out split, `data.holdout`:
  'shard'    whole shards by md5(path), ~80/10/10 (corpus.split_by_file): near-duplicates within a shard
             (crawl dumps have many) never straddle train and eval.
  a float f  validation and test each get a fraction f of the documents, chosen by md5(shard, row).
  'auto'     (default) 'shard' with >= 10 shards (as text_dir does for files), else 0.1: one or a few
             shards still get a held-out sample.
The cache key covers the glob, text_field, holdout and every shard's size and mtime, so edits rebuild.
"""

import dataclasses
import glob
import gzip
import hashlib
import json
import os
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow_datasets as tfds

from scaling.data import corpus, text_dir
from scaling import errors

SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
ALLOWED = "a glob of .parquet, .jsonl or .jsonl.gz shards, e.g. 'files:/data/fineweb/*.parquet'"
DEFAULT_FRACTION = 0.1  # per held-out split when there are too few shards to hold whole ones out


def list_shards(pattern: str) -> list[str]:
  paths = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
  if not paths:
    raise errors.ConfigError(f"data.name: 'files:{pattern}' matches no file; allowed: {ALLOWED}")
  bad = [p for p in paths if not p.endswith(SUFFIXES)]
  if bad:
    raise errors.ConfigError(f"data.name: 'files:{pattern}' matches {bad[0]!r}, not a shard type; allowed: {ALLOWED}")
  return [os.path.abspath(p) for p in paths]


def holdout_of(data_cfg, num_shards: int) -> str | float:
  """'shard' or the fraction of documents in each of validation and test."""
  h = data_cfg.get("holdout", "auto")
  if h == "auto":
    return "shard" if num_shards >= text_dir.MIN_FILES_FOR_FILE_SPLIT else DEFAULT_FRACTION
  if h == "shard":
    if num_shards < 3:
      raise errors.ConfigError(f"data.holdout: 'shard' needs >= 3 shards, the glob has {num_shards}; "
                       "allowed: 'shard', 'auto' or a fraction in (0, 0.5)")
    return "shard"
  try:  # The config field is a string ('auto'), so a CLI override arrives as '0.05'.
    f = float(h) if not isinstance(h, bool) else -1.0
  except (TypeError, ValueError):
    f = -1.0
  if not 0 < f < 0.5:
    raise errors.ConfigError(f"data.holdout: {h!r}; allowed: 'auto', 'shard' or a fraction in (0, 0.5)")
  return f


def _unreadable(path: str, e: Exception) -> ValueError:
  msg = str(e).splitlines()[0][:200] if str(e) else ""
  return ValueError(f"data.name: shard {path!r} is unreadable ({type(e).__name__}: {msg}); allowed: "
                    "parquet files or UTF-8 jsonl(.gz) with one JSON object per line")


def _missing(path: str, field: str, have) -> ValueError:
  return ValueError(f"data.text_field: {field!r} is not a column of shard {path!r}; allowed: {sorted(have)}")


def _parquet_texts(path: str, field: str) -> Iterator[str]:
  f = pq.ParquetFile(path)
  names = f.schema_arrow.names
  if field not in names:
    raise _missing(path, field, names)
  kind = f.schema_arrow.field(field).type
  if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
    raise errors.ConfigError(f"data.text_field: column {field!r} of shard {path!r} holds {kind}; allowed: a string "
                     f"column of {sorted(names)}")
  for batch in f.iter_batches(batch_size=1024, columns=[field]):
    yield from batch.column(0).to_pylist()


def _jsonl_texts(path: str, field: str) -> Iterator[str]:
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rt", encoding="utf-8") as f:
    for i, line in enumerate(f):
      if not line.strip():
        continue
      row = json.loads(line)
      if not isinstance(row, dict) or field not in row:
        raise _missing(f"{path}:{i + 1}", field, row if isinstance(row, dict) else [])
      yield row[field]


def texts(path: str, field: str) -> Iterator[str | None]:
  """Every document's text in shard order (None / non-strings as stored); one-line ValueErrors."""
  read = _parquet_texts if path.endswith(".parquet") else _jsonl_texts
  try:
    yield from read(path, field)
  except ValueError as e:
    if str(e).startswith(("data.text_field:", "data.name:")):
      raise
    raise _unreadable(path, e) from None  # json.JSONDecodeError, UnicodeDecodeError, pa.ArrowInvalid
  except (OSError, EOFError, pa.ArrowException) as e:  # gzip.BadGzipFile is an OSError
    raise _unreadable(path, e) from None


def check(paths: list[str], field: str) -> None:
  """Cheap validation before TFDS writes anything: every shard opens and has the column."""
  for p in paths:
    next(iter(texts(p, field)), None)


def _doc_split(key: str, f: float) -> str:
  u = int(hashlib.md5(key.encode()).hexdigest()[:8], 16) / 2**32
  return "test" if u < f else "validation" if u < 2 * f else "train"


def _root(paths: list[str]) -> str:
  return os.path.commonpath([os.path.dirname(p) for p in paths])


@dataclasses.dataclass(eq=False)
class FilesConfig(tfds.core.BuilderConfig):
  pattern: str = ""
  text_field: str = "text"
  holdout: str = "auto"  # 'shard' or repr(fraction), resolved by holdout_of


def config_for(data_cfg, pattern: str) -> FilesConfig:
  paths = list_shards(pattern)
  field = str(data_cfg.get("text_field", "text"))
  holdout = holdout_of(data_cfg, len(paths))
  h = hashlib.sha256(f"{pattern}\0{field}\0{holdout}".encode())
  for p in paths:
    st = os.stat(p)
    h.update(f"\0{p}\0{st.st_size}\0{st.st_mtime_ns}".encode())
  base = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(_root(paths)))[:40] or "root"
  return FilesConfig(name=f"{base}-{h.hexdigest()[:12]}", pattern=pattern, text_field=field, holdout=str(holdout))


class ScalingFiles(corpus.CorpusBuilder):
  """parquet / jsonl / jsonl.gz shards, one example per document (empty documents dropped)."""

  VERSION = tfds.core.Version("1.0.0")

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    paths = list_shards(cfg.pattern)
    root = _root(paths)
    rel = {p: os.path.relpath(p, root) for p in paths}
    if cfg.holdout == "shard":
      split_of = corpus.split_by_file({rel[p]: os.path.getsize(p) for p in paths})
      parts = {s: [p for p in paths if split_of[rel[p]] == s] for s in corpus.SPLITS}
      keep = lambda s, key: True
    else:
      parts = {s: paths for s in corpus.SPLITS}
      keep = lambda s, key: _doc_split(key, float(cfg.holdout)) == s
    self.info.metadata.update(root=root, num_shards=len(paths), text_field=cfg.text_field,
                              shard_bytes=sum(os.path.getsize(p) for p in paths),
                              split_rule="by shard" if cfg.holdout == "shard" else
                              f"{cfg.holdout} of the documents each to validation and test, by md5(shard#row)")
    return {s: self._generate_examples(s, parts[s], rel, keep) for s in corpus.SPLITS}

  def _generate_examples(self, split, paths, rel, keep):
    for p in paths:
      for row, t in enumerate(texts(p, self.builder_config.text_field)):
        key = f"{rel[p]}#{row}"
        if t is None or not keep(split, key):
          continue
        if not isinstance(t, str):
          raise errors.ConfigError(f"data.text_field: row {row} of shard {p!r} holds {type(t).__name__}; allowed: strings")
        if t.strip():
          yield key, {"text": t, "path": key}


def builder(data_dir: str, data_cfg, pattern: str) -> tfds.core.DatasetBuilder:
  cfg = config_for(data_cfg, pattern)
  b = ScalingFiles(data_dir=data_dir, config=cfg, file_format="array_record")
  if not b.is_prepared():
    check(list_shards(pattern), cfg.text_field)  # One-line errors before TFDS starts writing.
  return corpus.prepare(b)
