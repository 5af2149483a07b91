"""Chinchilla's three approaches (Hoffmann et al. 2022): optimal (N, D) per FLOP budget as power laws in C.

  approach1  minimum-loss envelope over runs at each FLOP budget -> N_opt = k_N C^a, D_opt = k_D C^b
  approach2  IsoFLOP: parabola of loss in log N on the sizes around each budget's lowest loss -> N_opt(C), D_opt(C)
  approach3  L(N, D) = E + A/N^alpha + B/D^beta  (App. D.2; the shared estimator, scaling/laws/estimator.py)

Approaches 1 and 2 resample runs (within each budget for approach 2) and redo the envelope / parabolas,
vectorized over resamples; approach 3 resamples runs and refits (warm-started).
"""

import itertools

import numpy as np

from scaling.laws.estimator import (HUBER_DELTA, _boundary_notes, _ci, _distinct_ok, _fit_sum_of_powers,
                                    _need_distinct, _need_points, _same_length, _values, _wls_line)
from scaling import errors


def chinchilla_grid() -> np.ndarray:
  """Hoffmann et al. App. D.2: alpha, beta in {0..2 step .5}, e in {-1..1 step .5}, a, b in {0..25 step 5}.

  4,500 starts as theta = [e, a, b, alpha, beta]."""
  g = itertools.product(np.arange(-1, 1.01, 0.5), np.arange(0, 25.1, 5), np.arange(0, 25.1, 5),
                        np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5))
  return np.array(list(g), dtype=np.float64)


# theta = [e, a, b, alpha, beta] from the free [e, a, b, alpha]: beta copies alpha.
_TIE_ALPHA_BETA = np.vstack([np.eye(4), np.eye(4)[3:]])


def approach3(N, D, loss, *, n_boot: int = 200, seed: int = 0, budgets=(), grid: np.ndarray | None = None,
              delta: float = HUBER_DELTA, ftol: float = 1e-6, boot_weights=None, tie_alpha_beta: bool = False
              ) -> dict:
  """Chinchilla approach 3: L(N, D) = E + A/N^alpha + B/D^beta (alpha = beta with tie_alpha_beta, as
  Muennighoff et al. 2023 fit their stage 1).

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
    raise errors.ConfigError(f"grid: must be (starts, 5) rows of [e, a, b, alpha, beta]; got shape {starts.shape}")
  both_ok_N, both_ok_D = _distinct_ok(N, 2), _distinct_ok(D, 2)
  theta, obj, at_best, boot = _fit_sum_of_powers(
      np.stack([np.log(N), np.log(D)], 1), np.log(loss), starts, n_boot=n_boot, seed=seed, delta=delta,
      ftol=ftol, boot_ok=lambda W: both_ok_N(W) & both_ok_D(W), W_BxN=boot_weights,
      T_PxF=_TIE_ALPHA_BETA if tie_alpha_beta else None)
  n_boot = len(boot) if boot_weights is not None else n_boot
  budgets = [float(c) for c in np.atleast_1d(budgets)]

  def named(th):
    th = np.atleast_2d(th)
    p = {"E": np.exp(th[:, 0]), "A": np.exp(th[:, 1]), "B": np.exp(th[:, 2]), "alpha": th[:, 3], "beta": th[:, 4]}
    return p, _approach3_derived(p, budgets)
  p, d = named(theta)
  bp, bd = named(boot)
  return dict(law="approach3", x="N", n=len(N), tie_alpha_beta=tie_alpha_beta,
              params={k: float(v[0]) for k, v in p.items()},
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


WINDOW = 5  # sizes per parabola around each budget's lowest loss: experiments/approach2_window.py


def _window_vertex(u_P: np.ndarray, L_P: np.ndarray, w_P: np.ndarray, window: int):
  """Parabola in u = log N through the `window` sizes around the lowest loss (sizes with weight 0 are
  absent, e.g. not drawn by a resample). The window slides inward at the grid's ends so it keeps
  `window` sizes. Returns (u*, coef, first, last, lowest_inside): u* NaN where the parabola opens
  downward; first/last the window's sizes (indices into u_P); lowest_inside: the lowest loss is not at
  the smallest or largest size present."""
  idx = np.flatnonzero(w_P > 0)
  i = int(np.argmin(L_P[idx]))
  k = min(window, idx.size)
  start = min(max(i - k // 2, 0), idx.size - k)
  sel = idx[start:start + k]
  coef = np.full(3, np.nan)
  if sel.size >= 3:
    sw = np.sqrt(w_P[sel])
    coef = np.linalg.lstsq(np.stack([u_P[sel] ** 2, u_P[sel], np.ones(sel.size)], 1) * sw[:, None],
                           L_P[sel] * sw, rcond=None)[0]
  ustar = -coef[1] / (2 * coef[0]) if coef[0] > 0 else np.nan
  return ustar, coef, sel[0], sel[-1], 0 < i < idx.size - 1


def approach2(N, D, loss, budget, *, n_boot: int = 200, seed: int = 0, budgets=None, window: int = WINDOW,
              keep_unbracketed: bool = False) -> dict:
  """Chinchilla approach 2 (IsoFLOP profiles).

  Rows are runs; runs at the same (budget, N) are seeds of one point (their mean is the point's loss).
  Per budget C: a parabola loss = c2 u^2 + c1 u + c0 in u = log N through the `window` sizes around the
  lowest loss (one parabola through a wide grid bends to the loss-vs-size curve's lopsided wings, not its
  minimum), N_opt at its vertex; D_opt from a line of log D on log N through that budget's runs (exact
  accounting, not 6ND). Then N_opt = k_N C^a, D_opt = k_D C^b through the budgets whose lowest loss is
  inside the sizes tried (bracketed); the rest are named in `notes` and kept only with
  keep_unbracketed=True: their vertex extrapolates the curve and is not a measurement.

  The bootstrap redraws what is noisy: the seeds of each point (where every point of a budget has >= 2;
  deviations from the point's mean, pooled over the budget), else the runs within each budget; window
  and vertex are redone on each resample."""
  N, D, loss, budget = (_values(n, v) for n, v in (("N", N), ("D", D), ("loss", loss), ("budget", budget)))
  _same_length("approach2", N=N, D=D, loss=loss, budget=budget)
  if isinstance(window, bool) or not isinstance(window, int) or window < 3:
    raise errors.ConfigError(f"window: must be an integer >= 3 (sizes per parabola); got {window!r}")
  Cs = np.unique(budget)
  if Cs.size < 2:
    raise errors.ConfigError(f"approach2: runs at {Cs.size} FLOP budget(s); need at least 2 budgets")
  rng = np.random.default_rng(seed)
  B = n_boot + 1
  Nopt, Dopt, per_budget = np.full((B, Cs.size), np.nan), np.full((B, Cs.size), np.nan), []
  for g, C in enumerate(Cs):
    sel = budget == C
    u_R, lD_R, L_R = np.log(N[sel]), np.log(D[sel]), loss[sel]
    u_P, point_R = np.unique(u_R, return_inverse=True)
    if u_P.size < 3:
      raise errors.ConfigError(f"approach2: budget {C:.3g} has {u_P.size} distinct model sizes; "
                       f"a parabola needs at least 3")
    seeds_P = np.bincount(point_R)
    by_seeds = bool((seeds_P >= 2).all())
    onehot_RxP = np.eye(u_P.size)[point_R]
    mean_P = (L_R @ onehot_RxP) / seeds_P
    if by_seeds:
      # Each point keeps its sizes and its number of seeds; its seeds' deviations from their mean are
      # redrawn from the whole budget's (pooled: 2-4 seeds alone under-state their own spread, and the
      # plain resample of n seeds shrinks it by (n - 1) / n, so deviations are scaled by sqrt(n / (n - 1))).
      dev_R = (L_R - mean_P[point_R]) * np.sqrt(seeds_P / (seeds_P - 1))[point_R]
      draw_BxR = dev_R[rng.integers(0, u_R.size, size=(n_boot, u_R.size))]
      w_BxP = np.tile(seeds_P.astype(np.float64), (B, 1))
      L_BxP = np.vstack([mean_P[None], mean_P + (draw_BxR @ onehot_RxP) / seeds_P])
    else:  # one run per point (or uneven seeds): redraw the runs within the budget
      W_BxR = np.vstack([np.ones((1, u_R.size)), rng.multinomial(u_R.size, np.full(u_R.size, 1 / u_R.size),
                                                                 size=n_boot)])
      w_BxP = W_BxR @ onehot_RxP
      with np.errstate(invalid="ignore"):
        L_BxP = (W_BxR * L_R) @ onehot_RxP / w_BxP
    ustar = np.full(B, np.nan)
    for b in range(B):
      if (w_BxP[b] > 0).sum() >= 3:
        ustar[b], coef, lo, hi, inside = _window_vertex(u_P, L_BxP[b], w_BxP[b], window)
        if b == 0:
          coef0, lo0, hi0, inside0 = coef, lo, hi, inside
    dslope, dicpt = _wls_line(u_R, lD_R[None], np.ones((1, u_R.size)))
    Nopt[:, g] = np.exp(ustar)
    Dopt[:, g] = np.exp(dicpt[0] + dslope[0] * ustar)
    in_range = bool(u_P[0] <= ustar[0] <= u_P[-1])  # False for NaN: no minimum
    per_budget.append(dict(C=float(C), N_opt=float(Nopt[0, g]), D_opt=float(Dopt[0, g]),
                           loss_opt=float(np.polyval(coef0, ustar[0])), coef=[float(v) for v in coef0],
                           in_range=in_range, bracketed=bool(inside0 and in_range),
                           window=[float(np.exp(u_P[lo0])), float(np.exp(u_P[hi0]))], sizes=int(u_P.size),
                           n=int(u_R.size), bootstrap="seeds" if by_seeds else "runs"))
  bracketed = np.array([b["bracketed"] for b in per_budget])
  vertex = np.isfinite(Nopt[0])
  used = vertex & (bracketed | keep_unbracketed)
  notes = [f"budget {b['C']:.3g}: loss vs log N is not convex around its lowest loss (no minimum): left out; "
           "add sizes around the optimum" for b, v in zip(per_budget, vertex) if not v]
  if not bracketed[vertex].all():
    names = ", ".join(f"{b['C']:.3g}" for b, v in zip(per_budget, vertex) if v and not b["bracketed"])
    notes.append(f"budgets {names}: the lowest loss is at the smallest or largest size tried (optimum not "
                 f"bracketed), so their N_opt extrapolates; "
                 + ("kept in the exponent fit (keep_unbracketed)" if keep_unbracketed else
                    "left out of the exponent fit (keep_unbracketed=True keeps them); add sizes there"))
  if used.sum() < 2:
    raise errors.ConfigError(f"approach2: {int(used.sum())} of {Cs.size} budgets give an N_opt to fit; the exponent needs "
                     f"2 ({'; '.join(notes) or 'add sizes around the lowest losses'})")
  for b, u in zip(per_budget, used):
    b["used"] = bool(u)
  return _allocation_fit("approach2", Cs[used], Nopt[:, used], Dopt[:, used], Cs if budgets is None else budgets,
                         dict(n=len(N), per_budget=per_budget, window=window, keep_unbracketed=keep_unbracketed,
                              notes=notes))


def approach1(C, N, D, loss, run, *, n_boot: int = 200, seed: int = 0, n_grid: int = 40, budgets=None,
              keep_unbracketed: bool = False) -> dict:
  """Chinchilla approach 1: at each FLOP count, the run with the lowest loss -> N_opt(C), D_opt(C).

  Points are (C, N, D, loss) along each run (`run` ids). Runs with a training curve (>= 2 points) are
  interpolated in log C on `n_grid` log-spaced FLOP values; with one point per run (final results),
  the FLOP values are the distinct C (the budgets) and each run counts at its own. A FLOP value whose
  winner is the smallest or largest size reaching it says only that the optimum lies beyond the sizes
  tried: such values are left out of the exponent fit (named in `notes`) unless keep_unbracketed=True.
  The bootstrap resamples runs."""
  C, N, D, loss = (_values(n, v) for n, v in (("C", C), ("N", N), ("D", D), ("loss", loss)))
  run = np.asarray(run)
  _same_length("approach1", C=C, N=N, D=D, loss=loss, run=run)
  runs, inv = np.unique(run, return_inverse=True)
  if runs.size < 2:
    raise errors.ConfigError(f"approach1: {runs.size} run(s); need runs of several sizes")
  counts = np.bincount(inv)
  lC = np.log(C)
  if (counts >= 2).any():
    lo, hi = lC.min(), lC.max()
    grid = np.linspace(lo, hi, n_grid)
  else:
    grid = np.unique(lC)
  if grid.size < 2 or lC.min() == lC.max():
    raise errors.ConfigError("approach1: all points at one FLOP count; need several budgets or training curves")
  R, G = runs.size, grid.size
  L_RxG, D_RxG = np.full((R, G), np.inf), np.full((R, G), np.nan)
  N_R = np.zeros(R)
  for r in range(R):
    sel = inv == r
    if np.unique(N[sel]).size != 1:
      raise errors.ConfigError(f"approach1: run {runs[r]!r} has several N values; N must be constant along a run")
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
    raise errors.ConfigError("approach1: the minimum-loss envelope uses a single model size; "
                     "need runs of several sizes that win at different budgets")
  Cg = np.exp(grid)
  covered_RxG = np.isfinite(L_RxG)
  with np.errstate(invalid="ignore"):
    n_lo = np.where(covered_RxG, N_R[:, None], np.inf).min(0)
    n_hi = np.where(covered_RxG, N_R[:, None], -np.inf).max(0)
  bracketed = valid[0] & (Nopt[0] > n_lo) & (Nopt[0] < n_hi)
  used = valid[0] & (bracketed | keep_unbracketed)
  envelope = dict(C=Cg[valid[0]].tolist(), N_opt=Nopt[0][valid[0]].tolist(), D_opt=Dopt[0][valid[0]].tolist(),
                  loss=np.min(Lb[0], axis=0)[valid[0]].tolist(), bracketed=bracketed[valid[0]].tolist())
  notes = []
  edge = valid[0] & ~bracketed
  if edge.any():
    where = (", ".join(f"{c:.3g}" for c in Cg[edge]) if edge.sum() <= 6 else
             f"{edge.sum()} of {valid[0].sum()}, C {Cg[edge].min():.3g} .. {Cg[edge].max():.3g}")
    notes.append(f"FLOP values {where}: the lowest loss is the smallest or largest size reaching them (optimum "
                 "not bracketed); " + ("kept in the exponent fit (keep_unbracketed)" if keep_unbracketed else
                                       "left out of the exponent fit (keep_unbracketed=True keeps them)"))
  if np.unique(Nopt[0][used]).size < 2:
    raise errors.ConfigError("approach1: the bracketed part of the minimum-loss envelope uses a single model size; "
                     "need sizes on both sides of each budget's best (or keep_unbracketed=True)")
  if budgets is None:
    budgets = np.unique(C) if (counts == 1).all() else [float(Cg[-1])]
  return _allocation_fit("approach1", Cg[used], Nopt[:, used], Dopt[:, used], budgets,
                         dict(n=len(C), runs=int(R), envelope=envelope, keep_unbracketed=keep_unbracketed,
                              notes=notes))


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
