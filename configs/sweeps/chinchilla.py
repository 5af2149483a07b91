"""Hoffmann et al. (2022) IsoFLOP grid: for each training-FLOP budget C, GPT sizes log-spaced around
N* = sqrt(C / (6 * 20)), each trained for exactly C FLOPs (exact accounting; steps = round(C / FLOPs
per step)), cosine schedule fitted to each run's length (Chinchilla: the schedule must match the
budget). Used by experiments/chinchilla_isoflop.py; also `scaling sweep --config=configs/sweeps/chinchilla.py`.

  ''      3 budgets 2.5e11 .. 1.5e12 x 5 sizes over [N*/5, 5 N*] around N* = sqrt(C / (6 * 100))
          (targets closer than the size grid collapse to one run), 16 x 128 tokens per step on the
          embedded stdlib corpus; see get_config for why r = 100 and not Chinchilla's 20 here.
  'smoke' 2 budgets x 3 sizes, a few steps each (tests).
  'full'  6 budgets 1e18 .. 1e20 x 9 sizes, 1024-token context, batch growing as N^0.5 (use a big corpus).

lr 8e-3 fixed across sizes at CPU scale (configs/sweeps/default.py measured 1/width to undertrain the
wider tiny GPTs in a few hundred steps), 1/width from 3e-3 at d_model 128 for 'full'; warmup 5 %,
cosine to 10 %, weight decay 0.1.
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()  # warmup 5 %, cosine to 10 %, weight decay 0.1 and 'full''s lr rule are defaults()'
  s.name = "chinchilla" + (f"_{scale}" if scale else "")
  s.kind = "isoflop"
  if scale == "full":
    s.budgets = (1e18, 2.5e18, 6e18, 1.5e19, 4e19, 1e20)
    s.sizes_per_budget = 9
    return variants.gpu_scale(variants.growing_batch(s), eval_batches=32, eval_every=2000, log_every=100,
                              checkpoint_every=2000)
  s.rule.lr, s.rule.lr_exponent = 8e-3, 0.0
  if scale == "smoke":
    s.budgets = (1.5e9, 3e9)
    s.tokens_per_param = 5.0  # N* ~ 1e4 at a budget of a few dozen steps (the grid's smallest rungs)
    s.sizes_per_budget, s.spread = 3, 3.0
    s.flops_tolerance = 0.25  # a handful of steps: rounding to whole steps misses C by more than 5 %
    s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32))
    s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=2, log_every=5, peak_flops=1e11))
    s.executor.compile_cache = ""
    return s
  # Measured with r = 20, batch 32 and budgets 1.5e11 .. 1.8e12: the smallest size won at every budget
  # but the largest (N* = sqrt(C / 120) sat 3-4x above the optimum: C counts embedding and attention
  # FLOPs that 6N omits, and runs of 28-150 steps had not left the loss plateau), so no IsoFLOP curve
  # had an interior minimum and approach 2 could not be fitted. Approach 1 on those runs put D/N at
  # 50-200: centre the grid on r = 100, and halve the batch so short budgets still get hundreds of steps.
  s.budgets = (2.5e11, 6e11, 1.5e12)
  s.tokens_per_param = 100.0
  s.sizes_per_budget, s.spread = 6, 5.0  # 6 targets over [N*/5, 5 N*] land on 5 distinct rungs per budget
  s.overrides.data = ml_collections.ConfigDict(dict(batch_size=16))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_every=50, checkpoint_every=200))
  s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
  return ladders.cpu_pool(s)
