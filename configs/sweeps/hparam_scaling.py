"""DeepSeek LLM (2024, Sec. 3.1) hyperparameter scaling: at each compute budget C one GPT near its
compute-optimal size, trained for exactly C FLOPs (IsoFLOP accounting) at every (lr, batch size) of a
grid. Used by experiments/hparam_scaling.py; also `scaling sweep --config=configs/sweeps/hparam_scaling.py`.

The size: N* = sqrt(C / (6 r)) with r = `tokens_per_param` = 400, which puts N* on what
experiments/chinchilla_isoflop.py measured on this corpus (N_opt 9.7e3 at 2.5e11 FLOPs: C counts the
embedding and attention FLOPs that 6 N omits, so r here is not D/N); the size grid's rungs are 4x apart
(d16-L1 3.2e3, d32-L1 1.2e4 non-embedding parameters), so each budget gets the nearer one. The grid:
`batch_sizes` (sequences of 64 tokens per step) x `lr_multipliers` around `LR` (the lrs of one batch size
packed into one vmapped step). Budget, size, lr and batch are each run's tags and config;
results.load marks each budget's best (lr, batch) and says when it sits at the grid's edge.

Why these grids (measured 2026-12-02 on the 2-core AMD box, one budget at a time): at C = 8e10 (d32-L1)
batch 8 x 64 tokens beat 32 x 64 at every lr of 0.004 .. 0.032 (best 2.022 vs 2.220 nats/byte); at 3e10
(d16-L1) batch 4 beat 16 at every lr (2.135 vs 2.240); at 1e10 (d16-L1, batch 2 / 4 / 8 x 5 lrs) batch 2
won (2.302 at lr 0.032; 0.064 was worse at every batch size, 2.51-2.59). Short runs of tiny models want
many small steps: the batch grid reaches down to one sequence. DeepSeek's B_opt = 0.292 C^0.327 tokens is
0.5k .. 1.7k over these budgets (above this grid) and lr_opt = 0.3118 C^-0.125 is 0.018 .. 0.012.

  ''      4 budgets 1e10 .. 3e11 FLOPs, batch 1 / 2 / 4 / 8 x 64 tokens, 5 lrs 0.004 .. 0.064: 80 runs in 16
          packed tasks (2 pinned workers), 1.0e5 packed steps; one budget's row of 3 tasks (1e10, batch
          2 / 4 / 8) took 1.9 min wall with other jobs loading the box (load ~7 on 2 cores)
  'smoke' 2 budgets x 2 batch sizes x 2 lrs, 60-240 steps of 32-token windows (tests).
  'full'  5 budgets 1e17 .. 1e19, batch 64 .. 512 x 1024 tokens, 6 lrs, bf16 (GPUs).
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")
LR = 1.6e-2


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()  # warmup 5 %, cosine to 10 %, weight decay 0.1
  s.name = "hparam_scaling" + (f"_{scale}" if scale else "")
  s.kind = "isoflop"
  s.sizes_per_budget, s.spread = 1, 1.0  # one model per budget, at N*
  s.rule.lr, s.rule.lr_exponent = LR, 0.0  # one lr grid for every budget
  s.lr_multipliers = tuple(2.0 ** k for k in range(-2, 3))
  s.batch_sizes = (1, 2, 4, 8)
  seq, model = 64, dict(pos="rope")
  # Held out on 32 x 8 windows (16k tokens) at every batch size (ladders scale eval_batches per member):
  # the same windows for every run, so their differences are not eval-sample noise.
  train = dict(eval_batches=32)
  if scale == "":
    s.budgets, s.tokens_per_param = (1e10, 3e10, 1e11, 3e11), 400.0
    ladders.cpu_pool(s, max_workers=2)
  elif scale == "smoke":
    s.budgets, s.tokens_per_param = (1.5e9, 3e9), 25.0  # N* ~ 3e3 .. 4e3 (the smallest rungs), ~30 steps
    s.lr_multipliers, s.batch_sizes = (0.5, 2.0), (8, 16)
    s.flops_tolerance = 0.25  # a few dozen steps: rounding to whole steps misses C by more than 5 %
    seq = 32
    train.update(eval_batches=2, log_every=5, peak_flops=1e11)
    s.executor.compile_cache = ""
  else:
    s.budgets, seq = (1e17, 3e17, 1e18, 3e18, 1e19), 1024  # r = 20, defaults()'
    s.rule.lr = 1e-3
    s.lr_multipliers = tuple(2.0 ** k for k in range(-2, 4))
    s.batch_sizes = (64, 128, 256, 512)
    model.update(dtype="bfloat16")
    train.update(eval_every=2000, log_every=100, checkpoint_every=2000)
    ladders.slurm_gpus(s)
  s.pack = len(s.lr_multipliers)
  s.overrides.model = ml_collections.ConfigDict(model)
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=seq, batch_size=max(s.batch_sizes)))
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
