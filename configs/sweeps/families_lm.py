"""Model families on the embedded stdlib corpus, each a parameter ladder on the same D training tokens,
all in one sweep (cf. Kaplan et al. 2020 Fig. 7, Transformers vs LSTMs). Used by experiments/families.py;
also `scaling sweep --config=configs/sweeps/families_lm.py[:smoke|:full]`.

  gpt          decoder-only Transformer, next-byte loss over 128-byte windows
  transformer  encoder-decoder Transformer on prefix LM (Raffel et al. 2020 §3.3): the encoder reads the
               first 64 bytes of each 128-byte window, the decoder predicts the other 64 byte by byte, so
               its loss is next-byte nats like GPT's (scored on the window's second half only, where the
               context is >= 64 bytes; GPT's average includes short contexts). Its D counts encoder +
               decoder tokens, so it has half as many loss tokens. Not span corruption (the family's
               default task): that scores a different quantity, and at T5's 15 % noise a 141-byte window
               gives 29 decoder targets, so every size sat on one data-starved plateau (measured 2.42 ->
               2.33 over 1e4 .. 1e5 params; at 50 % noise 2.92 -> 2.47).
  dnn          fixed-context MLP LM (8 previous bytes, 32-dim embeddings): next-byte loss
  ngram        interpolated Kneser-Ney, orders 1 .. 5 on the same first D training tokens
               (size = stored n-grams)

  ''      4 sizes per neural family, ~3e3 .. 6e4 non-embedding params, D = 4e6 tokens (~1/2 epoch):
          with fewer tokens (2e6) 2-layer GPTs may not get past the ~2.4 nats/byte plateau before
          their cosine decay (configs/sweeps/kaplan.py), and a family comparison would compare seeds.
  'smoke' 3 tiny sizes, 24 steps; n-gram orders 1 .. 3 on the same 6e3 tokens (tests).
  'full'  6 sizes, 3e6 .. 3e8, D = 1e10 tokens, 1024-token context (point data.name at a big corpus).

lr: the Transformers take the better of 8e-3 and 4e-3 per size (lr_multipliers 0.5, 1; the figure uses
each size's lowest held-out loss). One fixed lr left the encoder-decoder ladder non-monotonic: measured
d48 1.797 / 1.870 and d64 1.852 / 1.771 nats at 8e-3 / 4e-3 (the best lr falls with width; a 1/width
rule leaves the wider tiny GPTs undertrained in a few hundred steps, configs/sweeps/default.py). The MLP
3e-3; warmup 5 %, cosine to 10 %, weight decay 0.1, batch 32.
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")
FAMILIES = ("gpt", "transformer", "dnn", "ngram")
SIZES = {"": (3e3, 1.2e4, 2.8e4, 5.6e4), "smoke": (7e3, 2.8e4, 5.6e4), "full": ladders.logspace(3e6, 3e8, 6)}
LR = {"gpt": 8e-3, "transformer": 8e-3, "dnn": 3e-3}


def _ladder(family: str, scale: str) -> ml_collections.ConfigDict:
  s = ladders.defaults()  # warmup 5 %, cosine to 10 %, weight decay 0.1, 32 x 128-byte stdlib windows
  s.family = family
  s.tokens = {"": int(4e6), "smoke": 24 * 8 * 32, "full": int(1e10)}[scale]
  if family == "ngram":
    s.sizes = ("1", "2", "3") if scale == "smoke" else ("1", "2", "3", "4", "5")
    return s
  s.sizes = SIZES[scale]
  if family == "transformer" and scale == "":  # 3e3 and 1.2e4 land on the same (smallest) member
    s.sizes = (7e3, 2.8e4, 5.6e4, 8.7e4)
  if family == "dnn":  # widths are continuous: log-spaced targets over the same range
    s.sizes = ladders.logspace(s.sizes[0], s.sizes[-1], len(s.sizes))
  s.rule.lr, s.rule.lr_exponent = LR[family], 0.0
  if family in ("gpt", "transformer") and scale != "smoke":  # best of two lrs per size (see above)
    s.lr_multipliers = (0.5, 1.0)
  data = dict(task="prefix_lm") if family == "transformer" else {}
  train = dict(checkpoint_every=200)
  if scale == "smoke":
    data.update(seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=6, checkpoint_every=0, peak_flops=1e11)  # no peak measurement
  elif scale == "" and family in ("gpt", "transformer"):
    s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
  elif scale == "full":
    data.update(seq_len=1024, batch_size=256)
    train.update(eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
  if data:
    s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()
  s.name = "families" + (f"_{scale}" if scale else "")
  s.ladders = ml_collections.ConfigDict({fam: _ladder(fam, scale) for fam in FAMILIES})
  if scale == "smoke":
    s.executor.compile_cache = ""
    return s
  return ladders.cpu_pool(s) if scale == "" else ladders.slurm_gpus(s)
