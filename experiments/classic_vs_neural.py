"""Classic models vs a neural network on digits: held-out log-loss against parameters and against
training-set size.

  python experiments/classic_vs_neural.py [--sweep_dir=sweeps/classic_vs_neural] [--full] [--smoke]

configs/sweeps/classic_vs_dnn.py: the grid of `scaling.baselines.run.baseline_runs()` (SVM (Nystroem),
decision tree, random forest, logistic regression; their size ladders x training-set sizes 100 .. all
1437 rows) plus an MLP ladder on the same nested subsets, one sweep through the sweep runner. Fits (95 % bootstrap intervals):
  power/FAMILY                        L(N) = E + A N^-alpha on the full training set (N = parameters:
                                      the MLP's weights; stored tree nodes, support/Nystroem components
                                      and coefficients for the classic models, see baselines/classic.py)
  power/FAMILY/SIZE/train_examples    L(n) = E + A n^-alpha for each family's largest model
What came out at the default (one seed; 180 validation rows, so losses carry ~5-10 % noise): the MLP
falls as ~N^-1 to 0.079 nats at 1e5 parameters, below the random forest (0.090 at 2e5) and above the
SVM (0.058 with 1024 Nystroem components, 1.1e6 parameters); a single tree does not improve past 32
leaves (bigger trees fit the training rows, calibration cannot undo it: its "alpha" is meaningless);
in training rows every family follows n^-(0.3 .. 0.8), the MLP lowest at 100 .. 200 rows.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import fit as fit_lib
from scaling.laws import plot


def main(argv=None) -> dict:
  args = common.parse_args("classic_vs_neural", __doc__, argv)
  df = common.completed(common.run(args, common.sweep_config("classic_vs_dnn", args.scale)))
  # Every family reports the rows it trained on (the MLP through its tag): the full split is the max.
  df_full = df[df["train_examples"] == df["train_examples"].max()]
  fits, skipped = {}, {}
  for fam in sorted(df_full["family"].unique()):
    common.size_fit(fits, skipped, df_full, fam, x="params", n_boot=args.n_boot)
  # The data axis: each family's largest model at every training-set size.
  largest = df_full.loc[df_full.groupby("family")["params"].idxmax(), ["family", "size"]]
  df_data = df.merge(largest, on=["family", "size"])
  for (fam, size), g in df_data.groupby(["family", "size"]):
    common.try_fit(fits, skipped, f"power/{fam}/{size}/train_examples", lambda: {
        **fit_lib.power(g["train_examples"].to_numpy(float), g["eval_loss"].to_numpy(float),
                        x_name="train_examples", n_boot=args.n_boot, seed=0), "family": fam, "size": str(size)})
  fit = common.write_fit(args.sweep_dir, df, fits, law="classic_vs_neural", x="params", n_boot=args.n_boot,
                         skipped=skipped)

  fig = plot.loss_vs_size_figure(df_full, fit, x="params")
  common.fit_ylim(fig.axes[0], df_full["eval_loss"])
  figures = [common.save_figure(fig, args.sweep_dir, "loss_vs_params")]
  fig = plot.loss_vs_examples_figure(df_data, fit)
  if fig is not None:
    common.fit_ylim(fig.axes[0], df_data["eval_loss"])
    figures.append(common.save_figure(fig, args.sweep_dir, "loss_vs_train_examples"))

  best = df_full.loc[df_full.groupby("family")["eval_loss"].idxmin()]
  table = best[["family", "size", "params", "eval_loss", "eval_accuracy"]].to_string(index=False)
  lines = ["Best model per family on all training rows (held-out log-loss, accuracy):", table, "",
           "Exponents (alpha with 95% CI):"]
  for key, f in fits.items():
    flat = f["params"]["alpha"] > 5  # a step to a plateau, not a power law (e.g. trees past 32 leaves)
    lines.append(f"  {key:<40} alpha = {common.ci_text(f, 'alpha')}   E = {common.ci_text(f, 'E')}"
                 + ("   (no power law: the loss stops falling)" if flat else ""))
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
