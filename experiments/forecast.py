"""Forecast a run before training it, then train it and score the forecast: the loop a ladder exists for.

  python experiments/forecast.py [--sweep_dir=sweeps/forecast] [--smoke]

1. The ladder: make sweep's GPT ladder alone (configs/sweeps/default.py: 5 sizes d16-L1 .. d64-L2, 2 seeds per
   point, 2M tokens each, warmup 20 %), into SWEEP_DIR.
2. The forecast: `scaling.laws.predict.predict` for the smallest member the ladder's size rule builds whose training
   FLOPs are >= 4x the largest run's (same tokens; FLOPs grow slower than N: the vocabulary head and attention do
   not scale with it, so this is ~6x the parameters at these sizes), with its 95 % predictive interval
   (the fit's bootstrap plus the measured seed noise). Appended to SWEEP_DIR/predictions.jsonl.
3. The target: a sweep whose one ladder is that forecast (`forecast='SWEEP_DIR:last'`, 2 seeds), into
   SWEEP_DIR_target; when it completes, the runner scores the ledger line (actual = the seed mean).
Targets (issue 25): the actual inside the interval, and the interval within +-3 % of the loss.
"""

import os
import sys
import time

import ml_collections

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from experiments import common
from scaling.laws import predict
from scaling.sweep import ladders, ledger
from scaling.train import budget

SCALE = 4.0  # the target's training FLOPs over the largest ladder run's (issue 25: >= 4x in compute)


def ladder(smoke: bool):
  s = common.sweep_config("default")
  for k in ("dnn", "ngram"):
    del s.ladders[k]
  if smoke:  # 3 sizes, 1/10 of the tokens: minutes on 2 cores, for the test that keeps this script working
    s.ladders.gpt.sizes, s.ladders.gpt.tokens = (3e3, 1.2e4, 2.8e4), 200_000
  return s


def _member(s, n_target: float):
  t = ml_collections.ConfigDict(s.ladders.gpt.to_dict())
  t.sizes, t.seeds = (float(f"{n_target:.3g}"),), (0,)
  (_, c), = ladders.expand(t)
  return budget.plan(c)


def target_size(s, n_max: float, flops_min: float) -> tuple[float, float]:
  """(non-embedding params, training FLOPs) of the smallest member the size rule builds with >= flops_min."""
  n = n_max
  while True:
    n *= 1.05
    p = _member(s, n)
    if p["flops"] >= flops_min:
      return float(p["params"]["nonembed"]), float(p["flops"])


def main(argv=None):
  args = common.parse_args("forecast", __doc__, argv)
  smoke = args.scale == "smoke"
  t0 = time.time()
  s = ladder(smoke)
  df = common.completed(common.run(args, s))
  n_max, c_max = float(df["params_nonembed"].max()), float(df["flops"].max())
  n_star, c_star = target_size(s, n_max, SCALE * c_max)
  f = predict.predict(args.sweep_dir, N=n_star, family="gpt", n_boot=args.n_boot)
  print(predict.format_forecast(f), flush=True)
  target = ladder(smoke)
  target.name = "forecast_target"
  target.ladders.gpt.sizes, target.ladders.gpt.forecast = (), f"{args.sweep_dir}:{f['index']}"
  common.run(common.Args(**{**args.__dict__, "sweep_dir": args.sweep_dir + "_target"}), target)
  (line,) = [x for x in ledger.score(args.sweep_dir) if x["index"] == f["index"]]
  half = (line["hi"] - line["lo"]) / 2 / line["loss"]
  print(ledger.format_table([line]), end="")
  verdict = ("no run matched the forecast" if line.get("actual") is None else
             f"actual {line['actual']:.4f} vs forecast {line['loss']:.4f} [{line['lo']:.4f}, {line['hi']:.4f}]: "
             f"{'inside' if line['inside'] else 'OUTSIDE'} the 95 % interval, error {100 * line['error']:+.2f} %, "
             f"interval +-{100 * half:.2f} % of the forecast")
  print(f"[forecast] N={n_star:.4g} ({n_star / n_max:.2f}x the largest's parameters, {c_star / c_max:.2f}x its "
        f"FLOPs; >= {SCALE:g}x asked): {verdict}; "
        f"{time.time() - t0:.0f}s in all", flush=True)
  return dict(line, flops_ratio=c_star / c_max, params_ratio=n_star / n_max)


if __name__ == "__main__":
  main()
