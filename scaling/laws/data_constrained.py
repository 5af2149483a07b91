"""The data-constrained scaling law (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models").

  L(N, D, U_D) = E + A / N'^alpha + B / D'^beta
  D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  R_D = D / U_D - 1  (repetitions beyond the first epoch)
  N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  R_N = N / U_N - 1,  U_N = min(N, N_opt(U_D))

U_D: unique tokens; N_opt(U_D) = G (G U_D)^(beta/alpha), G = (alpha A / (beta B))^(1/(alpha+beta)): the
compute-optimal size for U_D tokens under the fitted law (so R_N > 0 means parameters in excess of what
U_D unique tokens can use). R_D*, R_N*: how many repetitions (excess-parameter multiples) still pay, the
paper's 15.4 and 5.3 at its scale.

Fitted as the paper does, in two stages: (1) E, A, B, alpha, beta by Chinchilla approach 3 (chinchilla.approach3)
on the single-epoch runs (D <= U_D); (2) with those fixed, log R_D* (and log R_N* when some run has excess
parameters) on all runs, the same Huber(1e-3) on log loss, by the project's batched L-BFGS from a grid of
starts. The bootstrap resamples runs once and refits both stages on each resample.

Stage 1 takes single-epoch runs as plain Chinchilla points, while the law shrinks N' below N for any run
with excess parameters, single-epoch ones included (the paper's two stages share this). Single-epoch runs
far beyond N_opt(D) therefore bias stage 1: measured on synthetic data (0.1 % noise, 4 seeds), R_D* came
out 3-5 % low when the single-epoch grid reached 100x excess parameters, within 1-3 % when every
single-epoch run had >= 5 tokens per parameter. Keep the single-epoch runs near compute-optimal.
"""

import itertools

import numpy as np
import pandas as pd

from scaling.laws import chinchilla, estimator, lbfgs
from scaling import errors

STARTS = np.log([0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0])  # log R* starts for stage 2
PROFILE = np.geomspace(0.1, 1e4, 51)  # R* values the objective is profiled over
FLAT = 0.005  # "within 0.5 % of the best objective": other minima and the flat range are judged at this
STAGE1 = ("E", "A", "B", "alpha", "beta")


def effective(U, R, R_star):
  """U + U R* (1 - exp(-R / R*)): effective data D' (or parameters N') from U unique and R repeats."""
  return U * (1 + R_star * -np.expm1(-R / R_star))


def unique_params(U_D, p: dict):
  """N_opt(U_D) under the approach-3 parameters p: the most parameters U_D unique tokens can use."""
  al, be = p["alpha"], p["beta"]
  G = (al * p["A"] / (be * p["B"])) ** (1 / (al + be))
  return G * (G * U_D) ** (be / al)


def _repeats(N, D, U_D, p: dict):
  U_N = np.minimum(N, unique_params(U_D, p))
  return U_N, np.maximum(N / U_N - 1, 0.0), np.maximum(D / U_D - 1, 0.0)


def predict(f: dict, N, D, U, params: dict | None = None):
  """Loss at N params, D tokens, U unique tokens (0 or >= D: all unique)."""
  p = f["params"] if params is None else params
  N, D, U = (np.asarray(v, dtype=np.float64) for v in (N, D, U))
  U_D = np.where((U > 0) & (U < D), U, D)
  U_N, R_N, R_D = _repeats(N, D, U_D, p)
  N_eff = effective(U_N, R_N, p["R_N_star"]) if np.isfinite(p.get("R_N_star", np.nan)) else N
  return p["E"] + p["A"] / N_eff ** p["alpha"] + p["B"] / effective(U_D, R_D, p["R_D_star"]) ** p["beta"]


def _stage2_fg(y_M, W_KxM, stage1_Kx5, U_D, N, D, fit_N: bool, delta: float) -> lbfgs.ValueAndGrad:
  """Huber(log L-hat - log L) in theta = [log R_D*(, log R_N*)], each row with its own stage-1 parameters
  (E, A, B, alpha, beta) and resample weights."""
  E, A, B, al, be = (stage1_Kx5[:, i:i + 1] for i in range(5))
  U_N, R_N, R_D = _repeats(N, D, U_D, dict(A=A, B=B, alpha=al, beta=be))

  def part(U, R, log_star, coef, expo):
    s = np.exp(log_star)[:, None]
    x = R / s
    eff = U * (1 + s * -np.expm1(-x))
    term = coef / eff ** expo
    # d term / d log R* = -expo term / eff * U R* (1 - e^-x (1 + x))
    return term, -expo * term / eff * U * s * (-np.expm1(-x) - x * np.exp(-x))

  def fg(th_KxP, rows):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
      tD, gD = part(U_D, R_D, th_KxP[:, 0], B[rows], be[rows])
      if fit_N:
        tN, gN = part(U_N[rows], R_N[rows], th_KxP[:, 1], A[rows], al[rows])
      else:
        tN, gN = A[rows] / N ** al[rows], None
      Lhat = E[rows] + tN + tD
      r = np.log(Lhat) - y_M
      q = np.minimum(np.abs(r), delta)  # Huber, as estimator._sum_of_powers_fg
      w = W_KxM[rows]
      f = np.sum(w * q * (np.abs(r) - 0.5 * q), axis=1)
      c = w * np.clip(r, -delta, delta) / Lhat
      g = [np.sum(c * gD, axis=1)] + ([np.sum(c * gN, axis=1)] if fit_N else [])
    return f, np.stack(g, 1)
  return fg


def objective(params: dict, N, D, U, loss, delta: float = estimator.HUBER_DELTA) -> float:
  """The fit's objective at `params`: sum over runs of Huber(delta) on log L-hat - log L (to compare a
  published set of parameters with the fit's on the same runs)."""
  r = np.log(predict({"params": params}, N, D, U)) - np.log(np.asarray(loss, dtype=np.float64))
  q = np.minimum(np.abs(r), delta)
  return float(np.sum(q * (np.abs(r) - 0.5 * q)))


def _stage1_rows(stage1: dict, B: int) -> np.ndarray:
  bad = [k for k in STAGE1 if not (isinstance(stage1.get(k), (int, float)) and np.isfinite(stage1[k])
                                   and stage1[k] > 0)]
  if bad or set(stage1) - set(STAGE1):
    raise errors.ConfigError(f"stage1: needs E, A, B, alpha, beta as numbers > 0; got {sorted(stage1)}"
                     + (f" ({', '.join(bad)} missing or not > 0)" if bad else ""))
  return np.tile([float(stage1[k]) for k in STAGE1], (B, 1))


def _profile(fg, which: int, P: int) -> tuple[np.ndarray, np.ndarray]:
  """Objective over R* = PROFILE for parameter `which` (0: R_D*, 1: R_N*), the other re-optimised from
  every start at each value. Returns (objective_G, the other parameter's log R*_G)."""
  G = PROFILE.size
  if P == 1:
    f, _ = fg(np.log(PROFILE)[:, None], np.zeros(G, int))
    return f, np.full(G, np.nan)
  fixed_K = np.repeat(np.log(PROFILE), STARTS.size)
  other = 1 - which

  def fg1(th_Kx1, rows):
    th = np.empty((len(rows), 2))
    th[:, which], th[:, other] = fixed_K[rows], th_Kx1[:, 0]
    f, g = fg(th, np.zeros(len(rows), int))
    return f, g[:, [other]]
  x, f, _ = lbfgs.minimize(fg1, np.tile(STARTS, G)[:, None])
  f_GxS = np.where(np.isfinite(f), f, np.inf).reshape(G, STARTS.size)
  pick = np.argmin(f_GxS, axis=1)
  return f_GxS[np.arange(G), pick], x[:, 0].reshape(G, STARTS.size)[np.arange(G), pick]


def _identification(fg, theta, obj, P, ci, names) -> tuple[dict, list[dict], list[str]]:
  """Profiles over R_D* (and R_N*), the profile's local minima (each polished in full), and notes."""
  profile, notes, minima = {}, [], []
  for which, name in enumerate(names):
    shown = name.replace("_star", "*")
    f_G, other_G = _profile(fg, which, P)
    # R* within 0.5 % of the best objective (the best itself included: a sharp optimum sits between grid values)
    within = np.append(PROFILE[f_G <= obj * (1 + FLAT)], np.exp(theta[which]))
    profile[name] = dict(R_star=PROFILE.tolist(), objective=f_G.tolist(),
                         **({f"{names[1 - which]}": np.exp(other_G).tolist()} if P == 2 else {}),
                         within_flat=[float(within.min()), float(within.max())])
    lo, hi = ci[name]
    span = hi / lo if np.isfinite(lo) and lo > 0 else np.inf
    flat = within.max() / within.min() > 100
    if flat or span > 100:
      why = [f"the objective stays within {100 * FLAT:g} % of its best for {shown} = {within.min():.3g} .. "
             f"{within.max():.3g}" + (" (the whole profile)" if within.size > PROFILE.size else "")]
      if span > 100:
        why.append(f"its 95 % interval spans {lo:.3g} .. {hi:.3g} ({span:.3g}x)")
      notes.append(f"{shown} is weakly identified: " + "; ".join(why))
    if which == 0:  # interior local minima of the R_D* profile, polished with both R* free
      i = np.flatnonzero((f_G[1:-1] <= f_G[:-2]) & (f_G[1:-1] <= f_G[2:])) + 1
      if i.size:
        x0 = np.log(PROFILE[i])[:, None] if P == 1 else np.stack([np.log(PROFILE[i]), other_G[i]], 1)
        x, f, _ = lbfgs.minimize(lambda th, rows: fg(th, np.zeros(len(th), int)), x0)
        seen = []
        for xi, fi in sorted(zip(x, f), key=lambda t: t[1]):
          if np.isfinite(fi) and all(np.abs(xi - s).max() > 0.05 for s in seen):  # 5 % apart in R*
            seen.append(xi)
            minima.append(dict(R_D_star=float(np.exp(xi[0])), **({"R_N_star": float(np.exp(xi[1]))} if P == 2 else {}),
                               objective=float(fi), above_best=float(fi / obj - 1)))
  others = [m for m in minima if abs(np.log(m["R_D_star"]) - theta[0]) > 0.05]
  close = [m for m in others if m["above_best"] <= FLAT]
  if close:
    notes.append(f"{len(close)} other local minima within {100 * FLAT:g} % of the best objective: "
                 + ", ".join(f"R_D* = {m['R_D_star']:.3g}" + (f", R_N* = {m['R_N_star']:.3g}" if P == 2 else "")
                             + f" (+{100 * m['above_best']:.2g} %)" for m in close))
  return profile, minima, notes


def fit_data_constrained(N, D, U, loss, *, n_boot: int = 200, seed: int = 0, delta: float = estimator.HUBER_DELTA,
                         grid: np.ndarray | None = None, stage1: dict | None = None,
                         tie_alpha_beta: bool = False) -> dict:
  """R_D* (and R_N*) on top of approach 3; U = unique tokens per run (0: all unique). See module docstring.

  stage1=dict(E=, A=, B=, alpha=, beta=) fixes stage 1 (the paper's procedure: stage 1 from a separate fit)
  and fits R_D*, R_N* on every run; tie_alpha_beta fits stage 1 with alpha = beta (as the paper did).
  The result reports the starts that reached the best objective, profiles of the objective over R_D*
  (and R_N*) with the other re-optimised, the profile's local minima, and notes when an R* is weakly
  identified (objective within 0.5 % of its best over > 100x of R*, or a 95 % interval > 100x)."""
  N, D, loss = estimator._values("N", N), estimator._values("D", D), estimator._values("loss", loss)
  U = estimator._values("unique_tokens", U, positive=False)
  estimator._same_length("data_constrained", N=N, D=D, unique_tokens=U, loss=loss)
  if (U < 0).any():
    raise errors.ConfigError("unique_tokens: negative values; allowed: > 0, or 0 for all unique")
  U_D = np.where((U > 0) & (U < D), U, D)
  single = U_D >= D
  if stage1 is None and single.sum() < 5:
    raise errors.ConfigError(f"data_constrained: {single.sum()} single-epoch runs (tokens <= unique_tokens); the "
                     "approach-3 stage needs at least 5 (several sizes and token counts), or pass stage1")
  if np.unique(D[~single] / U_D[~single]).size < 2:
    raise errors.ConfigError("data_constrained: fewer than 2 distinct epoch counts among repeated runs "
                     "(tokens > unique_tokens); R_D* needs runs at several repetitions")
  rng = np.random.default_rng(seed)
  M = len(N)
  W_BxM = np.vstack([np.ones((1, M)), rng.multinomial(M, np.full(M, 1 / M), size=n_boot)])
  if stage1 is None:
    s1 = chinchilla.approach3(N[single], D[single], loss[single], grid=grid, delta=delta, boot_weights=W_BxM[1:, single],
                       tie_alpha_beta=tie_alpha_beta)
    stage1_BxK = np.array([[s1["params"][k] for k in STAGE1]]
                          + [list(r) for r in zip(*(s1["boot"][k] for k in STAGE1))])
    s1_params, s1_boot = s1["params"], s1["boot"]
    s1_info = dict(n=int(single.sum()), objective=s1["objective"], fixed=False, tie_alpha_beta=tie_alpha_beta)
  else:
    stage1_BxK = _stage1_rows(stage1, n_boot + 1)
    s1_params = {k: float(stage1[k]) for k in STAGE1}
    s1_boot = {k: stage1_BxK[1:, i] for i, k in enumerate(STAGE1)}
    s1 = dict(notes=[])
    s1_info = dict(n=0, fixed=True)
  _, R_N, _ = _repeats(N, D, U_D, s1_params)
  fit_N = bool((R_N > 0).any())
  P = 2 if fit_N else 1
  fg = _stage2_fg(np.log(loss), W_BxM, stage1_BxK, U_D, N, D, fit_N, delta)
  starts = np.array(list(itertools.product(*[STARTS] * P)))
  x, f, _ = lbfgs.minimize(lambda th, rows: fg(th, np.zeros(len(th), int)), starts)
  f = np.where(np.isfinite(f), f, np.inf)
  best = int(np.argmin(f))
  theta, obj = x[best], float(f[best])
  at_best = int(np.sum(f <= obj * (1 + 1e-6)))
  boot = np.full((n_boot, P), np.nan)
  ok = np.all(np.isfinite(stage1_BxK[1:]), axis=1)
  # A resample with < 2 distinct repetition counts cannot place R_D*: it would stay at its start.
  ok &= estimator._distinct_ok(D[~single] / U_D[~single], 2)(W_BxM[1:, ~single])
  if ok.any():
    rows = 1 + np.flatnonzero(ok)
    xb, fb, _ = lbfgs.minimize(lambda th, r: fg(th, rows[r]), np.tile(theta, (rows.size, 1)))
    boot[ok] = np.where(np.isfinite(fb)[:, None], xb, np.nan)
  stars = {"R_D_star": np.exp(boot[:, 0])}
  params = {**s1_params, "R_D_star": float(np.exp(theta[0]))}
  if fit_N:
    stars["R_N_star"] = np.exp(boot[:, 1])
    params["R_N_star"] = float(np.exp(theta[1]))
  bs = {**{k: s1_boot[k] for k in STAGE1}, **stars}
  ci = estimator._ci(bs)
  notes = list(s1.get("notes", []))
  if not fit_N:
    notes.append("no run has parameters in excess of N_opt(unique tokens): R_N* not fitted")
  max_R = float((D / U_D - 1).max())
  if params["R_D_star"] > 10 * max_R:
    notes.append(f"R_D* = {params['R_D_star']:.3g} is far beyond the most repetitions seen ({max_R:.3g}): "
                 "repeated tokens were worth as much as fresh ones here; R_D* is a lower bound at best")
  profile, minima, id_notes = _identification(fg, theta, obj, P, ci, list(stars))
  return dict(law="data_constrained", x="N", n=M, params=params, derived={}, ci=ci, boot=bs,
              n_boot=int(np.isfinite(boot[:, 0]).sum()), stage1=s1_info, objective=obj, starts=len(starts),
              starts_at_optimum=at_best, profile=profile, local_minima=minima,
              repeated=int((~single).sum()), max_epochs=max_R + 1, notes=notes + id_notes)


def check_columns(df: pd.DataFrame) -> None:
  if "unique_tokens" not in df.columns or pd.to_numeric(df["unique_tokens"], errors="coerce").isna().all():
    raise errors.ConfigError("unique_tokens: no such column in the results; allowed: runs whose config sets "
                     "data.unique_tokens (0 = the whole training split)")


def fit_frame(fdf: pd.DataFrame, *, x: str = "params_nonembed", loss: str = "eval_loss", n_boot: int = 200,
              seed: int = 0) -> dict:
  """fit_data_constrained on one family's best run per point: N = x, D = tokens, U = unique_tokens.

  unique_tokens 0 (the whole split) counts as single-epoch: runs longer than the split should set it."""
  check_columns(fdf)
  U = pd.to_numeric(fdf["unique_tokens"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
  return fit_data_constrained(estimator.column(fdf, x), estimator.column(fdf, "tokens"), U, estimator.column(fdf, loss),
                              n_boot=n_boot, seed=seed)
