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

from scaling.sweep import ladders, variants

SCALES, SCHEDULES = ("", "smoke", "full"), ("branches", "wsd", "cosine")
VARIANTS = tuple(scale + v for scale in SCALES for v in ("", *(f",{x}" for x in SCHEDULES)))


def get_config(arg: str = ""):
  scale, _, variant = variants.check(arg, VARIANTS, __file__).partition(",")
  variant = variant or "branches"
  s = ladders.defaults()
  s.name = f"cooldown_{variant}" + (f"_{scale}" if scale else "")
  s.kind = "grid"
  if variant == "branches":
    s.branch, s.cooldown_shape = "cooldown", "1-sqrt"
  # cosine to 10 %, weight decay 0.1 and a cool-down over 20 % are the run defaults
  train = dict(decay_shape="1-sqrt", schedule="cosine" if variant == "cosine" else "wsd")
  if scale == "full":
    s.sizes, s.token_budgets = ladders.logspace(1e7, 1e8, 4), ladders.logspace(1e9, 1.6e10, 5)
    s.rule.warmup_steps = 200
    variants.gpu_scale(s, **train, eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model.pos = "rope"
    return s
  s.rule.lr, s.rule.lr_exponent = 8e-3, 0.0
  if scale == "smoke":
    s.sizes, s.token_budgets = (3e3, 1.2e4), (2560, 5120, 10240)
    s.rule.warmup_steps = 2
    s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
    s.overrides.train = ml_collections.ConfigDict(dict(train, eval_batches=2, log_every=5, peak_flops=1e11))
    s.executor.compile_cache = ""
    return s
  s.sizes, s.token_budgets = (1.2e4, 3e4, 8e4), ladders.logspace(5e5, 4e6, 4)
  s.rule.warmup_steps = 12
  s.overrides.data = ml_collections.ConfigDict(dict(batch_size=16))
  s.overrides.train = ml_collections.ConfigDict(dict(train, eval_batches=16))
  s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))
  return ladders.cpu_pool(s)
