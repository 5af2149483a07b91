"""Does a scaling-law fit recover the entropy of the data? A GPT ladder on a synthetic language with a
known entropy rate H (a random sparse Markov chain, scaling/data/markov.py).

  python experiments/known_entropy.py [--sweep_dir=sweeps/known_entropy] [--full] [--smoke]

Fits L(N) = E + A N^-alpha (95 % bootstrap intervals) through each size's held-out loss (the mean over its
seeds) of configs/sweeps/known_entropy.py, and through each seed alone, and compares E with
  H                    the chain's entropy rate: the loss of the true model given its full context;
  L*(window)           the exact Bayes loss on the pipeline's windows (the first target of a window has
                       one token of context, so L* = H + (h_1 - H) / seq_len > H): the floor a
                       perfect model reaches on what it is scored on, so the right truth for E.
E lands within a few % of both when the largest models get close to the floor; what is left above it
is data- and optimization-limited loss (every size sees the same D), which the N-only law puts in E.
"""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.data import pipeline
from scaling.laws import plot


def truth(ladder: ml_collections.ConfigDict) -> dict:
  """The chain's entropy rate and the Bayes loss on the ladder's windows (dataset metadata)."""
  data = ml_collections.ConfigDict(dict(task="lm", tokenizer="byte", data_dir="", batch_size=32)
                                   | ladder.overrides.data.to_dict())
  info = pipeline.dataset_info(data)
  return dict(entropy_rate=float(info["entropy_rate"]), optimal_loss=float(info["optimal_loss"]),
              seq_len=int(data.seq_len), conditional_entropies=[float(h) for h in info["conditional_entropies"]])


def main(argv=None) -> dict:
  args = common.parse_args("known_entropy", __doc__, argv)
  ladder = common.sweep_config("known_entropy", args.scale)
  df = common.completed(common.run(args, ladder))
  t = truth(ladder)
  H, opt = t["entropy_rate"], t["optimal_loss"]
  fits, skipped = {}, {}
  f = common.size_fit(fits, skipped, df, "gpt", n_boot=args.n_boot)
  # Each seed alone: how far the conclusion moves with the training noise (a stand-in for another CPU's
  # rounding, which changes every loss by a similar amount).
  per_seed = {}
  if df["seed"].nunique() > 1:
    for seed, d in df.groupby("seed"):
      g = common.size_fit({}, {}, d, "gpt", n_boot=args.n_boot)
      if g is not None:
        per_seed[int(seed)] = dict(E=g["params"]["E"], ci=g["ci"]["E"], alpha=g["params"]["alpha"])
  fit = common.write_fit(args.sweep_dir, df, fits, law="known_entropy", n_boot=args.n_boot, skipped=skipped,
                         truth=t, per_seed=per_seed)

  fig = plot.loss_vs_size_figure(df, fit)
  ax = fig.axes[0]
  ax.axhline(H, color="k", ls=":", lw=1.2, label=f"entropy rate H = {H:.4f}")
  ax.axhline(opt, color="tab:gray", ls="--", lw=1.0, label=f"Bayes loss on {t['seq_len']}-token windows = {opt:.4f}")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
  common.fit_ylim(ax, list(df["eval_loss"]) + [H], pad=1.1)
  figures = [common.save_figure(fig, args.sweep_dir, "loss_vs_params")]

  best = common.best_per_size(df)
  lines = [f"Known-entropy language: order-{ladder.overrides.data.markov_order} Markov chain over "
           f"{ladder.overrides.data.markov_symbols} symbols; {len(df)} GPT runs, D = {df['tokens'].median():.3g} "
           f"tokens each", f"  entropy rate H                 {H:.4f} nats/token",
           f"  Bayes loss on the windows L*   {opt:.4f} (seq_len {t['seq_len']})",
           f"  best run                       {best.min():.4f} (N = {best.idxmin():.3g})"]
  if f is not None:
    E = f["params"]["E"]
    lo, hi = f["ci"]["E"]
    lines += [f"  fitted E                       {common.ci_text(f, 'E')}",
              f"  E / H - 1                      {100 * (E / H - 1):+.2f} %   (95% CI [{100 * (lo / H - 1):+.2f}, "
              f"{100 * (hi / H - 1):+.2f}] %)",
              f"  E / L* - 1                     {100 * (E / opt - 1):+.2f} %",
              f"  alpha                          {common.ci_text(f, 'alpha')}"]
  for seed, g in per_seed.items():
    lines.append(f"  seed {seed} alone: E / H - 1       {100 * (g['E'] / H - 1):+.2f} %   (95% CI "
                 f"[{100 * (g['ci'][0] / H - 1):+.2f}, {100 * (g['ci'][1] / H - 1):+.2f}] %), alpha {g['alpha']:.3g}")
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
