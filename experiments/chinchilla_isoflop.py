"""Hoffmann et al. (2022), "Chinchilla": compute-optimal model size from an IsoFLOP grid.

  python experiments/chinchilla_isoflop.py [--sweep_dir=sweeps/chinchilla_isoflop] [--full] [--smoke] [--branches]

configs/sweeps/chinchilla.py trains 5 GPT sizes at each of 4 FLOP budgets (each run exactly C FLOPs,
its cosine schedule fitted to its length). Fits (scaling.laws.fit, 95 % bootstrap intervals):
  approach 1  the lowest held-out loss at each C along all learning curves -> N_opt = k C^a, D_opt ~ C^b
  approach 2  per budget a parabola in log N, its minimum -> N_opt(C) = k C^a   (Chinchilla Fig. 3)
  approach 3  L(N, D) = E + A/N^alpha + B/D^beta (Huber, L-BFGS from the paper's 4,500-start grid)
              -> a = beta / (alpha + beta)
Chinchilla: a = 0.50 (approach 1), 0.49 (2), 0.46 (3); b = 0.50, 0.51, 0.54; approach 3: E = 1.69,
A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28 (nats per BPE token on MassiveText).

What differs here: budgets of 2.5e11 .. 1.5e12 FLOPs (Chinchilla: 6e18 .. 3e21), models of 3e3 .. 2.3e5
non-embedding parameters where embeddings and attention are much of the compute (C is our exact FLOP
count, not 6ND), byte-level loss, and the optimum sits at D/N ~ 100-200 rather than 20 (the grid is
centred there: configs/sweeps/chinchilla.py says what r = 20 gave). With 3 budgets over less than a
decade the interval on a is wide, approach 2's widest (three parabola vertices); a within ~0.2 of 0.5
is what this scale can say.

--branches runs the same grid as cooldown branches (scaling/sweep/branches.py): members of one size share
a constant-lr trunk and cool down (WSD, linear, last 20 %) to their budget from its checkpoint; the sweep
prints the FLOPs that saved. IsoFLOP grids centre each budget on its own N*, so few sizes recur across
budgets and the saving is small; an N x D grid (experiments/cooldown_branches.py) shares every size.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import fit as fit_lib
from scaling.laws import plot

CHINCHILLA = {"a": {"approach1": 0.50, "approach2": 0.49, "approach3": 0.46},
              "b": {"approach1": 0.50, "approach2": 0.51, "approach3": 0.54},
              "approach3": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}}


def main(argv=None) -> dict:
  args = common.parse_args("chinchilla_isoflop", __doc__, argv, branches=True)
  ladder = common.sweep_config("chinchilla", args.scale)
  if args.branches:
    ladder.branch = "cooldown"
  df = common.completed(common.run(args, ladder))
  curves = common.load_curves(args.sweep_dir, df["run_id"])
  # 'auto' on an IsoFLOP grid: approaches 1-3, L(C) through the best run per budget, extrapolation checks.
  out = fit_lib.fit_frame(df, law="auto", curves=curves, n_boot=args.n_boot)
  for key, why in out["skipped"].items():
    print(f"skipped {key}: {why}")
  fit = common.write_fit(args.sweep_dir, df, out["fits"], law="auto", n_boot=args.n_boot, skipped=out["skipped"],
                         extrapolation=out["extrapolation"], reference={"hoffmann2022": CHINCHILLA})

  figures = []
  for name, fig in (("isoflop", plot.isoflop_figure(df, fit, "gpt")),
                    ("loss_vs_flops", plot.loss_vs_flops_figure(df, curves, fit))):
    if fig is not None:
      figures.append(common.save_figure(fig, args.sweep_dir, name))

  budgets = sorted(df["budget"].unique())
  lines = [f"Chinchilla (Hoffmann et al. 2022) vs this sweep: {len(df)} GPT runs at {len(budgets)} budgets "
           f"({budgets[0]:.2g} .. {budgets[-1]:.2g} FLOPs), N = {df['params_nonembed'].min():.3g} .. "
           f"{df['params_nonembed'].max():.3g}",
           f"  {'':<11} {'a (N_opt ~ C^a)':<28} {'Chinchilla':>10}   {'b (D_opt ~ C^b)':<28} {'Chinchilla':>10}"]
  for law in ("approach1", "approach2", "approach3"):
    f = out["fits"].get(f"{law}/gpt")
    if f is None:
      lines.append(f"  {law:<11} (skipped: {out['skipped'].get(f'{law}/gpt', '?')})")
      continue
    lines.append(f"  {law:<11} {common.ci_text(f, 'a'):<28} {CHINCHILLA['a'][law]:>10}   "
                 f"{common.ci_text(f, 'b'):<28} {CHINCHILLA['b'][law]:>10}")
  f3 = out["fits"].get("approach3/gpt")
  if f3 is not None:
    lines.append("  approach 3 L(N, D) = E + A/N^alpha + B/D^beta:   " + ", ".join(
        f"{k} = {common.ci_text(f3, k)} (Chinchilla {v})" for k, v in CHINCHILLA["approach3"].items()))
  f2 = out["fits"].get("approach2/gpt")
  if f2 is not None:
    for b in f2["per_budget"]:
      lines.append(f"  C = {b['C']:.2g}: IsoFLOP minimum at N = {b['N_opt']:.3g}, D = {b['D_opt']:.3g} "
                   f"(D/N = {b['D_opt'] / b['N_opt']:.1f}){'' if b['in_range'] else '  (outside the sizes tried)'}")
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
