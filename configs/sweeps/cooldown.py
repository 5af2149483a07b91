"""Cooldown branches vs separate runs (Hägele et al. 2024) on one N x D grid: used by
experiments/cooldown_branches.py; also `scaling sweep --config=configs/sweeps/cooldown.py[:smoke,cosine]`.

arg = '<scale>,<variant>': scale '' | 'smoke' | 'full'; variant
  branches  (default) one constant-lr trunk per size, a 1-sqrt cool-down over the last 20 % of each budget
            branched off it (kind 'grid', branch 'cooldown')
  wsd       the same WSD schedule, every budget a separate run from scratch
  cosine    cosine to 10 % fitted to each budget, every budget a separate run (the usual ladder)

''      3 rope GPTs (~1.2e4, 3e4, 8e4 non-embedding params) x 4 budgets 5e5 .. 4e6 tokens, 16 x 128 tokens
        per step, lr 8e-3 at every size (configs/sweeps/chinchilla.py says why), warmup 12 steps (5 % of
        the shortest budget) in all three variants so that only the schedule after warmup differs.
'smoke' 2 tiny sizes x 3 budgets of 10 .. 40 steps (tests).
'full'  4 sizes 1e7 .. 1e8 x 5 budgets 1e9 .. 1.6e10 tokens, 1024-token context (use a big corpus).
"""

import ml_collections

from scaling.sweep import ladders

VARIANTS = ("branches", "wsd", "cosine")


def get_config(arg: str = ""):
  scale, _, variant = arg.partition(",")
  variant = variant or "branches"
  if variant not in VARIANTS:
    raise ValueError(f"config arg: variant {variant!r}; allowed: {', '.join(VARIANTS)}")
  s = ladders.defaults()
  s.name = f"cooldown_{variant}" + (f"_{scale}" if scale else "")
  s.kind, s.family = "grid", "gpt"
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 8e-3, 128, 0.0
  train = dict(min_lr_ratio=0.1, weight_decay=0.1, decay_frac=0.2, decay_shape="1-sqrt",
               schedule="cosine" if variant == "cosine" else "wsd")
  if scale == "full":
    s.sizes, s.token_budgets = ladders.logspace(1e7, 1e8, 4), ladders.logspace(1e9, 1.6e10, 5)
    s.rule.lr, s.rule.lr_exponent, s.rule.warmup_steps = 3e-3, 1.0, 200
    data = dict(name="stdlib", seq_len=1024, batch_size=256)
    train.update(eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16", pos="rope"))
    ladders.slurm_gpus(s)
  elif scale == "smoke":
    s.sizes, s.token_budgets = (3e3, 1.2e4), (2560, 5120, 10240)
    s.rule.warmup_steps = 2
    data = dict(name="stdlib", seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=5, peak_flops=1e11)
    s.executor.compile_cache = ""
  elif scale == "":
    s.sizes, s.token_budgets = (1.2e4, 3e4, 8e4), ladders.logspace(5e5, 4e6, 4)
    s.rule.warmup_steps = 12
    data = dict(name="stdlib", seq_len=128, batch_size=16)
    train.update(eval_batches=16, log_every=10)
    s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))
    ladders.cpu_pool(s)
  else:
    raise ValueError(f"config arg: scale {scale!r}; allowed: '', 'smoke', 'full'")
  if variant == "branches":
    s.branch, s.cooldown_frac, s.cooldown_shape = "cooldown", 0.2, "1-sqrt"
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
