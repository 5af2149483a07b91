"""Shared pieces of the built-in text corpora (TFDS builders writing array_record, no TensorFlow).

A corpus is a list of documents (path, bytes) assigned to train/validation/test by file. Builders
keep the document order they are given (`disable_shuffling`) so two builds hold the same records in the same
order. (Not the same file bytes: protobuf writes an Example's feature map in an order that varies from process
to process, so the content hash in the metadata, not a file checksum, identifies the data.)
"""

import contextlib
import fcntl
import hashlib
import os

import tensorflow_datasets as tfds

SPLITS = ("train", "validation", "test")


class CorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of our builders: text + path per document, order kept, metadata dict."""

  # TFDS derives code_path via `importlib_resources`, a package it only requires on Python < 3.9;
  # our builders have no checksums file, so there is nothing to locate.
  code_path = None

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=features(), disable_shuffling=True,
                                 metadata=tfds.core.MetadataDict())


def features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({"text": tfds.features.Text(), "path": tfds.features.Text()})


def content_hash(docs: list[tuple[str, bytes]]) -> str:
  h = hashlib.sha256()
  for path, data in docs:
    h.update(path.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
  return h.hexdigest()


def file_key(path: str) -> str:
  # The split of a file depends only on its relative path: adding a file moves no other file.
  return hashlib.md5(path.encode()).hexdigest()


MIN_HELDOUT_BYTES = 1024  # Smaller files (mostly package __init__ stubs) always go to train.


def split_by_file(sizes: dict[str, int], group_of=lambda p: "") -> dict[str, str]:
  """path -> split. Within each group, files >= MIN_HELDOUT_BYTES sorted by md5(path) are dealt
  #0,#10,.. to test, #1,#11,.. to validation, the rest to train.

  Groups (e.g. top-level packages) are split separately so every group with >= 3 such files has text
  in all three splits (the module_cls task relies on this); overall ~80/10/10 by file count.
  """
  groups: dict[str, list[str]] = {}
  out = {}
  for p, n in sizes.items():
    if n < MIN_HELDOUT_BYTES:
      out[p] = "train"
    else:
      groups.setdefault(group_of(p), []).append(p)
  for members in groups.values():
    for i, p in enumerate(sorted(members, key=file_key)):
      out[p] = "test" if i % 10 == 0 else "validation" if i % 10 == 1 else "train"
  return out


@contextlib.contextmanager
def build_lock(data_dir: str, name: str):
  """Serializes builds of one dataset across processes (tests under xdist, sweeps of local runs)."""
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, f".{name.replace('/', '_')}.lock"), "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare(builder: tfds.core.DatasetBuilder) -> tfds.core.DatasetBuilder:
  """Builds once (under a lock) and returns the builder; later calls only read the cache."""
  if builder.is_prepared():
    return builder
  with build_lock(str(builder.data_dir_root), builder.info.full_name):
    fresh = type(builder)(data_dir=str(builder.data_dir_root), config=builder.builder_config,
                          file_format="array_record")
    if not fresh.is_prepared():
      tfds.disable_progress_bar()  # Seconds-long builds; the bars only clutter logs.
      cfg = tfds.download.DownloadConfig(try_download_gcs=False)
      fresh.download_and_prepare(download_config=cfg)
    return type(builder)(data_dir=str(builder.data_dir_root), config=builder.builder_config,
                         file_format="array_record")
