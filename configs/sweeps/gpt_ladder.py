"""GPT parameter ladder (Kaplan L(N) / Chinchilla tokens = 20 N): `scaling sweep --config=configs/sweeps/gpt_ladder.py`.

CPU default: 5 sizes, 1.5e4 .. 3e5 non-embedding params (d_model 32..96), tokens = 20 x N on the embedded
stdlib corpus; ~10 min on a laptop-class CPU. `:full` is the real-hardware ladder: 7 sizes, 3e6 .. 1e9
non-embedding params, 1024-token context, batch growing as N^0.5 (256 sequences at 1e8 params); point it at
a big corpus with --config.overrides.data.name=<prepared TFDS dataset> (stdlib is ~13M tokens).

Rule (stated, not tuned): lr = 3e-3 * (128 / d_model) (lr proportional to 1/width), warmup 5 % of each
run's steps, cosine decay to 10 % over exactly the run's steps (Chinchilla: the schedule must match the
token budget).
"""

import ml_collections

from scaling.sweep import ladders


def get_config(arg: str = ""):
  full = arg == "full"
  s = ladders.defaults()
  s.name = "gpt_ladder_full" if full else "gpt_ladder"
  s.kind, s.family = "params", "gpt"
  s.sizes = ladders.logspace(3e6, 1e9, 7) if full else ladders.logspace(1.5e4, 3e5, 5)
  s.param_count = "nonembed"
  s.tokens_per_param = 20.0
  s.seeds = (0,)
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 3e-3, 128, 1.0
  s.rule.warmup_frac = 0.05
  if full:
    s.rule.batch_size, s.rule.batch_params, s.rule.batch_exponent = 256, 1e8, 0.5
    s.rule.batch_min, s.rule.batch_max = 16, 1024
  s.overrides.data = ml_collections.ConfigDict(dict(
      name="stdlib", seq_len=1024 if full else 128, batch_size=256 if full else 32))
  s.overrides.train = ml_collections.ConfigDict(dict(
      schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1, eval_batches=32 if full else 8,
      log_every=50 if full else 10, checkpoint_every=1000 if full else 200))
  s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16" if full else "float32"))
  s.executor.kind = "slurm" if full else "local"
  s.executor.slurm.gpus_per_node = 8 if full else 0
  s.executor.chip = "h100" if full else ""  # the memory rule's target (scaling/train/fit_memory.py)
  s.executor.slurm.timeout_min = 24 * 60
  return s
