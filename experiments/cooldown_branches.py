"""Hägele et al. (2024): cooldown branches off one constant-lr run vs separate runs per token budget.

  python experiments/cooldown_branches.py [--sweep_dir=sweeps/cooldown_branches] [--smoke] [--full]

One N x D grid (configs/sweeps/cooldown.py: 3 sizes x 4 budgets by default) trained three ways, each
into its own sub-directory of SWEEP_DIR: `branches` (per size one trunk at constant lr, each budget a
1-sqrt cool-down over its last 20 % branched off the trunk's checkpoint), `wsd` (the same schedule, every
budget from scratch) and `cosine` (cosine to 10 % fitted to each budget, the usual ladder). Reports the
held-out loss of each (size, budget) three ways, the FLOPs the branches spent vs the separate runs, the
approach-3 fit L(N, D) = E + A/N^alpha + B/D^beta of each side by side (95 % bootstrap intervals), and a
figure of loss vs tokens per size.

What to expect: a branch trains exactly what a separate WSD run of its budget trains (same lr at every
step, same data order; tests/test_branch.py checks it bitwise), so branches and wsd agree to the last
digit and the saving is pure compute: sum_i S_i steps vs max_i s_i + sum_i 0.2 S_i. Hägele et al. found
WSD with a 20 % 1-sqrt cool-down within ~1 % of cosine at the same tokens (their 124M-360M models, 5-10B
tokens); at this scale (1e4-1e5 parameters, <= 4M bytes) what is measured is printed, not assumed.
"""

import dataclasses
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import fit as fit_lib
from scaling.sweep import results

VARIANTS = ("branches", "wsd", "cosine")
HAGELE = {"loss_gap_vs_cosine": "within ~1 %", "flops_ratio_4_budgets": ">= 2x"}


def _figure(df: pd.DataFrame, path_dir: str) -> str:
  import matplotlib.pyplot as plt
  fig, (ax, gap) = plt.subplots(1, 2, figsize=(11, 4.2))
  sizes = sorted(df["params_nonembed"].unique())
  colors = plt.cm.viridis(np.linspace(0, 0.85, len(sizes)))
  style = {"cosine": dict(ls="-", marker="o"), "wsd": dict(ls=":", marker="s", mfc="none"),
           "branches": dict(ls="--", marker="x")}
  for n, col in zip(sizes, colors):
    for v in VARIANTS:
      d = df[(df["params_nonembed"] == n) & (df["variant"] == v)].sort_values("tokens")
      ax.plot(d["tokens"], d["eval_loss"], color=col, ms=6, **style[v])
    c = df[(df["params_nonembed"] == n) & (df["variant"] == "cosine")].set_index("tokens")["eval_loss"]
    b = df[(df["params_nonembed"] == n) & (df["variant"] == "branches")].set_index("tokens")["eval_loss"]
    g = (b / c - 1).dropna() * 100
    gap.plot(g.index, g.values, color=col, marker="x", label=f"N = {n:.3g}")
  for v in VARIANTS:
    ax.plot([], [], color="gray", **style[v], label={"cosine": "cosine, separate runs",
                                                     "wsd": "WSD, separate runs (under the branches)",
                                                     "branches": "cooldown branches"}[v])
  for n, col in zip(sizes, colors):
    ax.plot([], [], color=col, lw=6, label=f"N = {n:.3g} (non-embedding)")
  ax.set(xscale="log", xlabel="training tokens D", ylabel="held-out loss (nats / byte)",
         title="Loss vs tokens: branches, separate WSD, separate cosine")
  ax.legend(fontsize=7)
  gap.axhline(0, color="k", lw=0.8)
  gap.set(xscale="log", xlabel="training tokens D", ylabel="branch loss / cosine loss - 1 (%)",
          title="Branch vs cosine at the same tokens (< 0: branch better)")
  gap.legend(fontsize=7)
  fig.tight_layout()
  return common.save_figure(fig, path_dir, "cooldown_branches")


def main(argv=None) -> dict:
  args = common.parse_args("cooldown_branches", __doc__, argv)
  frames, spent = [], {}
  for v in VARIANTS:
    sub = dataclasses.replace(args, sweep_dir=os.path.join(args.sweep_dir, v))
    df = common.completed(common.run(sub, common.sweep_config("cooldown", f"{args.scale},{v}")))
    frames.append(df.assign(variant=v))
    full = results.load(sub.sweep_dir, trunks=True)
    full = full[full["status"] == "completed"]
    if v == "branches":
      trunks = full[full["role"] == "trunk"]
      spent[v] = float(trunks["flops"].sum() + df["branch_flops"].sum())
    else:
      spent[v] = float(df["flops"].sum())
  df = pd.concat(frames, ignore_index=True)

  fits, skipped = {}, {}
  for v in VARIANTS:
    d = df[df["variant"] == v]
    common.try_fit(fits, skipped, f"approach3/{v}", lambda d=d: {
        **fit_lib.approach3(d["params_nonembed"].to_numpy(float), d["tokens"].to_numpy(float),
                            d["eval_loss"].to_numpy(float), n_boot=args.n_boot), "family": "gpt"})
  fit = common.write_fit(args.sweep_dir, df, fits, law="approach3", n_boot=args.n_boot, skipped=skipped,
                         flops_spent=spent, reference={"hagele2024": HAGELE})

  wide = df.pivot_table(index=["params_nonembed", "tokens"], columns="variant", values="eval_loss")
  lines = [f"Cooldown branches (Hägele et al. 2024) vs separate runs: {df['params_nonembed'].nunique()} sizes x "
           f"{df['tokens'].nunique()} budgets, held-out nats/byte",
           f"  {'N':>8} {'D':>9} {'cosine':>8} {'wsd':>8} {'branch':>8} {'br/cos-1':>9} {'br-wsd':>9}"]
  for (n, t), r in wide.iterrows():
    lines.append(f"  {n:>8.3g} {t:>9.3g} {r['cosine']:>8.4f} {r['wsd']:>8.4f} {r['branches']:>8.4f} "
                 f"{(r['branches'] / r['cosine'] - 1) * 100:>8.2f}% {r['branches'] - r['wsd']:>9.2g}")
  g = (wide["branches"] / wide["cosine"] - 1) * 100
  lines.append(f"  branch vs cosine: mean {g.mean():+.2f} %, range [{g.min():+.2f}, {g.max():+.2f}] % "
               f"(Hägele: within ~1 %); branch vs separate WSD: max |diff| {np.abs(wide['branches'] - wide['wsd']).max():.2g}")
  lines.append(f"  FLOPs: branches {spent['branches']:.3g} (trunks + cool-downs) vs separate runs {spent['cosine']:.3g}: "
               f"{spent['cosine'] / spent['branches']:.2f}x fewer (Hägele: >= 2x with 4+ budgets per size)")
  names = ("E", "A", "B", "alpha", "beta")
  lines.append("  approach 3 L(N, D) = E + A/N^alpha + B/D^beta, 95 % bootstrap CI:")
  for v in VARIANTS:
    f = fits.get(f"approach3/{v}")
    lines.append(f"    {v:<9} " + (", ".join(f"{k} = {common.ci_text(f, k)}" for k in names) if f
                                   else f"(skipped: {skipped.get(f'approach3/{v}', '?')})"))
  figures = [_figure(df, args.sweep_dir)]
  common.finish(args, fit, lines, figures)
  return fit


if __name__ == "__main__":
  main()
