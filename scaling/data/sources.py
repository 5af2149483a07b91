"""`data.name` -> a prepared TFDS dataset (array_record) and how to read it.

Built-in: 'stdlib' (default), 'markov', 'text_dir:PATH', 'files:GLOB' (parquet / jsonl shards) are built on
first use into data_dir;
'digits' (sklearn) is handled by tasks.py. Any other name is a public TFDS dataset that someone has
prepared in data_dir with `tfds build NAME --file_format=array_record`; we only read it.
"""

import dataclasses
import os
from typing import Any, Sequence

import tensorflow_datasets as tfds

from scaling.data import corpus, files, markov, stdlib, text_dir
from scaling import errors

BUILTIN = ("stdlib", "markov", "text_dir:PATH", "files:GLOB", "digits")


def default_data_dir() -> str:
  return os.environ.get("SCALING_DATA_DIR") or os.path.expanduser("~/.cache/scaling/datasets")


def data_dir_of(data_cfg) -> str:
  return os.path.expanduser(data_cfg.get("data_dir", None) or default_data_dir())


@dataclasses.dataclass
class Source:
  name: str
  builder: tfds.core.DatasetBuilder
  split_names: dict[str, str]  # Our split -> TFDS split spec, e.g. 'validation' -> 'train[95%:]'.
  text_key: str | None
  separator: bool  # Whether documents are joined with EOS (False for the Markov chain).
  windows_within_docs: bool
  metadata: dict[str, Any]

  def split(self, split: str) -> Sequence[dict]:
    if split not in self.split_names:
      raise errors.ConfigError(f"split: {split!r} not in {list(corpus.SPLITS)}")
    return self.builder.as_data_source(split=self.split_names[split])

  @property
  def hash(self) -> str:
    # Built-in corpora hash their content; public datasets are identified by name/config/version.
    return self.metadata.get("sha256") or f"{self.builder.info.full_name}"


def _tfds_split_names(builder: tfds.core.DatasetBuilder) -> dict[str, str]:
  have = set(builder.info.splits.keys())
  if {"train", "validation", "test"} <= have:
    return {s: s for s in corpus.SPLITS}
  if "train" not in have:
    raise errors.ConfigError(f"data.name: TFDS dataset {builder.info.full_name!r} has no 'train' split "
                     f"(has {sorted(have)})")
  # Carve missing held-out splits from the end of train: fixed slices, the same for every run.
  if "validation" in have:
    return {"train": "train[:95%]", "validation": "validation", "test": "train[95%:]"}
  if "test" in have:
    return {"train": "train[:95%]", "validation": "train[95%:]", "test": "test"}
  return {"train": "train[:90%]", "validation": "train[90%:95%]", "test": "train[95%:]"}


def _public(name: str, data_dir: str) -> Source:
  cmd = f"tfds build {name} --file_format=array_record --data_dir={data_dir}"  # name may be 'c4/en'.
  known = f"built-in datasets are {', '.join(BUILTIN)}"
  try:
    b = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    if os.path.isdir(os.path.join(data_dir, name.split("/")[0])):
      raise errors.ConfigError(f"data.name: TFDS dataset {name!r} in {data_dir} could not be loaded; rebuild it "
                       f"with: {cmd}") from None
    raise errors.ConfigError(f"data.name: unknown dataset {name!r}: not a TFDS dataset name prepared in {data_dir} "
                     f"({known}); to prepare a public one run: {cmd}") from None
  except Exception as e:  # Builder code needing missing deps (e.g. TensorFlow), bad config names, ...
    raise errors.ConfigError(f"data.name: cannot load TFDS dataset {name!r} ({type(e).__name__}: "
                     f"{str(e).splitlines()[0][:200]}); prepare it with: {cmd}") from None
  if not b.is_prepared():
    raise errors.ConfigError(f"data.name: TFDS dataset {name!r} is not prepared in {data_dir}; run: {cmd}")
  if b.info.file_format is not None and b.info.file_format.value != "array_record":
    raise errors.ConfigError(f"data.name: TFDS dataset {name!r} in {data_dir} is stored as "
                     f"{b.info.file_format.value}, random access needs array_record; run: {cmd}")
  feats = b.info.features
  text_keys = [k for k, f in feats.items() if isinstance(f, tfds.features.Text)] if hasattr(feats, "items") else []
  text_key = "text" if "text" in text_keys else (text_keys[0] if text_keys else None)
  return Source(name, b, _tfds_split_names(b), text_key, True, False, {})


def open_source(data_cfg) -> Source:
  """Builds the built-in corpora if needed (cached), or opens a prepared public TFDS dataset."""
  name = str(data_cfg.get("name", "stdlib"))
  data_dir = data_dir_of(data_cfg)
  same = {s: s for s in corpus.SPLITS}
  if name == "stdlib":
    b = stdlib.builder(data_dir)
    return Source(name, b, same, "text", True, False, dict(b.info.metadata))
  if name == "markov":
    b = markov.builder(data_dir, markov.params_from(data_cfg))
    return Source(name, b, same, "text", False, True, dict(b.info.metadata))
  if name.startswith("text_dir:"):
    root = name.split(":", 1)[1]
    if not root:
      raise errors.ConfigError("data.name: 'text_dir:' needs a directory, e.g. 'text_dir:/path/to/txts'")
    b = text_dir.builder(data_dir, root)
    return Source(name, b, same, "text", True, False, dict(b.info.metadata))
  if name.startswith("files:"):
    pattern = name.split(":", 1)[1]
    if not pattern:
      raise errors.ConfigError(f"data.name: 'files:' needs a glob; allowed: {files.ALLOWED}")
    b = files.builder(data_dir, data_cfg, pattern)
    return Source(name, b, same, "text", True, False, dict(b.info.metadata))
  if name == "digits":
    raise errors.ConfigError("data.name: 'digits' is a classification dataset; use data.task='classify'")
  if not name or any(c.isspace() for c in name):
    raise errors.ConfigError(f"data.name: {name!r} is not a dataset name ({', '.join(BUILTIN)} or a TFDS name)")
  return _public(name, data_dir)
