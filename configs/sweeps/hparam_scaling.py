"""DeepSeek LLM (2024, Sec. 3.1) hyperparameter scaling: at each compute budget C one GPT near its
compute-optimal size, trained for exactly C FLOPs (IsoFLOP accounting) at every (lr, batch size) of a
grid. Used by experiments/hparam_scaling.py; also `scaling sweep --config=configs/sweeps/hparam_scaling.py`.

The size: N* = sqrt(C / (6 r)) with r = `tokens_per_param` = 400, which puts N* on what
experiments/chinchilla_isoflop.py measured on this corpus (N_opt 9.7e3 at 2.5e11 FLOPs: C counts the
embedding and attention FLOPs that 6 N omits, so r here is not D/N). The grid: `batch_sizes` (sequences
per step; DeepSeek's B_opt = 0.292 C^0.327 tokens is 0.7k .. 1.7k tokens over these budgets, inside the
grid) x `lr_multipliers` around `LR` (the lrs of one batch size packed into one vmapped step). Budget,
size, lr and batch are the run's tags and config; results.load marks each budget's best (lr, batch).

  ''      3 budgets 2e10 .. 3e11 FLOPs (N* 2.9e3 .. 1.1e4), batch 8 / 16 / 32 x 64 tokens, 4 lrs 2^-1..2^2 x 4e-3,
          36 runs, ~2.1e7 tokens in all (CPU-sized: ~15 min on 2 cores, see experiments/hparam_scaling.py)
  'smoke' 2 budgets x 2 batch sizes x 2 lrs, a few dozen steps each (tests).
  'full'  5 budgets 1e17 .. 1e19, batch 64 .. 512 x 1024 tokens, 6 lrs, bf16 (GPUs).
"""

import ml_collections

from scaling.sweep import ladders

LR = 4e-3


def get_config(arg: str = ""):
  scale = arg
  if scale not in ("", "smoke", "full"):
    raise ValueError(f"config arg: {arg!r}; allowed: '', 'smoke', 'full'")
  s = ladders.defaults()
  s.name = "hparam_scaling" + (f"_{scale}" if scale else "")
  s.kind, s.family = "isoflop", "gpt"
  s.sizes_per_budget, s.spread = 1, 1.0  # one model per budget, at N*
  s.tokens_per_param = 400.0
  s.rule.lr, s.rule.lr_exponent, s.rule.warmup_frac = LR, 0.0, 0.05  # one lr grid for every budget
  s.lr_multipliers = tuple(2.0 ** k for k in range(-1, 3))
  s.batch_sizes = (8, 16, 32)
  seq, model = 64, dict(pos="rope")
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1, eval_batches=8, log_every=10,
               checkpoint_every=0)
  if scale == "":
    s.budgets = (2e10, 8e10, 3e11)
    ladders.cpu_pool(s, max_workers=2)
  elif scale == "smoke":
    s.budgets, s.tokens_per_param = (1.5e9, 3e9), 25.0  # N* ~ 3e3 .. 4e3 (the smallest rungs), ~30 steps
    s.lr_multipliers, s.batch_sizes = (0.5, 2.0), (8, 16)
    s.flops_tolerance = 0.25  # a few dozen steps: rounding to whole steps misses C by more than 5 %
    seq = 32
    train.update(eval_batches=2, log_every=5, peak_flops=1e11)
    s.executor.compile_cache = ""
  else:
    s.budgets = (1e17, 3e17, 1e18, 3e18, 1e19)
    s.tokens_per_param, seq = 20.0, 1024
    s.rule.lr = 1e-3
    s.lr_multipliers = tuple(2.0 ** k for k in range(-2, 4))
    s.batch_sizes = (64, 128, 256, 512)
    model.update(dtype="bfloat16")
    train.update(eval_batches=32, eval_every=2000, log_every=100, checkpoint_every=2000)
    ladders.slurm_gpus(s)
  s.pack = len(s.lr_multipliers)
  s.overrides.model = ml_collections.ConfigDict(model)
  s.overrides.data = ml_collections.ConfigDict(dict(name="stdlib", seq_len=seq, batch_size=s.batch_sizes[0]))
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
