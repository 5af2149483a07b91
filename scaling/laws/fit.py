"""Scaling-law fits with bootstrap confidence intervals.

Laws (each returns a plain dict: `params`, `derived`, `ci` (95 % percentile bootstrap), `boot` (the
bootstrap samples, numpy; dropped from fit.json) and law-specific extras):

  power      L(x) = E + A x^-alpha                 (x = params, tokens, FLOPs, training examples)
  kaplan     L(x) = (x_c / x)^alpha                (Kaplan et al. 2020; least squares in log-log)
  approach1  minimum-loss envelope over runs at each FLOP budget -> N_opt = k_N C^a, D_opt = k_D C^b
  approach2  IsoFLOP: parabola of loss in log N per budget, its minimum -> N_opt(C), D_opt(C)
  approach3  L(N, D) = E + A/N^alpha + B/D^beta  (Hoffmann et al. 2022, App. D.2)

power and approach3 share one estimator: L-hat = exp(LSE(e, a_j - alpha_j log x_j)) with
E = e^e, A_j = e^a_j, Huber(delta=1e-3) on log L-hat - log L summed over runs, L-BFGS from a grid
of starts (all at once, `lbfgs.minimize`; float32 to rank the starts, the best few polished in
float64), best of the grid. The bootstrap resamples runs with replacement and refits every resample
at once, warm-started from the full-data optimum. Approaches 1 and 2 resample runs (within each
budget for approach 2) and redo the envelope / parabolas, vectorized over resamples.

`fit_sweep(sweep_dir)` / `format_table(fit)` are the CLI hooks: fit.json (+ fit_boot.npz) per sweep.
"""

import itertools
import math
import os
import tempfile

import numpy as np
import pandas as pd

from scaling import io
from scaling.laws import lbfgs
from scaling.sweep import results

HUBER_DELTA = 1e-3
_POLISH_FTOL = 1e-13  # L-BFGS stopping tolerance for the polished optimum and the bootstrap refits
LAWS = ("auto", "power", "kaplan", "approach1", "approach2", "approach3", "hparams", "data_constrained")
_OWN_MODULE = ("hparams", "data_constrained")  # laws in scaling/laws/<law>.py, each with a fit_frame
CI = (2.5, 97.5)
BOOTSTRAPS = ("pairs", "residual")


# ---------------------------------------------------------------------------------------------
# Input checks: one clear line naming the problem.

def _values(name: str, v, *, positive: bool = True) -> np.ndarray:
  try:
    v = np.asarray(v, dtype=np.float64).ravel()
  except (TypeError, ValueError):
    raise ValueError(f"{name}: values must be numbers") from None
  bad = ~np.isfinite(v)
  if bad.any():
    raise ValueError(f"{name}: {bad.sum()} of {v.size} values are NaN or infinite")
  if positive and v.size and (v <= 0).any():
    raise ValueError(f"{name}: values must be > 0 (fits are in log space); got min {v.min():.4g}")
  return v


def _same_length(law: str, **arrays):
  sizes = {k: len(v) for k, v in arrays.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(f"{law}: inputs differ in length: {sizes}")


def _need_points(law: str, n: int, n_params: int, names: str):
  if n < n_params:
    raise ValueError(f"{law}: {n} points for {n_params} parameters ({names}); need at least {n_params}")


def _need_distinct(law: str, name: str, v: np.ndarray, k: int):
  u = np.unique(v)
  if u.size == 0:
    raise ValueError(f"{law}: no {name} values")
  if u.size < k:
    what = f"a single {name} value ({u[0]:.4g})" if u.size == 1 else f"{u.size} distinct {name} values"
    raise ValueError(f"{law}: {what}; need at least {k} distinct sizes to fit")


# ---------------------------------------------------------------------------------------------
# The shared estimator: L = E + sum_j A_j x_j^-alpha_j, theta = [e, a_1..a_m, alpha_1..alpha_m].

def _sum_of_powers_fg(Z_NxM: np.ndarray, y_N: np.ndarray, w, delta: float,
                      dtype=np.float64) -> lbfgs.ValueAndGrad:
  """Huber(log L-hat - log L) summed with weights w ((N,) or (rows, N)), and its gradient. y_N may be
  (rows, N) too: one set of targets per row (a residual bootstrap)."""
  m, n = Z_NxM.shape[1], Z_NxM.shape[0]
  negZT_MxN = -np.ascontiguousarray(Z_NxM.T, dtype=dtype)
  y_N, w, delta = np.asarray(y_N, dtype), np.asarray(w, dtype), dtype(delta)

  buf = {}  # big temporaries reused across calls (fresh ones cost page faults on every call)

  def fg(th_KxP, rows):
    th_KxP = th_KxP.astype(dtype, copy=False)
    ww = w if w.ndim == 1 else w[rows]
    yy = y_N if y_N.ndim == 1 else y_N[rows]
    K = len(th_KxP)
    if buf.get("K", 0) < K:
      buf.update(K=K, P=np.empty((K, m, n), dtype), s=np.empty((K, n), dtype),
                 r=np.empty((K, n), dtype), h=np.empty((K, n), dtype))
    P_KxMxN, s_KxN, r_KxN, h_KxN = buf["P"][:K], buf["s"][:K], buf["r"][:K], buf["h"][:K]
    # Wild line-search trials overflow; they come back inf/NaN and the line search rejects them.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
      np.multiply(th_KxP[:, 1 + m:, None], negZT_MxN, out=P_KxMxN)
      P_KxMxN += th_KxP[:, 1:1 + m, None]
      np.exp(P_KxMxN, out=P_KxMxN)  # A_j x_j^-alpha_j
      E_K = np.exp(th_KxP[:, 0])
      np.add(P_KxMxN[:, 0], E_K[:, None], out=s_KxN)
      for j in range(1, m):
        s_KxN += P_KxMxN[:, j]
      np.log(s_KxN, out=r_KxN)
      r_KxN -= yy
      # Huber: q = min(|r|, delta); h = q (|r| - q / 2)  (= r^2 / 2 inside delta, delta (|r| - delta / 2) outside)
      np.abs(r_KxN, out=h_KxN)
      q = np.minimum(h_KxN, delta)
      h_KxN -= 0.5 * q
      h_KxN *= q
      f = np.einsum("kn,n->k" if ww.ndim == 1 else "kn,kn->k", h_KxN, ww)  # einsum: no BLAS threads
      c_KxN = np.clip(r_KxN, -delta, delta, out=r_KxN)  # dHuber/dr ...
      c_KxN /= s_KxN  # ... * dr/ds
      if ww.ndim == 2 or not np.all(ww == 1):
        c_KxN *= ww
      gE = np.einsum("kn->k", c_KxN) * E_K
      ga = np.einsum("kmn,kn->km", P_KxMxN, c_KxN)
      galpha = np.einsum("kmn,kn,mn->km", P_KxMxN, c_KxN, negZT_MxN)
    return f, np.concatenate([gE[:, None], ga, galpha], axis=1)
  return fg


def _fit_sum_of_powers(Z_NxM, y_N, starts_KxP, *, n_boot, seed, delta, ftol, boot_ok=None, n_polish=8,
                       W_BxN=None, resample="pairs"):
  """Best-of-grid fit, then warm-started bootstrap. Returns theta, objective, #starts at the optimum,
  boot thetas (B x P, NaN rows for resamples rejected by `boot_ok(counts_BxN)`). `W_BxN`: resample
  counts to use instead of drawing `n_boot` (a caller that resamples more than this fit sees).
  resample='pairs' redraws runs; 'residual' keeps every x and adds redrawn residuals to the fit
  (see `power`).

  The grid runs in float32 (2.5x faster; ranking the starts needs no more), then the `n_polish`
  best are polished in float64 with a tight tolerance: the grid's scipy-like ftol stops a row as
  soon as one iteration gains < ftol, plenty to rank starts, not to report digits."""
  fg32 = _sum_of_powers_fg(Z_NxM, y_N, np.ones(len(y_N)), delta, dtype=np.float32)
  # Capped: rows still crawling after 300 iterations are in flat regions; the best rows are polished.
  x, f, _ = lbfgs.minimize(fg32, starts_KxP, ftol=ftol, max_iter=300)
  if not np.isfinite(f).any():
    raise ValueError("fit: every start diverged (losses or sizes far outside a sensible range?)")
  f = np.where(np.isfinite(f), f, np.inf)
  at_best = int(np.sum(f <= f.min() * (1 + 1e-4)))  # starts that found the optimum (to float32 noise)
  top = np.argsort(f)[:n_polish]
  fg = _sum_of_powers_fg(Z_NxM, y_N, np.ones(len(y_N)), delta)
  x, f, _ = lbfgs.minimize(fg, x[top], ftol=_POLISH_FTOL)
  i = int(np.nanargmin(f))
  theta, obj = x[i], f[i]
  boot = np.zeros((0, len(theta)))
  Y_BxN = y_N
  if resample == "residual" and n_boot:
    Y_BxN = _residual_targets(Z_NxM, y_N, theta, n_boot, np.random.default_rng(seed))
    W_BxN = np.ones_like(Y_BxN)
  elif W_BxN is None and n_boot:
    rng = np.random.default_rng(seed)
    W_BxN = rng.multinomial(len(y_N), np.full(len(y_N), 1 / len(y_N)), size=n_boot).astype(np.float64)
  if W_BxN is not None and len(W_BxN):
    n_boot = len(W_BxN)
    # Warm starts: the full-data optimum, and when that sits at the E -> 0 boundary (where dL/de
    # vanishes, so no resample could leave it) also the same point with E at 1 % of the lowest loss.
    starts = [theta]
    if theta[0] < np.log(0.01) + y_N.min():
      starts.append(np.concatenate([[np.log(0.01) + y_N.min()], theta[1:]]))
    S = len(starts)
    fgb = _sum_of_powers_fg(Z_NxM, Y_BxN if Y_BxN.ndim == 1 else np.repeat(Y_BxN, S, axis=0),
                            np.repeat(W_BxN, S, axis=0), delta)
    # Tight tolerance: from a warm start each iteration gains little, and a loose relative ftol
    # would stop the resamples near the start (intervals far too narrow).
    xb, fb, _ = lbfgs.minimize(fgb, np.tile(np.array(starts), (n_boot, 1)), ftol=_POLISH_FTOL)
    fb = np.where(np.isfinite(fb), fb, np.inf).reshape(n_boot, S)
    pick = np.argmin(fb, axis=1)
    boot = xb.reshape(n_boot, S, -1)[np.arange(n_boot), pick]
    bad = ~np.isfinite(fb[np.arange(n_boot), pick])
    if boot_ok is not None:
      bad |= ~boot_ok(W_BxN)
    boot[bad] = np.nan
  return theta, float(obj), at_best, boot


def _log_fitted(Z_NxM, theta) -> np.ndarray:
  m = Z_NxM.shape[1]
  return np.log(np.exp(theta[0]) + np.exp(theta[1:1 + m] - Z_NxM * theta[1 + m:]).sum(1))


def _residual_targets(Z_NxM, y_N, theta, n_boot, rng) -> np.ndarray:
  """B x N targets: the fitted log-loss plus residuals redrawn with replacement, centred and scaled by
  sqrt(n / (n - p)) (a fit with p parameters leaves residuals that small on average)."""
  n, p = len(y_N), len(theta)
  yhat_N = _log_fitted(Z_NxM, theta)
  r_N = y_N - yhat_N
  r_N = (r_N - r_N.mean()) * math.sqrt(n / max(n - p, 1))
  return yhat_N + r_N[rng.integers(0, n, size=(n_boot, n))]


def _ci(samples: dict) -> dict:
  out = {}
  for k, v in samples.items():
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    out[k] = [float(q) for q in np.percentile(v, CI)] if v.size >= 2 else [math.nan, math.nan]
  return out


def _distinct_ok(v: np.ndarray, k: int):
  """Bootstrap resamples (counts_BxN) keeping at least k distinct values of v."""
  _, inverse = np.unique(v, return_inverse=True)
  onehot_NxU = np.eye(inverse.max() + 1)[inverse]
  return lambda W_BxN: ((W_BxN @ onehot_NxU) > 0).sum(1) >= k


def _power_grid() -> np.ndarray:
  """Starts for one-variable laws, in units where log x is centred (so the grid is scale free)."""
  e = np.linspace(-3.0, 2.0, 6)       # E from 0.05 to 7.4 nats
  a = np.linspace(-4.0, 2.0, 7)       # reducible loss at the geometric-mean x
  alpha = np.array([0.03, 0.1, 0.3, 0.6, 1.0, 1.5])
  return np.array(list(itertools.product(e, a, alpha)))


def power(x, loss, *, n_boot: int = 200, seed: int = 0, x_name: str = "x",
          delta: float = HUBER_DELTA, ftol: float = 1e-6, bootstrap: str = "pairs") -> dict:
  """Saturating power law L(x) = E + A x^-alpha.

  bootstrap='pairs' (default) resamples the points; 'residual' keeps every x and redraws residuals.
  experiments/ci_coverage.py measured both on planted 5-size ladders (1 % noise): pairs covered the true
  alpha 94 % of the time (95 % intended), residual 74 % (with n - 3 = 2 residual degrees of freedom its
  intervals are too narrow), so residual is there to compare, not to trust."""
  if bootstrap not in BOOTSTRAPS:
    raise ValueError(f"bootstrap: {bootstrap!r}; allowed: {', '.join(BOOTSTRAPS)}")
  x, loss = _values(x_name, x), _values("loss", loss)
  _same_length("power", **{x_name: x, "loss": loss})
  _need_points("power", len(x), 3, "E, A, alpha")
  _need_distinct("power", x_name, x, 3)
  x0 = float(np.exp(np.mean(np.log(x))))  # fit in units of the geometric mean, convert back after
  Z = np.log(x / x0)[:, None]
  theta, obj, at_best, boot = _fit_sum_of_powers(
      Z, np.log(loss), _power_grid(), n_boot=n_boot, seed=seed, delta=delta, ftol=ftol,
      boot_ok=_distinct_ok(x, 3), resample=bootstrap)

  def named(th):
    th = np.atleast_2d(th)
    return {"E": np.exp(th[:, 0]), "A": np.exp(th[:, 1] + th[:, 2] * np.log(x0)), "alpha": th[:, 2]}
  notes = _boundary_notes(theta, loss)
  if np.unique(x).size == 3:
    # The only resamples with 3 distinct sizes are the data itself: every "bootstrap" fit would be the
    # same curve, a zero-width interval that looks like certainty.
    boot = np.full_like(boot, np.nan)
    notes.append(f"3 {x_name} values for 3 parameters: the curve passes through every point and the "
                 "bootstrap has nothing to resample, so there is no interval; add sizes or fit 'kaplan'")
  samples = named(boot)
  return dict(law="power", x=x_name, n=len(x), bootstrap=bootstrap, params={k: float(v[0]) for k, v in named(theta).items()},
              derived={}, ci=_ci(samples), boot=samples, objective=obj, starts_at_optimum=at_best,
              n_boot=int(np.isfinite(boot[:, 0]).sum()) if n_boot else 0, x_range=[float(x.min()), float(x.max())],
              notes=notes)


def _boundary_notes(theta: np.ndarray, loss: np.ndarray) -> list[str]:
  if np.exp(theta[0]) < 1e-3 * loss.min():
    return ["E is at its bound (E -> 0): these points show no saturation, so E and its interval "
            "say little; more sizes/compute, or the pure power law ('kaplan'), fit them better"]
  return []


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
    return {"x_c": np.exp(icpt / alpha), "alpha": alpha}
  samples = named(slope[1:], icpt[1:])
  return dict(law="kaplan", x=x_name, n=len(x), params={k: float(v[0]) for k, v in named(slope[:1], icpt[:1]).items()},
              derived={}, ci=_ci(samples), boot=samples, n_boot=int(np.isfinite(slope[1:]).sum()),
              x_range=[float(x.min()), float(x.max())])


def chinchilla_grid() -> np.ndarray:
  """Hoffmann et al. App. D.2: alpha, beta in {0..2 step .5}, e in {-1..1 step .5}, a, b in {0..25 step 5}.

  4,500 starts as theta = [e, a, b, alpha, beta]."""
  g = itertools.product(np.arange(-1, 1.01, 0.5), np.arange(0, 25.1, 5), np.arange(0, 25.1, 5),
                        np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5))
  return np.array(list(g), dtype=np.float64)


def approach3(N, D, loss, *, n_boot: int = 200, seed: int = 0, budgets=(), grid: np.ndarray | None = None,
              delta: float = HUBER_DELTA, ftol: float = 1e-6, boot_weights=None) -> dict:
  """Chinchilla approach 3: L(N, D) = E + A/N^alpha + B/D^beta.

  `budgets` (FLOPs) adds the compute-optimal N_opt, D_opt, tokens per parameter and loss at each,
  with C = 6 N D. The default ftol matches what scipy's L-BFGS-B stops at on this objective.
  `boot_weights` (B x n resample counts) replaces the n_boot resamples drawn here."""
  N, D, loss = _values("N", N), _values("D", D), _values("loss", loss)
  _same_length("approach3", N=N, D=D, loss=loss)
  _need_points("approach3", len(N), 5, "E, A, B, alpha, beta")
  _need_distinct("approach3", "N", N, 2)
  _need_distinct("approach3", "D", D, 2)
  starts = chinchilla_grid() if grid is None else np.asarray(grid, dtype=np.float64)
  if starts.ndim != 2 or starts.shape[1] != 5:
    raise ValueError(f"grid: must be (starts, 5) rows of [e, a, b, alpha, beta]; got shape {starts.shape}")
  both_ok_N, both_ok_D = _distinct_ok(N, 2), _distinct_ok(D, 2)
  theta, obj, at_best, boot = _fit_sum_of_powers(
      np.stack([np.log(N), np.log(D)], 1), np.log(loss), starts, n_boot=n_boot, seed=seed, delta=delta,
      ftol=ftol, boot_ok=lambda W: both_ok_N(W) & both_ok_D(W), W_BxN=boot_weights)
  n_boot = len(boot) if boot_weights is not None else n_boot
  budgets = [float(c) for c in np.atleast_1d(budgets)]

  def named(th):
    th = np.atleast_2d(th)
    p = {"E": np.exp(th[:, 0]), "A": np.exp(th[:, 1]), "B": np.exp(th[:, 2]), "alpha": th[:, 3], "beta": th[:, 4]}
    return p, _approach3_derived(p, budgets)
  p, d = named(theta)
  bp, bd = named(boot)
  return dict(law="approach3", x="N", n=len(N), params={k: float(v[0]) for k, v in p.items()},
              derived={k: float(v[0]) for k, v in d.items()}, ci=_ci({**bp, **bd}), boot={**bp, **bd},
              objective=obj, starts=len(starts), starts_at_optimum=at_best, notes=_boundary_notes(theta, loss),
              n_boot=int(np.isfinite(boot[:, 0]).sum()) if n_boot else 0, budgets=budgets,
              N_range=[float(N.min()), float(N.max())], D_range=[float(D.min()), float(D.max())])


def _approach3_derived(p: dict, budgets: list[float]) -> dict:
  al, be = p["alpha"], p["beta"]
  with np.errstate(all="ignore"):  # a bootstrap sample may sit at alpha + beta = 0
    d = {"a": be / (al + be), "b": al / (al + be),
         "G": (al * p["A"] / (be * p["B"])) ** (1 / (al + be))}
    for C in budgets:
      n_opt = d["G"] * (C / 6) ** d["a"]
      d_opt = (C / 6) ** d["b"] / d["G"]
      d[f"N_opt@{C:.3g}"] = n_opt
      d[f"D_opt@{C:.3g}"] = d_opt
      d[f"tokens_per_param@{C:.3g}"] = d_opt / n_opt
      d[f"loss_opt@{C:.3g}"] = p["E"] + p["A"] / n_opt ** al + p["B"] / d_opt ** be
  return d


# ---------------------------------------------------------------------------------------------
# Approaches 1 and 2: optimal (N, D) per budget, then power laws in C by weighted least squares.

def _wls_line(x_G, y_BxG, w_BxG):
  """Weighted least-squares lines y = slope x + icpt, one per row; NaN weights/ys drop a point."""
  y = np.atleast_2d(y_BxG)
  w = np.where(np.isfinite(y) & np.isfinite(w_BxG), w_BxG, 0.0)
  y = np.where(w > 0, y, 0.0)
  sw, sx, sy = w.sum(1), (w * x_G).sum(1), (w * y).sum(1)
  sxx, sxy = (w * x_G ** 2).sum(1), (w * x_G * y).sum(1)
  den = sw * sxx - sx ** 2
  with np.errstate(all="ignore"):
    slope = np.where(den > 1e-12 * np.maximum(sw * sxx, 1e-300), (sw * sxy - sx * sy) / den, np.nan)
    icpt = (sy - slope * sx) / sw
  return slope, icpt


def _allocation_fit(law: str, C_G, Nopt_BxG, Dopt_BxG, budgets, extra: dict) -> dict:
  """Row 0 is the full-data estimate, rows 1.. the bootstrap. Fits N_opt = k_N C^a, D_opt = k_D C^b."""
  lc = np.log(C_G)
  ones = np.ones_like(Nopt_BxG)
  a, log_kN = _wls_line(lc, np.log(Nopt_BxG), ones)
  b, log_kD = _wls_line(lc, np.log(Dopt_BxG), ones)
  with np.errstate(over="ignore", invalid="ignore"):  # wild bootstrap lines
    p = {"a": a, "b": b, "k_N": np.exp(log_kN), "k_D": np.exp(log_kD)}
    d = {}
    for C in budgets:
      n_opt, d_opt = p["k_N"] * C ** a, p["k_D"] * C ** b
      d[f"N_opt@{C:.3g}"], d[f"D_opt@{C:.3g}"], d[f"tokens_per_param@{C:.3g}"] = n_opt, d_opt, d_opt / n_opt
  boot = {k: v[1:] for k, v in {**p, **d}.items()}
  return dict(law=law, x="C", params={k: float(v[0]) for k, v in p.items()},
              derived={k: float(v[0]) for k, v in d.items()}, ci=_ci(boot), boot=boot,
              n_boot=int(np.isfinite(a[1:]).sum()), budgets=[float(c) for c in budgets], **extra)


def approach2(N, D, loss, budget, *, n_boot: int = 200, seed: int = 0, budgets=None) -> dict:
  """Chinchilla approach 2 (IsoFLOP profiles).

  Per budget C: fit loss = c2 u^2 + c1 u + c0 in u = log N, minimum at u* = -c1 / 2 c2; D_opt from a
  line of log D on log N through that budget's runs (exact accounting, not 6ND). Then N_opt = k_N C^a,
  D_opt = k_D C^b. The bootstrap resamples runs within each budget."""
  N, D, loss, budget = (_values(n, v) for n, v in (("N", N), ("D", D), ("loss", loss), ("budget", budget)))
  _same_length("approach2", N=N, D=D, loss=loss, budget=budget)
  Cs = np.unique(budget)
  if Cs.size < 2:
    raise ValueError(f"approach2: runs at {Cs.size} FLOP budget(s); need at least 2 budgets")
  rng = np.random.default_rng(seed)
  B = n_boot + 1
  Nopt, Dopt, per_budget = np.full((B, Cs.size), np.nan), np.full((B, Cs.size), np.nan), []
  for g, C in enumerate(Cs):
    sel = budget == C
    u, lD, L = np.log(N[sel]), np.log(D[sel]), loss[sel]
    if np.unique(u).size < 3:
      raise ValueError(f"approach2: budget {C:.3g} has {np.unique(u).size} distinct model sizes; "
                       f"a parabola needs at least 3")
    W = np.vstack([np.ones((1, u.size)), rng.multinomial(u.size, np.full(u.size, 1 / u.size), size=n_boot)])
    V = np.stack([u ** 2, u, np.ones_like(u)], 1)
    VtWV = np.einsum("ni,bn,nj->bij", V, W, V)
    VtWy = np.einsum("ni,bn,n->bi", V, W, L)
    ok = np.linalg.matrix_rank(VtWV) == 3
    c = np.full((B, 3), np.nan)
    c[ok] = np.linalg.solve(VtWV[ok], VtWy[ok][..., None])[..., 0]
    with np.errstate(all="ignore"):
      ustar = np.where(c[:, 0] > 0, -c[:, 1] / (2 * c[:, 0]), np.nan)
    if not np.isfinite(ustar[0]):
      raise ValueError(f"approach2: budget {C:.3g}: loss vs log N is not convex (no minimum); "
                       f"add sizes around the optimum")
    dslope, dicpt = _wls_line(u, lD[None], np.ones((1, u.size)))
    Nopt[:, g] = np.exp(ustar)
    Dopt[:, g] = np.exp(dicpt[0] + dslope[0] * ustar)
    per_budget.append(dict(C=float(C), N_opt=float(Nopt[0, g]), D_opt=float(Dopt[0, g]),
                           loss_opt=float(np.polyval(c[0], ustar[0])), coef=[float(v) for v in c[0]],
                           in_range=bool(u.min() <= ustar[0] <= u.max()), n=int(u.size)))
  return _allocation_fit("approach2", Cs, Nopt, Dopt, Cs if budgets is None else budgets,
                         dict(n=len(N), per_budget=per_budget))


def approach1(C, N, D, loss, run, *, n_boot: int = 200, seed: int = 0, n_grid: int = 40, budgets=None) -> dict:
  """Chinchilla approach 1: at each FLOP count, the run with the lowest loss -> N_opt(C), D_opt(C).

  Points are (C, N, D, loss) along each run (`run` ids). Runs with a training curve (>= 2 points) are
  interpolated in log C on `n_grid` log-spaced FLOP values; with one point per run (final results),
  the FLOP values are the distinct C (the budgets) and each run counts at its own. The bootstrap
  resamples runs."""
  C, N, D, loss = (_values(n, v) for n, v in (("C", C), ("N", N), ("D", D), ("loss", loss)))
  run = np.asarray(run)
  _same_length("approach1", C=C, N=N, D=D, loss=loss, run=run)
  runs, inv = np.unique(run, return_inverse=True)
  if runs.size < 2:
    raise ValueError(f"approach1: {runs.size} run(s); need runs of several sizes")
  counts = np.bincount(inv)
  lC = np.log(C)
  if (counts >= 2).any():
    lo, hi = lC.min(), lC.max()
    grid = np.linspace(lo, hi, n_grid)
  else:
    grid = np.unique(lC)
  if grid.size < 2 or lC.min() == lC.max():
    raise ValueError("approach1: all points at one FLOP count; need several budgets or training curves")
  R, G = runs.size, grid.size
  L_RxG, D_RxG = np.full((R, G), np.inf), np.full((R, G), np.nan)
  N_R = np.zeros(R)
  for r in range(R):
    sel = inv == r
    if np.unique(N[sel]).size != 1:
      raise ValueError(f"approach1: run {runs[r]!r} has several N values; N must be constant along a run")
    N_R[r] = N[sel][0]
    o = np.argsort(lC[sel])
    x, yl, yd = lC[sel][o], loss[sel][o], np.log(D[sel][o])
    cover = (grid >= x[0] - 1e-9) & (grid <= x[-1] + 1e-9)
    L_RxG[r, cover] = np.interp(grid[cover], x, yl)
    D_RxG[r, cover] = np.exp(np.interp(grid[cover], x, yd))
  rng = np.random.default_rng(seed)
  idx_BxR = np.vstack([np.arange(R)[None], rng.integers(0, R, size=(n_boot, R))])
  Lb = L_RxG[idx_BxR]                                   # B x R x G
  best_BxG = idx_BxR[np.arange(len(idx_BxR))[:, None], np.argmin(Lb, axis=1)]
  valid = np.isfinite(np.min(Lb, axis=1))
  Nopt = np.where(valid, N_R[best_BxG], np.nan)
  Dopt = np.where(valid, D_RxG[best_BxG, np.arange(G)], np.nan)
  if np.unique(Nopt[0][valid[0]]).size < 2:
    raise ValueError("approach1: the minimum-loss envelope uses a single model size; "
                     "need runs of several sizes that win at different budgets")
  Cg = np.exp(grid)
  envelope = dict(C=Cg[valid[0]].tolist(), N_opt=Nopt[0][valid[0]].tolist(), D_opt=Dopt[0][valid[0]].tolist(),
                  loss=np.min(Lb[0], axis=0)[valid[0]].tolist())
  if budgets is None:
    budgets = np.unique(C) if (counts == 1).all() else [float(Cg[-1])]
  return _allocation_fit("approach1", Cg, Nopt, Dopt, budgets, dict(n=len(C), runs=int(R), envelope=envelope))


def frontier(C, loss, run, n_grid: int = 200) -> tuple[np.ndarray, np.ndarray]:
  """Kaplan's compute-efficient frontier: the lowest loss any run reached with at most C FLOPs, as the
  points (by increasing C) where it drops, and the largest C. Runs with several points are curves (interpolated in log C
  on the data's own C values plus `n_grid` log-spaced ones); a run with one point counts at its C."""
  C, loss, run = np.asarray(C, np.float64), np.asarray(loss, np.float64), np.asarray(run)
  ok = np.isfinite(C) & (C > 0) & np.isfinite(loss)
  C, loss, run = C[ok], loss[ok], run[ok]
  if C.size == 0:
    return np.zeros(0), np.zeros(0)
  lC = np.log(C)
  grid = np.unique(np.concatenate([lC, np.linspace(lC.min(), lC.max(), n_grid)]))
  best_G = np.full(grid.size, np.inf)
  for r in np.unique(run):
    o = np.argsort(lC[run == r])
    x, y = lC[run == r][o], loss[run == r][o]
    cover = (grid >= x[0]) & (grid <= x[-1])
    best_G[cover] = np.minimum(best_G[cover], np.interp(grid[cover], x, y))
  run_min = np.minimum.accumulate(best_G)
  drop = best_G < np.concatenate([[np.inf], run_min[:-1]])
  drop[-1] = True  # up to the largest C, flat where no run does better than a cheaper one did
  return np.exp(grid[drop]), run_min[drop]


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
  raise ValueError(f"law: predict() takes 'power', 'kaplan' or 'approach3' fits; got {law!r}")


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
  raise ValueError(f"law: optimal_allocation() takes approach1/2/3 fits; got {law!r}")


def extrapolate(loss, *xs, law: str = "power", holdout: int = 1, n_boot: int = 200, seed: int = 0,
                x_name: str = "x") -> dict:
  """Fit on all but the `holdout` largest sizes (distinct values of the first x), predict those.

  xs = (x,) for power / kaplan, (N, D) for approach3. Reports predicted vs actual loss, the
  relative error and whether the actual loss lies in the bootstrap 95 % prediction band."""
  if law not in ("power", "kaplan", "approach3"):
    raise ValueError(f"law: extrapolate() takes 'power', 'kaplan' or 'approach3'; got {law!r}")
  if not (isinstance(holdout, int) and holdout >= 1):
    raise ValueError(f"holdout: must be an integer >= 1; got {holdout!r}")
  loss = _values("loss", loss)
  xs = [_values(x_name if i == 0 else "D", x) for i, x in enumerate(xs)]
  sizes = np.unique(xs[0])
  if sizes.size <= holdout:
    raise ValueError(f"extrapolate: {sizes.size} distinct sizes; cannot hold out {holdout} and fit the rest")
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


def _col(fdf: pd.DataFrame, name: str) -> np.ndarray:
  if name not in fdf.columns:
    raise ValueError(f"{name}: no such column in the results; columns: {', '.join(map(str, fdf.columns))}")
  return pd.to_numeric(fdf[name], errors="coerce").to_numpy(dtype=np.float64)


def _min_per_size(xv: np.ndarray, yv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Lowest loss at each size. On results.best_points (one row per point) this only chooses between
  training lengths (the longest-trained model of the size); the inner grid was settled by mark_best."""
  _values("loss", yv)
  u, inv = np.unique(xv, return_inverse=True)
  best = np.full(u.size, np.inf)
  np.minimum.at(best, inv, yv)
  return u, best


def _budgets(fdf: pd.DataFrame) -> np.ndarray:
  if "budget" not in fdf.columns:
    return np.zeros(0)
  b = pd.to_numeric(fdf["budget"], errors="coerce").to_numpy(dtype=np.float64)
  return np.unique(b[np.isfinite(b)])


def fit_frame(df: pd.DataFrame, law: str = "auto", x: str = "params_nonembed", loss: str = "eval_loss",
              curves: pd.DataFrame | None = None, n_boot: int = 200, seed: int = 0, holdout: int = 1) -> dict:
  """Fits on a `results.load` DataFrame (completed runs only). See fit_sweep."""
  if law not in LAWS:
    raise ValueError(f"law: unknown {law!r}; allowed: {', '.join(LAWS)}")
  if not (isinstance(n_boot, int) and n_boot >= 0):
    raise ValueError(f"n_boot: must be an integer >= 0; got {n_boot!r}")
  for name, col in (("x", x), ("loss", loss)):
    if col not in df.columns:
      numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
      raise ValueError(f"{name}: no column {col!r} in the results; numeric columns: {', '.join(numeric)}")
  if law in _OWN_MODULE:
    import importlib  # these modules import this one
    law_module = importlib.import_module(f"scaling.laws.{law}")
    law_module.check_columns(df)
  if "is_best" not in df.columns:
    df = results.mark_best(df, loss=loss)
  done = df[df["status"] == "completed"] if "status" in df.columns else df
  if done.empty:
    raise ValueError("results: no completed runs to fit")
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
        b, ell = _col(fdf, "budget"), _col(fdf, loss)
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
        b = _col(fdf, "budget") if "budget" in fdf.columns else np.full(len(fdf), np.nan)
        s = np.isfinite(b)
        return {**approach2(N()[s], D()[s], L()[s], b[s], **boot), "family": fam, "N": xc}
      attempt("fits", f"approach2/{fam}", a2)
    if law in ("auto", "approach1"):
      attempt("fits", f"approach1/{fam}", lambda: {
          **_approach1_frame(fdf, xc, loss, curves, **boot), "family": fam, "N": xc})
  if not out["fits"]:
    why = "; ".join(f"{k}: {v}" for k, v in out["skipped"].items() if not k.startswith("extrapolation/"))
    raise ValueError(f"{law}: nothing could be fitted ({why or 'no family has enough runs'})")
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
  f = {**(power if name == "power" else kaplan)(xs, ys, x_name=xc, **boot), "family": fam}
  if _budgets(fdf).size >= 2:
    f["notes"] = f.get("notes", []) + [
        "runs at several FLOP budgets: each size's lowest loss comes from a different training length, "
        "so this is not L(N) at convergence; approach3's E + A/N^alpha is"]
  return f


def _size_extrapolation(fdf, xc, loss, fam, holdout, boot) -> dict:
  xs, ys = _min_per_size(_col(fdf, xc), _col(fdf, loss))
  if xs.size < 3 + holdout:
    raise ValueError(f"extrapolate: {xs.size} sizes; need {3 + holdout} to hold out {holdout} and fit 3 parameters")
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
  b = _col(fdf, "budget") if "budget" in fdf.columns else np.full(len(fdf), np.nan)
  sel = np.isfinite(b)
  if not sel.any():
    raise ValueError("approach1: needs training curves (metrics.jsonl) or runs with a 'budget' tag")
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
    raise ValueError(f"law: unknown {law!r}; allowed: {', '.join(LAWS)}")
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
