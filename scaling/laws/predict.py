"""`scaling predict`: forecast the loss of a run not trained yet, with a 95 % predictive interval, and keep
the forecast in the sweep's ledger (scaling/sweep/ledger.py) so that the run, once trained, scores it.

The forecast comes from a law fitted to the sweep the way `scaling fit` does (fit.fit_frame): a power law in
the size for a parameter ladder (at the ladder's own tokens per size), approach 3's L(N, D) for a sweep at
>= 2 budgets; `--C` asks approach 3 for the compute-optimal (N, D) at C FLOPs and forecasts there.

The predictive interval is for one new run: log L = log L_fit(N, D) + fit uncertainty + per-run noise, i.e.
every bootstrap refit's prediction times exp(sigma z), z ~ N(0, 1), its 2.5 / 97.5 percentiles. sigma is
the measured per-run noise, relative: the seeds' std / mean pooled over the points with >= 2 seeds
(`noise.source` 'seeds'), else the fit's residual scatter, sqrt(sum r^2 / (n - p)) on log loss ('residual').
`discrepancy` (relative, default 0) adds a term for the law's own misfit in quadrature: on planted ladders,
where the law is right, the interval covers without it (experiments/ci_coverage.py --predictive: 0.95-1.00);
a ladder that bends (make sweep's mixed-depth one, +1.2 % at its largest size) is what it would be for.
"""

import functools
import importlib.metadata
import os
import subprocess
import time

import numpy as np
import pandas as pd

from scaling.laws import fit as fit_lib
from scaling.sweep import ledger, results
from scaling import errors

LEVEL = 0.95
FORECAST_LAWS = ("auto", "power", "kaplan", "approach3")
_N_PARAMS = {"power": 3, "kaplan": 2, "approach3": 5}
NOISE_DRAWS = 50  # noise draws per bootstrap refit: 200 x 50 samples put the 2.5 % tail on ~250 of them


@functools.cache
def code_version() -> str:
  """`git describe` of the checkout the package runs from (with -dirty), else the package version."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty", "--tags"], capture_output=True,
                         text=True, timeout=10)
    if out.returncode == 0 and out.stdout.strip():
      return "git " + out.stdout.strip()
  except (OSError, subprocess.SubprocessError):
    pass
  try:
    return "scaling " + importlib.metadata.version("scaling")
  except importlib.metadata.PackageNotFoundError:
    return "unknown"


def seed_noise(pts: pd.DataFrame, loss: str = "eval_loss") -> dict | None:
  """Pooled relative seed std over best_points with >= 2 seeds: sqrt(sum (k-1) (s/m)^2 / sum (k-1));
  None when no point has two seeds."""
  k = pd.to_numeric(pts.get("seeds", pd.Series(1, pts.index)), errors="coerce").fillna(1).to_numpy()
  std = pd.to_numeric(pts.get(f"{loss}_std", pd.Series(np.nan, pts.index)), errors="coerce").to_numpy()
  rel = std / pd.to_numeric(pts[loss], errors="coerce").to_numpy()
  ok = (k >= 2) & np.isfinite(rel)
  if not ok.any():
    return None
  dof = float((k[ok] - 1).sum())
  return dict(source="seeds", sigma=float(np.sqrt(((k[ok] - 1) * rel[ok] ** 2).sum() / dof)),
              points=int(ok.sum()), dof=dof)


def residual_noise(f: dict, xs: list[np.ndarray], y: np.ndarray) -> dict:
  """The fit's scatter on log loss with its degrees of freedom: sqrt(sum r^2 / (n - p))."""
  r = np.log(y) - np.log(fit_lib.predict(f, *xs))
  dof = len(y) - _N_PARAMS[f["law"]]
  sigma = float(np.sqrt((r ** 2).sum() / dof)) if dof > 0 else float("nan")
  return dict(source="residual", sigma=sigma, points=len(y), dof=float(max(dof, 0)))


def interval(f: dict, xs: list, sigma: float, *, discrepancy: float = 0.0, level: float = LEVEL,
             seed: int = 0) -> dict:
  """Forecast at one point xs = [x] or [N, D]: `loss` (the fit), the predictive `lo`, `hi` (module
  docstring; `discrepancy`, relative, adds in quadrature to sigma) and the fit-only band `fit_lo`, `fit_hi`."""
  xs = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in xs]
  loss = float(fit_lib.predict(f, *xs)[0])
  q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
  names = {"power": ("E", "A", "alpha"), "kaplan": ("x_c", "alpha"), "approach3": ("E", "A", "B", "alpha", "beta")}
  boot = f.get("boot") or {}
  with np.errstate(all="ignore"):
    pred_B = (fit_lib.predict(f, *xs, params={k: np.asarray(boot[k])[:, None] for k in names[f["law"]]})[:, 0]
              if boot and len(next(iter(boot.values()))) else np.zeros(0))
  pred_B = pred_B[np.isfinite(pred_B) & (pred_B > 0)]
  if pred_B.size < 2:
    pred_B, fit_band = np.array([loss]), [float("nan"), float("nan")]  # no bootstrap: noise only
  else:
    fit_band = [float(v) for v in np.percentile(pred_B, q)]
  s = float(np.hypot(sigma if np.isfinite(sigma) else 0.0, discrepancy))
  z = np.random.default_rng(seed).standard_normal((pred_B.size, NOISE_DRAWS))
  lo, hi = np.percentile(np.log(pred_B)[:, None] + s * z, q)
  return dict(loss=loss, lo=float(np.exp(lo)), hi=float(np.exp(hi)), fit_lo=fit_band[0], fit_hi=fit_band[1],
              sigma_total=s, level=level)


# ---------------------------------------------------------------------------------------------
# The sweep level.

def _positive(name: str, v) -> float | None:
  if v is None:
    return None
  try:
    v = float(v)
  except (TypeError, ValueError):
    raise errors.ConfigError(f"{name}: {v!r} is not a number; allowed: a number > 0") from None
  if not np.isfinite(v) or v <= 0:
    raise errors.ConfigError(f"{name}: got {v:g}; allowed: a number > 0")
  return v


def _family(pts: pd.DataFrame, family: str | None) -> str:
  fams = sorted(map(str, pts["family"].dropna().unique()))
  if family is None:
    if len(fams) != 1:
      raise errors.ConfigError(f"family: the sweep has {len(fams)} families ({', '.join(fams)}); allowed: --family=one of them")
    return fams[0]
  if family not in fams:
    raise errors.ConfigError(f"family: {family!r} has no completed runs here; allowed: {', '.join(fams)}")
  return family


def _law(sweep_dir: str, law: str | None, fdf: pd.DataFrame, x: str, C) -> str:
  """The law to forecast with: `law`, else fit.json's, else 'auto'; auto -> power in the size for a ladder
  whose tokens are fixed or a fixed multiple of the size (kaplan with 3 sizes, as `scaling fit` does), else
  approach3 (N and D varied apart: IsoFLOP grids, N x D grids)."""
  if law is None:
    law = (fit_lib.load_fit(sweep_dir) or {}).get("law", "auto")
    law = law if law in FORECAST_LAWS else "auto"
  if law not in FORECAST_LAWS:
    raise errors.ConfigError(f"law: {law!r} gives no loss to forecast; allowed: {', '.join(FORECAST_LAWS)}")
  if law != "auto":
    return law
  xc = fit_lib._x_column(fdf, x)
  try:  # tokens a function of the size (fixed, or per parameter): a ladder, nothing for approach 3 to separate
    _ladder_tokens(fdf, xc, 1.0)
  except ValueError:
    return "approach3"
  return "kaplan" if fdf[xc].nunique() == 3 else "power"


def _ladder_tokens(pts: pd.DataFrame, xc: str, N: float) -> tuple[float, str]:
  """The tokens a parameter ladder gives size N: its one token budget, or its tokens per parameter x N."""
  n, d = fit_lib._col(pts, xc), fit_lib._col(pts, "tokens")
  ok = np.isfinite(n) & np.isfinite(d) & (d > 0)
  if not ok.any():
    raise errors.ConfigError("D: the ladder's runs record no tokens; allowed: --D=TOKENS")
  if np.ptp(np.log(d[ok])) < 0.02:
    return float(np.exp(np.log(d[ok]).mean())), f"the ladder's {np.exp(np.log(d[ok]).mean()):.4g} tokens"
  r = np.log(d[ok] / n[ok])
  if np.ptp(r) < 0.05:
    return float(N * np.exp(r.mean())), f"the ladder's {np.exp(r.mean()):.3g} tokens per parameter"
  raise errors.ConfigError("D: the ladder's tokens follow no single rule (neither fixed nor per parameter); allowed: "
                   "--law=approach3 on runs at >= 2 budgets")


def predict(sweep_dir: str, N: float | None = None, D: float | None = None, C: float | None = None,
            law: str | None = None, *, family: str | None = None, x: str = "params_nonembed",
            loss: str = "eval_loss", n_boot: int = 200, seed: int = 0, discrepancy: float = 0.0,
            record: bool = True, holdout: int = 0) -> dict:
  """Forecast one run of SWEEP_DIR at (N, D) or at the compute-optimal allocation of C FLOPs. N counts the
  `x` column's parameters (non-embedding by default), D tokens. Returns the forecast (ledger.py lists its
  fields) and, with `record`, appends it to SWEEP_DIR/predictions.jsonl. Bad input: ValueError naming the
  field, before any fit. `holdout=k` leaves the family's k largest sizes out of the fit and (N unset) forecasts
  the largest: a backtest the ledger scores against the runs already there."""
  if not (isinstance(holdout, int) and holdout >= 0):
    raise errors.ConfigError(f"holdout: {holdout!r}; allowed: an integer >= 0 (the largest sizes to leave out)")
  if not os.path.isdir(sweep_dir):
    raise errors.ConfigError(f"sweep_dir: {sweep_dir!r} is not a directory; allowed: a directory written by `scaling sweep`")
  N, D, C = _positive("N", N), _positive("D", D), _positive("C", C)
  if C is not None and (N is not None or D is not None):
    raise errors.ConfigError("C: give either --C (the compute-optimal allocation) or --N [--D], not both")
  if C is None and N is None and not holdout:
    raise errors.ConfigError("N: required (or --C=FLOPS for the compute-optimal allocation); allowed: a number > 0")
  if law is not None and law not in FORECAST_LAWS:
    raise errors.ConfigError(f"law: {law!r} gives no loss to forecast; allowed: {', '.join(FORECAST_LAWS)}")
  df = results.load(sweep_dir)
  done = df[(df["status"] == "completed") & df["is_best"].astype(bool)]
  if done.empty:
    raise errors.ConfigError(f"sweep_dir: {sweep_dir!r} has no completed runs to fit; allowed: a sweep with results")
  pts = results.best_points(done, loss)
  fam = _family(pts, family)
  fpts, fdone = pts[pts["family"] == fam], done[done["family"] == fam]
  notes = []
  if holdout:
    xh = fit_lib._x_column(fpts, x)
    sizes = np.unique(fit_lib._col(fpts, xh))
    if holdout >= sizes.size - 1:
      raise errors.ConfigError(f"holdout: {holdout} of {sizes.size} sizes would leave too few to fit; allowed: "
                               f"0 .. {max(sizes.size - 2, 0)}")
    held = sizes[-holdout:]
    if N is None and C is None:
      N = float(held[-1])
    fpts, fdone = fpts[~np.isin(fit_lib._col(fpts, xh), held)], fdone[~np.isin(fit_lib._col(fdone, xh), held)]
    notes.append(f"backtest: the {holdout} largest {xh} ({', '.join(f'{v:.4g}' for v in held)}) left out of the fit")
  name = _law(sweep_dir, law, fpts, x, C)
  if C is not None and name != "approach3":
    raise errors.ConfigError(f"C: the compute-optimal allocation needs law approach3; allowed: --law=approach3 (or auto) "
                     f"on runs at >= 2 budgets, or --N (law {name})")
  try:
    out = fit_lib.fit_frame(fdone, law=name, x=x, loss=loss, n_boot=n_boot, seed=seed)
  except ValueError as e:
    raise errors.ConfigError(f"law: {name} cannot be fitted to {fam} in this sweep ({' '.join(str(e).split())}); "
                     f"allowed: one of {', '.join(FORECAST_LAWS)} that fits") from None
  key, f = next((k, v) for k, v in out["fits"].items() if v.get("family") == fam)
  xc = f.get("N", f.get("x"))
  if name == "approach3":
    if C is not None:
      n_opt, d_opt = fit_lib.optimal_allocation(f, C)
      N, D = float(n_opt), float(d_opt)
      notes.append(f"compute-optimal allocation of C={C:.4g} FLOPs by approach 3 (C = 6 N D)")
    elif D is None:
      raise errors.ConfigError("D: required with law approach3 (tokens to train for); allowed: a number > 0, or --C")
    xs = [N, D]
    ys, fit_xs = fit_lib._col(fpts, loss), [fit_lib._col(fpts, xc), fit_lib._col(fpts, "tokens")]
  else:
    d_ladder, rule = _ladder_tokens(fpts, xc, N)
    if D is None:
      D = d_ladder
      notes.append(f"D: {rule}")
    elif abs(D / d_ladder - 1) > ledger.RTOL:
      raise errors.ConfigError(f"D: a {name} law in {xc} forecasts along the ladder ({rule}: {d_ladder:.4g} at this N); "
                       f"got {D:.4g}; allowed: that D (or none), or --law=approach3 on runs at >= 2 budgets")
    xs = [N]
    fit_xs, ys = fit_lib._min_per_size(fit_lib._col(fpts, xc), fit_lib._col(fpts, loss))
    fit_xs = [fit_xs]
  noise = seed_noise(fpts, loss) or residual_noise(f, fit_xs, ys)
  if not np.isfinite(noise["sigma"]):
    notes.append(f"no per-run noise measured ({noise['points']} points for {_N_PARAMS[f['law']]} parameters, one "
                 "seed each): the interval is the fit's alone")
  lo_x, hi_x = float(np.min(fit_xs[0])), float(np.max(fit_xs[0]))
  if N > hi_x:
    notes.append(f"extrapolates {N / hi_x:.3g}x past the largest {xc} fitted ({hi_x:.4g})")
  elif N < lo_x:
    notes.append(f"below the smallest {xc} fitted ({lo_x:.4g})")
  r = interval(f, xs, noise["sigma"], discrepancy=discrepancy, seed=seed)
  fam_runs = set(map(str, fdone["run_id"]))
  rec = dict(time=time.time(), sweep_dir=os.path.abspath(sweep_dir), family=fam, law=f["law"], fit_key=key, x=xc,
             loss_column=loss, N=float(N), D=float(D), **({"C": C} if C is not None else {}), **r,
             noise={k: v for k, v in noise.items()}, discrepancy=float(discrepancy),
             runs=sorted(fam_runs & set(out["run_ids"])), params=f["params"], n_boot=f.get("n_boot", 0),
             bootstrap=f.get("bootstrap", "pairs"), code_version=code_version(), notes=notes + list(f.get("notes", [])))
  rec = fit_lib._jsonable(rec)
  return ledger.append(sweep_dir, rec) if record else rec


def format_forecast(r: dict) -> str:
  """The forecast as a few lines: what, the interval and where it came from."""
  noise = r["noise"]
  src = (f"seed std/mean {100 * noise['sigma']:.2f} % pooled over {noise['points']} points with >= 2 seeds"
         if noise["source"] == "seeds" else
         f"residual scatter {100 * (noise['sigma'] or 0):.2f} % of the fit ({noise['points']} points, one seed each)")
  fit_band = (f"[{r['fit_lo']:.4f}, {r['fit_hi']:.4f}]" if r.get("fit_lo") is not None else "none (no bootstrap)")
  lines = [f"forecast {r.get('index', '-')}: {r['family']} {r['x']}={r['N']:.4g} D={r['D']:.4g}"
           + (f" (compute-optimal at C={r['C']:.4g} FLOPs)" if "C" in r else ""),
           f"  {r['loss_column']} {r['loss']:.4f}, 95 % predictive interval [{r['lo']:.4f}, {r['hi']:.4f}] "
           f"({100 * (r['lo'] / r['loss'] - 1):+.2f} % / {100 * (r['hi'] / r['loss'] - 1):+.2f} %)",
           f"  = the fit's bootstrap {fit_band} + per-run noise: {src}"
           + (f" + law discrepancy {100 * r['discrepancy']:.2f} %" if r.get("discrepancy") else ""),
           f"  law {r['fit_key']} ({r['bootstrap']} bootstrap, {r['n_boot']} resamples) from {len(r['runs'])} runs: "
           + ", ".join(r["runs"][:6]) + (f", ... (+{len(r['runs']) - 6})" if len(r["runs"]) > 6 else ""),
           f"  code {r['code_version']}"]
  lines += [f"  note: {n}" for n in r.get("notes", [])]
  return "\n".join(lines) + "\n"
