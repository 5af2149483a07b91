"""IsoFLOP grid (Chinchilla approach 2): `scaling sweep --config=configs/sweeps/isoflop.py`.

For each training-FLOP budget C, `sizes_per_budget` GPT sizes log-spaced over [N*/4, 4 N*] around
N* = sqrt(C / (6 * 20)) (the optimum if D = 20 N), each trained for exactly C FLOPs by the exact
accounting (steps = round(C / FLOPs per step); members more than 5 % off are dropped). Fit with
`scaling fit SWEEP_DIR --law=approach2`. Every run is tagged `budget = C`.

CPU default: 3 budgets 3e11 .. 3e12 x 5 sizes (~10 min). `:full`: 6 budgets 1e18 .. 1e20 x 9 sizes.
Rule: lr = 3e-3 * (128 / d_model), warmup 5 %, cosine to 10 % over each run's steps.
"""

import ml_collections

from scaling.sweep import ladders


def get_config(arg: str = ""):
  full = arg == "full"
  s = ladders.defaults()
  s.name = "isoflop_full" if full else "isoflop"
  s.kind, s.family = "isoflop", "gpt"
  s.budgets = (1e18, 2.5e18, 6e18, 1.5e19, 4e19, 1e20) if full else (3e11, 1e12, 3e12)
  s.sizes_per_budget = 9 if full else 5
  s.spread = 4.0
  s.tokens_per_param = 20.0
  s.flops_tolerance = 0.05
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 3e-3, 128, 1.0
  s.rule.warmup_frac = 0.05
  if full:
    s.rule.batch_size, s.rule.batch_params, s.rule.batch_exponent = 256, 1e8, 0.5
    s.rule.batch_min, s.rule.batch_max = 16, 1024
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
