"""GPT run config. `--config=configs/gpt.py:tiny` (sizes: scaling/models/sizes.py GPT_SIZES)."""

from scaling import config


def get_config(size: str = "tiny"):
  return config.base("gpt", size)
