"""DeepSeek LLM (2024, Sec. 3.1): the optimal learning rate and batch size as power laws of compute.

  python experiments/hparam_scaling.py [--sweep_dir=sweeps/hparam_scaling] [--smoke] [--full]

configs/sweeps/hparam_scaling.py trains, at each of several FLOP budgets C, one GPT near the compute-
optimal size for C (exactly C FLOPs each) at every (lr, batch size) of a grid, the lrs of a batch size
packed into one vmapped step. The `hparams` law (scaling/laws/hparams.py) keeps, per budget, the runs
within 0.25 % of its best loss (DeepSeek's near-optimal band), takes the band's geometric centre and
fits lr_opt(C) = k C^a and B_opt(C) = k' C^b (B in tokens) with bootstrap 95 % intervals.
DeepSeek: lr_opt = 0.3118 C^-0.125, B_opt = 0.292 C^0.3271 (C 1e17 .. 2e19 FLOPs).

What differs here: budgets of 1e10 .. 3e11 FLOPs (6 to 9 decades below DeepSeek's 1e17 .. 2e19), byte-level
GPTs of 3.2e3 and 1.2e4 non-embedding parameters, batches of 64 .. 512 tokens (DeepSeek: millions), a 2x lr
grid and a 2x batch grid. Over a 30x range of C DeepSeek's exponents move lr_opt by 0.65x and B_opt by
3x: one to two grid steps. The intervals on a and b say how much a CPU-sized grid can tell, and the
printout says at how many budgets the grid bracketed the best (lr, batch) (a best run at the edge of the
values tried means the optimum lies outside them).

Writes fit.json, hparams.png (DeepSeek Fig. 3: lr and batch vs C, near-optimal runs, band centres, the
fitted lines with their bands and DeepSeek's) and loss_vs_flops.png (every run's learning curve; each
budget's best (lr, batch) bold, the rest of its grid faint) into the sweep dir.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import fit as fit_lib
from scaling.laws import plot, plot_hparams

DEEPSEEK = {"k_lr": 0.3118, "a_lr": -0.125, "k_B": 0.292, "a_B": 0.3271}


def main(argv=None) -> dict:
  args = common.parse_args("hparam_scaling", __doc__, argv)
  s = common.sweep_config("hparam_scaling", args.scale)
  df = common.completed(common.run(args, s))
  curves = common.load_curves(args.sweep_dir, df["run_id"])
  out = fit_lib.fit_frame(df, law="hparams", n_boot=args.n_boot)
  for key, why in out["skipped"].items():
    print(f"skipped {key}: {why}")
  f = out["fits"].get("hparams/gpt")
  edges = {float(b): e for b, e in df.groupby("budget")["best_at_edge"].first().items()}
  fit = common.write_fit(args.sweep_dir, df, out["fits"], law="hparams", n_boot=args.n_boot, skipped=out["skipped"],
                         reference={"deepseek2024": DEEPSEEK}, best_at_edge_per_budget={f"{c:g}": e for c, e in edges.items()})
  figures = []
  for name, fig in (("hparams", plot_hparams.figure(df, fit, "gpt")),
                    ("loss_vs_flops", plot.loss_vs_flops_figure(df, curves, fit))):
    if fig is not None:
      figures.append(common.save_figure(fig, args.sweep_dir, name))

  budgets = sorted(edges)
  lines = [f"DeepSeek LLM (2024) Sec. 3.1 vs this sweep: {len(df)} GPT runs at {len(budgets)} budgets "
           f"({budgets[0]:.2g} .. {budgets[-1]:.2g} FLOPs), lrs {df['lr'].min():.3g} .. {df['lr'].max():.3g}, "
           f"batch sizes {', '.join(str(int(b)) for b in sorted(df['batch_size'].unique()))} "
           f"x {int(df['seq_len'].iloc[0])} tokens"]
  if f is not None:
    lines += [f"  near-optimal band: runs within {100 * f['band']:g} % of their budget's best loss "
              f"({f['method']}: one band centre per budget)",
              f"  {'':<22} {'exponent (95 % CI)':<30} {'DeepSeek':>9}   {'coefficient (95 % CI)':<30} {'DeepSeek':>9}"]
    for name, what in (("lr", "lr_opt(C) = k C^a"), ("B", "B_opt(C) = k' C^b")):
      if f"a_{name}" in f["params"]:
        lines.append(f"  {what:<22} {common.ci_text(f, f'a_{name}'):<30} {DEEPSEEK[f'a_{name}']:>9}   "
                     f"{common.ci_text(f, f'k_{name}'):<30} {DEEPSEEK[f'k_{name}']:>9}")
    for b in f["per_budget"]:
      runs = df[df["budget"] == b["C"]]
      best = runs[runs["is_best"]].iloc[0]
      ds = {n: DEEPSEEK[f"k_{n}"] * b["C"] ** DEEPSEEK[f"a_{n}"] for n in ("lr", "B")}
      lines.append(f"  C = {b['C']:.2g}: {best['size']} (N = {best['params_nonembed']:.3g}), best lr {best['lr']:.3g} "
                   f"batch {int(best['batch_size'])} (loss {b['best_loss']:.4f}); {b['near_optimal']} of {b['runs']} "
                   f"near-optimal, centre lr {b.get('lr_centre', np.nan):.3g} B {b.get('B_centre', np.nan):.4g} "
                   f"tokens (DeepSeek's law: {ds['lr']:.3g}, {ds['B']:.4g}); {edges[b['C']] or 'bracketed'}")
  n_in = sum(not e for e in edges.values())
  lines.append(f"  the grid bracketed the best (lr, batch) at {n_in} of {len(edges)} budgets"
               + ("" if n_in == len(edges) else " (best_at_edge: widen the grid there)"))
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
