"""grain loaders: packing covers every token once, exact resume, process shards, span corruption,
classification and module_cls batches."""

import collections
import json

import numpy as np
import pytest
from ml_collections import ConfigDict

from scaling.data import pipeline, tasks, tokenizer


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
  """12 small documents (>= 10: split by file), different lengths, some non-ASCII."""
  d = tmp_path_factory.mktemp("corpus")
  rng = np.random.default_rng(1)
  for i in range(12):
    words = [f"w{int(x)}" for x in rng.integers(0, 50, size=int(rng.integers(200, 800)))]
    (d / f"f{i:02d}.txt").write_text(f"doc {i} — " + " ".join(words) + "\n", encoding="utf-8")
  return str(d)


def _cfg(corpus_dir, **kw) -> ConfigDict:
  return ConfigDict({"name": f"text_dir:{corpus_dir}", "task": "lm", "seq_len": 32, "batch_size": 8, **kw})


def _batches(cfg, split="train", seed=0, shuffle=True, num_epochs=1, pi=0, pc=1) -> list[dict]:
  return list(pipeline.make_loader(cfg, split=split, seed=seed, shuffle=shuffle, num_epochs=num_epochs,
                                   process_index=pi, process_count=pc))


def _rows(batches) -> list[tuple]:
  """The weighted (input, target) tokens of every row."""
  out = []
  for b in batches:
    for x, y, w in zip(b["inputs"], b["targets"], b["weights"]):
      n = int(w.sum())
      assert w[:n].all() and not w[n:].any()
      out.append((tuple(x[:n]), tuple(y[:n])))
  return out


def test_lm_packing_covers_every_token_once_per_epoch(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir)
  stream = pipeline.load_tokens(cfg, "train")
  assert (stream == tokenizer.BYTE_EOS).sum() >= 8  # Several documents, separated by EOS.
  batches = _batches(cfg, num_epochs=2)
  for b in batches:
    assert b["inputs"].shape == b["targets"].shape == b["weights"].shape == (8, 32)
    assert b["inputs"].dtype == np.int32 and b["weights"].dtype == np.float32
  rows = [r for r in _rows(batches) if r[0]]
  n = len(rows) // 2
  for epoch in (rows[:n], rows[n:]):
    # Every window is a contiguous slice of the stream, targets shifted by one, and together the
    # inputs are the stream minus its last token: each token exactly once, no padding but the tail.
    offset = {tuple(stream[s:s + 32]): s for s in range(0, len(stream) - 1, 32)}
    starts = sorted(offset[x] if len(x) == 32 else len(stream) - 1 - len(x) for x, _ in epoch)
    assert starts == list(range(0, len(stream) - 1, 32))
    for x, y in epoch:
      s = starts[-1] if len(x) < 32 else offset[x]
      assert list(x) == stream[s:s + len(x)].tolist() and list(y) == stream[s + 1:s + 1 + len(y)].tolist()
    assert collections.Counter(t for x, _ in epoch for t in x) == collections.Counter(stream[:-1].tolist())
  assert rows[:n] != rows[n:]  # A fresh permutation every epoch.


def test_restored_iterator_yields_the_same_next_batches(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir)
  it = iter(pipeline.make_loader(cfg, split="train", seed=7, shuffle=True, num_epochs=None,
                                 process_index=0, process_count=1))
  for _ in range(5):
    next(it)
  state = json.loads(json.dumps(it.get_state()))  # Checkpoints store it as JSON.
  want = [next(it) for _ in range(40)]  # Crosses epoch boundaries (~8 batches per epoch).
  it2 = iter(pipeline.make_loader(cfg, split="train", seed=7, shuffle=True, num_epochs=None,
                                  process_index=0, process_count=1))
  it2.set_state(state)
  for a in want:
    b = next(it2)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  other_seed = next(iter(pipeline.make_loader(cfg, split="train", seed=8, shuffle=True, num_epochs=None,
                                              process_index=0, process_count=1)))
  assert not np.array_equal(other_seed["inputs"], _batches(cfg, seed=7)[0]["inputs"])


def test_two_processes_get_disjoint_shards_covering_the_data(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir)
  one = _batches(cfg, seed=3)
  p0, p1 = _batches(cfg, seed=3, pi=0, pc=2), _batches(cfg, seed=3, pi=1, pc=2)
  assert len(p0) == len(p1) == len(one)  # Same step count on every host (padded final batch).
  assert p0[0]["inputs"].shape == (4, 32)
  r0, r1 = [r for r in _rows(p0) if r[0]], [r for r in _rows(p1) if r[0]]
  assert not set(r0) & set(r1)
  assert collections.Counter(r0 + r1) == collections.Counter(r for r in _rows(one) if r[0])
  # Step t's global batch is the same whatever the number of processes.
  for a, b0, b1 in zip(one, p0, p1):
    assert sorted(map(tuple, a["inputs"].tolist())) == sorted(
        map(tuple, np.concatenate([b0["inputs"], b1["inputs"]]).tolist()))


def test_eval_split_is_fixed_and_its_prefix_is_a_sample(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir)
  a = _batches(cfg, split="validation", seed=0, shuffle=False)
  b = _batches(cfg, split="validation", seed=123, shuffle=False)
  assert len(a) == len(b) > 1
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["inputs"], y["inputs"])
  # Not corpus order (a truncated eval must not see only the first documents), but all of it.
  stream = _batches(_cfg(corpus_dir, order="stream"), split="validation", shuffle=False)
  assert not np.array_equal(a[0]["inputs"], stream[0]["inputs"])
  assert sorted(_rows(a)) == sorted(_rows(stream))


def _uncorrupt(inputs, targets, tok_vocab: int) -> list[int]:
  """Inputs/targets without their final EOS (EOS can also occur inside: documents are packed)."""
  spans, cur = {}, None
  for t in targets:
    if t >= tok_vocab:
      cur = spans.setdefault(int(t), [])
    else:
      cur.append(int(t))
  out = []
  for t in inputs:
    out.extend(spans[int(t)] if t >= tok_vocab else [int(t)])
  return out


def test_span_corruption_inverts_to_the_original_text(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir, task="span", seq_len=64, batch_size=4, order="stream")
  info = pipeline.dataset_info(cfg)
  sl = tasks.span_lengths(64, 0.15, 3.0)
  assert info["vocab_size"] == 259 + sl.spans and info["sentinel_start"] == 259
  assert info["inputs_len"] == 64 and info["targets_len"] == sl.noise + sl.spans + 1
  stream = pipeline.load_tokens(cfg, "validation")
  batches = _batches(cfg, split="validation", shuffle=False)
  row = 0
  for b in batches:
    assert b["inputs"].shape == b["input_mask"].shape == (4, 64)
    assert b["targets"].shape == b["decoder_inputs"].shape == b["weights"].shape == (4, sl.targets)
    np.testing.assert_array_equal(b["decoder_inputs"][:, 0], tokenizer.BYTE_BOS)
    np.testing.assert_array_equal(b["decoder_inputs"][:, 1:], b["targets"][:, :-1])
    for x, y, w, m in zip(b["inputs"], b["targets"], b["weights"], b["input_mask"]):
      if not w.any():
        continue  # Padding row of the final batch.
      assert (x[m == 1] != tokenizer.BYTE_PAD).all() and (x[m == 0] == tokenizer.BYTE_PAD).all()
      assert ((y >= 259).sum(), (x >= 259).sum()) == (sl.spans, sl.spans)
      raw = stream[row * sl.raw:(row + 1) * sl.raw].tolist()
      assert x[int(m.sum()) - 1] == y[-1] == tokenizer.BYTE_EOS
      assert _uncorrupt(x[:int(m.sum()) - 1], y[:-1], 259) == raw
      row += 1
  assert row == info["num_examples"]["validation"] == len(stream) // sl.raw
  # Eval corruption is fixed; training corruption depends on the run seed.
  again = _batches(cfg, split="validation", seed=99, shuffle=False)
  np.testing.assert_array_equal(again[0]["inputs"], batches[0]["inputs"])
  t1 = _batches(cfg, split="train", seed=1, shuffle=False)[0]["inputs"]
  t2 = _batches(cfg, split="train", seed=2, shuffle=False)[0]["inputs"]
  assert not np.array_equal(t1, t2)


def test_prefix_lm_splits_each_window_into_prefix_and_continuation(data_dir, corpus_dir):
  """Encoder inputs = first half of a seq_len window, targets = second half, decoder inputs = targets
  shifted right from the prefix's last token; windows tile the split once per epoch (in-memory and
  streamed alike)."""
  for streamed in (False, True):
    cfg = _cfg(corpus_dir, task="prefix_lm", seq_len=20, batch_size=4, order="stream", streaming=streamed)
    info = pipeline.dataset_info(cfg)
    assert (info["inputs_len"], info["targets_len"], info["vocab_size"]) == (10, 10, 259)
    stream = pipeline.load_tokens(cfg, "validation").tolist()
    windows = []
    for b in _batches(cfg, split="validation", shuffle=False):
      assert b["inputs"].shape == b["input_mask"].shape == b["targets"].shape == b["decoder_inputs"].shape == (4, 10)
      for x, m, d, y, w in zip(b["inputs"], b["input_mask"], b["decoder_inputs"], b["targets"], b["weights"]):
        if w.all():
          assert m.all() and d[0] == x[-1] and list(d[1:]) == list(y[:-1])
          windows.append(list(x) + list(y))
        else:
          assert not w.any()  # a padding row of the final batch
    assert windows == [stream[i:i + 20] for i in range(0, len(stream) - 19, 20)]


def test_span_noise_statistics():
  sl = tasks.span_lengths(512, 0.15, 3.0)
  rngs = [np.random.default_rng(i) for i in range(64)]
  m = tasks.noise_mask(rngs, sl)
  assert m.shape == (64, sl.raw) and (m.sum(1) == sl.noise).all() and not m[:, 0].any()
  starts = (m & ~np.pad(m, ((0, 0), (1, 0)))[:, :-1]).sum(1)
  assert (starts == sl.spans).all()
  assert abs(sl.noise / sl.raw - 0.15) < 0.01 and abs(sl.noise / sl.spans - 3.0) < 0.2


def test_classification_digits(data_dir):
  cfg = ConfigDict({"task": "classify", "batch_size": 32})
  a = tasks.classification_arrays(cfg)
  assert {k: len(v[1]) for k, v in a.items()} == {"train": 1437, "validation": 180, "test": 180}
  for x, y in a.values():
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1] == 64 and 0 <= x.min() <= x.max() <= 1
    assert set(np.unique(y)) == set(range(10))  # Stratified.
  b = tasks.classification_arrays(ConfigDict({"task": "classify"}))
  np.testing.assert_array_equal(a["test"][0], b["test"][0])  # Fixed splits.
  info = pipeline.dataset_info(cfg)
  assert (info["num_classes"], info["num_features"]) == (10, 64)
  batches = _batches(ConfigDict({**cfg.to_dict(), "order": "stream"}), split="test", shuffle=False)
  assert len(batches) == 6 and batches[0]["x"].shape == (32, 64) and batches[0]["label"].dtype == np.int32
  w = np.concatenate([b["weights"] for b in batches])
  assert w.sum() == 180
  got = np.concatenate([b["label"] for b in batches])[w > 0]
  np.testing.assert_array_equal(got, a["test"][1])
  # Data-scaling ladders: smaller training sets are nested subsets.
  small = tasks.classification_arrays(ConfigDict({"task": "classify", "train_examples": 100}))["train"]
  big = tasks.classification_arrays(ConfigDict({"task": "classify", "train_examples": 400}))["train"]
  np.testing.assert_array_equal(small[0], big[0][:100])


def test_module_cls_batches(data_dir):
  cfg = ConfigDict({"name": "stdlib", "task": "module_cls", "seq_len": 64, "batch_size": 16})
  info = pipeline.dataset_info(cfg)
  assert info["num_classes"] == len(info["label_names"]) == 16
  assert info["label_names"][:3] == ["encodings", "idlelib", "asyncio"] or "email" in info["label_names"]
  b = next(iter(pipeline.make_loader(cfg, split="train", seed=0, shuffle=True, num_epochs=None,
                                     process_index=0, process_count=1)))
  assert b["inputs"].shape == (16, 64) and b["label"].shape == (16,) and b["inputs"].dtype == np.int32
  assert (b["inputs"] < 256).all() and ((0 <= b["label"]) & (b["label"] < 16)).all()
  first = next(iter(pipeline.make_loader(cfg, split="validation", seed=0, shuffle=False, num_epochs=1,
                                         process_index=0, process_count=1)))
  assert len(set(first["label"].tolist())) >= 4  # A truncated eval still sees many classes.
  seen = set()
  for s in ("train", "validation", "test"):
    y = pipeline._examples(pipeline.spec_of(cfg), s)["label"]
    seen.add(s) if len(set(y.tolist())) == 16 else None
  assert seen == {"train", "validation", "test"}  # Every label in every split (split by file per package).


def test_make_loader_validates(data_dir, corpus_dir):
  cfg = _cfg(corpus_dir, batch_size=6)
  with pytest.raises(ValueError, match="data.batch_size"):
    pipeline.make_loader(cfg, split="train", seed=0, shuffle=True, num_epochs=1, process_index=0, process_count=4)
  with pytest.raises(ValueError, match="split"):
    pipeline.make_loader(cfg, split="dev", seed=0, shuffle=True, num_epochs=1, process_index=0, process_count=1)
  with pytest.raises(ValueError, match="num_epochs"):
    pipeline.make_loader(cfg, split="train", seed=0, shuffle=True, num_epochs=0, process_index=0, process_count=1)


def _window_tokens(batches) -> collections.Counter:
  """All tokens of the packed windows (inputs plus each window's last target)."""
  c = collections.Counter()
  for b in batches:
    for x, y, w in zip(b["inputs"], b["targets"], b["weights"]):
      n = int(w.sum())
      if n:
        c.update(x[:n].tolist() + [int(y[n - 1])])
  return c


def test_streaming_pipeline_packs_resumes_and_shards(data_dir, corpus_dir):
  """The path for corpora too big to tokenize up front (auto for public splits > 1 GiB)."""
  cfg = _cfg(corpus_dir, streaming=True)
  assert pipeline.dataset_info(cfg)["streaming"]["train"] and pipeline.dataset_info(cfg)["num_tokens"]["train"] is None
  stream = pipeline.load_tokens(cfg, "train")
  assert len(stream) == len(pipeline.load_tokens(_cfg(corpus_dir), "train"))  # Same documents.
  batches = _batches(cfg, seed=5)
  assert all(b["inputs"].shape == (8, 32) for b in batches)
  assert _window_tokens(batches) == collections.Counter(stream.tolist())  # Every token once.
  halves = [_batches(cfg, seed=5, pi=i, pc=2) for i in (0, 1)]
  assert _window_tokens(halves[0]) + _window_tokens(halves[1]) == collections.Counter(stream.tolist())
  it = iter(pipeline.make_loader(cfg, split="train", seed=5, shuffle=True, num_epochs=None,
                                 process_index=0, process_count=1))
  for _ in range(3):
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  want = [next(it) for _ in range(12)]
  it2 = iter(pipeline.make_loader(cfg, split="train", seed=5, shuffle=True, num_epochs=None,
                                  process_index=0, process_count=1))
  it2.set_state(state)
  for a in want:
    np.testing.assert_array_equal(a["inputs"], next(it2)["inputs"])
  span = next(iter(pipeline.make_loader(_cfg(corpus_dir, streaming=True, task="span", seq_len=64), split="train",
                                        seed=0, shuffle=False, num_epochs=1, process_index=0, process_count=1)))
  assert span["inputs"].shape == (8, 64) and span["targets"].shape[1] == tasks.span_lengths(64, 0.15, 3.0).targets


def _epochs_of(rows, n):
  return [rows[i:i + n] for i in range(0, len(rows) - n + 1, n)]


@pytest.mark.parametrize("streamed", [False, True])
def test_unique_tokens_repeats_exactly_the_first_u_tokens(data_dir, corpus_dir, streamed):
  """data.unique_tokens=U: every epoch is one pass over windows of the split's first U tokens (each of tokens
  1..U-1 a target exactly once), epochs repeat in fresh orders across a loader that never stops, and the
  streamed path (which reads only the first U tokens) yields the very same batches."""
  u = 1000  # 31 windows of 32 + a partial one, 4 batches of 8 per epoch (so batches straddle epochs)
  cfg = _cfg(corpus_dir, unique_tokens=u, streaming=streamed)
  stream = pipeline.load_tokens(_cfg(corpus_dir), "train")
  assert len(stream) > 3 * u
  info = pipeline.dataset_info(cfg)
  n = info["num_examples"]["train"]
  assert info["num_tokens"]["train"] == u and n == 32 and not info["streaming"]["train"]
  loader = pipeline.make_loader(cfg, split="train", seed=3, shuffle=True, num_epochs=None)
  it = iter(loader)
  batches = [next(it) for _ in range(13)]  # 104 rows: 3 whole epochs and the start of a 4th
  rows = _rows(batches)
  epochs = _epochs_of(rows, n)
  assert len(epochs) == 3
  for epoch in epochs:
    targets = collections.Counter()
    for x, y in epoch:
      s = next(s for s in range(0, u, 32) if tuple(stream[s:s + len(x)]) == x)
      assert list(y) == stream[s + 1:s + 1 + len(y)].tolist() and s + len(y) < u  # nothing past U
      targets.update(range(s + 1, s + 1 + len(y)))
    assert targets == collections.Counter(range(1, u))  # tokens 1 .. U-1, each exactly once
  assert epochs[0] != epochs[1] != epochs[2]  # a fresh permutation per epoch
  assert pipeline.epochs(cfg, 13 * 8) == {"unique_tokens": u, "epochs": 13 * 8 / 32}

  # Exact resume across an epoch boundary (batch 4 holds the last rows of epoch 1).
  it2 = iter(pipeline.make_loader(cfg, split="train", seed=3, shuffle=True, num_epochs=None))
  for _ in range(3):
    next(it2)
  it3 = iter(pipeline.make_loader(cfg, split="train", seed=3, shuffle=True, num_epochs=None))
  it3.set_state(json.loads(json.dumps(it2.get_state())))
  for b in batches[3:8]:
    got = next(it3)
    for k in b:
      np.testing.assert_array_equal(got[k], b[k])
  if streamed:  # the same batches as the in-memory path
    mem = list(iter(pipeline.make_loader(_cfg(corpus_dir, unique_tokens=u), split="train", seed=3, shuffle=True,
                                         num_epochs=2)))
    for a, b in zip(mem[:8], batches[:8]):
      for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_unique_tokens_bad_values_name_the_field(data_dir, corpus_dir):
  n = len(pipeline.load_tokens(_cfg(corpus_dir), "train"))
  for bad, why in ((n + 1, "more than"), (10, "no training example"), (-1, "got -1"), (True, "got True")):
    with pytest.raises(ValueError, match=f"^data.unique_tokens: .*{why}.*allowed"):
      pipeline.dataset_info(_cfg(corpus_dir, unique_tokens=bad))
  assert pipeline.dataset_info(_cfg(corpus_dir, unique_tokens=n))["num_tokens"]["train"] == n


def test_one_example_per_step_streams_forever_and_matches_batch_8(data_dir, corpus_dir):
  """batch_size 1 (a batch-size grid's smallest member): endless, resumable, the same rows in the same order
  as batch 8 cut into single rows (grain's own batch(1) overflowed on an endless dataset)."""
  one = iter(pipeline.make_loader(_cfg(corpus_dir, batch_size=1), split="train", seed=3, shuffle=True,
                                  num_epochs=None, process_index=0, process_count=1))
  rows = [next(one) for _ in range(24)]
  assert all(r["inputs"].shape == (1, 32) for r in rows)
  eight = iter(pipeline.make_loader(_cfg(corpus_dir, batch_size=8), split="train", seed=3, shuffle=True,
                                    num_epochs=None, process_index=0, process_count=1))
  want = np.concatenate([next(eight)["inputs"] for _ in range(3)])
  np.testing.assert_array_equal(np.concatenate([r["inputs"] for r in rows]), want)
