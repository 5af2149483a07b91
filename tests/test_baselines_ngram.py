"""Kneser-Ney n-gram LM: exactness against a naive implementation, normalization, loss vs order."""

import collections
import os
import sysconfig

import numpy as np
import pytest

from scaling.baselines import ngram, run
from scaling.sweep import results


def _text(n_bytes: int, offset: int = 0) -> np.ndarray:
  with open(os.path.join(sysconfig.get_paths()["stdlib"], "os.py"), "rb") as f:
    return np.frombuffer(f.read()[offset:offset + n_bytes], np.uint8).astype(np.int32)


def _reference(tokens, V, n, min_count, discount, fixed=0.75):
  """Interpolated (modified) Kneser-Ney straight from the definition, with dicts and recursion."""
  t = [int(x) for x in tokens]
  raw = {k: collections.Counter(tuple(t[i:i + k]) for i in range(len(t) - k + 1)) for k in range(1, n + 1)}
  eff = {n: dict(raw[n])}
  for k in range(1, n):  # continuation counts: distinct left extensions among all (k+1)-grams
    eff[k] = {g: 0 for g in raw[k]}
    for g in raw[k + 1]:
      eff[k][g[1:]] += 1
  eff[1] = {(w,): eff[1].get((w,), 0) for w in range(V)}
  kept = {k: {g for g in raw[k] if k == 1 or raw[k][g] >= min_count} for k in range(1, n + 1)}
  kept[1] = {(w,) for w in range(V)}
  D = {}
  for k in range(1, n + 1):
    cc = collections.Counter(eff[k].values())
    n1, n2, n3, n4 = (cc[i] for i in (1, 2, 3, 4))
    if discount == "fixed":
      D[k] = (fixed,) * 3
    elif n1 and n2 and n3:
      y = n1 / (n1 + 2 * n2)
      d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
      D[k] = tuple(min(max(x, 1e-3), j) for j, x in zip((1, 2, 3), d))
    else:
      D[k] = (0.75,) * 3
  def disc(k, c):
    return 0.0 if c == 0 else max(c - D[k][min(c, 3) - 1], 0.0)
  denom = {k: collections.Counter() for k in range(1, n + 1)}
  mass = {k: collections.Counter() for k in range(1, n + 1)}
  for k in range(1, n + 1):
    for g, c in eff[k].items():
      denom[k][g[:-1]] += c
      if g in kept[k]:
        mass[k][g[:-1]] += disc(k, c)

  def prob(k, ctx, w):
    if k == 0:
      return 1.0 / V
    lower = prob(k - 1, ctx[1:], w)
    if (k > 1 and ctx not in kept[k - 1]) or denom[k][ctx] == 0:
      return lower
    g = ctx + (w,)
    a = disc(k, eff[k].get(g, 0)) / denom[k][ctx] if g in kept[k] else 0.0
    return a + (1 - mass[k][ctx] / denom[k][ctx]) * lower

  return prob


@pytest.mark.parametrize("n,min_count,discount", [(3, 1, "modified"), (3, 2, "modified"), (2, 1, "fixed"),
                                                  (1, 1, "modified")])
def test_matches_naive_kneser_ney(n, min_count, discount):
  train, held = _text(4000), _text(600, offset=4000)
  lm = ngram.fit(train, 256, n, min_count=min_count, discount=discount)
  prob = _reference(train, 256, n, min_count, discount)
  want = [np.log(prob(min(i, n - 1) + 1, tuple(int(x) for x in held[max(0, i - n + 1):i]), int(held[i])))
          for i in range(len(held))]
  np.testing.assert_allclose(lm.log_probs(held[None])[0], want, rtol=1e-10, atol=1e-12)
  # Stored entries: every token at order 1, then each distinct k-gram seen >= min_count times.
  distinct = sum(sum(c >= min_count for c in collections.Counter(
      tuple(train[i:i + k]) for i in range(len(train) - k + 1)).values()) for k in range(2, n + 1))
  assert lm.num_params == 256 + distinct == sum(lm.entries_per_order)


@pytest.mark.parametrize("min_count,discount", [(1, "modified"), (3, "fixed")])
def test_probabilities_sum_to_one(min_count, discount):
  train = _text(20000)
  lm = ngram.fit(train, 259, 4, min_count=min_count, discount=discount)
  rng = np.random.default_rng(0)
  starts = rng.integers(0, len(train) - 3, size=12)
  contexts = [train[s:s + 3] for s in starts]
  contexts += [np.array([257, 258, 3]), np.array([ord("d"), ord("e")]), np.array([], np.int32)]  # unseen/short
  for ctx in contexts:
    p = lm.next_token_probs(ctx)
    assert p.shape == (259,) and p.min() > 0  # every token, even never-seen ones, keeps some mass
    assert abs(p.sum() - 1.0) < 1e-12, (ctx, p.sum())


def test_loss_falls_with_order_on_default_corpus(data_dir, tmp_path):
  from scaling.data import pipeline
  cfg = run.default_config("ngram", 1).data
  V = pipeline.dataset_info(cfg)["vocab_size"]
  train, valid = pipeline.load_tokens(cfg, "train")[:1_000_000], pipeline.load_tokens(cfg, "validation")[:200_000]
  losses = [ngram.fit(train, V, n).cross_entropy(valid) for n in (1, 2, 3)]
  assert losses[0] > losses[1] > losses[2], losses
  assert losses[0] < np.log(V)  # unigram already beats uniform
  # Chunked scoring of a long stream carries context across chunk borders: same as one pass.
  lm = ngram.fit(train, V, 3)
  old = ngram._EVAL_CHUNK
  try:
    ngram._EVAL_CHUNK = 4096
    chunked = lm.cross_entropy(valid[:50_000])
  finally:
    ngram._EVAL_CHUNK = old
  assert chunked == pytest.approx(-lm.log_probs(valid[None, :50_000]).mean(), rel=1e-12)


def test_run_ngram_writes_loadable_result(data_dir, tmp_path):
  c = run.default_config("ngram", "2-min2")
  c.data.train_examples = 200_000
  c.tags.ladder = "ngram"
  r = run.run(c, str(tmp_path / "runs" / "ngram-2"))
  assert r["status"] == "completed", r.get("error")
  assert r["tokens"] == r["train_examples"] == 200_000
  assert r["params"] == r["params_nonembed"] == sum(r["entries_per_order"]) and r["params_embed"] == 0
  df = results.load(str(tmp_path))
  row = df.iloc[0]
  assert row["family"] == "ngram" and row["size"] == "2-min2" and row["ladder"] == "ngram"
  assert 0 < row["eval_loss"] < np.log(r["vocab_size"])


@pytest.mark.parametrize("field,value,match", [("n", 0, "model.n"), ("min_count", 0, "model.min_count"),
                                               ("discount", "absolute", "model.discount")])
def test_bad_ngram_config_raises_before_work(tmp_path, field, value, match):
  c = run.default_config("ngram", 3)
  setattr(c.model, field, value)
  with pytest.raises(ValueError, match=match):
    run.run(c, str(tmp_path / "r"))
  assert not (tmp_path / "r").exists()
  with pytest.raises(ValueError, match="size"):
    run.default_config("ngram", "three")


def test_ngram_runs_ladder():
  cfgs = run.ngram_runs(orders=(1, 3), train_tokens=[100_000, None], min_count=2)
  assert [(c.model.n, c.model.min_count, c.data.train_examples) for c in cfgs] == [
      (1, 2, 100_000), (1, 2, None), (3, 2, 100_000), (3, 2, None)]
  assert cfgs[2].size == "3-min2"
  for c in cfgs:
    run.validate(c)
