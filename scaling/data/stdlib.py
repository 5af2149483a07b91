"""The default text corpus: the running interpreter's standard-library .py sources.

Real human-written text that exists on every machine without a download (~12 MB for CPython 3.11).
Tests, site-packages and build config are excluded; files are read in sorted path order and split
by file (corpus.split_by_file, stratified by top-level package). The dataset's metadata records the
Python version and a sha256 of the content, so two machines can tell whether they trained on the same
bytes.
"""

import os
import platform
import sysconfig

import tensorflow_datasets as tfds

from scaling.data import corpus

_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__", "lib-dynload"}

# module_cls labels: stdlib packages present in CPython 3.9-3.13, largest first. The label set is the
# first 16 that have >= 3 files of >= 1 KiB here (so each split has one); distros may split out
# tkinter/idlelib, and the chosen names are recorded in dataset_info['label_names'].
MODULE_CANDIDATES = (
    "encodings", "idlelib", "asyncio", "email", "tkinter", "xml", "multiprocessing", "unittest",
    "importlib", "http", "logging", "urllib", "html", "xmlrpc", "concurrent", "ctypes", "wsgiref", "json",
    "turtledemo", "zoneinfo", "curses", "dbm", "sqlite3",
)
NUM_MODULE_LABELS = 16


def stdlib_root() -> str:
  return sysconfig.get_paths()["stdlib"]


def list_files(root: str) -> list[str]:
  """Relative paths of the corpus files in a deterministic (sorted) order."""
  out = []
  for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if x not in _SKIP_DIRS and not x.startswith("config-"))
    rel = os.path.relpath(d, root)
    for f in sorted(files):
      if f.endswith(".py") and not f.startswith("test_"):
        out.append(f if rel == "." else os.path.join(rel, f))
  return sorted(out)


def top_level(path: str) -> str:
  """'email/mime/text.py' -> 'email'; top-level single-file modules share the group '_modules'."""
  return path.split("/", 1)[0] if "/" in path else "_modules"


def read_docs(root: str) -> list[tuple[str, bytes]]:
  docs = []
  for p in list_files(root):
    with open(os.path.join(root, p), "rb") as f:
      data = f.read()
    try:
      data.decode("utf-8")
    except UnicodeDecodeError:
      continue  # A handful of legacy-encoded files would break byte <-> text round trips.
    if data:
      docs.append((p, data))
  return docs


class ScalingStdlib(corpus.CorpusBuilder):
  """Python standard library sources, one example per file."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "Files < 1 KiB always in train."}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="py" + platform.python_version())]

  def _split_generators(self, dl_manager):
    root = stdlib_root()
    docs = read_docs(root)
    split_of = corpus.split_by_file({p: len(d) for p, d in docs}, top_level)
    self.info.metadata.update(
        python_version=platform.python_version(), python_implementation=platform.python_implementation(),
        root=root, num_files=len(docs), num_bytes=sum(len(d) for _, d in docs),
        sha256=corpus.content_hash(docs),
        split_rule="by file: md5(path)-ordered within top-level package, files < 1 KiB in train")
    return {s: self._generate_examples([d for d in docs if split_of[d[0]] == s]) for s in corpus.SPLITS}

  def _generate_examples(self, docs):
    for p, data in docs:
      yield p, {"text": data.decode("utf-8"), "path": p}


def held_out_eligible(paths_and_sizes) -> dict[str, int]:
  """Top-level package -> number of files big enough to be held out (see corpus.split_by_file)."""
  count: dict[str, int] = {}
  for p, n in paths_and_sizes:
    if n >= corpus.MIN_HELDOUT_BYTES:
      count[top_level(p)] = count.get(top_level(p), 0) + 1
  return count


def builder(data_dir: str) -> tfds.core.DatasetBuilder:
  return corpus.prepare(ScalingStdlib(data_dir=data_dir, file_format="array_record"))
