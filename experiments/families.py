"""Model families on one loss-vs-parameters figure (cf. Kaplan et al. 2020 Fig. 7, Transformers vs LSTMs):
GPT, encoder-decoder Transformer (prefix LM), fixed-context MLP LM and Kneser-Ney n-gram, every
family trained on the same D tokens of the embedded corpus.

  python experiments/families.py [--sweep_dir=sweeps/families] [--full] [--smoke]

One ladder per family (configs/sweeps/families_lm.py), all in one sweep; per family
L(N) = E + A N^-alpha through the lowest held-out loss per size, with 95 % bootstrap intervals.
N is non-embedding parameters for the neural families and stored n-gram entries for the n-gram model.

How to read it: every family is scored in nats per next byte on held-out text; the encoder-decoder as
a prefix LM (encoder: first half of each window; loss on the second half, given at least half a window
of context; why not span corruption: configs/sweeps/families_lm.py). Kaplan's finding was that
Transformers keep improving with N where LSTMs flatten; here the analogue is a fixed 8-byte context
(MLP) and a count-based model (n-gram) flattening while GPT keeps going. At D = 4e6 tokens the sizes
are small (3e3 .. 1e5: only the largest GPT has 2 layers), so expect bends, not clean power laws; the
n-gram model runs out of counts by order 4-5.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import plot

FAMILIES = ("gpt", "transformer", "dnn", "ngram")


def main(argv=None) -> dict:
  args = common.parse_args("families", __doc__, argv)
  df = common.completed(common.run(args, common.sweep_config("families_lm", args.scale)))
  fits, skipped = {}, {}
  for fam in FAMILIES:
    if (df["family"] == fam).any():
      common.size_fit(fits, skipped, df, fam, n_boot=args.n_boot)
  fit = common.write_fit(args.sweep_dir, df, fits, law="families", n_boot=args.n_boot, skipped=skipped)

  fig = plot.loss_vs_size_figure(df, fit)
  fig.axes[0].set_title("Loss vs model size at D = 4M tokens\n(transformer: encoder-decoder, prefix LM)")
  common.fit_ylim(fig.axes[0], df["eval_loss"])
  figures = [common.save_figure(fig, args.sweep_dir, "loss_vs_params")]

  lines = [f"Families at D = {df.loc[df['family'] != 'ngram', 'tokens'].median():.3g} training tokens "
           f"(lowest held-out loss per size; alpha with 95% CI):"]
  for fam in FAMILIES:
    best = common.best_per_size(df[df["family"] == fam])
    if best.empty:
      continue
    f = fits.get(f"power/{fam}")
    fitted = f"alpha = {common.ci_text(f, 'alpha')}, E = {common.ci_text(f, 'E')}" if f else "(no fit)"
    lines.append(f"  {fam:<12} N = {best.index.min():.3g} .. {best.index.max():.3g}: loss {best.iloc[0]:.3f} -> "
                 f"{best.iloc[-1]:.3f}   {fitted}")
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
