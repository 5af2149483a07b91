"""DeepSeek LLM (2024) Fig. 3 for `scaling fit --law=hparams`: optimal lr and batch size against compute.

Two log-log panels, lr vs C and batch (tokens) vs C: every run of the grid faint, the near-optimal runs
(within the fit's band of their budget's best loss) as points, each budget's band centre (what
method='centre' fits through), the fitted k C^a with its 95 % bootstrap band, and DeepSeek's own law
for reference. (Its own module: plot.py holds the loss figures.)
"""

import matplotlib.lines
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scaling.laws import fit as fit_lib
from scaling.laws import hparams, plot_common
from scaling.sweep import results

DEEPSEEK = {"lr": (0.3118, -0.125), "B": (0.292, 0.3271)}  # k, a with C in FLOPs and B in tokens
AXES = {"lr": ("lr", "peak learning rate"), "B": ("batch", "batch size (tokens per step)")}


def _band(f: dict, name: str, cs: np.ndarray) -> np.ndarray | None:
  k, a = (np.asarray(f.get("boot", {}).get(f"{p}_{name}", []), dtype=np.float64) for p in ("k", "a"))
  ok = np.isfinite(k) & np.isfinite(a)
  if ok.sum() < 2:
    return None
  return np.percentile(k[ok, None] * cs[None] ** a[ok, None], fit_lib.CI, axis=0)


def figure(df: pd.DataFrame, fit: dict | None, family: str, loss: str = "eval_loss") -> Figure | None:
  """lr_opt(C) and B_opt(C) of `family` from fit['fits']['hparams/<family>'] (None when there is none)."""
  f = plot_common.fits(fit).get(f"hparams/{family}")
  if f is None:
    return None
  fdf = plot_common.completed(df, loss)
  fdf = fdf[fdf["family"] == family]
  C, lr, batch, L = hparams.seed_means(results.point_ids(fdf), *hparams.inputs(fdf, loss))  # as the fit saw them
  best = {b["C"]: b["best_loss"] for b in f["per_budget"]}
  near = L <= np.array([best.get(c, -np.inf) for c in C]) * (1 + f["band"])
  names = [n for n in ("lr", "B") if f"a_{n}" in f["params"]]
  fig, axes = plot_common.figure(len(names), width=5.2, height=5.4)
  cs = np.geomspace(min(f["budgets"]) / 2, max(f["budgets"]) * 2, 100)
  for ax, name in zip(axes, names):
    v = lr if name == "lr" else batch
    ax.scatter(C, v, s=10, color="gray", alpha=0.3, lw=0, gid="grid", label="every setting of the grid (seed mean)")
    ax.scatter(C[near], v[near], s=28, color="tab:blue", edgecolor="k", lw=0.4, zorder=3, gid="near-optimal",
               label=f"near-optimal (within {100 * f['band']:g} % of the budget's best loss)")
    centres = [(b["C"], b[f"{name}_centre"]) for b in f["per_budget"] if f"{name}_centre" in b]
    ax.scatter(*zip(*centres), marker="*", s=110, color="tab:orange", edgecolor="k", lw=0.5, zorder=4,
               gid="centre", label="band centre per budget")
    k, a = f["params"][f"k_{name}"], f["params"][f"a_{name}"]
    lo, hi = f.get("ci", {}).get(f"a_{name}", [np.nan, np.nan])
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and np.isfinite(lo) else ""
    ax.plot(cs, k * cs ** a, color="tab:red", lw=1.8, gid="fit", label=rf"fit ${k:.3g}\,C^{{{a:.3f}}}$, exponent's 95 % CI{ci}")
    band = _band(f, name, cs)
    if band is not None:
      ax.fill_between(cs, band[0], band[1], color="tab:red", alpha=0.15, lw=0)
    dk, da = DEEPSEEK[name]
    ax.plot(cs, dk * cs ** da, color="k", ls="--", lw=1.2, label=rf"DeepSeek LLM: ${dk}\,C^{{{da}}}$")
    col, ylabel = AXES[name]
    plot_common.loglog(ax, "flops", col, f"optimal {'learning rate' if name == 'lr' else 'batch size'} vs compute")
    ax.set_ylabel(ylabel)
    tried = v[np.isfinite(v) & (v > 0)]
    ref = dk * np.asarray(f["budgets"]) ** da
    seen = np.concatenate([tried, ref[(ref > tried.min() / 10) & (ref < tried.max() * 10)]])
    ax.set_ylim(seen.min() / 2, seen.max() * 2)  # the runs (and DeepSeek's law nearby), not the bands' far ends
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + [matplotlib.lines.Line2D([], [], color="tab:red", alpha=0.3, lw=6,
                                                         label="95 % bootstrap band of the fit")],
              fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below: the runs fill the axes
  fig.suptitle(f"{family}: hyperparameter scaling (DeepSeek LLM 2024, Fig. 3), {len(f['budgets'])} budgets, "
               f"{f['n']} runs", fontsize=10)
  return fig
