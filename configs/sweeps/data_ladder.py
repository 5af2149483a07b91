"""Data ladder: one GPT size, log-spaced token budgets (L(D) at fixed N):
`scaling sweep --config=configs/sweeps/data_ladder.py`.

CPU default: d_model 64 / 2 layers (~1e5 non-embedding params), 5 budgets 1e5 .. 1e7 tokens (~6 min).
`:full`: ~1e8 non-embedding params, 1e8 .. 3e10 tokens (use a big corpus: --config.overrides.data.name=...).
Rule: lr = 3e-3 * (128 / d_model), warmup 5 %, cosine to 10 % over each run's steps (so every budget is a
fully annealed run, not a checkpoint of a longer one).
"""

import ml_collections

from scaling.sweep import ladders


def get_config(arg: str = ""):
  full = arg == "full"
  s = ladders.defaults()
  s.name = "data_ladder_full" if full else "data_ladder"
  s.kind, s.family = "data", "gpt"
  s.size = "1e8" if full else "1e5"
  s.token_budgets = ladders.logspace(1e8, 3e10, 6) if full else ladders.logspace(1e5, 1e7, 5)
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 3e-3, 128, 1.0
  s.rule.warmup_frac = 0.05
  s.overrides.data = ml_collections.ConfigDict(dict(
      name="stdlib", seq_len=1024 if full else 128, batch_size=256 if full else 32))
  s.overrides.train = ml_collections.ConfigDict(dict(
      schedule="cosine", min_lr_ratio=0.1, eval_batches=32 if full else 8, log_every=50 if full else 10,
      checkpoint_every=1000 if full else 200))
  s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16" if full else "float32"))
  s.executor.kind = "slurm" if full else "local"
  s.executor.slurm.gpus_per_node = 8 if full else 0
  s.executor.slurm.timeout_min = 24 * 60
  return s
