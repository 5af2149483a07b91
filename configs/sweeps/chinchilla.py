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

from scaling.sweep import ladders


def get_config(arg: str = ""):
  scale = arg
  s = ladders.defaults()
  s.name = "chinchilla" + (f"_{scale}" if scale else "")
  s.kind, s.family = "isoflop", "gpt"
  s.tokens_per_param = 20.0
  s.flops_tolerance = 0.05
  s.rule.lr, s.rule.width, s.rule.lr_exponent = (3e-3, 128, 1.0) if scale == "full" else (8e-3, 128, 0.0)
  s.rule.warmup_frac = 0.05
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1)
  if scale == "full":
    s.budgets = (1e18, 2.5e18, 6e18, 1.5e19, 4e19, 1e20)
    s.sizes_per_budget, s.spread = 9, 4.0
    s.rule.batch_size, s.rule.batch_params, s.rule.batch_exponent = 256, 1e8, 0.5
    s.rule.batch_min, s.rule.batch_max = 16, 1024
    data = dict(name="stdlib", seq_len=1024, batch_size=256)
    train.update(eval_batches=32, eval_every=2000, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
    ladders.slurm_gpus(s)
  elif scale == "smoke":
    s.budgets = (1.5e9, 3e9)
    s.tokens_per_param = 5.0  # N* ~ 1e4 at a budget of a few dozen steps (the grid's smallest rungs)
    s.sizes_per_budget, s.spread = 3, 3.0
    s.flops_tolerance = 0.25  # a handful of steps: rounding to whole steps misses C by more than 5 %
    data = dict(name="stdlib", seq_len=32, batch_size=32)
    train.update(eval_batches=2, log_every=5, peak_flops=1e11)
    s.executor.compile_cache = ""
  elif scale == "":
    # Measured with r = 20, batch 32 and budgets 1.5e11 .. 1.8e12: the smallest size won at every budget
    # but the largest (N* = sqrt(C / 120) sat 3-4x above the optimum: C counts embedding and attention
    # FLOPs that 6N omits, and runs of 28-150 steps had not left the loss plateau), so no IsoFLOP curve
    # had an interior minimum and approach 2 could not be fitted. Approach 1 on those runs put D/N at
    # 50-200: centre the grid on r = 100, and halve the batch so short budgets still get hundreds of steps.
    s.budgets = (2.5e11, 6e11, 1.5e12)
    s.tokens_per_param = 100.0
    s.sizes_per_budget, s.spread = 6, 5.0  # 6 targets over [N*/5, 5 N*] land on 5 distinct rungs per budget
    data = dict(name="stdlib", seq_len=128, batch_size=16)
    train.update(eval_batches=8, eval_every=50, log_every=10, checkpoint_every=200)
    s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
    ladders.cpu_pool(s)
  else:
    raise ValueError(f"config arg: {arg!r}; allowed: '', 'smoke', 'full'")
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
