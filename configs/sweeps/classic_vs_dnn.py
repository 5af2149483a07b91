"""Classic models vs a DNN on scikit-learn digits (10-way classification, held-out log-loss in nats):
one ladder per family and training-set size. Used by experiments/classic_vs_neural.py.

  --config=configs/sweeps/classic_vs_dnn.py:FAMILY[,TRAIN_EXAMPLES][,smoke|full]

FAMILY: svm | tree | forest | logreg (sizes: scaling.baselines.run.CLASSIC_LADDERS, the ladders
`baseline_runs()` builds) or dnn (an MLP ladder, log-spaced in parameters). TRAIN_EXAMPLES: a nested
training subset of that many rows (the data layer's subsets, shared by every family); omitted = all.
The DNN trains for `EPOCHS` passes over its training set (so smaller sets get fewer steps, as one would
train them), lr = 3e-3 * (128 / width) with AdamW, warmup 5 %, cosine to 10 %, decoupled weight decay
1.0: with 1e-4 the wider MLPs overfit the 1.4k rows and their held-out log-loss rose with width (0.17
at 1e4 params, 0.20-0.22 at 3e4-1e5, one seed each); with 1.0 it falls monotonically (0.43 .. 0.079,
seeds within 0.01 at >= 1e4 params). The smallest MLPs pay for it (lr x decay is largest there).

'smoke': DNN 3 tiny sizes x 5 epochs, classic ladders cut to 2 sizes (tests). 'full': the same grid with
a wider DNN ladder (digits is small; point data.name at a prepared TFDS image dataset for more).
"""

import ml_collections

from scaling.baselines import run as baseline_run
from scaling.sweep import ladders

CLASSIC = tuple(baseline_run.CLASSIC_LADDERS)
EPOCHS = {"": 60, "smoke": 5, "full": 100}


def _parse(arg: str) -> tuple[str, int | None, str]:
  parts = [p for p in arg.split(",") if p]
  scale = parts.pop() if parts and parts[-1] in ("smoke", "full") else ""
  if not parts or parts[0] not in CLASSIC + ("dnn",):
    raise ValueError(f"config arg: {arg!r}; allowed: FAMILY[,TRAIN_EXAMPLES][,smoke|full] with FAMILY in "
                     f"{', '.join(CLASSIC + ('dnn',))}")
  n = int(parts[1]) if len(parts) > 1 else None
  return parts[0], n, scale


def num_train(data: dict) -> int:
  """Rows in the full training split (the DNN's epoch length and its train_examples tag)."""
  from scaling.data import pipeline
  info = pipeline.dataset_info(ml_collections.ConfigDict(
      dict(name="digits", task="classify", seq_len=128, batch_size=64, tokenizer="byte", data_dir="") | data))
  return int(info["num_examples"]["train"])


def get_config(arg: str = "dnn"):
  family, n, scale = _parse(arg)
  s = ladders.defaults()
  s.name = f"classic_vs_dnn_{family}_n{n or 'all'}" + (f"_{scale}" if scale else "")
  s.kind, s.family = "params", family
  s.executor.compile_cache = "" if scale == "smoke" else "auto"
  if family != "dnn":
    sizes = baseline_run.CLASSIC_LADDERS[family]
    s.sizes = tuple(sizes[::2] if scale == "smoke" and len(sizes) > 2 else sizes)
    s.tokens = n or 0  # a baseline's budget is data.train_examples (0: all rows)
    return s
  s.task = "classify"
  s.param_count = "total"  # an MLP classifier has no embedding: N is every parameter
  s.sizes = {"": ladders.logspace(1e3, 1e5, 5), "smoke": (1e3, 3e3, 1e4),
             "full": ladders.logspace(1e3, 1e6, 7)}[scale]
  data = dict(name="digits", task="classify", batch_size=64)
  if n:
    data["train_examples"] = n
  rows = n or num_train(data)
  s.tokens = EPOCHS[scale] * rows  # classification budgets count examples
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 3e-3, 128, 1.0
  s.rule.warmup_frac = 0.05
  s.overrides.data = ml_collections.ConfigDict(data)
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=1.0, eval_batches=8, log_every=20)
  if scale == "smoke":
    train.update(peak_flops=1e11)
  s.overrides.train = ml_collections.ConfigDict(train)
  # Neural results carry no training-set size of their own: tag it, as baselines report theirs.
  s.overrides.tags = ml_collections.ConfigDict(dict(train_examples=rows))
  return s
