"""IsoFLOP grid (Chinchilla approach 2): `scaling sweep --config=configs/sweeps/isoflop.py`.

For each training-FLOP budget C, `sizes_per_budget` GPT sizes log-spaced over [N*/4, 4 N*] around
N* = sqrt(C / (6 * 20)) (the optimum if D = 20 N), each trained for exactly C FLOPs by the exact
accounting (steps = round(C / FLOPs per step); members more than 5 % off are dropped). Fit with
`scaling fit SWEEP_DIR --law=approach2`. Every run is tagged `budget = C`.

CPU default: 3 budgets 3e11 .. 3e12 x 5 sizes (~10 min). `:full`: 6 budgets 1e18 .. 1e20 x 9 sizes.
Rule: lr = 3e-3 * (128 / d_model), warmup 5 %, cosine to 10 % over each run's steps.
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "full")


def get_config(arg: str = ""):
  full = variants.check(arg, VARIANTS, __file__) == "full"
  s = ladders.defaults()  # the rule above, r = 20 and spread 4 are defaults()'
  s.name = "isoflop_full" if full else "isoflop"
  s.kind = "isoflop"
  s.executor.slurm.timeout_min = 24 * 60
  if not full:
    s.budgets = (3e11, 1e12, 3e12)
    s.overrides.train = ml_collections.ConfigDict(dict(checkpoint_every=200))
    return s
  s.budgets, s.sizes_per_budget = (1e18, 2.5e18, 6e18, 1.5e19, 4e19, 1e20), 9
  return variants.gpu_scale(variants.growing_batch(s), eval_batches=32, log_every=50, checkpoint_every=1000)
