"""DNN (MLP) run config. `--config=configs/dnn.py:tiny` is the fixed-context neural LM on the embedded
corpus; `--config=configs/dnn.py:tiny,classify` classifies scikit-learn digits."""

from scaling import config


def get_config(arg: str = "tiny"):
  size, _, task = arg.partition(",")
  c = config.base("dnn", size, task=task or "lm")
  if task == "classify":
    c.data.batch_size = 64
    c.train.weight_decay = 1e-4
  return c
