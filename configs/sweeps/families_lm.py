"""Model families on the embedded stdlib corpus, each a parameter ladder on the same D training tokens
(cf. Kaplan et al. 2020 Fig. 7, Transformers vs LSTMs). Used by experiments/families.py.

  --config=configs/sweeps/families_lm.py:FAMILY[,smoke|full]

  gpt          decoder-only Transformer, next-byte loss over 128-byte windows
  transformer  encoder-decoder Transformer on T5 span corruption (15 % noise, mean span 3): the loss is
               on the decoder's targets (sentinels + masked bytes), a different task from next-byte
               prediction, so compare its slope, not its level
  dnn          fixed-context MLP LM (8 previous bytes, 32-dim embeddings): next-byte loss
  ngram        interpolated Kneser-Ney, orders 1 .. 5 on the first D training tokens (size = stored n-grams)

  ''      4 sizes per neural family, ~1e4 .. 1.5e5 non-embedding params, D = 1e6 tokens.
  'smoke' 3 tiny sizes, 24 steps; n-gram orders 1 .. 3 on the same 6e3 tokens (tests).
  'full'  6 sizes, 3e6 .. 3e8, D = 1e10 tokens, 1024-token context (point data.name at a big corpus).

Rule (stated, not tuned): lr = 3e-3 * (128 / width) (d_model, or the MLP's width), warmup 5 %, cosine
to 10 %, weight decay 0.1, batch 32.
"""

import ml_collections

from scaling.sweep import ladders

FAMILIES = ("gpt", "transformer", "dnn", "ngram")


def get_config(arg: str = "gpt"):
  family, _, scale = arg.partition(",")
  if family not in FAMILIES or scale not in ("", "smoke", "full"):
    raise ValueError(f"config arg: {arg!r}; allowed: FAMILY[,smoke|full] with FAMILY in {', '.join(FAMILIES)}")
  s = ladders.defaults()
  s.name = f"families_{family}" + (f"_{scale}" if scale else "")
  s.kind, s.family = "params", family
  s.tokens = {"": int(1e6), "smoke": 24 * 8 * 32, "full": int(1e10)}[scale]
  s.executor.compile_cache = "" if scale == "smoke" else "auto"
  if scale == "full":
    s.executor.kind = "slurm"
    s.executor.slurm.gpus_per_node = 8
    s.executor.slurm.timeout_min = 24 * 60
  if family == "ngram":
    s.sizes = ("1", "2", "3") if scale == "smoke" else ("1", "2", "3", "4", "5")
    s.overrides.data = ml_collections.ConfigDict(dict(name="stdlib"))
    return s
  s.sizes = {"": (1.2e4, 2.8e4, 5.6e4, 1.5e5), "smoke": (7e3, 2.8e4, 5.6e4),
             "full": ladders.logspace(3e6, 3e8, 6)}[scale]
  if family == "dnn":  # widths are continuous: log-spaced targets over the same range
    s.sizes = {"": ladders.logspace(1.2e4, 1.5e5, 4), "smoke": (7e3, 2.8e4, 5.6e4),
               "full": ladders.logspace(3e6, 3e8, 6)}[scale]
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 3e-3, 128, 1.0
  s.rule.warmup_frac = 0.05
  data = dict(name="stdlib", seq_len=128, batch_size=32)
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1, eval_batches=8, log_every=10,
               checkpoint_every=200)
  if scale == "smoke":
    data.update(seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=6, checkpoint_every=0, peak_flops=1e11)
  elif scale == "full":
    data.update(seq_len=1024, batch_size=256)
    train.update(eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s
