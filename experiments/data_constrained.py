"""Muennighoff et al. (2023), "Scaling Data-Constrained Language Models": what a repeated token is worth.

  python experiments/data_constrained.py [--sweep_dir=sweeps/data_constrained] [--smoke] [--full]

One sweep (configs/sweeps/data_constrained.py), every budget a cooldown branch off a constant-lr trunk:
a single-epoch N x D grid on the whole training split (configs/sweeps/cooldown.py's 3 sizes x 4 budgets)
and the main size (~3e4 non-embedding parameters) on U unique tokens (data.unique_tokens, 3 values) for
1, 2, 4, 8, 16 (32) epochs. Fits their law (scaling/laws/data_constrained.py; 95 % bootstrap intervals)

  L(N, D, U) = E + A / N'^alpha + B / D'^beta,  D' = U + U R_D* (1 - exp(-R_D / R_D*)),  R_D = D / U - 1

(approach 3 on the single-epoch runs, then R_D*, and R_N* for runs with more parameters than U tokens can
use) and prints R_D* next to the paper's 15.4, the epochs at which a repeated token is worth half and a tenth
of a fresh one, where more epochs stopped lowering the measured loss, and the loss per (U, epochs) next to
the law's. The figure is their Fig. 3's: held-out loss vs tokens coloured by epochs, one marker per U with
the law's curve, and the law for all-unique tokens as the reference.

Scale: the paper fitted R_D* = 15.4 and R_N* = 5.3 on models of 10M-9B parameters trained on up to 900B
tokens; here 1e4-1e5 parameters and 1e5-7e6 bytes of Python source, so what is measured is printed, not
assumed.
"""

import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import data_constrained as dc
from scaling.laws import fit as fit_lib

MUENNIGHOFF = {"R_D_star": 15.4, "R_N_star": 5.3, "scale": "10M-9B parameters, up to 900B tokens"}
KEY = "data_constrained/gpt"


def _repeated(df: pd.DataFrame) -> pd.DataFrame:
  """The main size's runs on data.unique_tokens, with U and epochs = D / U (what the law reads)."""
  d = df[pd.to_numeric(df["data.unique_tokens"], errors="coerce").fillna(0) > 0].copy()
  d["U"] = d["unique_tokens"].astype(float)
  d["epochs"] = d["tokens"] / d["U"]
  return d.sort_values(["U", "epochs"]).reset_index(drop=True)


def _table(rep: pd.DataFrame, f: dict | None) -> pd.DataFrame:
  """Loss per (U, epochs), the law's prediction and the law's all-unique loss at the same tokens."""
  t = rep[["U", "epochs", "tokens", "params_nonembed", "eval_loss"]].copy()
  if f is not None:
    N, D = t["params_nonembed"].to_numpy(float), t["tokens"].to_numpy(float)
    t["law"] = dc.predict(f, N, D, t["U"].to_numpy(float))
    t["law_unique"] = dc.predict(f, N, D, np.zeros(len(t)))
  return t


def _epochs_at_worth(r_star: float, worth: float) -> float:
  """Epochs at which the next repeated token is worth `worth` of a fresh one: exp(-R / R*) = worth."""
  return 1 + r_star * np.log(1 / worth)


def _figure(df: pd.DataFrame, t: pd.DataFrame, f: dict | None, sweep_dir: str) -> str:
  import matplotlib
  import matplotlib.ticker
  from scaling.laws import plot
  fig, (ax, gap) = plot._figure(ncols=2, width=6.2, height=4.8)
  norm = matplotlib.colors.LogNorm(1, max(2.0, t["epochs"].max()))
  cmap = matplotlib.colormaps["plasma"]
  markers = dict(zip(sorted(t["U"].unique()), "osD^v"))
  N = float(t["params_nonembed"].iloc[0])
  # The same size on the whole split (single epoch): stage 1's points at this N.
  whole = df[(df["params_nonembed"] == N) & (pd.to_numeric(df["data.unique_tokens"], errors="coerce").fillna(0) == 0)]
  if len(whole):
    ax.plot(whole["tokens"], whole["eval_loss"], "o", mfc="none", mec="k", ms=8, ls="none",
            label="whole split, 1 epoch or less")
  lo, hi = t["tokens"].min() / 1.3, t["tokens"].max() * 1.3
  if f is not None:
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, dc.predict(f, np.full_like(xs, N), xs, np.zeros_like(xs)), "k-", lw=1.6,
            label="law, all tokens unique")
  for u, m in markers.items():
    d = t[t["U"] == u]
    ax.plot(d["tokens"], d["eval_loss"], color="0.6", lw=0.8, zorder=1)
    ax.scatter(d["tokens"], d["eval_loss"], c=d["epochs"], cmap=cmap, norm=norm, marker=m, s=55, edgecolors="k",
               linewidths=0.6, zorder=3)
    for a, text in ((ax, f"U = {u:.3g} unique tokens"), (gap, f"U = {u:.3g}")):  # legend entries in no epoch's colour
      a.scatter([], [], marker=m, s=55, facecolors="0.85", edgecolors="k", linewidths=0.6, label=text)
    if f is not None:
      xs = np.geomspace(u, hi, 100)
      ax.plot(xs, dc.predict(f, np.full_like(xs, N), xs, np.full_like(xs, u)), color="0.35", ls="--", lw=1.1, zorder=2)
      xs = np.geomspace(u, u * d["epochs"].max() * 1.3, 100)
      gap.plot(xs / u, dc.predict(f, N, xs, u) - dc.predict(f, N, xs, 0), color="0.35", ls="--", lw=1.1, zorder=2)
      gap.scatter(d["epochs"], d["eval_loss"] - d["law_unique"], c=d["epochs"], cmap=cmap, norm=norm, marker=m, s=55,
                  edgecolors="k", linewidths=0.6, zorder=3)
  if f is not None:
    ax.plot([], [], color="0.35", ls="--", label="law, repeating U (one curve per U)")
  ax.set(xscale="log", xlabel="training tokens D (bytes)", ylabel="held-out loss (nats / byte)",
         title=f"Loss vs tokens, coloured by epochs (GPT, N = {N:.3g} non-embedding)")
  common.fit_ylim(ax, np.concatenate([t["eval_loss"], whole["eval_loss"]]), pad=1.06)
  ax.legend(fontsize=7, loc="upper right")
  bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=[ax, gap], pad=0.01)
  ticks = 2.0 ** np.arange(0, np.log2(norm.vmax) + 1)
  bar.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
  bar.minorticks_off()
  bar.set_label("epochs over the U unique tokens (D / U)")
  if f is not None:
    gap.axhline(0, color="k", lw=0.8)
    gap.set(xscale="log", xlabel="epochs D / U", ylabel="loss minus the all-unique law at the same D (nats / byte)",
            title=f"Cost of repeating (fitted R_D* = {common.ci_text(f, 'R_D_star', 2)}; paper 15.4)")
    gap.set_xticks(ticks, labels=[f"{v:g}" for v in ticks])
    gap.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    gap.legend(fontsize=7, loc="upper left")
  else:
    gap.set_axis_off()
  return common.save_figure(fig, sweep_dir, "data_constrained")


def _report(t: pd.DataFrame, f: dict | None, skipped: dict) -> list[str]:
  lines = [f"Data-constrained GPT (Muennighoff et al. 2023): N = {t['params_nonembed'].iloc[0]:.3g} non-embedding "
           f"params, U = {', '.join(f'{u:.3g}' for u in sorted(t['U'].unique()))} unique tokens, "
           f"{t['epochs'].min():.3g} .. {t['epochs'].max():.3g} epochs; held-out nats/byte"]
  if f is None:
    return lines + [f"  law not fitted: {skipped.get(KEY, '?')}"]
  p = f["params"]
  lo, hi = f["ci"].get("R_D_star", [np.nan, np.nan])
  lines.append(f"  R_D* = {common.ci_text(f, 'R_D_star')} (paper: 15.4, on {MUENNIGHOFF['scale']}; here 1e4-1e5 "
               f"params and 1e5-7e6 bytes, so the value need not carry over)")
  if "R_N_star" in p:
    lines.append(f"  R_N* = {common.ci_text(f, 'R_N_star')} (paper: 5.3): the main size exceeds N_opt(U) "
                 f"= {dc.unique_params(t['U'].min(), p):.3g} .. {dc.unique_params(t['U'].max(), p):.3g} params")
  at = {w: [_epochs_at_worth(v, w) for v in (p["R_D_star"], lo, hi)] for w in (0.5, 0.1)}
  paper = {w: _epochs_at_worth(MUENNIGHOFF["R_D_star"], w) for w in at}
  lines.append("  where repeating stops paying (law): a repeated token is worth exp(-R_D / R_D*) of a fresh one, "
               f"half at epoch {at[0.5][0]:.3g} [{at[0.5][1]:.3g}, {at[0.5][2]:.3g}], a tenth at epoch {at[0.1][0]:.3g} "
               f"[{at[0.1][1]:.3g}, {at[0.1][2]:.3g}] (paper: {paper[0.5]:.3g} and {paper[0.1]:.3g}); any number of "
               f"epochs is worth at most (1 + R_D*) U = {1 + p['R_D_star']:.3g} U fresh tokens")
  lines.append(f"  {'U':>9} {'epochs':>6} {'D':>9} {'loss':>7} {'law':>7} {'law/loss-1':>11} {'unique':>7} {'repeat cost':>11}")
  for _, r in t.iterrows():
    lines.append(f"  {r['U']:>9.3g} {r['epochs']:>6.3g} {r['tokens']:>9.3g} {r['eval_loss']:>7.4f} {r['law']:>7.4f} "
                 f"{(r['law'] / r['eval_loss'] - 1) * 100:>10.2f}% {r['law_unique']:>7.4f} "
                 f"{r['eval_loss'] - r['law_unique']:>+11.4f}")
  for u, d in t.groupby("U"):
    best = d.loc[d["eval_loss"].idxmin()]
    more = "" if best["epochs"] == d["epochs"].max() else \
        f"; {d['epochs'].max():.3g} epochs: {d['eval_loss'].iloc[-1] - best['eval_loss']:+.4f}"
    lines.append(f"  U = {u:.3g}: lowest measured loss at {best['epochs']:.3g} epochs ({best['eval_loss']:.4f}{more})")
  res = (t["law"] / t["eval_loss"] - 1) * 100
  lines.append(f"  law vs measured on the repeated runs: mean |error| {res.abs().mean():.2f} %, max {res.abs().max():.2f} %"
               f"; stage 1 (approach 3) on {f['stage1']['n']} single-epoch runs, stage 2 on {f['n']} runs")
  lines += [f"  note: {n}" for n in f.get("notes", [])]
  return lines


def main(argv=None) -> dict:
  args = common.parse_args("data_constrained", __doc__, argv)
  df = common.completed(common.run(args, common.sweep_config("data_constrained", args.scale)))
  out = fit_lib.fit_frame(df, law="data_constrained", n_boot=args.n_boot)  # each point's best run, every family
  for k, why in out["skipped"].items():
    print(f"skipped {k}: {why}", flush=True)
  f = out["fits"].get(KEY)
  t = _table(_repeated(df), f)
  fit = common.write_fit(args.sweep_dir, df, out["fits"], law="data_constrained", n_boot=args.n_boot,
                         skipped=out["skipped"], reference={"muennighoff2023": MUENNIGHOFF},
                         table=t.to_dict(orient="records"))
  figures = [_figure(df, t, f, args.sweep_dir)]
  common.finish(args, fit, _report(t, f, out["skipped"]), figures)
  return fit


if __name__ == "__main__":
  main()
