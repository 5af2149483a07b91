"""Kneser-Ney n-gram fit speed on the default LM corpus, side by side in one run.

Reference: counting the same n-grams with `collections.Counter` over tuples (what a plain-Python
implementation must do before any smoothing), on the same slice. Then the full training split per
order: fit time, eval time, stored entries, validation nats/token.

  .venv/bin/python benchmarks/ngram_speed.py [--slice 1000000] [--orders 1,2,3,4,5]
"""

import argparse
import collections
import time

from scaling.baselines import ngram, run
from scaling.data import pipeline


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--slice", type=int, default=1_000_000, help="tokens for the side-by-side comparison")
  ap.add_argument("--orders", default="1,2,3,4,5")
  args = ap.parse_args()
  cfg = run.default_config("ngram", 3).data
  V = pipeline.dataset_info(cfg)["vocab_size"]
  train, valid = pipeline.load_tokens(cfg, "train"), pipeline.load_tokens(cfg, "validation")
  print(f"corpus: {len(train):,} train / {len(valid):,} validation tokens, vocab {V}")

  n, part = 3, train[:args.slice]
  t0 = time.perf_counter()
  ngram.fit(part, V, n)
  ours = time.perf_counter() - t0
  t0 = time.perf_counter()
  seq = part.tolist()
  for k in range(1, n + 1):
    collections.Counter(zip(*(seq[i:] for i in range(k))))
  ref = time.perf_counter() - t0
  print(f"n={n} on {len(part):,} tokens: numpy KN fit {ours:.2f}s, Counter counting only {ref:.2f}s, "
        f"ratio ours/reference = {ours / ref:.3f}")

  print("full train split:  n   entries   fit_s  eval_s  valid nats/token")
  for n in (int(x) for x in args.orders.split(",")):
    t0 = time.perf_counter()
    lm = ngram.fit(train, V, n)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss = lm.cross_entropy(valid)
    print(f"{n:20d} {lm.num_params:9,d} {fit_s:7.1f} {time.perf_counter() - t0:7.1f}  {loss:.4f}")


if __name__ == "__main__":
  main()
