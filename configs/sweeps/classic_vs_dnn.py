"""Classic models vs a DNN on scikit-learn digits (10-way classification, held-out log-loss in nats):
every family's size ladder at every training-set size, all in one sweep. Used by
experiments/classic_vs_neural.py; also `scaling sweep --config=configs/sweeps/classic_vs_dnn.py[:smoke|:full]`.

Ladders `<family>_n<rows>` (`_nall`: the whole 1437-row training split):
  svm | tree | forest | logreg  sizes: scaling.baselines.run.CLASSIC_LADDERS x TRAIN_EXAMPLES, the grid
                                `baseline_runs()` builds (its training rows are nested subsets)
  dnn                           an MLP ladder, log-spaced in parameters, on the same subsets
The MLP trains for EPOCHS passes over its training set (smaller sets get fewer steps, as one would
train them), lr = 3e-3 * (128 / width) with AdamW, warmup 5 %, cosine to 10 %, decoupled weight decay
1.0: with 1e-4 the wider MLPs overfit the 1.4k rows and their held-out log-loss rose with width (0.17
at 1e4 params, 0.20-0.22 at 3e4-1e5, one seed each); with 1.0 it falls monotonically (0.43 .. 0.079,
seeds within 0.01 at >= 1e4 params). The smallest MLPs pay for it (lr x decay is largest there).
Neural results carry no training-set size of their own, so each MLP run is tagged `train_examples`.

'smoke': 3 MLP sizes on all rows + the largest on 100 and 400, classic ladders cut to 2 sizes (tests).
'full': the same grid with a wider MLP ladder (digits is small; point data.name at a prepared TFDS
image dataset for more).
"""

import ml_collections

from scaling.baselines import run as baseline_run
from scaling.data import pipeline
from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")
CLASSIC = tuple(baseline_run.CLASSIC_LADDERS)
FAMILIES = CLASSIC + ("dnn",)
EPOCHS = {"": 60, "smoke": 5, "full": 100}
DNN_SIZES = {"": ladders.logspace(1e3, 1e5, 5), "smoke": (1e3, 3e3, 1e4), "full": ladders.logspace(1e3, 1e6, 7)}


def train_examples(scale: str) -> list[int | None]:
  """Training-set sizes (None = all rows): baseline_runs()'s, fewer in the smoke test."""
  return [100, 400, None] if scale == "smoke" else list(baseline_run.TRAIN_EXAMPLES)


def num_train() -> int:
  """Rows in the full training split: an epoch of the full set, and its `train_examples` tag."""
  info = pipeline.dataset_info(ml_collections.ConfigDict(
      dict(name="digits", task="classify", seq_len=128, batch_size=64, tokenizer="byte", data_dir="")))
  return int(info["num_examples"]["train"])


def _ladder(family: str, n: int | None, scale: str) -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.family = family
  if family != "dnn":
    sizes = baseline_run.CLASSIC_LADDERS[family]
    s.sizes = tuple(sizes[::2] if scale == "smoke" and len(sizes) > 2 else sizes)
    s.tokens = n or 0  # a baseline's budget is data.train_examples (0: all rows)
    return s
  s.task = "classify"  # data: digits
  s.param_count = "total"  # an MLP classifier has no embedding: N is every parameter
  s.sizes = DNN_SIZES[scale][-1:] if scale == "smoke" and n else DNN_SIZES[scale]
  rows = n or num_train()
  s.tokens = EPOCHS[scale] * rows  # classification budgets count examples
  # the rule above (3e-3 x 128 / width, warmup 5 %) and cosine to 10 % are defaults()'
  s.overrides.data = ml_collections.ConfigDict(dict(batch_size=64, **({"train_examples": n} if n else {})))
  train = dict(weight_decay=1.0, log_every=20)
  if scale == "smoke":
    train.update(peak_flops=1e11)  # no peak-FLOP/s measurement per run
  s.overrides.train = ml_collections.ConfigDict(train)
  s.overrides.tags = ml_collections.ConfigDict(dict(train_examples=rows))
  return s


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()
  s.name = "classic_vs_dnn" + (f"_{scale}" if scale else "")
  for fam in FAMILIES:
    for n in train_examples(scale):
      s.ladders[f"{fam}_n{n or 'all'}"] = _ladder(fam, n, scale)
  if scale == "smoke":
    s.executor.compile_cache = ""
  return s
