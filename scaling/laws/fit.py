"""Scaling-law fits with bootstrap confidence intervals.

Laws (each returns a plain dict: `params`, `derived`, `ci` (95 % percentile bootstrap), `boot` (the
bootstrap samples, numpy; dropped from fit.json) and law-specific extras):

  power      L(x) = E + A x^-alpha                 (x = params, tokens, FLOPs, training examples)
  kaplan     L(x) = (x_c / x)^alpha                (Kaplan et al. 2020; least squares in log-log)
  approach1  minimum-loss envelope over runs at each FLOP budget -> N_opt = k_N C^a, D_opt = k_D C^b
  approach2  IsoFLOP: parabola of loss in log N on the sizes around each budget's lowest loss -> N_opt(C), D_opt(C)
  approach3  L(N, D) = E + A/N^alpha + B/D^beta  (Hoffmann et al. 2022, App. D.2)

power and approach3 share one estimator (scaling/laws/estimator.py: Huber on log loss, L-BFGS from a grid of
starts, a warm-started bootstrap); approaches 1-3 live in scaling/laws/chinchilla.py and are importable from
here. This module holds the one-variable laws, predictions, the extrapolation check and the sweep level
(DataFrame -> fits, fit.json, the table).

`fit_sweep(sweep_dir)` / `format_table(fit)` are the CLI hooks: fit.json (+ fit_boot.npz) per sweep.
"""

import itertools
import math
import os
import tempfile

import numpy as np
import pandas as pd

from scaling import io
from scaling.laws.chinchilla import (_approach3_derived, approach1, approach2, approach3,  # noqa: F401
                                     chinchilla_grid, frontier)
from scaling.laws.estimator import (BOOTSTRAPS, CI, HUBER_DELTA, _boundary_notes, _ci, _distinct_ok,
                                    _fit_sum_of_powers, _need_distinct, _need_points, _same_length, _values,
                                    _wls_line)
from scaling.laws import data_constrained, hparams
from scaling.laws.estimator import column as _col
from scaling.sweep import results
from scaling import errors

LAWS = ("auto", "power", "kaplan", "approach1", "approach2", "approach3", "hparams", "data_constrained")
_OWN_MODULE = {"hparams": hparams, "data_constrained": data_constrained}  # each with a fit_frame


# ---------------------------------------------------------------------------------------------
# One-variable laws: power (the shared estimator) and kaplan (a line in log-log).

def _power_grid() -> np.ndarray:
  """Starts for one-variable laws, in units where log x is centred (so the grid is scale free)."""
  e = np.linspace(-3.0, 2.0, 6)       # E from 0.05 to 7.4 nats
  a = np.linspace(-4.0, 2.0, 7)       # reducible loss at the geometric-mean x
  alpha = np.array([0.03, 0.1, 0.3, 0.6, 1.0, 1.5])
  return np.array(list(itertools.product(e, a, alpha)))


def power(x, loss, *, n_boot: int = 200, seed: int = 0, x_name: str = "x",
          delta: float = HUBER_DELTA, ftol: float = 1e-6, bootstrap: str = "pairs", seed_losses=None) -> dict:
  """Saturating power law L(x) = E + A x^-alpha.

  `seed_losses`: per point, the losses of its seeds (`loss` is their mean; results.best_points'
  `<loss>_seeds`). With it the pairs bootstrap also redraws each resampled point's seeds (`seed_targets`),
  so the interval carries the seed noise the means still have.

  bootstrap='pairs' (default) resamples the points; 'residual' keeps every x and redraws residuals.
  experiments/ci_coverage.py measured both on planted 5-size ladders (1 % noise): pairs covered the true
  alpha in 86-94 % of them (95 % intended), residual in 74-78 % (with n - 3 = 2 residual degrees of freedom
  its intervals are too narrow), so residual is there to compare, not to trust."""
  if bootstrap not in BOOTSTRAPS:
    raise errors.ConfigError(f"bootstrap: {bootstrap!r}; allowed: {', '.join(BOOTSTRAPS)}")
  x, loss = _values(x_name, x), _values("loss", loss)
  _same_length("power", **{x_name: x, "loss": loss})
  _need_points("power", len(x), 3, "E, A, alpha")
  _need_distinct("power", x_name, x, 3)
  x0 = float(np.exp(np.mean(np.log(x))))  # fit in units of the geometric mean, convert back after
  Z = np.log(x / x0)[:, None]
  Y = seed_targets(loss, seed_losses, n_boot, seed) if seed_losses is not None and bootstrap == "pairs" else None
  theta, obj, at_best, boot = _fit_sum_of_powers(
      Z, np.log(loss), _power_grid(), n_boot=n_boot, seed=seed, delta=delta, ftol=ftol,
      boot_ok=_distinct_ok(x, 3), resample=bootstrap, Y_BxN=Y)

  def named(th):
    th = np.atleast_2d(th)
    with np.errstate(over="ignore"):  # a resample with a flat curve can put A past float range (inf, not an error)
      return {"E": np.exp(th[:, 0]), "A": np.exp(th[:, 1] + th[:, 2] * np.log(x0)), "alpha": th[:, 2]}
  notes = _boundary_notes(theta, loss)
  if np.unique(x).size == 3:
    # The only resamples with 3 distinct sizes are the data itself: every "bootstrap" fit would be the
    # same curve, a zero-width interval that looks like certainty.
    boot = np.full_like(boot, np.nan)
    notes.append(f"3 {x_name} values for 3 parameters: the curve passes through every point and the "
                 "bootstrap has nothing to resample, so there is no interval; add sizes or fit 'kaplan'")
  samples = named(boot)
  return dict(law="power", x=x_name, n=len(x), bootstrap=bootstrap + ("+seeds" if Y is not None else ""),
              params={k: float(v[0]) for k, v in named(theta).items()},
              derived={}, ci=_ci(samples), boot=samples, objective=obj, starts_at_optimum=at_best,
              n_boot=int(np.isfinite(boot[:, 0]).sum()) if n_boot else 0, x_range=[float(x.min()), float(x.max())],
              notes=notes)


def seed_targets(loss, seed_losses, n_boot: int, seed: int) -> np.ndarray | None:
  """B x N log-loss targets: each point's seed mean with its k seeds redrawn with replacement, the redrawn
  mean's deviation scaled by sqrt(k / (k - 1)) (a k-seed resample's mean varies (k - 1) / k as much as the
  seed mean does). Points with one seed keep their loss. None when no point has two seeds."""
  k = np.array([len(s) for s in seed_losses])
  if len(k) != len(loss):
    raise errors.ConfigError(f"seed_losses: {len(k)} points for {len(loss)} losses; allowed: one tuple per point")
  if not n_boot or k.max(initial=0) < 2:
    return None
  rng = np.random.default_rng([seed, 1])  # its own stream: the point resamples stay those of seed
  out_BxN = np.empty((n_boot, len(loss)))
  for i, (s, m) in enumerate(zip(seed_losses, loss)):
    s = np.asarray(s, dtype=np.float64)
    if s.size < 2:
      out_BxN[:, i] = m
      continue
    redrawn_B = s[rng.integers(0, s.size, size=(n_boot, s.size))].mean(1)
    out_BxN[:, i] = m + (redrawn_B - s.mean()) * np.sqrt(s.size / (s.size - 1))
  return np.log(np.maximum(out_BxN, 1e-12))


def kaplan(x, loss, *, n_boot: int = 200, seed: int = 0, x_name: str = "x") -> dict:
  """Pure power law L(x) = (x_c / x)^alpha, least squares on log L = alpha log x_c - alpha log x."""
  x, loss = _values(x_name, x), _values("loss", loss)
  _same_length("kaplan", **{x_name: x, "loss": loss})
  _need_points("kaplan", len(x), 2, "x_c, alpha")
  _need_distinct("kaplan", x_name, x, 2)
  lx, ly = np.log(x), np.log(loss)
  rng = np.random.default_rng(seed)
  W = np.vstack([np.ones((1, len(x))), rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_boot)])
  W[1:][~_distinct_ok(x, 2)(W[1:])] = np.nan
  slope, icpt = _wls_line(lx, ly, W)

  def named(slope, icpt):
    alpha = -slope
    with np.errstate(over="ignore", divide="ignore"):  # a resample with alpha ~ 0 has x_c = inf: its CI says so
      return {"x_c": np.exp(icpt / alpha), "alpha": alpha}
  samples = named(slope[1:], icpt[1:])
  return dict(law="kaplan", x=x_name, n=len(x), params={k: float(v[0]) for k, v in named(slope[:1], icpt[:1]).items()},
              derived={}, ci=_ci(samples), boot=samples, n_boot=int(np.isfinite(slope[1:]).sum()),
              x_range=[float(x.min()), float(x.max())])


# ---------------------------------------------------------------------------------------------
# Predictions and the extrapolation check.

def predict(fit: dict, *xs, params: dict | None = None) -> np.ndarray:
  """Loss predicted by a power / kaplan (x) or approach3 (N, D) fit. `params` overrides fit['params']
  (pass bootstrap samples as arrays of shape (B, 1) to get a (B, n) band)."""
  p = fit["params"] if params is None else params
  xs = [np.asarray(x, dtype=np.float64) for x in xs]
  law = fit["law"]
  if law == "power":
    return p["E"] + p["A"] * xs[0] ** -p["alpha"]
  if law == "kaplan":
    return (p["x_c"] / xs[0]) ** p["alpha"]
  if law == "approach3":
    return p["E"] + p["A"] / xs[0] ** p["alpha"] + p["B"] / xs[1] ** p["beta"]
  raise errors.ConfigError(f"law: predict() takes 'power', 'kaplan' or 'approach3' fits; got {law!r}")


def predict_band(fit: dict, *xs, q=CI) -> tuple[np.ndarray, np.ndarray] | None:
  """Percentile band of predictions over the bootstrap samples (None if the fit has none)."""
  boot = fit.get("boot")
  if not boot or not len(next(iter(boot.values()))):
    return None
  names = {"power": ("E", "A", "alpha"), "kaplan": ("x_c", "alpha"),
           "approach3": ("E", "A", "B", "alpha", "beta")}[fit["law"]]
  p = {k: np.asarray(boot[k])[:, None] for k in names}
  with np.errstate(all="ignore"):
    pred = predict(fit, *xs, params=p)
  pred = pred[np.all(np.isfinite(pred), axis=1)]
  if len(pred) < 2:
    return None
  lo, hi = np.percentile(pred, q, axis=0)
  return lo, hi


def optimal_allocation(fit: dict, C) -> tuple[np.ndarray, np.ndarray]:
  """(N_opt, D_opt) at FLOP budgets C from an approach1/2/3 fit."""
  C = np.asarray(C, dtype=np.float64)
  p, law = fit["params"], fit["law"]
  if law in ("approach1", "approach2"):
    return p["k_N"] * C ** p["a"], p["k_D"] * C ** p["b"]
  if law == "approach3":
    d = _approach3_derived({k: np.asarray(v) for k, v in p.items()}, [])
    return d["G"] * (C / 6) ** d["a"], (C / 6) ** d["b"] / d["G"]
  raise errors.ConfigError(f"law: optimal_allocation() takes approach1/2/3 fits; got {law!r}")


def extrapolate(loss, *xs, law: str = "power", holdout: int = 1, n_boot: int = 200, seed: int = 0,
                x_name: str = "x") -> dict:
  """Fit on all but the `holdout` largest sizes (distinct values of the first x), predict those.

  xs = (x,) for power / kaplan, (N, D) for approach3. Reports predicted vs actual loss, the
  relative error and whether the actual loss lies in the bootstrap 95 % prediction band."""
  if law not in ("power", "kaplan", "approach3"):
    raise errors.ConfigError(f"law: extrapolate() takes 'power', 'kaplan' or 'approach3'; got {law!r}")
  if not (isinstance(holdout, int) and holdout >= 1):
    raise errors.ConfigError(f"holdout: must be an integer >= 1; got {holdout!r}")
  loss = _values("loss", loss)
  xs = [_values(x_name if i == 0 else "D", x) for i, x in enumerate(xs)]
  sizes = np.unique(xs[0])
  if sizes.size <= holdout:
    raise errors.ConfigError(f"extrapolate: {sizes.size} distinct sizes; cannot hold out {holdout} and fit the rest")
  cut = sizes[-holdout]
  train, test = xs[0] < cut, xs[0] >= cut
  fitter = {"power": lambda *a, **k: power(*a, x_name=x_name, **k),
            "kaplan": lambda *a, **k: kaplan(*a, x_name=x_name, **k), "approach3": approach3}[law]
  f = fitter(*[x[train] for x in xs], loss[train], n_boot=n_boot, seed=seed)
  pred = predict(f, *[x[test] for x in xs])
  band = predict_band(f, *[x[test] for x in xs])
  points = []
  for i in range(int(test.sum())):
    row = {x_name if k == 0 else "D": float(x[test][i]) for k, x in enumerate(xs)}
    row.update(actual=float(loss[test][i]), predicted=float(pred[i]),
               rel_error=float(pred[i] / loss[test][i] - 1))
    if band is not None:
      row.update(lo=float(band[0][i]), hi=float(band[1][i]),
                 in_band=bool(band[0][i] <= loss[test][i] <= band[1][i]))
    points.append(row)
  return dict(law=law, holdout=holdout, fit_below=float(cut), n_fit=int(train.sum()), params=f["params"],
              points=points, mean_abs_rel_error=float(np.mean([abs(p["rel_error"]) for p in points])))


# ---------------------------------------------------------------------------------------------
# Sweep level: DataFrame -> dict of fits; the CLI hooks.

def _x_column(fdf: pd.DataFrame, x: str) -> str:
  """`x` for a family, falling back to total `params` where the family has no `x` values (classic)."""
  if x in fdf.columns and pd.to_numeric(fdf[x], errors="coerce").notna().any():
    return x
  return "params"


def _min_per_size(xv: np.ndarray, yv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Lowest loss at each size. On results.best_points (one row per point) this only chooses between
  training lengths (the longest-trained model of the size); the inner grid was settled by mark_best."""
  _values("loss", yv)
  u, inv = np.unique(xv, return_inverse=True)
  best = np.full(u.size, np.inf)
  np.minimum.at(best, inv, yv)
  return u, best


def _flop_budget(fdf: pd.DataFrame) -> np.ndarray:
  """Each run's FLOP budget (IsoFLOP grids), NaN elsewhere. A params ladder at `tokens_per_param` tags its
  runs with a *token* budget that grows with N: those are not compute budgets, and its (N, D) lie on one line,
  where approach 3 cannot tell A/N^alpha from B/D^beta."""
  if "budget" not in fdf.columns:
    return np.full(len(fdf), np.nan)
  b = pd.to_numeric(fdf["budget"], errors="coerce").to_numpy(dtype=np.float64)
  if "budget_unit" in fdf.columns:  # absent: runs made before the unit was tagged, all FLOP-budgeted
    b = np.where(fdf["budget_unit"].astype(str).isin(["flops", "nan", "None"]), b, np.nan)
  return b


def _budgets(fdf: pd.DataFrame) -> np.ndarray:
  b = _flop_budget(fdf)
  return np.unique(b[np.isfinite(b)])


def fit_frame(df: pd.DataFrame, law: str = "auto", x: str = "params_nonembed", loss: str = "eval_loss",
              curves: pd.DataFrame | None = None, n_boot: int = 200, seed: int = 0, holdout: int = 1) -> dict:
  """Fits on a `results.load` DataFrame (completed runs only). See fit_sweep."""
  if law not in LAWS:
    raise errors.ConfigError(f"law: unknown {law!r}; allowed: {', '.join(LAWS)}")
  if not (isinstance(n_boot, int) and n_boot >= 0):
    raise errors.ConfigError(f"n_boot: must be an integer >= 0; got {n_boot!r}")
  for name, col in (("x", x), ("loss", loss)):
    if col not in df.columns:
      numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
      raise errors.ConfigError(f"{name}: no column {col!r} in the results; numeric columns: {', '.join(numeric)}")
  if law in _OWN_MODULE:
    law_module = _OWN_MODULE[law]
    law_module.check_columns(df)
  if "is_best" not in df.columns:
    df = results.mark_best(df, loss=loss)
  done = df[df["status"] == "completed"] if "status" in df.columns else df
  if done.empty:
    raise errors.ConfigError("results: no completed runs to fit")
  # Every law but hparams (which reads the whole inner grid) fits one row per point: its best setting,
  # the loss averaged over that setting's seeds (run_ids: every run that went into the fit).
  used = done if law == "hparams" else done[done["is_best"].astype(bool)]
  done = used if law == "hparams" else results.best_points(used, loss)
  out = dict(law=law, x=x, loss=loss, n_boot=n_boot, seed=seed, run_ids=sorted(map(str, used["run_id"])),
             fits={}, extrapolation={}, skipped={}, best_at_edge={})
  boot = dict(n_boot=n_boot, seed=seed)

  def attempt(store, key, fn, *args, **kw):
    # Fit what can be fitted and record why the rest was skipped (format_table prints the reasons).
    try:
      out[store][key] = fn(*args, **kw)
    except ValueError as e:
      out["skipped"][key if store == "fits" else f"{store}/{key}"] = str(e)

  families = sorted(done["family"].dropna().unique())
  if law == "auto":
    approach_families = [f for f in families if _budgets(done[done["family"] == f]).size >= 2]
  elif law.startswith("approach"):
    approach_families = [f for f in families if _budgets(done[done["family"] == f]).size] or families
  else:
    approach_families = []
  for fam in families:
    fdf = done[done["family"] == fam]
    xc = _x_column(fdf, x)
    if law != "hparams" and (fdf["best_at_edge"].astype(str) != "").any():
      out["best_at_edge"][fam] = _edge_note(fdf, xc)
    if law in _OWN_MODULE:
      attempt("fits", f"{law}/{fam}", lambda: {
          **law_module.fit_frame(fdf, x=xc, loss=loss, **boot), "family": fam,
          **({"N": xc} if law == "data_constrained" else {})})
      continue
    if law in ("auto", "power", "kaplan"):
      name = "kaplan" if law == "kaplan" else "power"
      if law == "auto" and xc in fdf.columns and fdf[xc].nunique() == 3:
        out["skipped"][f"power/{fam}"] = ("3 sizes for E, A, alpha: the curve would pass through every point "
                                          "with no interval; fitted kaplan (x_c / x)^alpha instead")
        name = "kaplan"
      attempt("fits", f"{name}/{fam}", _size_fit, name, fdf, xc, loss, fam, boot)
    if law == "auto":
      attempt("extrapolation", f"power/{fam}", _size_extrapolation, fdf, xc, loss, fam, holdout, boot)
      # Learning curves in training-set size (classic baselines, data ladders): one fit per size.
      if "train_examples" in fdf.columns:
        for size, sdf in fdf.groupby("size", dropna=False):
          te = _col(sdf, "train_examples")
          if np.unique(te[np.isfinite(te)]).size >= 3:
            attempt("fits", f"power/{fam}/{size}/train_examples", lambda: {
                **power(te, _col(sdf, loss), x_name="train_examples", **boot), "family": fam, "size": str(size)})
    if fam not in approach_families:
      continue
    if law == "auto":  # Kaplan's L(C): the lowest loss at each budget, a power law in C
      def frontier_fit():
        b, ell = _flop_budget(fdf), _col(fdf, loss)
        return {**power(*_min_per_size(b[np.isfinite(b)], ell[np.isfinite(b)]), x_name="flops", **boot),
                "family": fam}
      attempt("fits", f"power/{fam}/flops", frontier_fit)
    # Columns are read inside attempt() (a missing column is a reason to skip), and used right away.
    N, D, L = (lambda: _col(fdf, xc)), (lambda: _col(fdf, "tokens")), (lambda: _col(fdf, loss))
    if law in ("auto", "approach3"):
      attempt("fits", f"approach3/{fam}", lambda: {
          **approach3(N(), D(), L(), budgets=_budgets(fdf), **boot), "family": fam, "N": xc})
    if law == "auto":
      attempt("extrapolation", f"approach3/{fam}", lambda: {
          **extrapolate(L(), N(), D(), law="approach3", holdout=holdout, x_name=xc, **boot), "family": fam})
    if law in ("auto", "approach2"):
      def a2():
        # Every seed of each point's best setting: approach2 averages them and its bootstrap redraws them.
        runs = used[used["family"] == fam]
        b = _flop_budget(runs)
        s = np.isfinite(b)
        return {**approach2(_col(runs, xc)[s], _col(runs, "tokens")[s], _col(runs, loss)[s], b[s], **boot),
                "family": fam, "N": xc}
      attempt("fits", f"approach2/{fam}", a2)
    if law in ("auto", "approach1"):
      attempt("fits", f"approach1/{fam}", lambda: {
          **_approach1_frame(fdf, xc, loss, curves, **boot), "family": fam, "N": xc})
  if not out["fits"]:
    why = "; ".join(f"{k}: {v}" for k, v in out["skipped"].items() if not k.startswith("extrapolation/"))
    raise errors.ConfigError(f"{law}: nothing could be fitted ({why or 'no family has enough runs'})")
  return out


def _edge_note(fdf, xc) -> str:
  edge = fdf[fdf["best_at_edge"].astype(str) != ""]
  ladders = "sweep" in fdf.columns and fdf["sweep"].nunique() > 1  # the same size in several ladders
  where = [(f"{r['sweep']} " if ladders else "") + f"{xc}={_g(float(r[xc]))}"
           + (f" budget={_g(float(r['budget']))}" if pd.notna(r.get("budget")) else "")
           + f" ({r['best_at_edge']})" for _, r in edge.iterrows()]
  return (f"{len(edge)} of {len(fdf)} points have their best run at the edge of the inner grid (the optimum "
          f"was not bracketed; widen the grid there): " + ", ".join(where))


def _size_fit(name, fdf, xc, loss, fam, boot) -> dict:
  _need_distinct(name, xc, _values(xc, _col(fdf, xc)), 3 if name == "power" else 2)
  xs, ys = _min_per_size(_col(fdf, xc), _col(fdf, loss))
  seeds = {"seed_losses": _seeds_at(fdf, xc, loss, xs, ys)} if name == "power" and f"{loss}_seeds" in fdf.columns else {}
  f = {**(power if name == "power" else kaplan)(xs, ys, x_name=xc, **boot, **seeds), "family": fam}
  if _budgets(fdf).size >= 2:
    f["notes"] = f.get("notes", []) + [
        "runs at several FLOP budgets: each size's lowest loss comes from a different training length, "
        "so this is not L(N) at convergence; approach3's E + A/N^alpha is"]
  return f


def _seeds_at(fdf, xc, loss, xs, ys) -> list[tuple]:
  """The seeds' losses (results.best_points' `<loss>_seeds`) of the point _min_per_size chose at each size."""
  x, y, seeds = _col(fdf, xc), _col(fdf, loss), fdf[f"{loss}_seeds"].tolist()
  return [seeds[int(np.flatnonzero((x == u) & (y == v))[0])] for u, v in zip(xs, ys)]


def _size_extrapolation(fdf, xc, loss, fam, holdout, boot) -> dict:
  xs, ys = _min_per_size(_col(fdf, xc), _col(fdf, loss))
  if xs.size < 3 + holdout:
    raise errors.ConfigError(f"extrapolate: {xs.size} sizes; need {3 + holdout} to hold out {holdout} and fit 3 parameters")
  return {**extrapolate(ys, xs, law="power", holdout=holdout, x_name=xc, **boot), "family": fam}


def _approach1_frame(fdf, xc, loss, curves, n_boot, seed) -> dict:
  """Envelope over training curves when there are any (C = tokens * the run's FLOPs per token),
  else over final results grouped by `budget`."""
  ids = set(fdf["run_id"])
  if curves is not None and len(curves) and loss in curves.columns:
    cv = curves[curves["run_id"].isin(ids)].dropna(subset=[loss, "tokens"])
    cv = cv[pd.to_numeric(cv["tokens"], errors="coerce") > 0]
    if cv["run_id"].nunique() >= 2:
      per = fdf.set_index("run_id")
      fpt = (per["flops"].astype(float) / per["tokens"].astype(float)).reindex(cv["run_id"]).to_numpy()
      tok = cv["tokens"].to_numpy(dtype=np.float64)
      return approach1(tok * fpt, per[xc].astype(float).reindex(cv["run_id"]).to_numpy(), tok,
                       cv[loss].to_numpy(dtype=np.float64), cv["run_id"].to_numpy(), n_boot=n_boot,
                       seed=seed, budgets=_budgets(fdf) if _budgets(fdf).size else None)
  b = _flop_budget(fdf)
  sel = np.isfinite(b)
  if not sel.any():
    raise errors.ConfigError("approach1: needs training curves (metrics.jsonl) or runs with a 'budget' tag")
  return approach1(b[sel], _col(fdf, xc)[sel], _col(fdf, "tokens")[sel], _col(fdf, loss)[sel],
                   fdf["run_id"].to_numpy()[sel], n_boot=n_boot, seed=seed)


def _jsonable(obj):
  """fit dict -> JSON: drop bootstrap samples, non-finite floats become null."""
  if isinstance(obj, dict):
    return {k: _jsonable(v) for k, v in obj.items() if k != "boot"}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if isinstance(obj, (float, np.floating)):
    return float(obj) if np.isfinite(obj) else None
  if isinstance(obj, np.integer):
    return int(obj)
  if isinstance(obj, np.bool_):
    return bool(obj)
  return obj


def fit_sweep(sweep_dir: str, law: str = "auto", x: str = "params_nonembed", n_boot: int = 200,
              seed: int = 0, loss: str = "eval_loss") -> dict:
  """Loads SWEEP_DIR's results, fits, writes SWEEP_DIR/fit.json atomically, returns the dict.

  Every law fits each point's best setting (`is_best`, results.mark_best: the inner grid of lr / batch /
  warmup is settled first, by the mean loss over seeds, which results.best_points fits; fit.json's
  `best_at_edge` names points whose best sits at the grid's edge), except 'hparams', which reads the
  whole grid (scaling/laws/hparams.py); 'data_constrained' is scaling/laws/data_constrained.py (needs a
  `unique_tokens` column).
  law 'auto': 'power' per family (x = `x`, lowest loss per size; `params` for families without `x`),
  the extrapolation check, power laws in `train_examples` for data ladders, and, for families with
  runs at >= 2 `budget` values, approaches 1-3 and a power law in FLOPs of the lowest loss per budget.
  Other laws fit only that law. Families that cannot be fitted are listed under 'skipped' with the
  reason; if nothing can be fitted it raises ValueError with the reasons. The bootstrap samples go to
  SWEEP_DIR/fit_boot.npz (`load_fit` puts them back), so plots can draw bands without refitting.
  Returns what fit.json holds."""
  if law not in LAWS:  # before reading the directory: a typo is named even when the directory is wrong too
    raise errors.ConfigError(f"law: unknown {law!r}; allowed: {', '.join(LAWS)}")
  df = results.load(sweep_dir)
  curves = results.load_curves(sweep_dir) if law in ("auto", "approach1") else None
  full = fit_frame(df, law=law, x=x, loss=loss, curves=curves, n_boot=n_boot, seed=seed)
  fit = _jsonable(full)
  fit["sweep_dir"] = os.path.abspath(sweep_dir)
  boot = {f"{key}/{name}": np.asarray(v) for key, f in full["fits"].items() for name, v in f.get("boot", {}).items()}
  d = os.path.abspath(sweep_dir)
  fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-fit_boot", suffix=".npz")
  with os.fdopen(fd, "wb") as fh:
    np.savez(fh, **boot)
  os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
  os.replace(tmp, os.path.join(d, "fit_boot.npz"))
  io.atomic_write_json(os.path.join(sweep_dir, "fit.json"), fit)  # last: fit.json marks a complete fit
  return fit


def load_fit(sweep_dir: str) -> dict | None:
  """SWEEP_DIR/fit.json with its bootstrap samples (from fit_boot.npz) back under each fit's 'boot'."""
  path = os.path.join(sweep_dir, "fit.json")
  if not os.path.exists(path):
    return None
  fit = io.read_json(path)
  bpath = os.path.join(sweep_dir, "fit_boot.npz")
  if os.path.exists(bpath):
    with np.load(bpath) as z:
      for name in z.files:
        key, param = name.rsplit("/", 1)
        if key in fit.get("fits", {}):
          fit["fits"][key].setdefault("boot", {})[param] = z[name]
  return fit


def format_table(fit: dict) -> str:
  """Parameters with 95 % bootstrap intervals, one block per fit; then the extrapolation check."""
  lines = []
  for key, f in fit.get("fits", {}).items():
    head = f"{key}  ({f.get('law')}, x={f.get('N', f.get('x'))}, n={f.get('n')}, bootstrap={f.get('n_boot')})"
    lines += [head, f"  {'parameter':<28} {'value':>12}   95% CI"]
    ci = f.get("ci", {})
    params = f.get("params", {})  # fit.json has sorted keys: put the law's own order back
    params = {k: params[k] for k in sorted(params, key=lambda k: (_ORDER.index(k) if k in _ORDER else 99, k))}
    for name, v in {**params, **f.get("derived", {})}.items():
      lo, hi = ci.get(name, [None, None])
      band = f"[{_g(lo)}, {_g(hi)}]" if lo is not None else ""
      lines.append(f"  {name:<28} {_g(v):>12}   {band}")
    lines += [f"  note: {n}" for n in f.get("notes", [])]
    lines.append("")
  for key, e in fit.get("extrapolation", {}).items():
    lines.append(f"extrapolation {key}: fit below {_g(e['fit_below'])}, "
                 f"mean |rel error| {100 * e['mean_abs_rel_error']:.2f}%")
    for p in e["points"]:
      xs = ", ".join(f"{k}={_g(v)}" for k, v in p.items()
                     if k not in ("actual", "predicted", "rel_error", "lo", "hi", "in_band"))
      lines.append(f"  {xs}: actual {_g(p['actual'])}  predicted {_g(p['predicted'])}"
                   f"  ({100 * p['rel_error']:+.2f}%{', in band' if p.get('in_band') else ''})")
  for key, why in fit.get("skipped", {}).items():
    lines.append(f"skipped {key}: {why}")
  for fam, note in fit.get("best_at_edge", {}).items():
    lines.append(f"best at the edge, {fam}: {note}")
  return "\n".join(lines).rstrip() + "\n"


_ORDER = ["E", "A", "B", "alpha", "beta", "x_c", "a", "b", "k_N", "k_D"]


def _g(v) -> str:
  return "nan" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"
