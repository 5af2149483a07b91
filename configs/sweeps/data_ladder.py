"""Data ladder: one GPT size, log-spaced token budgets (L(D) at fixed N):
`scaling sweep --config=configs/sweeps/data_ladder.py`.

CPU default: d_model 64 / 2 layers (~1e5 non-embedding params), 5 budgets 1e5 .. 1e7 tokens (~6 min).
`:full`: ~1e8 non-embedding params, 1e8 .. 3e10 tokens (use a big corpus: --config.overrides.data.name=...).
Rule: lr = 3e-3 * (128 / d_model), warmup 5 %, cosine to 10 % over each run's steps (so every budget is a
fully annealed run, not a checkpoint of a longer one).
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "full")


def get_config(arg: str = ""):
  full = variants.check(arg, VARIANTS, __file__) == "full"
  s = ladders.defaults()  # the rule above is defaults()'
  s.name = "data_ladder_full" if full else "data_ladder"
  s.kind = "data"
  s.executor.slurm.timeout_min = 24 * 60
  if not full:
    s.size, s.token_budgets = "1e5", ladders.logspace(1e5, 1e7, 5)
    s.overrides.train = ml_collections.ConfigDict(dict(checkpoint_every=200))
    return s
  s.size, s.token_budgets = "1e8", ladders.logspace(1e8, 3e10, 6)
  return variants.gpu_scale(s, eval_batches=32, log_every=50, checkpoint_every=1000)
