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

from scaling.sweep import ladders, variants

VARIANTS = ("", "full")


def get_config(arg: str = ""):
  full = variants.check(arg, VARIANTS, __file__) == "full"
  s = ladders.defaults()  # the rule above is defaults()' (lr 3e-3 x 128 / d_model, warmup 5 %, tokens 20 N)
  s.name = "gpt_ladder_full" if full else "gpt_ladder"
  s.sizes = ladders.logspace(3e6, 1e9, 7) if full else ladders.logspace(1.5e4, 3e5, 5)
  s.executor.slurm.timeout_min = 24 * 60
  if not full:
    s.overrides.train = ml_collections.ConfigDict(dict(checkpoint_every=200))
    return s
  s.executor.chip = "h100"  # the memory rule's target (scaling/train/fit_memory.py)
  return variants.gpu_scale(variants.growing_batch(s), eval_batches=32, log_every=50, checkpoint_every=1000)
