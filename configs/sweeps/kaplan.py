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

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()  # N non-embedding, warmup 5 %, cosine to 10 %, 'full''s lr rule: defaults()'
  s.name = "kaplan" + (f"_{scale}" if scale else "")
  if scale == "full":
    s.sizes = ladders.logspace(3e6, 1e9, 7)
    s.tokens = int(2.6e10)
    return variants.gpu_scale(s, eval_every=5000, eval_batches=32, log_every=100, checkpoint_every=2000)
  s.rule.lr, s.rule.lr_exponent = 8e-3, 0.0
  if scale == "smoke":
    s.sizes = (1.2e4, 2.5e4, 5e4)
    s.tokens = 24 * 8 * 32
    s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
    s.overrides.train = ml_collections.ConfigDict(dict(
        eval_every=6, eval_batches=2, log_every=6, peak_flops=1e11))  # no peak measurement
    s.executor.compile_cache = ""
    return s
  s.sizes = (1.2e4, 2.8e4, 5.6e4, 1e5, 1.55e5, 2.3e5)  # 6 distinct rungs of sizes.from_params' grid
  s.tokens = int(4e6)  # 977 steps of 32 x 128
  s.overrides.train = ml_collections.ConfigDict(dict(eval_every=98, checkpoint_every=200))
  s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
  return ladders.cpu_pool(s)
