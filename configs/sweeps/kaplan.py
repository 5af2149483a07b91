"""Kaplan et al. (2020) L(N) and L(C): a GPT parameter ladder, every size trained on the same tokens D
(Kaplan trains all sizes for the same steps on one large dataset; L(C) is the envelope of the learning
curves). Used by experiments/kaplan_scaling.py; also `scaling sweep --config=configs/sweeps/kaplan.py`.

  ''      CPU default: 6 sizes, 1.2e4 .. 2.3e5 non-embedding params, 4e6 tokens each (~1/2 epoch of the
          embedded stdlib corpus, so the held-out loss is not a memorization artefact), 128-token context.
          Why 4e6 and not 2e6: at 489 steps whether a 2-layer model gets past the ~2.4 nats/byte plateau
          (learning to copy from context) before the cosine decay depends on the seed: d64-L2 ended at
          2.07 (seed 0) or 2.39 (seed 1), and the same seed at 4e6 tokens was at 2.08 by step 489 and
          ended at 1.79, so the 2e6 ladder was non-monotonic noise.
  'smoke' 3 tiny sizes, 24 steps of 8 x 32 tokens (tests).
  'full'  7 sizes, 3e6 .. 1e9 non-embedding params, 1024-token context, 2.6e10 tokens each (Kaplan's
          ~2.5e5 steps of 512 x 1024 would be 1.3e11; point data at a big prepared TFDS corpus with
          --config.overrides.data.name=...; stdlib is ~13M tokens).

lr 8e-3 fixed across sizes (configs/sweeps/default.py found 1/width to leave the wider tiny GPTs
undertrained; Kaplan's own lr also barely changes with N),
warmup 5 %, cosine to 10 % over each run; held-out loss every `eval_every` steps, which the L(C)
envelope is made of. 'full' uses 1/width from 3e-3 at d_model 128 (wide models need the smaller lr).
"""

import ml_collections

from scaling.sweep import ladders


def get_config(arg: str = ""):
  scale = arg
  s = ladders.defaults()
  s.name = "kaplan" + (f"_{scale}" if scale else "")
  s.kind, s.family = "params", "gpt"
  s.param_count = "nonembed"  # Kaplan's N excludes embeddings
  s.rule.lr, s.rule.width, s.rule.lr_exponent = (3e-3, 128, 1.0) if scale == "full" else (8e-3, 128, 0.0)
  s.rule.warmup_frac = 0.05
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1)
  if scale == "full":
    s.sizes = ladders.logspace(3e6, 1e9, 7)
    s.tokens = int(2.6e10)
    data = dict(name="stdlib", seq_len=1024, batch_size=256)
    train.update(eval_every=5000, eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
    ladders.slurm_gpus(s)
  elif scale == "smoke":
    s.sizes = (1.2e4, 2.5e4, 5e4)
    s.tokens = 24 * 8 * 32
    data = dict(name="stdlib", seq_len=32, batch_size=8)
    train.update(eval_every=6, eval_batches=2, log_every=6, peak_flops=1e11)  # no peak measurement
    s.executor.compile_cache = ""
  elif scale == "":
    s.sizes = (1.2e4, 2.8e4, 5.6e4, 1e5, 1.55e5, 2.3e5)  # 6 distinct rungs of sizes.from_params' grid
    s.tokens = int(4e6)  # 977 steps of 32 x 128
    data = dict(name="stdlib", seq_len=128, batch_size=32)
    train.update(eval_every=98, eval_batches=8, log_every=10, checkpoint_every=200)
    s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
    ladders.cpu_pool(s)
  else:
    raise ValueError(f"config arg: {arg!r}; allowed: '', 'smoke', 'full'")
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
