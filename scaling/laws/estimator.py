"""The estimator the saturating laws share (power, approach3, data_constrained) and the input checks
every law uses: L-hat = exp(LSE(e, a_j - alpha_j log x_j)) with E = e^e, A_j = e^a_j, Huber(delta=1e-3) on
log L-hat - log L summed over runs, L-BFGS from a grid of starts (all at once, `lbfgs.minimize`; float32 to
rank the starts, the best few polished in float64), best of the grid. The bootstrap resamples runs with
replacement ('pairs') or redraws residuals around the fit ('residual'), and refits every resample at once,
warm-started from the full-data optimum. Also the weighted least-squares line the allocation and hparams
laws fit in log-log, and the 95 % percentile interval.
"""

import math

import numpy as np
import pandas as pd

from scaling.laws import lbfgs
from scaling import errors

HUBER_DELTA = 1e-3
_POLISH_FTOL = 1e-13  # L-BFGS stopping tolerance for the polished optimum and the bootstrap refits
CI = (2.5, 97.5)
BOOTSTRAPS = ("pairs", "residual")

# ---------------------------------------------------------------------------------------------
# Input checks: one clear line naming the problem.

def _values(name: str, v, *, positive: bool = True) -> np.ndarray:
  try:
    v = np.asarray(v, dtype=np.float64).ravel()
  except (TypeError, ValueError):
    raise errors.ConfigError(f"{name}: values must be numbers") from None
  bad = ~np.isfinite(v)
  if bad.any():
    raise errors.ConfigError(f"{name}: {bad.sum()} of {v.size} values are NaN or infinite")
  if positive and v.size and (v <= 0).any():
    raise errors.ConfigError(f"{name}: values must be > 0 (fits are in log space); got min {v.min():.4g}")
  return v


def _same_length(law: str, **arrays):
  sizes = {k: len(v) for k, v in arrays.items()}
  if len(set(sizes.values())) > 1:
    raise errors.ConfigError(f"{law}: inputs differ in length: {sizes}")


def _need_points(law: str, n: int, n_params: int, names: str):
  if n < n_params:
    raise errors.ConfigError(f"{law}: {n} points for {n_params} parameters ({names}); need at least {n_params}")


def _need_distinct(law: str, name: str, v: np.ndarray, k: int):
  u = np.unique(v)
  if u.size == 0:
    raise errors.ConfigError(f"{law}: no {name} values")
  if u.size < k:
    what = f"a single {name} value ({u[0]:.4g})" if u.size == 1 else f"{u.size} distinct {name} values"
    raise errors.ConfigError(f"{law}: {what}; need at least {k} distinct sizes to fit")


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


def _tied(fg: lbfgs.ValueAndGrad, T_PxF: np.ndarray | None) -> lbfgs.ValueAndGrad:
  """fg over free parameters th_F with theta = T th_F (e.g. alpha = beta: one column feeds both)."""
  if T_PxF is None:
    return fg

  def fg_free(th_KxF, rows):
    f, g_KxP = fg(th_KxF @ T_PxF.T, rows)
    with np.errstate(invalid="ignore"):  # wild line-search trials (inf gradients) stay non-finite: rejected
      return f, g_KxP @ T_PxF
  return fg_free


def _fit_sum_of_powers(Z_NxM, y_N, starts_KxP, *, n_boot, seed, delta, ftol, boot_ok=None, n_polish=8,
                       W_BxN=None, resample="pairs", T_PxF=None, Y_BxN=None):
  """Best-of-grid fit, then warm-started bootstrap. Returns theta, objective, #starts at the optimum,
  boot thetas (B x P, NaN rows for resamples rejected by `boot_ok(counts_BxN)`). `W_BxN`: resample
  counts to use instead of drawing `n_boot` (a caller that resamples more than this fit sees).
  resample='pairs' redraws runs; 'residual' keeps every x and adds redrawn residuals to the fit
  (see `power`). `T_PxF` ties parameters: theta = T th_F is fitted over th_F (starts are given as
  theta and mapped by T's pseudo-inverse); theta and boot come back in full.
  `Y_BxN`: one set of log-loss targets per resample (pairs: points whose seeds were
  redrawn too, see fit.power's `seed_losses`).

  The grid runs in float32 (2.5x faster; ranking the starts needs no more), then the `n_polish`
  best are polished in float64 with a tight tolerance: the grid's scipy-like ftol stops a row as
  soon as one iteration gains < ftol, plenty to rank starts, not to report digits."""
  if T_PxF is not None:
    starts_KxP = np.unique(starts_KxP @ np.linalg.pinv(T_PxF).T, axis=0)
  fg32 = _tied(_sum_of_powers_fg(Z_NxM, y_N, np.ones(len(y_N)), delta, dtype=np.float32), T_PxF)
  # Capped: rows still crawling after 300 iterations are in flat regions; the best rows are polished.
  x, f, _ = lbfgs.minimize(fg32, starts_KxP, ftol=ftol, max_iter=300)
  if not np.isfinite(f).any():
    raise errors.ConfigError("fit: every start diverged (losses or sizes far outside a sensible range?)")
  f = np.where(np.isfinite(f), f, np.inf)
  at_best = int(np.sum(f <= f.min() * (1 + 1e-4)))  # starts that found the optimum (to float32 noise)
  top = np.argsort(f)[:n_polish]
  fg = _tied(_sum_of_powers_fg(Z_NxM, y_N, np.ones(len(y_N)), delta), T_PxF)
  x, f, _ = lbfgs.minimize(fg, x[top], ftol=_POLISH_FTOL)
  i = int(np.nanargmin(f))
  theta, obj = x[i], f[i]
  boot = np.zeros((0, len(theta)))
  Y_BxN = y_N if Y_BxN is None else Y_BxN
  if resample == "residual" and n_boot:
    Y_BxN = _residual_targets(Z_NxM, y_N, theta if T_PxF is None else T_PxF @ theta, n_boot,
                              np.random.default_rng(seed))
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
    fgb = _tied(_sum_of_powers_fg(Z_NxM, Y_BxN if Y_BxN.ndim == 1 else np.repeat(Y_BxN, S, axis=0),
                                  np.repeat(W_BxN, S, axis=0), delta), T_PxF)
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
  if T_PxF is not None:
    theta, boot = T_PxF @ theta, boot @ T_PxF.T
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


def _boundary_notes(theta: np.ndarray, loss: np.ndarray) -> list[str]:
  if np.exp(theta[0]) < 1e-3 * loss.min():
    return ["E is at its bound (E -> 0): these points show no saturation, so E and its interval "
            "say little; more sizes/compute, or the pure power law ('kaplan'), fit them better"]
  return []


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


def column(fdf: pd.DataFrame, name: str) -> np.ndarray:
  if name not in fdf.columns:
    raise errors.ConfigError(f"{name}: no such column in the results; columns: {', '.join(map(str, fdf.columns))}")
  return pd.to_numeric(fdf[name], errors="coerce").to_numpy(dtype=np.float64)
