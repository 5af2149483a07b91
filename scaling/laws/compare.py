"""Is the candidate better at scale? The effective compute (or parameter) multiplier of two ladders in one sweep.

Each ladder's frontier (best setting per point, loss averaged over its seeds; the lowest such point per compute
value) is fitted with L(x) = E + A x^-alpha (x = training FLOPs C, or non-embedding parameters N with
by='params'), both with the project's estimator (scaling/laws/estimator.py: Huber(1e-3) on log loss, batched
L-BFGS), and

  M(x) = x_b(L_c(x)) / x     (x_b(L) = (A_b / (L - E_b))^(1 / alpha_b): what the baseline needs for loss L)

is how much more compute the baseline needs to reach the candidate's loss at x (> 1: the candidate is better;
inf where the candidate's loss is below anything the baseline's law can reach). It is reported as a curve over the
range both ladders cover and at the top of that range, with the difference of the exponents alpha_c - alpha_b.
Intervals: a bootstrap that resamples each ladder independently, its points with replacement and, within each
point, its seeds with replacement.

law 'shared_E' (default) fits one E for both ladders (5 parameters): an irreducible loss belongs to the data and
the loss, not the recipe, and over a decade or two of compute E is poorly pinned by one ladder alone (the
project's 5-size ladders leave alpha's 95 % interval a decade wide), so two free E's turn curvature noise into
multiplier noise. With E shared, M(x) = (A_b / A_c)^(1/alpha_b) x^(alpha_c/alpha_b - 1) and E drops out.
'separate_E' fits each ladder alone (each its own fit.power) for recipes that change what is measured (another
tokenizer or corpus). Measured on planted ladders (5 compute values x 2 seeds per ladder, 0.3 % noise per point,
candidate = the baseline's law at 2x compute, 40 datasets, 200 resamples; 2-core x86 VM, 2026-12-03): shared_E
covered M = 2 at the top in 40/40 and excluded 1 in 40/40 (median interval hi/lo 1.98); separate_E covered 2 in
39/40 but excluded 1 only in 27/40 (hi/lo 5.6). With the candidate's true E 5 % below the baseline's (shared E
misspecified; true M at the top 2.74): shared_E estimated 2.53 (median), covered 29/30, excluded 1 in 30/30;
separate_E 2.77, 30/30 and 27/30 (hi/lo 2.0 vs 6.6). Sharing E costs little bias and buys a 3x narrower interval.

Ladders are the `sweep` column's values (a sweep config's `ladders` keys). Each point's seeds are the runs of its
best setting (results.mark_best); an IsoFLOP ladder enters as the best point of each budget, its choice taken as
given by the bootstrap.
"""

import numpy as np
import pandas as pd

from scaling.laws import estimator, lbfgs
from scaling.laws import fit as fit_lib
from scaling.sweep import results
from scaling import errors

LAWS = ("shared_E", "separate_E")
BY = {"compute": "flops", "params": "params_nonembed"}  # the x each comparison fits against
LADDER = "sweep"  # the column naming a run's ladder (the key of a sweep config's `ladders`, else the sweep's name)
N_LAW_PARAMS = 3  # E, A, alpha per ladder
NO_DIFFERENCE = "no evidence of a difference at these sizes"
FIXED_DATA_SPREAD = 1.1  # by='params': a ladder's token counts may differ this much (whole steps), no more
# Loss-vs-compute exponents of real ladders are ~0.05-0.5 (Kaplan: 0.050; Chinchilla: ~0.15-0.3); a fit past 3 is
# a step through the points (every point but the first at E), not a law.
ALPHA_PLAUSIBLE = 3.0
_BIG = 1e300  # stands in for an infinite multiplier inside percentiles (numpy's interpolation makes NaN of inf)


# ---------------------------------------------------------------------------------------------
# Points: seed means of each point's best setting, from the raw runs frame.

def seed_means(df: pd.DataFrame, loss: str = "eval_loss") -> pd.DataFrame:
  """One row per point (results.POINT): its best setting's completed runs reduced to `loss` = the mean over
  seeds, `{loss}_std` (ddof 1; NaN with one seed), `seeds` (how many) and `{loss}_seeds` (a tuple of the seeds'
  losses, for resampling); the other columns are its first seed's run."""
  if "is_best" not in df.columns:
    df = results.mark_best(df, loss)
  y = pd.to_numeric(df[loss], errors="coerce")
  done = df["status"].eq("completed") if "status" in df.columns else pd.Series(True, index=df.index)
  best = df[df["is_best"].astype(bool) & done & np.isfinite(y)]
  pid = pd.Series(results.point_ids(best), index=best.index)
  yb = pd.to_numeric(best[loss], errors="coerce").astype(np.float64)
  g = yb.groupby(pid)
  out = best[~pid.duplicated().to_numpy()].copy()
  first = pid[~pid.duplicated()]
  out[loss] = first.map(g.mean()).to_numpy()
  out[f"{loss}_std"] = first.map(g.std(ddof=1)).to_numpy()
  out["seeds"] = first.map(g.size()).to_numpy()
  out[f"{loss}_seeds"] = first.map(g.apply(tuple)).to_numpy()
  return out


def _frontier(pts: pd.DataFrame, x: str, loss: str) -> tuple[np.ndarray, list[np.ndarray]]:
  """(x_P ascending, each x's seed losses): at each x value the point with the lowest seed mean (one point per x
  on a parameter ladder; the best size of each budget on an IsoFLOP grid)."""
  xv = pd.to_numeric(pts[x], errors="coerce").to_numpy(dtype=np.float64)
  keep = np.isfinite(xv) & (xv > 0)
  pts, xv = pts[keep], xv[keep]
  order = np.lexsort((pts[loss].to_numpy(dtype=np.float64), xv))
  xs, seeds = [], []
  for i in order:
    if xs and xv[i] == xs[-1]:
      continue  # a higher loss at the same x
    xs.append(float(xv[i]))
    seeds.append(np.asarray(pts[f"{loss}_seeds"].iloc[i], dtype=np.float64))
  return np.array(xs), seeds


# ---------------------------------------------------------------------------------------------
# The joint fit: the estimator's objective per ladder, summed; theta maps onto each ladder's [e, a, alpha].

def _index(law: str) -> tuple[np.ndarray, np.ndarray]:
  """Columns of theta that are the baseline's and the candidate's [e, a, alpha] (a in centred units)."""
  if law == "shared_E":  # theta = [e, a_b, alpha_b, a_c, alpha_c]
    return np.array([0, 1, 2]), np.array([0, 3, 4])
  return np.array([0, 1, 2]), np.array([3, 4, 5])  # [e_b, a_b, alpha_b, e_c, a_c, alpha_c]


def _joint_fg(Z_b, y_b, w_b, Z_c, y_c, w_c, law: str) -> lbfgs.ValueAndGrad:
  fg_b = estimator._sum_of_powers_fg(Z_b[:, None], y_b, w_b, estimator.HUBER_DELTA)
  fg_c = estimator._sum_of_powers_fg(Z_c[:, None], y_c, w_c, estimator.HUBER_DELTA)
  ib, ic = _index(law)

  def fg(th_KxP, rows):
    f_b, g_b = fg_b(th_KxP[:, ib], rows)
    f_c, g_c = fg_c(th_KxP[:, ic], rows)
    g = np.zeros_like(th_KxP)
    g[:, ib] += g_b
    g[:, ic] += g_c
    return f_b + f_c, g
  return fg


def _starts(law: str, th_b: np.ndarray, th_c: np.ndarray, y_b: np.ndarray, y_c: np.ndarray) -> np.ndarray:
  """Separate: the two ladders' own optima (the joint objective separates). Shared: a grid of E with each ladder's
  reducible loss matched at its centre, over a grid of both exponents, and the own optima with either E."""
  if law == "separate_E":
    return np.concatenate([th_b, th_c])[None]
  grid = fit_lib._power_grid()
  es = np.unique(np.concatenate([grid[:, 0], [th_b[0], th_c[0]]]))
  alphas = np.unique(grid[:, 2])
  rows = []
  for e in es:
    a_b = np.log(max(np.exp(y_b.mean()) - np.exp(e), 0.05 * np.exp(y_b.mean())))
    a_c = np.log(max(np.exp(y_c.mean()) - np.exp(e), 0.05 * np.exp(y_c.mean())))
    rows += [[e, a_b, al_b, a_c, al_c] for al_b in alphas for al_c in alphas]
  rows += [[e, th_b[1], th_b[2], th_c[1], th_c[2]] for e in (th_b[0], th_c[0])]
  return np.array(rows)


def _own_optimum(x: np.ndarray, loss: np.ndarray, x0: float) -> np.ndarray:
  """One ladder's [e, a, alpha] (a at the centre x0) from fit.power, the estimator `scaling fit` uses."""
  p = fit_lib.power(x, loss, n_boot=0)["params"]
  return np.array([np.log(p["E"]), np.log(p["A"]) - p["alpha"] * np.log(x0), p["alpha"]])


def _fit(law, Z_b, y_b, Z_c, y_c, th_b, th_c) -> np.ndarray:
  fg = _joint_fg(Z_b, y_b, np.ones(len(y_b)), Z_c, y_c, np.ones(len(y_c)), law)
  x, f, _ = lbfgs.minimize(fg, _starts(law, th_b, th_c, y_b, y_c), max_iter=300)
  f = np.where(np.isfinite(f), f, np.inf)
  top = np.argsort(f)[:8]  # polish the best few tightly, as the estimator does
  x, f, _ = lbfgs.minimize(fg, x[top], ftol=estimator._POLISH_FTOL)
  return x[int(np.nanargmin(f))]


def _resample(x: np.ndarray, seeds: list[np.ndarray], n_boot: int, rng) -> tuple[np.ndarray, np.ndarray]:
  """(counts_BxP, log seed-mean loss_BxP): points drawn with replacement, and each point's seeds drawn with
  replacement. A point drawn twice in one resample keeps one seed draw: the estimator takes weights at fixed x."""
  P = len(x)
  W_BxP = rng.multinomial(P, np.full(P, 1 / P), size=n_boot).astype(np.float64)
  Y_BxP = np.empty((n_boot, P))
  for p, s in enumerate(seeds):
    Y_BxP[:, p] = np.log(s[rng.integers(0, len(s), size=(n_boot, len(s)))].mean(1))
  return W_BxP, Y_BxP


def _identified(law: str, W_b: np.ndarray, W_c: np.ndarray) -> np.ndarray:
  """Resamples whose distinct points pin the law: 3 per ladder for E, A, alpha each; with E shared, 2 per ladder
  (A, alpha) and 5 in all. (A frontier has one point per x, so distinct points are nonzero counts.)"""
  k_b, k_c = (W_b > 0).sum(1), (W_c > 0).sum(1)
  if law == "separate_E":
    return (k_b >= N_LAW_PARAMS) & (k_c >= N_LAW_PARAMS)
  return (k_b >= 2) & (k_c >= 2) & (k_b + k_c >= 2 * N_LAW_PARAMS - 1)


def _bootstrap(law, Z_b, seeds_b, Z_c, seeds_c, theta, n_boot, seed) -> np.ndarray:
  """B x P thetas, each ladder resampled independently and refitted from the full-data optimum (NaN rows: a
  resample that does not pin the law (`_identified`), or a failed refit)."""
  rng = np.random.default_rng(seed)
  W_b, Y_b = _resample(Z_b, seeds_b, n_boot, rng)
  W_c, Y_c = _resample(Z_c, seeds_c, n_boot, rng)
  # As the estimator: when the optimum has E at its lower boundary (dL/de vanishes there, so no resample could
  # leave it), also start each resample from E at 1 % of the lowest loss.
  starts = [theta]
  low = np.log(0.01) + min(Y_b.min(), Y_c.min())
  e_cols = np.unique([_index(law)[0][0], _index(law)[1][0]])
  if (theta[e_cols] < low).any():
    raised = theta.copy()
    raised[e_cols] = np.maximum(theta[e_cols], low)
    starts.append(raised)
  S = len(starts)
  rep = lambda a: np.repeat(a, S, axis=0)
  fg = _joint_fg(Z_b, rep(Y_b), rep(W_b), Z_c, rep(Y_c), rep(W_c), law)
  xb, fb, _ = lbfgs.minimize(fg, np.tile(np.array(starts), (n_boot, 1)), ftol=estimator._POLISH_FTOL)
  fb = np.where(np.isfinite(fb), fb, np.inf).reshape(n_boot, S)
  pick = np.argmin(fb, axis=1)
  boot = xb.reshape(n_boot, S, -1)[np.arange(n_boot), pick]
  bad = ~np.isfinite(fb[np.arange(n_boot), pick]) | ~_identified(law, W_b, W_c)
  boot[bad] = np.nan
  return boot


# ---------------------------------------------------------------------------------------------
# What the fits say: losses, the multiplier, intervals.

def _ladder_theta(th_KxP, law, role):
  """(e, a, alpha) columns (K, 1) of one ladder."""
  i = _index(law)[0 if role == "baseline" else 1]
  return tuple(th_KxP[:, [j]] for j in i)


def _loss(th_KxP, law, role, x0, x_G) -> np.ndarray:
  e, a, al = _ladder_theta(th_KxP, law, role)
  with np.errstate(over="ignore", invalid="ignore"):
    return np.exp(e) + np.exp(a - al * np.log(x_G / x0))


def _log_multiplier(th_KxP, law, x0_b, x0_c, x_G) -> np.ndarray:
  """log M(x) (K x G): log x_b(L_c(x)) - log x; inf where L_c <= E_b (the baseline's law never gets there)."""
  L_c = _loss(th_KxP, law, "candidate", x0_c, x_G)
  e, a, al = _ladder_theta(th_KxP, law, "baseline")
  with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
    gap = L_c - np.exp(e)
    log_need = np.log(x0_b) + (a - np.log(np.where(gap > 0, gap, 0.0))) / al
  return np.where(gap > 0, log_need, np.where(np.isnan(gap), np.nan, np.inf)) - np.log(x_G)


def _interval(v_BxG: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """95 % percentile interval per column over the finite-or-+inf rows (NaN rows are failed resamples)."""
  v = v_BxG[~np.isnan(v_BxG).any(axis=1)]
  if len(v) < 2:
    nan = np.full(v_BxG.shape[1], np.nan)
    return nan, nan
  lo, hi = np.percentile(np.minimum(v, _BIG), estimator.CI, axis=0)
  return lo, np.where(hi >= _BIG / 10, np.inf, hi)


def _natural(th_KxP, law, role, x0) -> dict:
  e, a, al = (c[:, 0] for c in _ladder_theta(th_KxP, law, role))
  with np.errstate(over="ignore"):
    return {"E": np.exp(e), "A": np.exp(a + al * np.log(x0)), "alpha": al}


def _check(df: pd.DataFrame, baseline: str, candidate: str, by: str, law: str, n_boot: int, loss: str):
  if by not in BY:
    raise errors.ConfigError(f"by: {by!r}; allowed: {', '.join(BY)}")
  if law not in LAWS:
    raise errors.ConfigError(f"law: {law!r}; allowed: {', '.join(LAWS)}")
  if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
    raise errors.ConfigError(f"n_boot: must be an integer >= 0; got {n_boot!r}")
  if loss not in df.columns:
    raise errors.ConfigError(f"loss: no column {loss!r} in the results")
  names = sorted(map(str, df[LADDER].dropna().unique())) if LADDER in df.columns else []
  for role, name in (("baseline", baseline), ("candidate", candidate)):
    if name not in names:
      raise errors.ConfigError(f"{role}: no ladder {name!r} in the sweep; allowed: {', '.join(names) or '(none)'}")


def _ladder(pts: pd.DataFrame, role: str, name: str, by: str, loss: str) -> tuple[str, np.ndarray, list]:
  lad = pts[pts[LADDER].astype(str) == name]
  x = fit_lib._x_column(lad, BY[by]) if by == "params" else BY[by]
  if by == "params":
    tokens = pd.to_numeric(lad["tokens"], errors="coerce").dropna() if "tokens" in lad.columns else pd.Series([])
    if len(tokens) and tokens.max() > FIXED_DATA_SPREAD * tokens.min():
      raise errors.ConfigError(f"by: 'params' compares ladders at fixed data, but {role} {name!r} trains "
                       f"{tokens.min():.3g} .. {tokens.max():.3g} tokens; allowed: by='compute' for it")
  xs, seeds = _frontier(lad, x, loss)
  if len(xs) < N_LAW_PARAMS:
    raise errors.ConfigError(f"{role}: ladder {name!r} has {len(xs)} completed point{'s' * (len(xs) != 1)} with {x} for "
                     f"the {N_LAW_PARAMS} parameters of L = E + A x^-alpha (E, A, alpha); need at least {N_LAW_PARAMS}")
  return x, xs, seeds


def compare(frame_or_sweep_dir, baseline: str, candidate: str, by: str = "compute", law: str = "shared_E",
            n_boot: int = 200, seed: int = 0, loss: str = "eval_loss", n_grid: int = 50) -> dict:
  """The candidate ladder's multiplier over the baseline (module docstring). `frame_or_sweep_dir`: a sweep
  directory or a `results.load`-like frame with a `sweep` column naming each run's ladder.

  Returns a dict: by, x (the column fitted), law, baseline / candidate (each: name, points (x, loss = seed mean,
  std, seeds), params / ci of E, A, alpha, x_range), overlap [lo, hi], curve (x, M, lo, hi over the overlap),
  top (x, M, ci), alpha_diff (value, ci: alpha_c - alpha_b), frontier (x grid and each ladder's loss with its
  band, for the figure), n_boot (resamples that refitted), notes."""
  df = results.load(frame_or_sweep_dir) if isinstance(frame_or_sweep_dir, str) else frame_or_sweep_dir
  _check(df, baseline, candidate, by, law, n_boot, loss)
  pts = seed_means(df, loss)
  x_b_col, x_b, seeds_b = _ladder(pts, "baseline", baseline, by, loss)
  x_c_col, x_c, seeds_c = _ladder(pts, "candidate", candidate, by, loss)
  lo, hi = max(x_b.min(), x_c.min()), min(x_b.max(), x_c.max())
  if not lo < hi:
    raise errors.ConfigError(f"candidate: ladder {candidate!r} covers {x_c_col} {x_c.min():.3g} .. {x_c.max():.3g} and "
                     f"baseline {baseline!r} {x_b.min():.3g} .. {x_b.max():.3g}: no {x_c_col} is in both; allowed: "
                     "ladders whose ranges overlap")
  y_b = np.log([s.mean() for s in seeds_b])
  y_c = np.log([s.mean() for s in seeds_c])
  x0_b, x0_c = (float(np.exp(np.mean(np.log(v)))) for v in (x_b, x_c))
  Z_b, Z_c = np.log(x_b / x0_b), np.log(x_c / x0_c)
  theta = _fit(law, Z_b, y_b, Z_c, y_c, _own_optimum(x_b, np.exp(y_b), x0_b), _own_optimum(x_c, np.exp(y_c), x0_c))
  boot = _bootstrap(law, Z_b, seeds_b, Z_c, seeds_c, theta, n_boot, seed) if n_boot else np.zeros((0, len(theta)))
  ok = ~np.isnan(boot).any(axis=1)

  grid = np.geomspace(lo, hi, n_grid)
  logM = _log_multiplier(theta[None], law, x0_b, x0_c, grid)[0]
  logM_lo, logM_hi = _interval(_log_multiplier(boot, law, x0_b, x0_c, grid))
  with np.errstate(over="ignore"):  # M beyond 1e308: inf, which the notes below explain
    top = dict(x=float(hi), M=float(np.exp(logM[-1])), ci=[float(np.exp(logM_lo[-1])), float(np.exp(logM_hi[-1]))])
    curve = dict(x=grid, M=np.exp(logM), lo=np.exp(logM_lo), hi=np.exp(logM_hi))

  out = dict(by=by, x=x_c_col, law=law, loss=loss, n_boot=int(ok.sum()), overlap=[float(lo), float(hi)],
             curve=curve, top=top, notes=[])
  for role, name, xs, seeds, x0 in (("baseline", baseline, x_b, seeds_b, x0_b),
                                    ("candidate", candidate, x_c, seeds_c, x0_c)):
    p, samples = _natural(theta[None], law, role, x0), _natural(boot[ok], law, role, x0)
    out[role] = dict(name=name, points=dict(x=xs, loss=np.array([s.mean() for s in seeds]),
                                            std=np.array([s.std(ddof=1) if len(s) > 1 else np.nan for s in seeds]),
                                            seeds=[s for s in seeds]),
                     params={k: float(v[0]) for k, v in p.items()}, ci=estimator._ci(samples),
                     x_range=[float(xs.min()), float(xs.max())], x0=x0)
    p = out[role]["params"]
    if not (np.isfinite(p["A"]) and p["alpha"] <= ALPHA_PLAUSIBLE):
      out["notes"].append(f"{role} {name!r}: its points do not identify a power law (alpha={p['alpha']:.3g}, "
                          f"A={p['A']:.3g}: the law is a step, not a curve); its multiplier is not a measurement. "
                          "Try more sizes, more tokens per run, or law='separate_E'")
  d_alpha = out["candidate"]["params"]["alpha"] - out["baseline"]["params"]["alpha"]
  d_samples = _natural(boot[ok], law, "candidate", x0_c)["alpha"] - _natural(boot[ok], law, "baseline", x0_b)["alpha"]
  out["alpha_diff"] = dict(value=float(d_alpha), ci=estimator._ci({"d": d_samples})["d"])

  # Each ladder's law with its band, over both ranges and out to where the baseline reaches the candidate's top.
  reach = top["M"] * hi if np.isfinite(top["M"]) else hi
  fx = np.geomspace(min(x_b.min(), x_c.min()), min(max(x_b.max(), x_c.max(), reach), 100 * hi), 200)
  out["frontier"] = {"x": fx}
  out["unit"] = results.loss_unit(df)
  for role, x0 in (("baseline", x0_b), ("candidate", x0_c)):
    band = _interval(_loss(boot[ok], law, role, x0, fx)) if ok.sum() >= 2 else (None, None)
    out["frontier"][role] = dict(loss=_loss(theta[None], law, role, x0, fx)[0], lo=band[0], hi=band[1])

  past = top["M"] * hi / x_b.max()
  if past > 1.01:
    out["notes"].append(f"the baseline reaches the candidate's loss at the top only past its own largest point: "
                        f"M extrapolates the baseline's law {past:.3g}x beyond it" if np.isfinite(past) else
                        "the baseline's law never reaches the candidate's loss at the top (below its E)")
  if not n_boot or ok.sum() < 2:
    out["notes"].append("no bootstrap resamples: no intervals")
  elif top["ci"][0] <= 1 <= top["ci"][1]:
    out["notes"].append(f"the interval includes 1: {NO_DIFFERENCE}")
  return out


def format_summary(r: dict) -> str:
  """The comparison in a few lines: each ladder's law, the multiplier at the top of the shared range, the
  exponent difference, notes."""
  what = {"compute": "compute", "params": "parameters"}[r["by"]]
  lines = []
  for role in ("baseline", "candidate"):
    f = r[role]
    ps = ", ".join(f"{k}={f['params'][k]:.4g} [{f['ci'][k][0]:.3g}, {f['ci'][k][1]:.3g}]" for k in ("E", "A", "alpha"))
    lines.append(f"{role:<9} {f['name']}: {len(f['points']['x'])} points, {r['x']} {f['x_range'][0]:.3g} .. "
                 f"{f['x_range'][1]:.3g}; L = E + A x^-alpha: {ps}")
  t = r["top"]
  lines.append(f"multiplier at {r['x']}={t['x']:.3g} (top of the shared range): the baseline needs {t['M']:.3g}x "
               f"the {what} for the candidate's loss (95% CI [{t['ci'][0]:.3g}, {t['ci'][1]:.3g}], "
               f"{r['n_boot']} resamples; law {r['law']})")
  c = r["curve"]
  lines.append(f"multiplier over {r['x']} {r['overlap'][0]:.3g} .. {r['overlap'][1]:.3g}: "
               f"{c['M'][0]:.3g} [{c['lo'][0]:.3g}, {c['hi'][0]:.3g}] at the bottom")
  d = r["alpha_diff"]
  lines.append(f"alpha_candidate - alpha_baseline = {d['value']:+.3g} (95% CI [{d['ci'][0]:+.3g}, {d['ci'][1]:+.3g}])")
  lines += [f"note: {n}" for n in r["notes"]]
  return "\n".join(lines) + "\n"
