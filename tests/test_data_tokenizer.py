"""Byte tokenizer ids and round trips; a SentencePiece model as an option, through the LM pipeline."""

import numpy as np
import pytest
from ml_collections import ConfigDict

from scaling.data import pipeline, tokenizer


def test_byte_tokenizer_ids_and_round_trip():
  tok = tokenizer.get_tokenizer("byte")
  assert (tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id) == (259, 256, 257, 258)
  text = "def f(x):\n  return 'héllo ✓'\n"
  ids = tok.encode(text)
  assert ids.dtype == np.int32 and list(ids) == list(text.encode("utf-8"))
  assert tok.encode(text.encode()).tolist() == ids.tolist()
  assert tok.decode(np.concatenate([ids, [tok.eos_id, tok.pad_id]])) == text  # Specials are dropped.
  assert tok.encode("").shape == (0,)


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
  spm = pytest.importorskip("sentencepiece")
  d = tmp_path_factory.mktemp("spm")
  rng = np.random.default_rng(0)
  words = ["scaling", "laws", "tokens", "model", "data", "loss", "compute", "the", "of", "and"]
  (d / "corpus.txt").write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(400)) + "\n")
  spm.SentencePieceTrainer.train(input=str(d / "corpus.txt"), model_prefix=str(d / "m"), vocab_size=64,
                                 model_type="bpe", minloglevel=2)
  return d


def test_sentencepiece_tokenizer(spm_model):
  tok = tokenizer.get_tokenizer(str(spm_model / "m.model"))
  # SentencePiece has unk=0, bos=1, eos=2 and no PAD by default: PAD gets a fresh id after the vocab.
  assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (1, 2, 64, 65)
  ids = tok.encode("scaling laws of data")
  assert ids.dtype == np.int32 and len(ids) < len("scaling laws of data") and ids.max() < 64
  assert tok.decode(ids) == "scaling laws of data"


def test_sentencepiece_through_the_lm_pipeline(data_dir, spm_model):
  cfg = ConfigDict({"name": f"text_dir:{spm_model}", "tokenizer": str(spm_model / "m.model"), "seq_len": 16,
                    "batch_size": 4, "order": "stream"})
  info = pipeline.dataset_info(cfg)
  assert info["vocab_size"] == 65 and info["eos_id"] == 2
  stream = pipeline.load_tokens(cfg, "train")
  assert stream.max() < 65 and (stream == 2).sum() >= 1
  b = next(iter(pipeline.make_loader(cfg, split="train", seed=0, shuffle=False, num_epochs=1,
                                     process_index=0, process_count=1)))
  np.testing.assert_array_equal(b["inputs"][0], stream[:16])
  np.testing.assert_array_equal(b["targets"][0], stream[1:17])
  span = pipeline.dataset_info(ConfigDict({**cfg.to_dict(), "task": "span"}))
  assert span["sentinel_start"] == 65 and span["vocab_size"] == 65 + span["num_sentinels"]
