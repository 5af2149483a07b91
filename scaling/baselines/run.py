"""Classic baselines as sweep members: config -> fit -> evaluate -> result.json.

`run(config, workdir)` writes `config.json`, fits, evaluates and writes `result.json` last (atomic),
with the same fields as a neural run so `scaling.sweep.results.load` puts both in one table:
  classifiers (svm|tree|forest|logreg): eval_loss = mean log-loss in nats/example and eval_accuracy on
    the validation split of `scaling.data.tasks.classification_arrays` (digits by default), the
    splits the DNN classification ladder uses; test_loss/test_accuracy on the test split as extras.
  ngram: eval_loss = nats/token over the validation token stream of the GPT corpus and tokenizer
    (`scaling.data.pipeline.load_tokens`), the GPT loss axis.
Learning curves: `data.train_examples` (None = all) caps the training set: classification rows (the
data layer's nested subsets), or the first N training tokens for the n-gram model. The count used is
reported as `train_examples` (and, for the n-gram model, as `tokens`).

Sizes (`default_config(family, size)`):
  svm     '<n_components>' (Nystroem components, e.g. '256') or 'exact' (SVC)
  tree    '<max_leaf_nodes>'
  forest  '<n_estimators>x<max_leaf_nodes>', e.g. '16x64'
  logreg  '<C>' (capacity is fixed; C is the inverse regularization strength)
  ngram   '<n>' or '<n>-min<min_count>', e.g. '5-min2'
"""

import logging
import os
import re
import time
import traceback

import ml_collections
import numpy as np

from scaling import io
from scaling.baselines import classic, ngram
from scaling import errors

FAMILIES = classic.FAMILIES + ("ngram",)
CLASSIC_LADDERS = {  # log-spaced size knobs sized for digits (~1.4k training rows, 64 features)
    "svm": ["16", "64", "256", "1024"],
    "tree": ["8", "32", "128", "512"],
    "forest": ["4x16", "16x32", "64x64", "128x128"],
    "logreg": ["1"],  # one size: its parameter count does not change with C
}
TRAIN_EXAMPLES = [100, 200, 400, 800, None]  # digits: >= 4 rows of every class in each nested subset

_CALIBRATED = dict(calibration="sigmoid", calibration_cv=3, n_jobs=1)
MODEL_DEFAULTS = {
    "svm": dict(n_components=256, gamma=None, C=1.0, max_iter=5000, **_CALIBRATED),
    "tree": dict(max_leaf_nodes=64, **_CALIBRATED),
    "forest": dict(n_estimators=16, max_leaf_nodes=64, **_CALIBRATED),
    "logreg": dict(C=1.0, max_iter=1000, calibration="none", calibration_cv=3, n_jobs=1),
    "ngram": dict(n=3, min_count=1, discount="modified", fixed_discount=0.75),
}
_SIZE_HELP = {
    "svm": "a number of Nystroem components like '256', or 'exact'",
    "tree": "a number of leaves like '64'",
    "forest": "'<trees>x<leaves>' like '16x64'",
    "logreg": "a positive C like '1' or '0.1'",
    "ngram": "an order like '3' or '<n>-min<min_count>' like '5-min2'",
}


def _size_fields(family: str, size: str) -> dict:
  """The model fields a size name sets; ValueError naming `size` if it does not parse."""
  s = size.strip().lower()
  m = None
  if family == "svm":
    if s == "exact":
      return dict(n_components=0)
    m = re.fullmatch(r"[1-9]\d*", s) and dict(n_components=int(s))
  elif family == "tree":
    m = re.fullmatch(r"[1-9]\d*", s) and dict(max_leaf_nodes=int(s))
  elif family == "forest":
    g = re.fullmatch(r"([1-9]\d*)x([1-9]\d*)", s)
    m = g and dict(n_estimators=int(g[1]), max_leaf_nodes=int(g[2]))
  elif family == "logreg":
    try:
      m = float(s) > 0 and dict(C=float(s))
    except ValueError:
      m = None
  elif family == "ngram":
    g = re.fullmatch(r"([1-9]\d*)(?:-min([1-9]\d*))?", s)
    m = g and dict(n=int(g[1]), min_count=int(g[2] or 1))
  if not m:
    raise errors.ConfigError(f"size: {size!r} is not a {family} size; allowed: {_SIZE_HELP[family]}")
  return m


def default_config(family: str, size: str | int) -> ml_collections.ConfigDict:
  """A full run config for one baseline (same top-level layout as the neural families)."""
  if family not in FAMILIES:
    raise errors.ConfigError(f"family: unknown {family!r}; allowed: {', '.join(FAMILIES)}")
  size = str(size)
  c = ml_collections.ConfigDict()
  c.family, c.size, c.seed = family, size, 0
  c.tags = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict({**MODEL_DEFAULTS[family], **_size_fields(family, size)})
  task = "lm" if family == "ngram" else "classify"
  c.data = ml_collections.ConfigDict(dict(
      name="stdlib" if task == "lm" else "digits", task=task, seq_len=128, batch_size=32,
      tokenizer="byte", data_dir="", train_examples=None))
  c.train = ml_collections.ConfigDict()  # classic models have no optimizer loop
  c.mesh = ml_collections.ConfigDict()
  return c


def baseline_runs(train_examples: list[int] | None = None) -> list[ml_collections.ConfigDict]:
  """The classic-model size ladders x training-set sizes (digits): the classic-vs-DNN grid."""
  runs = []
  for family, sizes in CLASSIC_LADDERS.items():
    for size in sizes:
      for n in TRAIN_EXAMPLES if train_examples is None else train_examples:
        c = default_config(family, size)
        c.data.train_examples = n
        runs.append(c)
  return runs


def ngram_runs(orders: tuple[int, ...] = (1, 2, 3, 4, 5), train_tokens: list[int | None] = (None,),
               min_count: int = 1) -> list[ml_collections.ConfigDict]:
  """n-gram ladder on the default LM corpus: order n x training tokens (None = all)."""
  runs = []
  for n in orders:
    for t in train_tokens:
      c = default_config("ngram", f"{n}-min{min_count}" if min_count > 1 else str(n))
      c.data.train_examples = t
      runs.append(c)
  return runs


def _check(ok: bool, field: str, value, allowed: str) -> None:
  if not ok:
    raise errors.ConfigError(f"{field}: got {value!r}; allowed: {allowed}")


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def validate(config: ml_collections.ConfigDict) -> None:
  """One-line ValueError naming the first bad field; runs before any data is loaded."""
  f = config.get("family")
  _check(f in FAMILIES, "family", f, ", ".join(FAMILIES))
  _check(_is_int(config.get("seed", 0)), "seed", config.get("seed"), "an integer")
  m, d = config.model, config.data
  if f == "ngram":
    _check(_is_int(m.n) and m.n >= 1, "model.n", m.n, "an integer >= 1")
    _check(_is_int(m.min_count) and m.min_count >= 1, "model.min_count", m.min_count, "an integer >= 1")
    _check(m.discount in ("modified", "fixed"), "model.discount", m.discount, "'modified', 'fixed'")
    _check(_is_num(m.fixed_discount) and 0 < m.fixed_discount <= 1, "model.fixed_discount",
           m.fixed_discount, "a number in (0, 1]")
  else:
    if f == "svm":
      _check(_is_int(m.n_components) and m.n_components >= 0, "model.n_components", m.n_components,
             "an integer >= 1 (Nystroem) or 0 (exact SVC)")
      _check(m.gamma is None or (_is_num(m.gamma) and m.gamma > 0), "model.gamma", m.gamma,
             "None (1 / (features * Var[X])) or a number > 0")
      _check(m.calibration != "none", "model.calibration", m.calibration,
             "'sigmoid' or 'isotonic' (an SVM has no probabilities of its own)")
    if f in ("svm", "logreg"):
      _check(_is_num(m.C) and m.C > 0, "model.C", m.C, "a number > 0")
      _check(_is_int(m.max_iter) and m.max_iter >= 1, "model.max_iter", m.max_iter, "an integer >= 1")
    if f in ("tree", "forest"):
      _check(_is_int(m.max_leaf_nodes) and m.max_leaf_nodes >= 2, "model.max_leaf_nodes",
             m.max_leaf_nodes, "an integer >= 2")
    if f == "forest":
      _check(_is_int(m.n_estimators) and m.n_estimators >= 1, "model.n_estimators", m.n_estimators,
             "an integer >= 1")
    _check(m.calibration in classic.CALIBRATIONS, "model.calibration", m.calibration,
           ", ".join(classic.CALIBRATIONS))
    _check(_is_int(m.calibration_cv) and m.calibration_cv >= 2, "model.calibration_cv",
           m.calibration_cv, "an integer >= 2")
    _check(_is_int(m.n_jobs) and (m.n_jobs >= 1 or m.n_jobs == -1), "model.n_jobs", m.n_jobs,
           "an integer >= 1, or -1 (all cores)")
  task = "lm" if f == "ngram" else "classify"
  _check(d.get("task", task) == task, "data.task", d.get("task"), f"'{task}' for family {f!r}")
  n = d.get("train_examples", None)
  _check(n is None or (_is_int(n) and n >= 1), "data.train_examples", n, "None (all) or an integer >= 1")
  from scaling.data import pipeline  # local: importing grain/tfds is only needed once we run
  pipeline.spec_of(d)


def _fit_classic(config) -> dict:
  from scaling.data import tasks
  arrays = tasks.classification_arrays(config.data)
  (X, y), (X_va, y_va), (X_te, y_te) = arrays["train"], arrays["validation"], arrays["test"]
  n_classes = int(max(y.max(), y_va.max(), y_te.max())) + 1
  t0 = time.time()
  est = classic.fit(config.family, config.model, config.seed, X, y)
  fit_time = time.time() - t0
  tr, va, te = (classic.evaluate(est, a, b, n_classes) for a, b in ((X, y), (X_va, y_va), (X_te, y_te)))
  p = classic.num_params(est)
  return dict(params=p, params_nonembed=p, train_loss=tr["loss"], train_accuracy=tr["accuracy"],
              eval_loss=va["loss"], eval_accuracy=va["accuracy"], test_loss=te["loss"],
              test_accuracy=te["accuracy"], train_examples=int(len(y)), num_classes=n_classes,
              num_features=int(X.shape[1]), fit_time_s=fit_time)


def _fit_ngram(config) -> dict:
  from scaling.data import pipeline
  d, m = config.data, config.model
  vocab = int(pipeline.dataset_info(d)["vocab_size"])
  train = pipeline.load_tokens(d, "train")
  n = d.get("train_examples", None)
  if n is not None:
    if n > len(train):
      raise errors.ConfigError(f"data.train_examples: {n} exceeds the {len(train)} training tokens")
    train = train[:n]  # prefixes: nested training sets for learning curves
  valid = pipeline.load_tokens(d, "validation")
  t0 = time.time()
  lm = ngram.fit(train, vocab, m.n, min_count=m.min_count, discount=m.discount,
                 fixed_discount=m.fixed_discount)
  fit_time = time.time() - t0
  t0 = time.time()
  eval_loss = lm.cross_entropy(valid)
  eval_time = time.time() - t0
  return dict(params=lm.num_params, params_nonembed=lm.num_params, tokens=int(len(train)),
              train_examples=int(len(train)), train_loss=lm.cross_entropy(train), eval_loss=eval_loss,
              eval_tokens=int(len(valid)), vocab_size=vocab, entries_per_order=lm.entries_per_order,
              discounts=[list(x) for x in lm.discounts], fit_time_s=fit_time, eval_time_s=eval_time)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Validates, writes config.json, fits and evaluates, writes result.json last; returns the result.

  Config errors raise before anything is written; errors while loading data or fitting are recorded
  as status 'failed' with a one-line `error` (traceback logged) and the result is still written.
  """
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  io.atomic_write_json(os.path.join(workdir, "config.json"), config.to_dict())
  result = dict(family=config.family, size=config.size, seed=config.seed, status="failed",
                params=None, params_embed=0, params_nonembed=None, tokens=None, flops=None,
                train_loss=None, eval_loss=None, eval_accuracy=None, train_examples=None, steps=None,
                tags=_plain(config.get("tags")))
  t0 = time.time()
  try:
    result.update(_fit_ngram(config) if config.family == "ngram" else _fit_classic(config))
    result["status"] = "completed"
  except Exception as e:  # recorded, not swallowed: the sweep keeps going, the result says why
    logging.error("baseline run %s failed:\n%s", workdir, traceback.format_exc())
    msg = " ".join(str(e).split()) or type(e).__name__
    result["error"] = f"{type(e).__name__}: {msg}"
  result["wall_time_s"] = time.time() - t0
  io.atomic_write_json(os.path.join(workdir, "result.json"), result)
  return result


def _plain(tags) -> dict:
  return tags.to_dict() if hasattr(tags, "to_dict") else dict(tags or {})
