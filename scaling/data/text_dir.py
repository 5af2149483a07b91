"""A user corpus: every non-empty .txt file under a directory (recursive), `data.name='text_dir:PATH'`.

Split by file (md5(path) order, ~80/10/10) when there are >= 10 files; with fewer files (a few books)
each file is cut at line boundaries into its first 80 % (train), next 10 % (validation), last 10 %
(test). The cache key covers the absolute path and every file's size and mtime, so edits rebuild.
"""

import dataclasses
import hashlib
import os

import tensorflow_datasets as tfds

from scaling.data import corpus
from scaling import errors

MIN_FILES_FOR_FILE_SPLIT = 10
FRACTIONS = (0.8, 0.1, 0.1)


def list_files(root: str) -> list[str]:
  out = []
  for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if not x.startswith("."))
    for f in sorted(files):
      if f.endswith(".txt") and not f.startswith("."):
        out.append(os.path.relpath(os.path.join(d, f), root))
  return sorted(out)


def read_docs(root: str, field: str = "data.name") -> list[tuple[str, str]]:
  """(relpath, text) of every non-empty file; one-line ValueError for a missing/empty dir or bad file."""
  if not os.path.isdir(root):
    raise errors.ConfigError(f"{field}: text_dir {root!r} is not a directory")
  docs = []
  for p in list_files(root):
    with open(os.path.join(root, p), "rb") as f:
      data = f.read()
    try:
      text = data.decode("utf-8")
    except UnicodeDecodeError as e:
      raise errors.ConfigError(f"{field}: text_dir file {os.path.join(root, p)!r} is not valid UTF-8 "
                       f"(byte {e.start}); fix or remove it") from None
    if "\0" in text:
      raise errors.ConfigError(f"{field}: text_dir file {os.path.join(root, p)!r} contains NUL bytes (binary?); "
                       "fix or remove it")
    if text.strip():
      docs.append((p, text))
  if not docs:
    raise errors.ConfigError(f"{field}: text_dir {root!r} has no non-empty .txt files")
  return docs


def _cut(text: str, frac: float) -> int:
  """Index of the first line start at or after `frac` of the text (or its end)."""
  i = text.find("\n", int(len(text) * frac))
  return len(text) if i < 0 else i + 1


def split_docs(docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
  out = {s: [] for s in corpus.SPLITS}
  if len(docs) >= MIN_FILES_FOR_FILE_SPLIT:
    split_of = corpus.split_by_file({p: len(t.encode()) for p, t in docs})
    for p, t in docs:
      out[split_of[p]].append((p, t))
    return out
  a, b = FRACTIONS[0], FRACTIONS[0] + FRACTIONS[1]
  for p, t in docs:
    i, j = _cut(t, a), _cut(t, b)
    for s, (lo, hi) in zip(corpus.SPLITS, ((0, i), (i, j), (j, len(t)))):
      if t[lo:hi].strip():
        out[s].append((f"{p}[{lo}:{hi}]", t[lo:hi]))
  return out


@dataclasses.dataclass(eq=False)
class TextDirConfig(tfds.core.BuilderConfig):
  path: str = ""


def config_for(root: str) -> TextDirConfig:
  root = os.path.abspath(os.path.expanduser(root))
  h = hashlib.sha256(root.encode())
  for p in list_files(root) if os.path.isdir(root) else []:
    st = os.stat(os.path.join(root, p))
    h.update(f"\0{p}\0{st.st_size}\0{st.st_mtime_ns}".encode())
  base = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(root))[:40] or "root"
  return TextDirConfig(name=f"{base}-{h.hexdigest()[:12]}", path=root)


class ScalingTextDir(corpus.CorpusBuilder):
  """A directory of UTF-8 .txt files, one example per file (or per file part)."""

  VERSION = tfds.core.Version("1.0.0")

  def _split_generators(self, dl_manager):
    root = self.builder_config.path
    docs = read_docs(root)
    raw = [(p, t.encode("utf-8")) for p, t in docs]
    self.info.metadata.update(
        root=root, num_files=len(docs), num_bytes=sum(len(d) for _, d in raw), sha256=corpus.content_hash(raw),
        split_rule="by file" if len(docs) >= MIN_FILES_FOR_FILE_SPLIT else "by position within each file")
    parts = split_docs(docs)
    return {s: self._generate_examples(parts[s]) for s in corpus.SPLITS}

  def _generate_examples(self, docs):
    for p, t in docs:
      yield p, {"text": t, "path": p}


def builder(data_dir: str, root: str) -> tfds.core.DatasetBuilder:
  cfg = config_for(root)
  b = ScalingTextDir(data_dir=data_dir, config=cfg, file_format="array_record")
  if not b.is_prepared():
    read_docs(cfg.path)  # Validate (one-line errors) before TFDS starts writing anything.
  return corpus.prepare(b)
