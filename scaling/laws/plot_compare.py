"""The figure of `scaling compare` (scaling/laws/compare.py): two log-log panels.

Left: both ladders' frontiers, each seed faint, the seed means with their spread, the fitted law (solid over the
ladder's own range, dashed beyond) with its 95 % bootstrap band, the range both ladders cover shaded, and at its top
an arrow from the candidate's loss to the compute the baseline needs for it. Right: the multiplier over that range
with its band and the line M = 1 (no difference).
"""

import textwrap

import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from scaling.laws import plot

COLORS = {"baseline": "tab:blue", "candidate": "tab:orange"}
WHAT = {"compute": ("compute", "C"), "params": ("parameters", "N")}


def _frontier_panel(ax, r: dict):
  fr = r["frontier"]
  lo, hi = r["overlap"]
  ax.axvspan(lo, hi, color="0.92", alpha=0.6, lw=0, label="range both ladders cover")
  for role in ("baseline", "candidate"):
    f, col, curve = r[role], COLORS[role], fr[role]
    p = f["points"]
    xs = np.concatenate([np.full(len(s), x) for x, s in zip(p["x"], p["seeds"])])
    ax.scatter(xs, np.concatenate(p["seeds"]), color=col, s=10, alpha=0.35, lw=0, zorder=2)
    ax.errorbar(p["x"], p["loss"], yerr=np.nan_to_num(p["std"]), fmt="o", color=col, ms=5, capsize=2, zorder=3,
                label=f"{role} {f['name']}: seed means (± std), seeds faint")
    inside = (fr["x"] >= f["x_range"][0]) & (fr["x"] <= f["x_range"][1])
    e, al = f["params"]["E"], f["params"]["alpha"]
    ax.plot(fr["x"][inside], curve["loss"][inside], color=col, lw=1.8,
            label=f"{role} fit E + A x^-α: E={e:.3g}, α={al:.3g}")
    ax.plot(fr["x"], np.where(inside, np.nan, curve["loss"]), color=col, lw=1.3, ls="--")
    if curve["lo"] is not None:
      ax.fill_between(fr["x"], curve["lo"], curve["hi"], color=col, alpha=0.15, lw=0)
  t, (word, _) = r["top"], WHAT[r["by"]]
  L = np.interp(np.log(t["x"]), np.log(fr["x"]), fr["candidate"]["loss"])
  if np.isfinite(t["M"]) and fr["x"][0] <= t["M"] * t["x"] <= fr["x"][-1]:
    ax.annotate("", xy=(t["M"] * t["x"], L), xytext=(t["x"], L),
                arrowprops=dict(arrowstyle="->", color="0.2", lw=1.2, ls=":"))
  where = "" if fr["x"][0] <= t["M"] * t["x"] <= fr["x"][-1] else " (off this plot)"
  ax.text(t["x"], L * 0.985, f"baseline needs {t['M']:.3g}x the {word}\nfor the candidate's loss at the top{where}",
          fontsize=7, ha="right", va="top", color="0.2")
  # Limits from the points and the fitted laws: a wild bootstrap band must not flatten the data.
  ys = np.concatenate([np.concatenate(r[k]["points"]["seeds"]) for k in ("baseline", "candidate")] +
                      [fr[k]["loss"] for k in ("baseline", "candidate")])
  ys = ys[np.isfinite(ys) & (ys > 0)]
  ax.set_ylim(ys.min() / 1.03, ys.max() * 1.03)
  plot._loglog(ax, r["x"], r["loss"], f"Both ladders' frontiers ({r['law'].replace('_', ' ')})",
               unit=r.get("unit", "nats/token"))
  ax.legend(fontsize=6.5, loc="upper right")


def _multiplier_panel(ax, r: dict):
  c, t, (word, sym) = r["curve"], r["top"], WHAT[r["by"]]
  ax.plot(c["x"], c["M"], color="k", lw=1.8, label=f"{sym}_baseline(L_candidate({sym})) / {sym}")
  if np.isfinite(c["lo"]).any():
    ax.fill_between(c["x"], c["lo"], np.minimum(c["hi"], 1e6 * np.nanmax(c["M"])), color="k", alpha=0.15, lw=0,
                    label=f"95 % bootstrap band ({r['n_boot']} resamples of both ladders' points and seeds)")
  ax.axhline(1.0, color="tab:red", lw=1, ls="--", label="M = 1: no difference")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(plot._label(r["x"]))
  ax.set_ylabel(f"effective {word} multiplier M of the candidate")
  ax.grid(True, which="both", alpha=0.25)
  # Limits: the curve and 1, with the band up to 100x beyond them (a band of 3-point ladders spans 1e100).
  m = c["M"][np.isfinite(c["M"]) & (c["M"] > 0)]
  top = max(m.max() if m.size else 1.0, 1.0)
  bottom = min(m.min() if m.size else 1.0, 1.0)
  band_lo = np.nanmin(c["lo"]) if np.isfinite(c["lo"]).any() else bottom
  band_hi = np.nanmax(np.where(np.isfinite(c["hi"]), c["hi"], np.nan)) if np.isfinite(c["hi"]).any() else top
  ax.set_ylim(max(min(band_lo, bottom / 1.25), bottom / 100), min(max(band_hi, top * 1.25), top * 100))
  plot._plain_y(ax)  # plain numbers (2, 3, 5) on the multiplier's log axis
  lo, hi = c["x"][0], c["x"][-1]
  if hi / lo < 10:  # within a decade matplotlib labels every minor tick, colliding: label ~4 plain ones
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(np.geomspace(lo, hi, 4)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
  elif hi / lo < 100:  # one or two decades: label the minor ticks at 2 and 5 x 10^k only (3 and 4 collide)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: f"{v:.0e}".replace("e+", "e") if f"{v:.0e}"[0] in "25" else ""))
  d = r["alpha_diff"]
  ax.set_title(f"{r['candidate']['name']} vs {r['baseline']['name']}: M = {t['M']:.3g} [{t['ci'][0]:.3g}, "
               f"{t['ci'][1]:.3g}] at {sym} = {t['x']:.3g}\nα_candidate − α_baseline = {d['value']:+.3g} "
               f"[{d['ci'][0]:+.3g}, {d['ci'][1]:+.3g}]", fontsize=9)
  notes = "\n".join(textwrap.fill(n, 80) for n in r["notes"])
  ax.text(0.02, 0.03, notes, transform=ax.transAxes, fontsize=7.5, color="tab:red", va="bottom",
          bbox=dict(facecolor="white", alpha=0.85, lw=0))
  ax.legend(fontsize=6.5, loc="upper left")


def figure(r: dict) -> Figure:
  """Both panels for a `compare.compare` result."""
  fig, (left, right) = plot._figure(ncols=2, width=6.0, height=4.6)
  _frontier_panel(left, r)
  _multiplier_panel(right, r)
  return fig
