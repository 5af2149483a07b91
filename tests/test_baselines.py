"""Classic classifiers: parameter counts match the fitted estimators, calibration, run() -> results."""

import json
import math

import numpy as np
import pytest
from sklearn import calibration, pipeline, svm

from scaling.baselines import classic, run
from scaling.sweep import results


@pytest.fixture(scope="module")
def digits():
  from scaling.data import tasks
  cfg = run.default_config("tree", 8).data
  cfg.train_examples = 400
  return tasks.classification_arrays(cfg)


def _fit(family, size, X, y, **model):
  c = run.default_config(family, size)
  c.model.update(model)
  run.validate(c)
  return classic.fit(family, c.model, 0, X, y)


def _calibrators(est):
  (cc,) = est.calibrated_classifiers_  # ensemble=False: one model refit on all training rows
  assert all(isinstance(k, calibration._SigmoidCalibration) for k in cc.calibrators)
  return cc.estimator, 2 * len(cc.calibrators)  # Platt: a, b per class


def test_param_counts_equal_what_is_stored(digits):
  X, y = digits["train"]
  K, F = 10, X.shape[1]

  est, cal = _calibrators(_fit("tree", 32, X, y))
  t = est.tree_
  leaves = int((t.children_left == -1).sum())
  assert 2 <= leaves <= 32 and cal == 2 * K
  # Binary tree: leaves - 1 splits, each a feature id + threshold; each leaf a class distribution.
  assert classic.num_params(est) == 2 * (leaves - 1) + K * leaves
  assert classic.num_params(_fit("tree", 32, X, y)) == 2 * (leaves - 1) + K * leaves + 2 * K

  forest, cal = _calibrators(_fit("forest", "5x16", X, y))
  assert len(forest.estimators_) == 5
  per_tree = [int((e.tree_.children_left == -1).sum()) for e in forest.estimators_]
  assert max(per_tree) <= 16
  assert classic.num_params(forest) == sum(2 * (l - 1) + K * l for l in per_tree)

  est, cal = _calibrators(_fit("svm", "exact", X, y))
  assert isinstance(est, svm.SVC)
  n_sv = int(est.n_support_.sum())
  # Support vectors x features + (K-1) one-vs-one dual coefficients per SV + K(K-1)/2 intercepts.
  assert classic.num_params(est) == n_sv * F + n_sv * (K - 1) + K * (K - 1) // 2

  est, cal = _calibrators(_fit("svm", 48, X, y))
  assert isinstance(est, pipeline.Pipeline)
  m = 48  # Nystroem components x features, m x m normalization, linear head K x m + K
  assert classic.num_params(est) == m * F + m * m + K * m + K

  est = _fit("logreg", "0.5", X, y)
  assert not isinstance(est, calibration.CalibratedClassifierCV)
  assert classic.num_params(est) == K * F + K


def test_size_knob_grows_params(digits):
  X, y = digits["train"]
  for family, sizes in [("tree", [4, 16, 64]), ("forest", ["2x8", "8x8", "8x32"]), ("svm", [8, 32, 128])]:
    p = [classic.num_params(_fit(family, s, X, y)) for s in sizes]
    assert p[0] < p[1] < p[2], (family, p)


def test_calibration_makes_tree_log_loss_usable(digits):
  X, y = digits["train"]
  Xv, yv = digits["validation"]
  raw = classic.evaluate(_fit("tree", 64, X, y, calibration="none"), Xv, yv, 10)
  cal = classic.evaluate(_fit("tree", 64, X, y), Xv, yv, 10)
  # Raw leaf frequencies put probability 0 on the true class of every misclassified example.
  assert raw["loss"] > 2.0 > cal["loss"]
  assert cal["accuracy"] > 0.5


def test_classic_runs_end_to_end(tmp_path, data_dir):
  sweep = tmp_path / "sweep"
  for fam, size in [("svm", 32), ("tree", 16), ("forest", "4x16"), ("logreg", 1)]:
    c = run.default_config(fam, size)
    c.data.train_examples = 150
    c.tags.axis = "data"
    r = run.run(c, str(sweep / "runs" / f"{fam}-{size}"))
    assert r["status"] == "completed", r.get("error")
    assert json.loads((sweep / "runs" / f"{fam}-{size}" / "config.json").read_text())["family"] == fam
  df = results.load(str(sweep), status="completed")
  assert sorted(df["family"]) == ["forest", "logreg", "svm", "tree"]
  assert (df["train_examples"] == 150).all() and (df["axis"] == "data").all()
  assert (df["params"] == df["params_nonembed"]).all() and (df["params_embed"] == 0).all()
  for _, row in df.iterrows():
    assert 0 < row["eval_loss"] < math.log(10) + 1 and 0.5 < row["eval_accuracy"] <= 1.0
    assert row["tokens"] is None or (isinstance(row["tokens"], float) and np.isnan(row["tokens"]))


def test_fit_error_is_recorded(tmp_path, data_dir):
  c = run.default_config("tree", 8)
  c.data.train_examples = 20  # some digit classes get < 3 rows: 3-fold calibration cannot run
  r = run.run(c, str(tmp_path / "r"))
  assert r["status"] == "failed" and "calibration_cv" in r["error"] and "\n" not in r["error"]
  assert json.loads((tmp_path / "r" / "result.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("family,size,field,value,match", [
    ("tree", 8, "max_leaf_nodes", 1, "model.max_leaf_nodes"),
    ("svm", 8, "calibration", "none", "model.calibration"),
    ("svm", 8, "gamma", -1.0, "model.gamma"),
    ("forest", "2x8", "n_estimators", 0, "model.n_estimators"),
    ("logreg", 1, "C", 0.0, "model.C"),
])
def test_bad_config_raises_before_work(tmp_path, family, size, field, value, match):
  c = run.default_config(family, size)
  setattr(c.model, field, value)
  with pytest.raises(ValueError, match=match):
    run.run(c, str(tmp_path / "r"))
  assert not (tmp_path / "r").exists()


def test_bad_family_size_and_data():
  with pytest.raises(ValueError, match="family"):
    run.default_config("knn", 3)
  with pytest.raises(ValueError, match="size"):
    run.default_config("forest", "16")
  c = run.default_config("tree", 8)
  c.data.train_examples = 0
  with pytest.raises(ValueError, match="data.train_examples"):
    run.validate(c)
  c = run.default_config("tree", 8)
  c.data.task = "lm"
  with pytest.raises(ValueError, match="data.task"):
    run.validate(c)


def test_baseline_runs_grid():
  cfgs = run.baseline_runs([100, None])
  assert len(cfgs) == 2 * sum(len(s) for s in run.CLASSIC_LADDERS.values())
  assert {c.family for c in cfgs} == {"svm", "tree", "forest", "logreg"}
  for c in cfgs:
    run.validate(c)
  assert {c.data.train_examples for c in cfgs} == {100, None}
  assert len(run.baseline_runs()) == len(run.TRAIN_EXAMPLES) * sum(len(s) for s in run.CLASSIC_LADDERS.values())
