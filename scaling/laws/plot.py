"""Scaling figures (matplotlib, Agg canvas; no pyplot state, so it is safe in scripts and notebooks).

Each `*_figure` function takes a `results.load` DataFrame (and curves / a fit dict from fit.py where
it uses them) and returns a Figure; `save` writes it as PNG and PDF; `plot_sweep` makes every figure
that the runs in a sweep support and returns the written paths.
"""

import os
import tempfile
import warnings

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scaling.laws import fit as fit_lib
from scaling.laws import plot_hparams
from scaling.laws.plot_common import (LABELS, completed as _completed, figure as _figure, fits as _fits,  # noqa: F401
                                       label as _label, loglog as _loglog, num as _num, plain_y as _plain_y)
from scaling.sweep import results

CLASSIC = ("svm", "tree", "forest", "logreg", "ngram")
def _family_colors(families) -> dict:
  cmap = matplotlib.colormaps["tab10"]
  return {f: cmap(i % 10) for i, f in enumerate(sorted(families))}


# Inner-grid columns named in the legend of the faint runs.
INNER = {"lr": "lr", "batch_size": "batch size", "train.warmup_steps": "warmup", "seed": "seed"}


def _split_grid(fdf: pd.DataFrame, loss: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
  """Completed runs -> (one row per point, its best setting: results.best_points; the other runs of the
  points' inner grids, drawn faintly behind them; what those grids vary, e.g. 'lr, seed')."""
  if "is_best" not in fdf.columns:
    fdf = results.mark_best(fdf, loss)
  pid = results.point_ids(fdf)
  best = fdf["is_best"].astype(bool).to_numpy()
  n_best = pd.Series(best).groupby(pid).transform("sum").to_numpy()
  grid = fdf[~best | (n_best > 1)]  # a best setting with several seeds: its point is their mean
  multi = pd.Series(pid).duplicated(keep=False).to_numpy()
  varied = [name for c, name in INNER.items()
            if c in fdf.columns and multi.any() and (fdf[multi].groupby(pid[multi])[c].nunique() > 1).any()]
  return results.best_points(fdf, loss), grid, ", ".join(varied)


def _at_edge(pts: pd.DataFrame) -> np.ndarray:
  return (pts["best_at_edge"].fillna("").astype(str) != "").to_numpy() if "best_at_edge" in pts.columns \
      else np.zeros(len(pts), bool)


def _draw_grid(ax, grid: pd.DataFrame, x: str, y: str, color, varied: str, who: str, marker: str = "o"):
  """The rest of each point's inner grid: small, light, the family's colour, under everything else."""
  if len(grid):
    ax.scatter(_num(grid, x), _num(grid, y), color=color, alpha=0.3, s=9, marker=marker, lw=0, zorder=1,
               gid=f"inner-grid:{who}", label=f"{who}: rest of each point's grid ({varied or 'inner grid'})")


def _seed_bars(ax, pts: pd.DataFrame, x: str, loss: str, color, sel=None, label: bool = True) -> None:
  """+-1 std over seeds (results.best_points' `<loss>_std`) where a point has several seeds: the spread a
  single run of it has, to read the fit's residuals against."""
  std = _num(pts, f"{loss}_std")
  sel = np.isfinite(std) & (np.ones(len(pts), bool) if sel is None else sel)
  if sel.any():
    ax.errorbar(_num(pts, x)[sel], _num(pts, loss)[sel], yerr=std[sel], fmt="none", ecolor=color, elinewidth=1,
                capsize=2.5, zorder=2.5, gid="seed-std",
                label=f"{'' if label else '_'}±1 std over seeds ({_seed_counts(pts[sel])})")


def _seed_counts(pts: pd.DataFrame) -> str:
  n = sorted(set(_num(pts, "seeds").astype(int)))
  return f"{n[0]} each" if len(n) == 1 else f"{n[0]}-{n[-1]} each"


def _edge_label(n: int) -> str:
  return f"best at its grid's edge ({n} point{'s' * (n != 1)}; optimum not bracketed)"


def _curve(ax, f: dict, lo: float, hi: float, color, label: str, extend: float = 2.0):
  """A fitted law over the data range (solid), extrapolated (dashed), with its bootstrap band."""
  xs = np.geomspace(lo, hi * extend, 200)
  inside = xs <= hi
  y = fit_lib.predict(f, xs)
  ax.plot(xs[inside], y[inside], color=color, lw=1.8, label=label)
  ax.plot(xs[~inside], y[~inside], color=color, lw=1.5, ls="--")
  band = fit_lib.predict_band(f, xs)
  if band is not None:
    ax.fill_between(xs, band[0], band[1], color=color, alpha=0.15, lw=0)


def _params_text(f: dict, names=("E", "alpha")) -> str:
  p, ci = f["params"], f.get("ci", {})
  parts = []
  for k in names:
    if k in p:
      lo, hi = ci.get(k, [None, None])
      sym = {"alpha": "α", "beta": "β"}.get(k, k)
      band = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and np.isfinite(lo) else ""
      parts.append(f"{sym}={p[k]:.3g}{band}")
  return ", ".join(parts)


def loss_vs_size_figure(df: pd.DataFrame, fit: dict | None = None, x: str = "params_nonembed",
                        loss: str = "eval_loss") -> Figure | None:
  """Loss vs model size for every family (classic baselines included), the lowest loss per size
  highlighted (open where its best lr / batch sat at the edge of the values tried), the rest of each
  point's inner grid faint behind it, power-law fits with 95 % bootstrap bands (dashed past the largest size)."""
  done = _completed(df, loss)
  if done.empty:
    return None
  fig, (ax,) = _figure(width=9.0, height=4.8)
  colors = _family_colors(done["family"].dropna().unique())
  for fam, fdf in done.groupby("family"):
    f = _fits(fit).get(f"power/{fam}") or _fits(fit).get(f"kaplan/{fam}")
    xc = f["x"] if f else fit_lib._x_column(fdf, x)
    xs, ys = _num(fdf, xc), _num(fdf, loss)
    ok = np.isfinite(xs) & (xs > 0) & (ys > 0)
    if not ok.any():
      continue
    marker = "s" if fam in CLASSIC else "o"
    pts, grid, varied = _split_grid(fdf[ok], loss)
    _draw_grid(ax, grid, xc, loss, colors[fam], varied, fam, marker)
    px, py, edge = _num(pts, xc), _num(pts, loss), _at_edge(pts)
    top = py == pd.Series(py).groupby(px).transform("min").to_numpy()  # the fitted point of each size
    if (~top).any():
      ax.scatter(px[~top], py[~top], color=colors[fam], alpha=0.45, s=14, marker=marker, lw=0, zorder=2,
                 label=f"{fam}: other points of a size (training length, ladder)")
    if (top & ~edge).any():
      ax.scatter(px[top & ~edge], py[top & ~edge], color=colors[fam], s=30, marker=marker, edgecolor="k", lw=0.5,
                 zorder=3, label=fam + ("" if xc == x else f" (x = {xc})"))
    if (top & edge).any():
      ax.scatter(px[top & edge], py[top & edge], facecolor="white", edgecolor=colors[fam], s=30, marker=marker,
                 lw=1.2, zorder=3, gid=f"edge:{fam}", label=f"{fam}: {_edge_label(int((top & edge).sum()))}")
    _seed_bars(ax, pts, xc, loss, colors[fam], top)
    u, best = fit_lib._min_per_size(px, py)
    if f:
      _curve(ax, f, u.min(), u.max(), colors[fam], f"{f['law']} fit: {_params_text(f)}")
  ys = _num(done, loss)
  ys = ys[np.isfinite(ys) & (ys > 0)]
  lo, hi = ax.get_ylim()  # a wide bootstrap band past the data must not squash the points
  ax.set_ylim(max(lo, ys.min() / 2), min(hi, ys.max() * 2))
  _loglog(ax, x, loss, "Loss vs model size", unit=results.loss_unit(df))
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
  return fig


def _curve_metric(cv: pd.DataFrame, loss: str) -> str | None:
  """The loss the learning curves show: `loss` where every run logged it at >= 2 FLOP counts (eval_every
  set), else the training loss (held-out loss only at the end: one point, no curve)."""
  for col in (loss, "train_loss"):
    if col in cv.columns and len(cv):
      n = cv.dropna(subset=[col, "flops"]).groupby("run_id")["flops"].nunique()
      if len(n) == cv["run_id"].nunique() and (n >= 2).all():
        return col
  return None


def _size_colors(N: np.ndarray):
  """(norm, cmap) colouring sizes on a log scale; norm None when no size is known."""
  ok = np.isfinite(N) & (N > 0)
  if not ok.any():
    return None, matplotlib.colormaps["viridis"]
  lo, hi = np.min(N[ok]), np.max(N[ok])
  return matplotlib.colors.LogNorm(lo, max(hi, lo * 1.01)), matplotlib.colormaps["viridis"]


def loss_vs_flops_figure(df: pd.DataFrame, curves: pd.DataFrame | None = None, fit: dict | None = None,
                         x: str = "params_nonembed", loss: str = "eval_loss") -> Figure | None:
  """Kaplan Fig. 1 (left) per family: every run's learning curve against training FLOPs (curves' `flops`
  column) coloured by size on a log scale, the final held-out losses, the compute-efficient frontier as
  the curves' lower envelope, the power law in C fitted through the best run per budget, and approach
  3's optimal loss L(N_opt(C), D_opt(C)) where fitted."""
  done = _completed(df, loss)
  done = done[np.isfinite(_num(done, "flops")) & (_num(done, "flops") > 0)]
  fams = sorted(done["family"].dropna().unique())
  if not fams:
    return None
  fig, axes = _figure(len(fams), width=5.6, height=4.6)
  u = results.loss_unit(df)
  for ax, fam in zip(axes, fams):
    fdf = done[done["family"] == fam]
    xc = fit_lib._x_column(fdf, x)
    N, C, L = _num(fdf, xc), _num(fdf, "flops"), _num(fdf, loss)
    norm, cmap = _size_colors(N)
    color_of = dict(zip(fdf["run_id"], [cmap(norm(n)) if norm is not None and n > 0 else "gray" for n in N]))
    pts, grid, varied = _split_grid(fdf, loss)  # best setting per point bold, the rest of its grid faint
    cv = curves[curves["run_id"].isin(color_of)] if curves is not None and "flops" in curves.columns else None
    metric = _curve_metric(cv, loss) if cv is not None else None
    if metric:
      cv = cv.dropna(subset=[metric, "flops"])
      cv = cv[_num(cv, "flops") > 0]
      faint = set(grid["run_id"])
      for i, (rid, r) in enumerate(cv.groupby("run_id")):
        ax.plot(_num(r, "flops"), _num(r, metric), color=color_of[rid], gid=f"curve:{rid}",
                **(dict(lw=0.5, alpha=0.3) if rid in faint else dict(lw=0.9, alpha=0.75)),
                label=f"{_label(metric, u)}, one curve per run" if i == 0 else None)
      fC, fL = fit_lib.frontier(_num(cv, "flops"), _num(cv, metric), cv["run_id"].to_numpy())
    else:
      fC, fL = fit_lib.frontier(C, L, fdf["run_id"].to_numpy())
    _draw_grid(ax, grid, "flops", loss, [color_of[r] for r in grid["run_id"]], varied, "final loss")
    edge = _at_edge(pts)
    for sel, kw in ((~edge, dict(edgecolor="k", lw=0.5, label=f"final {_label(loss, u)}, best of each point")),
                    (edge, dict(facecolor="white", lw=1.2, gid="edge", label=_edge_label(int(edge.sum()))))):
      if sel.any():
        cols = [color_of[r] for r in pts["run_id"][sel]]
        ax.scatter(_num(pts, "flops")[sel], _num(pts, loss)[sel], s=22, zorder=3,
                   **({"c": cols} if "facecolor" not in kw else {"edgecolors": cols}), **kw)
    _seed_bars(ax, pts, "flops", loss, "0.3")
    ax.plot(fC, fL, color="k", lw=1.6, ls="-", zorder=4, gid="frontier",
            label="compute-efficient frontier" + (" (envelope)" if metric else ""))
    f = _fits(fit).get(f"power/{fam}/flops")
    if f:
      _curve(ax, f, f["x_range"][0], f["x_range"][1], "tab:red",
             rf"fit $L = E + A\,C^{{-\alpha}}$: {_params_text(f, ('alpha',))}", 10)
    f3 = _fits(fit).get(f"approach3/{fam}")
    if f3:
      cs = np.geomspace(np.nanmin(C), np.nanmax(C) * 10, 100)
      n_opt, d_opt = fit_lib.optimal_allocation(f3, cs)
      ax.plot(cs, fit_lib.predict(f3, n_opt, d_opt), color="tab:purple", ls=":", lw=1.8,
              label="approach 3: L(N_opt(C), D_opt(C))")
    if metric:  # the first steps of every run sit far above the rest: show losses up to 1.5x the worst final one
      top = max(np.nanmax(L), np.nanmax(fL[fC >= np.nanmin(C)]) if (fC >= np.nanmin(C)).any() else 0) * 1.5
      ax.set_ylim(top=min(ax.get_ylim()[1], top))
    if norm is not None and np.unique(N[np.isfinite(N)]).size > 1:  # one size: nothing to tell apart
      fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=_label(xc), fraction=0.05, pad=0.02)
    what = "learning curves" if metric else "final losses"
    _loglog(ax, "flops", loss, f"{fam}: {what} vs compute", unit=u)
    ax.set_ylabel(f"loss ({u})" if metric and metric != loss else _label(loss, u))
    ax.legend(fontsize=7, loc="lower left", framealpha=0.85)  # loss falls with C: that corner is empty
  return fig


def isoflop_figure(df: pd.DataFrame, fit: dict, family: str, loss: str = "eval_loss") -> Figure | None:
  """Chinchilla Figure 3: IsoFLOP profiles (each point's best setting; the rest of its inner grid faint,
  open where the best sat at the grid's edge) with their parabolas and minima; N_opt(C) and D_opt(C)
  from approaches 1, 2 and 3 with the fitted exponents and 95 % intervals."""
  fits = _fits(fit)
  f2, f1, f3 = (fits.get(f"approach{i}/{family}") for i in (2, 1, 3))
  if f2 is None:
    return None
  fdf = _completed(df, loss)
  fdf = fdf[(fdf["family"] == family) & np.isfinite(_num(fdf, "budget"))] if "budget" in fdf.columns else fdf[:0]
  xc = f2.get("N", "params_nonembed")
  fig, (ax, axn, axd) = _figure(3, width=4.8, height=4.2)
  budgets = np.array([b["C"] for b in f2["per_budget"]])
  norm = matplotlib.colors.LogNorm(budgets.min(), max(budgets.max(), budgets.min() * 1.01))
  cmap = matplotlib.colormaps["plasma"]
  inside = np.array([b.get("in_range", True) for b in f2["per_budget"]])
  pts, grid, varied = _split_grid(fdf, loss)
  edge = _at_edge(pts)
  for b in f2["per_budget"]:
    col = cmap(0.85 * norm(b["C"]))
    sel = _num(pts, "budget") == b["C"]
    N, L = _num(pts[sel], xc), _num(pts[sel], loss)
    ax.plot(N[np.argsort(N)], L[np.argsort(N)], "o", color=col, ms=4, label=f"C = {b['C']:.2g} FLOPs")
    if (sel & edge).any():
      ax.plot(_num(pts[sel & edge], xc), _num(pts[sel & edge], loss), "o", color=col, mfc="white", ms=4, mew=1.2,
              gid=f"edge:{b['C']:g}")
    _seed_bars(ax, pts[sel], xc, loss, col, label=b is f2["per_budget"][-1])
    g = grid[_num(grid, "budget") == b["C"]]
    ax.scatter(_num(g, xc), _num(g, loss), color=col, alpha=0.3, s=9, lw=0, zorder=1, gid=f"inner-grid:{b['C']:g}")
    u = np.linspace(np.log(N.min()) - 0.2, np.log(N.max()) + 0.2, 100)
    ax.plot(np.exp(u), np.polyval(b["coef"], u), color=col, lw=1, gid=f"parabola:{b['C']:g}")
    ax.scatter([b["N_opt"]], [b["loss_opt"]], marker="*", s=120, zorder=4, lw=0.8, gid=f"minimum:{b['C']:g}",
               **(dict(color=col, edgecolor="k") if b.get("in_range", True) else dict(facecolor="none", edgecolor=col)))
  # A vertex far outside the sizes tried (no interior minimum) would stretch the axis over empty decades.
  n_all = _num(fdf, xc)
  if np.isfinite(n_all).any():
    ax.set_xlim(np.nanmin(n_all) / 2, np.nanmax(n_all) * 2)
  ax.set_xscale("log")
  ax.set_xlabel(_label(xc))
  ax.set_ylabel(_label(loss, results.loss_unit(df)))
  ax.grid(True, which="both", alpha=0.25)
  ax.set_title(f"{family}: IsoFLOP profiles")
  handles, _ = ax.get_legend_handles_labels()
  handles += [matplotlib.lines.Line2D([], [], color="gray", lw=1, label="parabola in log N"),
              matplotlib.lines.Line2D([], [], color="gray", marker="*", ms=10, mec="k", mew=0.5, ls="",
                                      label="its minimum (N_opt)")]
  if not inside.all():
    handles.append(matplotlib.lines.Line2D([], [], color="gray", marker="*", ms=10, mfc="none", ls="",
                                           label="minimum outside the sizes tried"))
  if len(grid):
    handles.append(matplotlib.lines.Line2D([], [], color="gray", marker="o", ms=3, alpha=0.4, ls="",
                                           label=f"rest of each point's grid ({varied or 'inner grid'})"))
  if edge.any():
    handles.append(matplotlib.lines.Line2D([], [], color="gray", marker="o", ms=4, mfc="white", ls="",
                                           label=_edge_label(int(edge.sum()))))
  ax.legend(handles=handles, fontsize=7)

  cs = np.geomspace(budgets.min() / 3, budgets.max() * 30, 100)
  styles = {"approach1": ("tab:blue", "-."), "approach2": ("tab:orange", "-"), "approach3": ("tab:green", "--")}
  for axis, which, exp in ((axn, 0, "a"), (axd, 1, "b")):
    pts = np.array([b["N_opt"] if which == 0 else b["D_opt"] for b in f2["per_budget"]])
    axis.scatter(budgets[inside], pts[inside], marker="*", s=90, color="tab:orange", edgecolor="k", lw=0.5,
                 zorder=4, label="IsoFLOP minima")
    if not inside.all():
      axis.scatter(budgets[~inside], pts[~inside], marker="*", s=90, facecolor="none", edgecolor="tab:orange",
                   lw=0.8, zorder=4, label="minima outside the sizes tried")
    if f1 is not None:
      env = f1["envelope"]
      axis.scatter(env["C"], env["N_opt" if which == 0 else "D_opt"], s=8, color="tab:blue", alpha=0.6,
                   label="min-loss envelope")
    for f in (f1, f2, f3):
      if f is None:
        continue
      v = f["params"][exp] if exp in f["params"] else f["derived"][exp]
      lo, hi = f["ci"].get(exp, [np.nan, np.nan])
      color, ls = styles[f["law"]]
      band = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and np.isfinite(lo) else ""
      axis.plot(cs, fit_lib.optimal_allocation(f, cs)[which], color=color, ls=ls, lw=1.5,
                label=f"{f['law']}: {exp} = {v:.3f}{band}")
    _loglog(axis, "flops", "N_opt" if which == 0 else "D_opt",
            "optimal model size" if which == 0 else "optimal training tokens")
    seen = np.concatenate([pts[inside], env["N_opt" if which == 0 else "D_opt"] if f1 is not None else []])
    if seen.size:  # a fit far off its points (few budgets) must not squash them into one decade
      axis.set_ylim(max(axis.get_ylim()[0], seen.min() / 30), min(axis.get_ylim()[1], seen.max() * 30))
    axis.set_ylabel(f"optimal {_label(xc) if which == 0 else 'tokens D'}")
    axis.legend(fontsize=7)
  return fig


def learning_curves_figure(curves: pd.DataFrame, family: str, loss: str = "eval_loss",
                           unit: str = "nats/token") -> Figure | None:
  """Loss against step and against tokens for each run of a family, coloured by size; the held-out
  loss solid, the training loss faint."""
  cv = curves[curves["family"] == family] if "family" in curves.columns else curves[:0]
  if cv.empty or "step" not in cv.columns:
    return None
  has_tokens = "tokens" in cv.columns and np.isfinite(_num(cv, "tokens")).any()
  xaxes = ["step"] + (["tokens"] if has_tokens else [])
  fig, axes = _figure(len(xaxes), width=5.2, height=4.0)
  size_col = "params_nonembed" if np.isfinite(_num(cv, "params_nonembed")).any() else "params"
  size = _num(cv, size_col)
  ok = np.isfinite(size) & (size > 0)
  cv, size = cv[ok], size[ok]  # runs without a result yet have no size: nothing to colour them by
  ok = ok[ok]
  norm = matplotlib.colors.LogNorm(size[ok].min(), max(size[ok].max(), size[ok].min() * 1.01)) if ok.any() else None
  cmap = matplotlib.colormaps["viridis"]
  drawn = False
  for ax, xa in zip(axes, xaxes):
    for rid, r in cv.groupby("run_id"):
      s = _num(r, size_col)[0]
      color = cmap(norm(s)) if norm is not None and np.isfinite(s) and s > 0 else "gray"
      for col, kw in ((loss, dict(lw=1.4, alpha=0.9)), ("train_loss", dict(lw=0.7, alpha=0.35))):
        if col in r.columns:
          rr = r.dropna(subset=[col])
          rr = rr[_num(rr, xa) > 0]
          if len(rr):
            ax.plot(_num(rr, xa), _num(rr, col), color=color, marker="o" if len(rr) == 1 else None, ms=3, **kw)
            drawn = True
    _loglog(ax, xa, loss, f"{family}: learning curves by {'step' if xa == 'step' else 'tokens'}", unit=unit)
    ax.set_ylabel(f"loss ({unit})")
    ax.legend(handles=[matplotlib.lines.Line2D([], [], color="k", lw=1.4, marker="o", ms=3, label=_label(loss, unit)),
                       matplotlib.lines.Line2D([], [], color="k", lw=0.7, alpha=0.35, label=_label("train_loss", unit))],
              fontsize=7, loc="upper right")
  if not drawn:
    return None
  if norm is not None:
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), label=_label(size_col))
  return fig


def loss_vs_examples_figure(df: pd.DataFrame, fit: dict | None = None, loss: str = "eval_loss") -> Figure | None:
  """Learning curves in training-set size (classic baselines, data ladders) with power-law fits."""
  done = _completed(df, loss)
  te = _num(done, "train_examples")
  done = done[np.isfinite(te) & (te > 0)]
  if done.empty:
    return None
  fig, (ax,) = _figure(width=6.4, height=4.6)
  groups = list(done.groupby(["family", "size"], dropna=False))
  cmap = matplotlib.colormaps["tab10"]
  for i, ((fam, size), g) in enumerate(groups):
    col = cmap(i % 10)
    xs, ys = _num(g, "train_examples"), _num(g, loss)
    o = np.argsort(xs)
    ax.plot(xs[o], ys[o], "o", color=col, ms=4, label=f"{fam} ({size})")
    f = _fits(fit).get(f"power/{fam}/{size}/train_examples")
    if f:
      _curve(ax, f, xs.min(), xs.max(), col, f"  fit: {_params_text(f)}")
  _loglog(ax, "train_examples", loss, "Loss vs training-set size", unit=results.loss_unit(df))
  ax.legend(fontsize=7)
  return fig


def save(fig: Figure, out_dir: str, name: str) -> list[str]:
  """PNG (150 dpi) and PDF, each written to a temp file and renamed into place."""
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  engine = fig.get_layout_engine()
  for ext in ("png", "pdf"):
    if ext == "pdf":  # the layout is in figure units: reuse the one the PNG computed (half the time)
      fig.set_layout_engine("none")
    path = os.path.join(out_dir, f"{name}.{ext}")
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".tmp-{name}", suffix=f".{ext}")
    try:
      with os.fdopen(fd, "wb") as fh:
        fig.savefig(fh, format=ext, dpi=150)
      os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.unlink(tmp)
      raise
    paths.append(path)
  fig.set_layout_engine(engine)
  return paths


def _fit_for(sweep_dir: str, df: pd.DataFrame, curves: pd.DataFrame) -> dict | None:
  """SWEEP_DIR/fit.json (+ bootstrap samples) when it covers the current runs; else refit in memory
  with the same settings (fit.json is left alone: writing it is `scaling fit`'s job)."""
  fit = fit_lib.load_fit(sweep_dir)
  done = df[df["status"] == "completed"]
  # Current: fitted on completed runs, every best one among them (fit_sweep lists the best runs,
  # the experiments every completed run).
  ids = set(map(str, (fit or {}).get("run_ids", [])))
  if fit is not None and set(map(str, done.loc[done["is_best"], "run_id"])) <= ids <= set(map(str, done["run_id"])) \
      and any("boot" in f for f in fit.get("fits", {}).values()):
    return fit
  kw = {k: fit[k] for k in ("law", "x", "loss", "n_boot", "seed") if k in fit} if fit else {}
  try:
    return fit_lib.fit_frame(df, curves=curves, **kw)
  except ValueError as e:
    warnings.warn(f"plot_sweep: drawing without fits ({e})")
    return None


def plot_sweep(sweep_dir: str, out_dir: str | None = None) -> list[str]:
  """Every figure the sweep's runs support, into OUT_DIR (default SWEEP_DIR/figures); returns paths."""
  out_dir = out_dir or os.path.join(sweep_dir, "figures")
  df = results.load(sweep_dir)
  curves = results.load_curves(sweep_dir)
  fit = _fit_for(sweep_dir, df, curves)
  x = (fit or {}).get("x", "params_nonembed")
  loss = (fit or {}).get("loss", "eval_loss")
  paths = []
  figures = [("loss_vs_params", loss_vs_size_figure(df, fit, x=x, loss=loss)),
             ("loss_vs_flops", loss_vs_flops_figure(df, curves, fit, x=x, loss=loss)),
             ("loss_vs_train_examples", loss_vs_examples_figure(df, fit, loss=loss))]
  for fam in sorted(df["family"].dropna().unique()):
    figures.append((f"isoflop_{fam}", isoflop_figure(df, fit, fam, loss=loss) if fit else None))
    figures.append((f"hparams_{fam}", plot_hparams.figure(df, fit, fam, loss=loss)))
    if len(curves):
      figures.append((f"learning_curves_{fam}", learning_curves_figure(curves, fam, loss=loss, unit=results.loss_unit(df))))
  for name, fig in figures:
    if fig is not None:
      paths += save(fig, out_dir, name)
  return paths
