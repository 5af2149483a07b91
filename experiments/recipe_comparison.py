"""Is the modern GPT recipe better than GPT-2's at scale, and by how much? The effective compute multiplier of the
modern recipe (RMSNorm, SwiGLU, qk-norm, no biases, untied embedding) over GPT-2's, with its 95 % interval.

  python experiments/recipe_comparison.py [--sweep_dir=sweeps/recipe_comparison] [--smoke]

1. lr: each recipe's middle size (2.8e4 non-embedding params) at lr 4e-3, 8e-3, 1.6e-2, one seed
   (configs/sweeps/recipe_comparison.py:lr_grid, into SWEEP_DIR/lr_grid); the lowest held-out loss is that recipe's
   lr, fixed across its ladder's sizes (the rule make sweep uses: one lr for these tiny GPTs).
2. The ladders: 5 sizes x 2 seeds per recipe at D = 2e6 tokens (configs/sweeps/recipe_comparison.py), each at its lr.
3. scaling.laws.compare.compare(SWEEP_DIR, baseline='gpt2', candidate='modern') (one shared E, bootstrap over
   both ladders' points and seeds) and its figure (scaling/laws/plot_compare.py).

Prints each recipe's lr grid, the multiplier at the top of the shared compute range with its interval, the exponent
difference, and the wall time of the whole experiment.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling import io
from scaling.laws import compare, plot_compare
from scaling.sweep import results

CONFIG = "recipe_comparison"
BASELINE, CANDIDATE = "gpt2", "modern"


def pick_lrs(df) -> dict:
  """recipe -> the lr of its lowest held-out loss in the grid (one seed per lr)."""
  return {name: float(g.loc[g["eval_loss"].idxmin(), "lr"]) for name, g in df.groupby("sweep")}


def main(argv=None) -> dict:
  t0 = time.time()
  args = common.parse_args(CONFIG, __doc__, argv)
  if args.scale == "full":
    raise SystemExit("--full: not offered by configs/sweeps/recipe_comparison.py; allowed: --smoke or neither")
  prefix = "smoke_" if args.scale == "smoke" else ""
  grid_args = common.Args(**{**vars(args), "name": f"{CONFIG}_lr_grid", "sweep_dir": os.path.join(args.sweep_dir, "lr_grid")})
  grid = common.completed(common.run(grid_args, common.sweep_config(CONFIG, prefix + "lr_grid")))
  lrs = pick_lrs(grid)
  s = common.sweep_config(CONFIG, args.scale)
  for name, lr in lrs.items():
    s.ladders[name].rule.lr = lr
  df = common.completed(common.run(args, s))

  r = compare.compare(args.sweep_dir, baseline=BASELINE, candidate=CANDIDATE, n_boot=args.n_boot)
  fig = plot_compare.figure(r)
  fig.suptitle(f"Modern GPT recipe vs GPT-2's: {len(df)} runs, D = {df['tokens'].median():.3g} tokens per run",
               fontsize=9)
  png = common.save_figure(fig, args.sweep_dir, "recipe_comparison")
  wall = time.time() - t0
  t = r["top"]
  summary = dict(lr_grid={name: {f"{lr:g}": float(loss) for lr, loss in g.set_index("lr")["eval_loss"].items()}
                          for name, g in grid.groupby("sweep")},
                 lr=lrs, multiplier=t["M"], ci=t["ci"], at_flops=t["x"], alpha_diff=r["alpha_diff"],
                 notes=r["notes"], wall_s=wall, runs=len(df))
  io.atomic_write_json(os.path.join(args.sweep_dir, "recipe_comparison.json"), summary)

  print()
  for name in (BASELINE, CANDIDATE):
    cells = ", ".join(f"{lr} -> {loss:.4f}" for lr, loss in summary["lr_grid"][name].items())
    edge = results.grid_edge(grid.loc[grid["sweep"] == name, "lr"], lrs[name])
    print(f"lr grid {name}: {cells}  => lr {lrs[name]:g}" + (f" (the grid's {edge}: not bracketed)" if edge else ""))
  print(compare.format_summary(r), end="")
  print(f"modern vs gpt2: the GPT-2 recipe needs {t['M']:.3g}x the compute (95% CI [{t['ci'][0]:.3g}, "
        f"{t['ci'][1]:.3g}]) for the modern recipe's loss at C = {t['x']:.3g} FLOPs")
  print(f"wall time {wall:.0f}s ({len(df)} ladder runs + {len(grid)} lr-grid runs)")
  print(f"wrote {png}")
  print(f"wrote {os.path.join(args.sweep_dir, 'recipe_comparison.json')}", flush=True)
  return dict(r, summary=summary, figure=png)


if __name__ == "__main__":
  main()
