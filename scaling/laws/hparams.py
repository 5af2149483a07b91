"""Hyperparameter scaling laws (DeepSeek LLM 2024, Sec. 3.1): lr_opt(C) = k_lr C^a_lr, B_opt(C) = k_B C^a_B.

C in FLOPs, B in tokens per optimizer step. Input: a grid of runs at several compute budgets, each budget
trying several learning rates (and batch sizes). At each budget the near-optimal band is the runs whose
loss is within `band` of that budget's best loss (DeepSeek: 0.25 %); the loss is flat near the optimum,
so the band says where the optimum is better than the single best run, whose place is noise.

How the band becomes a fit (`method`):
  'centre' (default)  per budget the band's geometric centre (mean log lr, mean log B over its runs),
                      then least squares in log-log through one centre per budget. Each budget counts
                      once however many of its runs fall in the band, and a band the grid brackets is
                      centred on the optimum even when the grid is not.
  'points'            DeepSeek's Fig. 3: the line through every near-optimal run (a budget with more runs
                      in its band weighs more).
`fit_frame` first averages each setting's seeds (`seed_means`).
A batch law is fitted only from budgets that tried >= 2 batch sizes (a batch fixed per budget by a rule
is a design choice, not a measurement). Bootstrap: runs are resampled within each budget (each keeps its
count); band, centres and lines are redone per resample.
"""

import numpy as np
import pandas as pd

from scaling.laws import estimator
from scaling.sweep import results
from scaling import errors

BAND = 0.0025
METHODS = ("centre", "points")


def fit_hparams(C, lr, batch, loss, *, band: float = BAND, method: str = "centre", n_boot: int = 200,
                seed: int = 0) -> dict:
  """lr_opt(C) and B_opt(C) from runs (C, lr, batch tokens, loss); see the module docstring."""
  C, lr, batch, loss = (estimator._values(n, v)
                        for n, v in (("C", C), ("lr", lr), ("batch", batch), ("loss", loss)))
  estimator._same_length("hparams", C=C, lr=lr, batch=batch, loss=loss)
  if not (isinstance(band, (int, float)) and 0 <= band < 1):
    raise errors.ConfigError(f"band: {band!r}; allowed: a fraction in [0, 1), e.g. 0.0025 for DeepSeek's 0.25 %")
  if method not in METHODS:
    raise errors.ConfigError(f"method: {method!r}; allowed: {', '.join(METHODS)}")
  Cs, g = np.unique(C, return_inverse=True)
  if Cs.size < 2:
    raise errors.ConfigError(f"hparams: runs at {Cs.size} compute budget(s); need at least 2")
  G, B = Cs.size, n_boot + 1
  rng = np.random.default_rng(seed)
  W_BxN = np.ones((B, len(C)))  # row 0: the data; rows 1..: resamples within each budget
  for j in range(G):
    idx = np.flatnonzero(g == j)
    W_BxN[1:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1 / idx.size), size=n_boot)
  L_BxN = np.where(W_BxN > 0, loss, np.inf)
  best_BxG = np.stack([L_BxN[:, g == j].min(1) for j in range(G)], 1)
  near_BxN = W_BxN * (L_BxN <= best_BxG[:, g] * (1 + band))

  params, derived, boot, notes, per = {}, {}, {}, [], {}
  for name, v in (("lr", lr), ("B", batch)):
    lv = np.log(v)
    varied = np.array([np.unique(v[g == j]).size >= 2 for j in range(G)])
    if varied.sum() < 2:
      what = "learning rates" if name == "lr" else "batch sizes"
      if name == "lr":
        raise errors.ConfigError(f"hparams: {varied.sum()} budget(s) tried several learning rates; need at least 2")
      notes.append(f"no B_opt law: {varied.sum()} budget(s) tried several {what} (need 2)")
      continue
    centre_BxG = np.stack([near_BxN[:, g == j] @ lv[g == j] / near_BxN[:, g == j].sum(1) for j in range(G)], 1)
    if method == "centre":
      slope, icpt = estimator._wls_line(np.log(Cs[varied]), centre_BxG[:, varied], np.ones((B, varied.sum())))
    else:
      sel = varied[g]
      slope, icpt = estimator._wls_line(np.log(C[sel]), lv[sel][None], near_BxN[:, sel])
    p = {f"k_{name}": np.exp(icpt), f"a_{name}": slope}
    d = {f"{name}_opt@{c:.3g}": np.exp(icpt) * c ** slope for c in Cs}
    params.update({k: float(x[0]) for k, x in p.items()})
    derived.update({k: float(x[0]) for k, x in d.items()})
    boot.update({k: x[1:] for k, x in {**p, **d}.items()})
    edges = []
    for j in np.flatnonzero(varied):
      at = np.flatnonzero(g == j)
      where = results.grid_edge(v[at], v[at[np.argmin(loss[at])]])
      per.setdefault(j, {})[f"{name}_centre"] = float(np.exp(centre_BxG[0, j]))
      per[j][f"{name}_tried"] = [float(v[at].min()), float(v[at].max())]
      if where:
        edges.append(f"{Cs[j]:.3g} ({where})")
    if edges:
      notes.append(f"best {name} at the edge of the values tried (optimum not bracketed) at C = " + ", ".join(edges))
  per_budget = [dict(C=float(Cs[j]), runs=int((g == j).sum()), near_optimal=int((near_BxN[0, g == j] > 0).sum()),
                     best_loss=float(best_BxG[0, j]), **per.get(j, {})) for j in range(G)]
  return dict(law="hparams", x="C", n=len(C), band=band, method=method, params=params, derived=derived,
              ci=estimator._ci(boot), boot=boot, n_boot=n_boot, per_budget=per_budget, notes=notes,
              budgets=[float(c) for c in Cs])


def check_columns(df: pd.DataFrame) -> None:
  if "lr" not in df.columns or pd.to_numeric(df["lr"], errors="coerce").isna().all():
    raise errors.ConfigError("lr: no learning rates in the results; allowed: runs whose config.json has train.lr "
                     "(this project's training loop writes it)")


def inputs(fdf: pd.DataFrame, loss: str = "eval_loss") -> tuple[np.ndarray, ...]:
  """(C, lr, batch tokens, loss) per run of one family. C: the `budget` tag of FLOP-budgeted runs (IsoFLOP
  grids), else the median FLOPs of the run's point (its inner grid differs in FLOPs only by step
  rounding). Batch in tokens: tokens / steps."""
  check_columns(fdf)
  flops = pd.to_numeric(fdf["flops"], errors="coerce")
  C = flops.groupby(results.point_ids(fdf)).transform("median")
  if "budget" in fdf.columns and "budget_unit" in fdf.columns:
    by_flops = fdf["budget_unit"] == "flops"
    C = C.where(~by_flops, pd.to_numeric(fdf["budget"], errors="coerce"))
  batch = pd.to_numeric(fdf["tokens"], errors="coerce") / pd.to_numeric(fdf["steps"], errors="coerce")
  return (C.to_numpy(dtype=np.float64), estimator.column(fdf, "lr"), batch.to_numpy(dtype=np.float64),
          estimator.column(fdf, loss))


def seed_means(point, C, lr, batch, loss) -> tuple[np.ndarray, ...]:
  """One row per setting (point, lr, batch): its loss averaged over seeds. The band is then relative to
  the best setting's mean, as results.mark_best chooses it, not to the luckiest seed of any setting."""
  d = pd.DataFrame(dict(point=point, C=C, lr=lr, batch=batch, loss=loss))
  m = d.groupby(["point", "lr", "batch"], sort=False).agg(C=("C", "first"), loss=("loss", "mean")).reset_index()
  return tuple(m[k].to_numpy(dtype=np.float64) for k in ("C", "lr", "batch", "loss"))


def fit_frame(fdf: pd.DataFrame, *, x: str = "", loss: str = "eval_loss", n_boot: int = 200, seed: int = 0,
              band: float = BAND, method: str = "centre") -> dict:
  """fit_hparams on one family's completed runs (all of them, not only the best per point; see `inputs`),
  seeds of a setting averaged (`seed_means`)."""
  settings = seed_means(results.point_ids(fdf), *inputs(fdf, loss))
  return fit_hparams(*settings, band=band, method=method, n_boot=n_boot, seed=seed)
