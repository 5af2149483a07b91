"""What every scaling figure shares: axis labels, log-log axes with plain loss ticks, a headless Figure."""

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LABELS = {
    "params_nonembed": "non-embedding parameters N", "params": "parameters", "flops": "training FLOPs C",
    "tokens": "training tokens D", "train_examples": "training examples", "step": "step",
}
LOSSES = {"eval_loss": "held-out loss", "train_loss": "training loss"}


def label(name: str, unit: str = "nats/token") -> str:
  """Axis label of a column; a loss carries its unit (results.loss_unit: nats/byte for byte-level runs)."""
  return f"{LOSSES[name]} ({unit})" if name in LOSSES else LABELS.get(name, name)


def figure(ncols: int = 1, width: float = 5.2, height: float = 4.0):
  fig = Figure(figsize=(width * ncols, height), layout="constrained")
  FigureCanvasAgg(fig)
  return fig, fig.subplots(1, ncols, squeeze=False)[0]


def loglog(ax, x: str, y: str, title: str = "", unit: str = "nats/token"):
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(label(x))
  ax.set_ylabel(label(y, unit))
  ax.grid(True, which="both", alpha=0.25)
  if title:
    ax.set_title(title)
  if "loss" in y:  # N_opt / D_opt axes keep matplotlib's 10^k labels
    plain_y(ax)
  lo, hi = ax.get_xlim()
  if lo > 0 and hi / lo >= 10:  # majors suffice; matplotlib's minor labels (2x10^1, 3x10^1 ..) collide
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def plain_y(ax):
  """Losses span a decade or two: label log-axis ticks as plain numbers (2, 0.3; not 2x10^0), the
  minor ones at 2, 3 and 5 x 10^k only. Within one decade: ~6 evenly spaced labels (2.5, 3, 3.5, 4 over
  2.3 .. 4.3), as 10^k ticks would leave one or two. Call it after the final set_ylim."""
  fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
  ax.yaxis.set_major_formatter(fmt)
  lo, hi = ax.get_ylim()
  if lo > 0 and hi / lo < 10:
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    return

  def minor(v, _):
    lead = round(v / 10 ** np.floor(np.log10(v)), 6)
    return f"{v:g}" if lead in (2, 3, 5) else ""
  ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


def num(df: pd.DataFrame, col: str) -> np.ndarray:
  if col not in df.columns:
    return np.full(len(df), np.nan)
  return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)


def completed(df: pd.DataFrame, loss: str) -> pd.DataFrame:
  done = df[df["status"] == "completed"] if "status" in df.columns else df
  return done[np.isfinite(num(done, loss))]


def fits(fit: dict | None) -> dict:
  return (fit or {}).get("fits", {})
