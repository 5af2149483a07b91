"""Built-in corpora: stdlib (deterministic, hashed), markov (exact entropy), text_dir, error messages."""

import os
import platform

import numpy as np
import pytest
from ml_collections import ConfigDict

from scaling.data import corpus, markov, pipeline, stdlib, tasks, tokenizer


def _records(builder) -> dict[str, list[tuple[bytes, bytes]]]:
  return {s: [(r["path"], r["text"]) for r in builder.as_data_source(s)] for s in ("train", "validation", "test")}


def test_stdlib_rebuild_has_the_same_records_and_hash(data_dir, tmp_path):
  # Records, not file bytes: protobuf serializes an Example's feature map in a per-process order, so two
  # builds in two processes (the shared cache was built by another xdist worker) differ in bytes only.
  a = stdlib.builder(data_dir)
  b = stdlib.builder(str(tmp_path))
  assert a.data_dir != b.data_dir
  ra, rb = _records(a), _records(b)
  assert all(len(v) > 50 for v in ra.values()) and ra == rb
  meta = dict(a.info.metadata)
  assert meta == dict(b.info.metadata)
  assert meta["python_version"] == platform.python_version()
  assert len(meta["sha256"]) == 64 and meta["num_bytes"] > 1_000_000
  docs = sorted((p.decode(), t) for v in ra.values() for p, t in v)
  assert meta["sha256"] == corpus.content_hash(docs)  # The hash is of the records, in path order.
  assert pipeline.dataset_info(ConfigDict({"name": "stdlib"}))["hash"] == meta["sha256"]


def test_stdlib_excludes_tests_and_splits_by_file(data_dir):
  b = stdlib.builder(data_dir)
  paths = {s: [r["path"].decode() for r in b.as_data_source(s)] for s in ("train", "validation", "test")}
  everything = sum(paths.values(), [])
  assert len(everything) == len(set(everything))  # Each file is in exactly one split.
  assert not any(p.startswith(("test/", "site-packages/")) or "/test/" in p or "/tests/" in p for p in everything)
  assert "os.py" in everything and "json/decoder.py" in everything
  assert paths["train"] == sorted(paths["train"])  # Deterministic order, as listed.
  assert min(len(v) for v in paths.values()) > 50


def test_load_tokens_is_the_files_joined_by_eos(data_dir):
  cfg = ConfigDict({"name": "stdlib"})
  toks = pipeline.load_tokens(cfg, "validation")
  recs = stdlib.builder(data_dir).as_data_source("validation")
  want = b"".join(r["text"] + b"\x00" for r in recs)  # \0 stands in for EOS below.
  assert toks.dtype == np.int32 and len(toks) == len(want)
  eos = toks == tokenizer.BYTE_EOS
  assert eos.sum() == len(recs) and toks[-1] == tokenizer.BYTE_EOS
  assert bytes(np.where(eos, 0, toks).astype(np.uint8)) == want


def test_markov_entropy_matches_monte_carlo(data_dir):
  cfg = ConfigDict({"name": "markov", "seq_len": 64})
  info = pipeline.dataset_info(cfg)
  chain = markov.make_chain(markov.params_from(cfg))
  # Monte-Carlo: -log P(x_t | context) of the stored validation text under the true chain.
  b = markov.builder(data_dir, markov.params_from(cfg))
  docs = [markov.decode_text(r["text"], 64)[None] for r in b.as_data_source("validation")]
  mc = -np.mean(np.concatenate([chain.log_probs(d).ravel() for d in docs]))
  assert abs(mc - info["entropy_rate"]) / info["entropy_rate"] < 0.01
  # Learnable but not trivial: far below a unigram model, well above zero.
  h = info["conditional_entropies"]
  assert 0.5 < info["entropy_rate"] < h[1] - 1.0 < h[0] <= np.log(64) + 1e-9
  # The Bayes loss of an LM window averages the start-of-window entropies in.
  assert info["entropy_rate"] < info["optimal_loss"] == pytest.approx(
      (h[1] + 63 * info["entropy_rate"]) / 64)
  # The token stream is the chain: byte tokens of the 64-symbol alphabet, no separators.
  toks = pipeline.load_tokens(cfg, "validation")
  assert len(toks) == info["num_tokens"]["validation"]
  assert set(np.unique(toks).tolist()) <= set(markov.ALPHABET.encode())


def test_markov_same_seed_same_language_other_seed_differs():
  p = markov.Params(seed=1)
  a, b, c = markov.make_chain(p), markov.make_chain(p), markov.make_chain(markov.Params(seed=2))
  np.testing.assert_array_equal(a.P_CxS, b.P_CxS)
  assert not np.allclose(a.P_CxS, c.P_CxS)
  np.testing.assert_allclose(a.P_CxS.sum(1), 1.0)
  pi = a.pi_C  # Stationary: one more step leaves it unchanged.
  s = p.num_symbols
  step = np.einsum("ar,arx->rx", pi.reshape(s, -1), a.P_CxS.reshape(s, -1, s)).ravel()
  np.testing.assert_allclose(step, pi, atol=1e-13)


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
  d = tmp_path_factory.mktemp("txt")
  rng = np.random.default_rng(0)
  words = ["alpha", "beta", "gamma", "δέλτα", "epsilon"]
  for i in range(3):
    lines = [" ".join(rng.choice(words, 10)) for _ in range(120)]
    (d / f"doc{i}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  (d / "notes.md").write_text("not a .txt file")
  return str(d)


def test_text_dir_is_a_corpus(data_dir, text_corpus):
  cfg = ConfigDict({"name": f"text_dir:{text_corpus}", "seq_len": 32, "batch_size": 4})
  info = pipeline.dataset_info(cfg)
  assert info["metadata"]["num_files"] == 3 and info["vocab_size"] == 259
  text = "".join(open(os.path.join(text_corpus, f"doc{i}.txt"), encoding="utf-8").read() for i in range(3))
  total = sum(info["num_tokens"].values())
  assert total == len(text.encode()) + sum(  # One EOS per document part.
      len(pipeline._source(pipeline.spec_of(cfg)).split(s)) for s in ("train", "validation", "test"))
  batch = next(iter(pipeline.make_loader(ConfigDict({**cfg.to_dict(), "order": "stream"}), split="train",
                                         seed=0, shuffle=False, num_epochs=1,
                                         process_index=0, process_count=1)))
  assert tokenizer.get_tokenizer().decode(batch["inputs"][0]) in text


def _err(cfg: dict) -> str:
  with pytest.raises(ValueError) as e:
    pipeline.dataset_info(ConfigDict(cfg))
  msg = str(e.value)
  assert "\n" not in msg
  return msg


def test_bad_inputs_give_one_line_errors(data_dir, tmp_path, text_corpus):
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "blank.txt").write_text("  \n")
  assert "no non-empty .txt files" in _err({"name": f"text_dir:{empty}"})
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "good.txt").write_text("hello\n")
  (bad / "broken.txt").write_bytes(b"ok \xff\xfe\x00 not utf-8")
  msg = _err({"name": f"text_dir:{bad}"})
  assert "broken.txt" in msg and "UTF-8" in msg
  assert "not a directory" in _err({"name": f"text_dir:{tmp_path / 'missing'}"})
  msg = _err({"name": "no_such_dataset_xyz"})
  assert msg.startswith("data.name:") and "unknown dataset" in msg and "stdlib" in msg
  msg = _err({"name": "tiny_shakespeare", "data_dir": str(tmp_path / "tfds")})
  assert "not prepared" in msg and "tfds build tiny_shakespeare --file_format=array_record" in msg
  assert "data.task" in _err({"task": "translate"})
  assert "data.name" in _err({"task": "classify", "name": "stdlib"})
  assert "data.order" in _err({"order": "sorted"})
  assert "data.seq_len" in _err({"seq_len": 0})
  assert "data.tokenizer" in _err({"tokenizer": str(tmp_path / "nope.model")})
  assert "data.tokenizer" in _err({"name": "markov", "tokenizer": str(tmp_path / "x.model")})
  assert "data.markov_order" in _err({"name": "markov", "markov_order": 9})
  assert "data.seq_len" in _err({"name": f"text_dir:{text_corpus}", "seq_len": 10_000})


class ScalingFakePublic(__import__("tensorflow_datasets").core.GeneratorBasedBuilder):
  """Stands in for a prepared public dataset (e.g. lm1b / mnist): train + test only, text and image."""
  import tensorflow_datasets as _tfds
  VERSION = _tfds.core.Version("1.0.0")
  code_path = None  # See scaling/data/corpus.py.

  def _info(self):
    f = self._tfds.features
    return self._tfds.core.DatasetInfo(builder=self, features=f.FeaturesDict({
        "text": f.Text(), "image": f.Tensor(shape=(4, 4), dtype=np.uint8), "label": f.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(0, 200), "test": self._generate_examples(1, 40)}

  def _generate_examples(self, seed, n):
    rng = np.random.default_rng(seed)
    for i in range(n):
      y = int(rng.integers(3))
      yield i, {"text": f"example {i} of class {y}. " * 3, "label": y,
                "image": (rng.integers(0, 50, (4, 4)) + 60 * y).astype(np.uint8)}


def test_prepared_public_tfds_dataset_by_name(tmp_path):
  d = str(tmp_path)
  ScalingFakePublic(data_dir=d, file_format="array_record").download_and_prepare(
      download_config=__import__("tensorflow_datasets").download.DownloadConfig(try_download_gcs=False))
  cfg = ConfigDict({"name": "scaling_fake_public", "data_dir": d, "seq_len": 16, "batch_size": 4})
  info = pipeline.dataset_info(cfg)
  # No validation split: carved from the end of train (fixed); test stays test.
  def ids(split):
    docs = (pipeline.load_tokens(cfg, split) % 256).astype(np.uint8).tobytes().split(bytes([tokenizer.BYTE_EOS % 256]))[:-1]
    return {int(d.split()[1]) for d in docs}
  assert len(ids("validation")) == 10 and len(ids("train")) == 190 and len(ids("test")) == 40
  assert ids("validation") | ids("train") == set(range(200))
  assert info["num_tokens"]["validation"] > 0 and info["hash"] == "scaling_fake_public/1.0.0"
  b = next(iter(pipeline.make_loader(cfg, split="train", seed=0, shuffle=True, num_epochs=None,
                                     process_index=0, process_count=1)))
  assert b["inputs"].shape == (4, 16)
  arrays = tasks.classification_arrays(ConfigDict({"name": "scaling_fake_public", "data_dir": d, "task": "classify"}))
  assert [len(arrays[s][1]) for s in ("train", "validation", "test")] == [190, 10, 40]
  x, y = arrays["test"]
  assert x.shape == (40, 16) and x.dtype == np.float32 and x.max() <= 1.0
  assert (np.abs(x.mean(1) * 255 / 60 - 0.4 - y) < 0.6).all()  # Images carry their labels.
  info = pipeline.dataset_info(ConfigDict({"name": "scaling_fake_public", "data_dir": d, "task": "classify"}))
  assert (info["num_classes"], info["num_features"]) == (3, 16)
