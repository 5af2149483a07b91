"""Classic baselines: `--config=configs/baseline.py:tree,64` (family,size): svm,256 | svm,exact | tree,64 |
forest,16x64 | logreg,1 | ngram,5 | ngram,5-min2 (see scaling/baselines/run.py)."""

from scaling.baselines import run

DEFAULT_SIZE = {"svm": "256", "tree": "64", "forest": "16x64", "logreg": "1", "ngram": "3"}


def get_config(arg: str = "tree,64"):
  family, _, size = arg.partition(",")
  if family not in DEFAULT_SIZE:
    raise ValueError(f"family: unknown {family!r}; allowed: {', '.join(DEFAULT_SIZE)}")
  return run.default_config(family, size or DEFAULT_SIZE[family])
