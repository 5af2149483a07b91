"""μTransfer: does the optimal learning rate stay put as width grows? Held-out loss vs lr for GPTs of
4 widths (×8), SP and μP side by side (Yang et al. 2022, Fig. 1), the lr grid of each width packed into
one vmapped step (configs/sweeps/mu_transfer.py).

Prints the optimum lr per width and its drift across widths in grid steps (factors of 2): μTransfer
predicts ~0 under μP; under SP the optimum moves (typically down, ~1/width). Writes fit.json (optima,
drift) and mu_transfer.png (loss vs lr, one panel per parametrization, one line per width, the optimum
circled) into the sweep dir.

`python experiments/mu_transfer.py [--sweep_dir=DIR] [--smoke] [--full]`
"""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

LABELS = {"sp": "SP (standard)", "mup": "μP"}


def optima(df, s) -> dict:
  """{parametrization: {width: {lr_opt, loss_opt, lrs, losses, edge}}} from the completed runs; `edge` says
  the optimum sits at the end of its grid (not bracketed)."""
  out = {}
  for ladder, g in df.groupby("sweep"):
    par, width = ladder.split("_d")
    g = g.assign(lr=g["lr_mult"] * s.ladders[ladder].rule.lr).sort_values("lr")  # rule: lr = rule.lr x mult
    lrs, losses = g["lr"].to_numpy(float), g["eval_loss"].to_numpy(float)
    ok = np.isfinite(losses)
    i = int(np.nanargmin(np.where(ok, losses, np.inf)))
    out.setdefault(par, {})[int(width)] = dict(
        lr_opt=float(lrs[i]), loss_opt=float(losses[i]), lrs=lrs.tolist(), losses=losses.tolist(),
        edge=bool(i in (0, len(lrs) - 1)))
  return out


def drift(per_width: dict) -> float:
  """log2(largest / smallest optimum lr) across widths: grid steps of 2 the optimum moved."""
  lr = [v["lr_opt"] for v in per_width.values()]
  return math.log2(max(lr) / min(lr))


def figure(opt: dict, sweep_dir: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for ax, par in zip(axes, ("sp", "mup")):
    widths = sorted(opt.get(par, {}))
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(widths), 1)))
    for w, col in zip(widths, colors):
      v = opt[par][w]
      ax.plot(v["lrs"], v["losses"], "o-", color=col, ms=4, label=f"d_model {w}")
      ax.plot(v["lr_opt"], v["loss_opt"], "o", ms=11, mfc="none", mec=col, mew=1.8)
    ax.set_xscale("log", base=2)
    grid = opt[par][widths[0]]["lrs"] if widths else []
    ax.set_xticks(grid, [f"{x:.2g}" for x in grid], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("peak learning rate (Adam)")
    edges = [str(w) for w in widths if opt[par][w]["edge"]]
    note = f"\n(optimum at the grid's edge for d_model {', '.join(edges)})" if edges else ""
    ax.set_title(f"{LABELS[par]}: optimum moved {drift(opt[par]):.0f} grid step(s) of 2×{note}" if widths else par,
                 fontsize=10)
    ax.grid(alpha=0.3)
  finite = [x for p in opt.values() for v in p.values() for x in v["losses"] if np.isfinite(x)]
  lo = min(finite)
  axes[0].set_ylim(lo - 0.05, min(max(finite), lo + 1.2) + 0.05)  # keep the optima readable over diverged lrs
  axes[0].set_ylabel("held-out loss (nats/byte)")
  axes[1].legend(title="width (circle: best lr)", fontsize=8)
  fig.suptitle("Loss vs learning rate across width, 2-layer GPTs, one lr grid for all widths "
               "(μP base width = smallest)", fontsize=10)
  fig.tight_layout()
  return common.save_figure(fig, sweep_dir, "mu_transfer")


def main(argv=None):
  args = common.parse_args("mu_transfer", __doc__, argv)
  s = common.sweep_config("mu_transfer", args.scale)
  df = common.completed(common.run(args, s))
  opt = optima(df, s)
  lines = [f"{'width':>6} " + " ".join(f"{LABELS[p]:>24}" for p in ("sp", "mup"))]
  for w in sorted(set().union(*(opt.get(p, {}).keys() for p in ("sp", "mup")))):
    cells = []
    for p in ("sp", "mup"):
      v = opt.get(p, {}).get(w)
      cells.append(f"lr* {v['lr_opt']:.2g} loss {v['loss_opt']:.3f}{' (edge)' if v['edge'] else ''}" if v else "-")
    lines.append(f"{w:>6} " + " ".join(f"{c:>24}" for c in cells))
  drifts = {p: drift(opt[p]) for p in opt}
  lines.append("optimum drift across widths (grid steps of 2x): "
               + ", ".join(f"{LABELS[p]} {d:.0f}" for p, d in drifts.items()))
  io_path = os.path.join(args.sweep_dir, "fit.json")
  from scaling import io
  fit = {"optima": {p: {str(w): v for w, v in d.items()} for p, d in opt.items()},
         "drift_grid_steps": drifts, "run_ids": sorted(df["run_id"])}
  io.atomic_write_json(io_path, fit)
  path = figure(opt, args.sweep_dir)
  print("\n".join(lines))
  print(f"wrote {io_path}\nwrote {path}", flush=True)
  return fit


if __name__ == "__main__":
  main()
