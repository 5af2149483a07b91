"""Classic classifiers with a size knob and an exact parameter count, scored like the DNN ladder.

Families and their size knob:
  svm     RBF kernel SVM. `n_components > 0`: Nystroem approximation with that many kernel
          components + a linear SVM (hinge loss) on the features, the form that scales to large data;
          `n_components = 0`: exact `SVC` (its size, the number of support vectors, is then an outcome).
  tree    decision tree, `max_leaf_nodes` (best-first growth).
  forest  random forest, `n_estimators` trees x `max_leaf_nodes` leaves each.
  logreg  multinomial logistic regression; its size is fixed (classes x features + classes), `C` sets
          the regularization only.

Probabilities: the SVM has none, and trees/forests output leaf frequencies that are exactly 0 for most
classes (an infinite log-loss), so these are calibrated with `CalibratedClassifierCV(ensemble=False)`:
cross-validated scores on the training split fit one calibrator per class (Platt sigmoid by default),
then the model is refit on the whole training split. Logistic regression is used as is.

Parameter count (`num_params`): the numbers a fitted model needs to predict, counted from the fitted
estimator's arrays:
  tree      internal nodes x 2 (feature id, threshold) + leaves x classes (class distribution)
  forest    sum over trees
  SVC       support vectors x features + dual coefficients + intercepts
  Nystroem  components x features + the components x components normalization matrix
  linear    coefficients + intercepts (LinearSVC head, logistic regression)
  calibration  sigmoid: 2 per class (a, b); isotonic: the stored threshold pairs
Index bookkeeping (child pointers, support-vector indices) is structure, not parameters.
"""

import numpy as np
import threadpoolctl
from sklearn import calibration, ensemble, isotonic, kernel_approximation, linear_model, metrics
from sklearn import pipeline, svm, tree

from scaling import errors

FAMILIES = ("svm", "tree", "forest", "logreg")
CALIBRATIONS = ("sigmoid", "isotonic", "none")


def rbf_gamma(gamma: float | None, X: np.ndarray) -> float:
  """None means sklearn's 'scale' heuristic, 1 / (features * Var[X]), taken on the training split."""
  if gamma is not None:
    return float(gamma)
  var = float(X.var())
  return 1.0 / (X.shape[1] * var) if var > 0 else 1.0


def build(family: str, model, seed: int, X_train: np.ndarray):
  """An unfitted estimator for one family; `model` is the run config's `model` section."""
  if family == "svm":
    gamma = rbf_gamma(model.gamma, X_train)
    if model.n_components > 0:
      est = pipeline.make_pipeline(
          kernel_approximation.Nystroem(kernel="rbf", gamma=gamma, n_components=model.n_components,
                                        random_state=seed),
          svm.LinearSVC(C=model.C, max_iter=model.max_iter, random_state=seed))
    else:
      est = svm.SVC(kernel="rbf", C=model.C, gamma=gamma, random_state=seed)
  elif family == "tree":
    est = tree.DecisionTreeClassifier(max_leaf_nodes=model.max_leaf_nodes, random_state=seed)
  elif family == "forest":
    est = ensemble.RandomForestClassifier(
        n_estimators=model.n_estimators, max_leaf_nodes=model.max_leaf_nodes,
        n_jobs=model.n_jobs, random_state=seed)
  elif family == "logreg":
    est = linear_model.LogisticRegression(C=model.C, max_iter=model.max_iter)
  else:
    raise errors.ConfigError(f"family: must be one of {FAMILIES}, got {family!r}")
  if model.calibration == "none":
    return est
  return calibration.CalibratedClassifierCV(
      est, method=model.calibration, cv=model.calibration_cv, ensemble=False)


def fit(family: str, model, seed: int, X: np.ndarray, y: np.ndarray):
  if model.calibration != "none":
    smallest = int(np.bincount(y)[np.unique(y)].min())
    if smallest < model.calibration_cv:
      raise errors.ConfigError(
          f"model.calibration_cv: {model.calibration_cv}-fold calibration needs >= "
          f"{model.calibration_cv} training examples per class, the rarest class has {smallest}")
  # BLAS/OpenMP threads are capped at n_jobs: on these small problems extra threads are overhead, and
  # on a shared box oversubscribed BLAS made a digits logistic regression 50x slower (0.3 s -> 16 s).
  with threadpoolctl.threadpool_limits(limits=model.n_jobs):
    return build(family, model, seed, X).fit(X, y)


def predict_proba(est, X: np.ndarray, n_classes: int) -> np.ndarray:
  """Probabilities over all `n_classes` labels (classes absent from training get 0)."""
  p = est.predict_proba(X).astype(np.float64)
  out = np.zeros((len(X), n_classes), np.float64)
  out[:, est.classes_] = p / p.sum(1, keepdims=True)  # float32 inputs give float32 rows off by ~1e-7
  return out


def evaluate(est, X: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
  """Mean log-loss (nats/example; sklearn clips p to [eps, 1-eps]) and accuracy."""
  p = predict_proba(est, X, n_classes)
  return dict(loss=float(metrics.log_loss(y, p, labels=np.arange(n_classes))),
              accuracy=float(np.mean(p.argmax(1) == y)))


def num_params(est) -> int:
  """Stored parameter count of a fitted estimator (see the module docstring for what counts)."""
  if isinstance(est, calibration.CalibratedClassifierCV):
    return sum(num_params(c.estimator) + sum(num_params(k) for k in c.calibrators)
               for c in est.calibrated_classifiers_)
  if isinstance(est, calibration._SigmoidCalibration):
    return 2  # a_, b_
  if isinstance(est, isotonic.IsotonicRegression):
    return int(est.X_thresholds_.size + est.y_thresholds_.size)
  if isinstance(est, pipeline.Pipeline):
    return sum(num_params(s) for _, s in est.steps)
  if isinstance(est, kernel_approximation.Nystroem):
    return int(est.components_.size + est.normalization_.size)
  if isinstance(est, svm.SVC):
    return int(est.support_vectors_.size + est.dual_coef_.size + est.intercept_.size)
  if isinstance(est, (svm.LinearSVC, linear_model.LogisticRegression)):
    return int(est.coef_.size + est.intercept_.size)
  if isinstance(est, tree.DecisionTreeClassifier):
    t = est.tree_
    n_leaves = int(t.n_leaves)
    return 2 * (t.node_count - n_leaves) + n_leaves * t.value.shape[-1] * t.value.shape[-2]
  if isinstance(est, ensemble.RandomForestClassifier):
    return sum(num_params(t) for t in est.estimators_)
  raise TypeError(f"num_params: no parameter count for {type(est).__name__}")
