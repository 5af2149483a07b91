"""Model families on the embedded stdlib corpus, each a parameter ladder on the same D training tokens,
all in one sweep (cf. Kaplan et al. 2020 Fig. 7, Transformers vs LSTMs). Used by experiments/families.py;
also `scaling sweep --config=configs/sweeps/families_lm.py[:smoke|:full]`.

  gpt          decoder-only Transformer, next-byte loss over 128-byte windows
  transformer  encoder-decoder Transformer on span corruption with 50 % noise, mean span 3 (UL2's
               "X-denoiser", Tay et al. 2022; T5's default is 15 %): the loss is on the decoder's targets
               (sentinels + masked bytes), a different task from next-byte prediction, so compare its
               slope, not its level. At 15 % a 141-byte window becomes 128 encoder + 29 decoder tokens, so
               at the same D (encoder + decoder tokens, 4M) it trains on 0.74M loss tokens to GPT's 4M,
               and every size sat on the same data-starved plateau (measured: 2.42 -> 2.33 from 1e4 to
               1e5 params; GPT after 0.74M tokens is at ~2.3 too). At 50 %: 128 + 129 tokens per
               191-byte window, 2.0M loss tokens; measured 2.92 -> 2.47.
  dnn          fixed-context MLP LM (8 previous bytes, 32-dim embeddings): next-byte loss
  ngram        interpolated Kneser-Ney, orders 1 .. 5 on the same first D training tokens
               (size = stored n-grams)

  ''      4 sizes per neural family, ~3e3 .. 6e4 non-embedding params, D = 4e6 tokens (~1/2 epoch):
          with fewer tokens (2e6) 2-layer GPTs may not get past the ~2.4 nats/byte plateau before
          their cosine decay (configs/sweeps/kaplan.py), and a family comparison would compare seeds.
  'smoke' 3 tiny sizes, 24 steps; n-gram orders 1 .. 3 on the same 6e3 tokens (tests).
  'full'  6 sizes, 3e6 .. 3e8, D = 1e10 tokens, 1024-token context (point data.name at a big corpus).

lr fixed across sizes (configs/sweeps/default.py measured that 1/width leaves the wider tiny GPTs
undertrained in a few hundred steps and the ladder non-monotonic): 8e-3 for both Transformers, 3e-3 for
the MLP; warmup 5 %, cosine to 10 %, weight decay 0.1, batch 32.
"""

import ml_collections

from scaling.sweep import ladders

FAMILIES = ("gpt", "transformer", "dnn", "ngram")
SIZES = {"": (3e3, 1.2e4, 2.8e4, 5.6e4), "smoke": (7e3, 2.8e4, 5.6e4), "full": ladders.logspace(3e6, 3e8, 6)}
LR = {"gpt": 8e-3, "transformer": 8e-3, "dnn": 3e-3}


def _ladder(family: str, scale: str) -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.kind, s.family = "params", family
  s.tokens = {"": int(4e6), "smoke": 24 * 8 * 32, "full": int(1e10)}[scale]
  if family == "ngram":
    s.sizes = ("1", "2", "3") if scale == "smoke" else ("1", "2", "3", "4", "5")
    s.overrides.data = ml_collections.ConfigDict(dict(name="stdlib"))
    return s
  s.sizes = SIZES[scale]
  if family == "transformer" and scale == "":  # 3e3 and 1.2e4 land on the same (smallest) member
    s.sizes = (7e3, 2.8e4, 5.6e4, 8.7e4)
  if family == "dnn":  # widths are continuous: log-spaced targets over the same range
    s.sizes = ladders.logspace(s.sizes[0], s.sizes[-1], len(s.sizes))
  s.rule.lr, s.rule.lr_exponent, s.rule.warmup_frac = LR[family], 0.0, 0.05
  data = dict(name="stdlib", seq_len=128, batch_size=32)
  if family == "transformer":
    data.update(noise_density=0.5, mean_noise_span_length=3.0)
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1, eval_batches=8, log_every=10,
               checkpoint_every=200)
  if scale == "smoke":
    data.update(seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=6, checkpoint_every=0, peak_flops=1e11)  # no peak measurement
  elif scale == "" and family in ("gpt", "transformer"):
    s.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))  # see configs/sweeps/default.py
  elif scale == "full":
    data.update(seq_len=1024, batch_size=256)
    train.update(eval_batches=32, log_every=100, checkpoint_every=2000)
    s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s


def get_config(arg: str = ""):
  scale = arg
  if scale not in SIZES:
    raise ValueError(f"config arg: {arg!r}; allowed: '', 'smoke', 'full'")
  s = ladders.defaults()
  s.name = "families" + (f"_{scale}" if scale else "")
  for fam in FAMILIES:
    s.ladders[fam] = _ladder(fam, scale)
  if scale == "smoke":
    s.executor.compile_cache = ""
  if scale == "":
    ladders.cpu_pool(s)
  if scale == "full":
    ladders.slurm_gpus(s)
  return s
