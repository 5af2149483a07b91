"""Encoder-decoder Transformer on T5-style span corruption. `--config=configs/transformer.py:tiny`."""

from scaling import config


def get_config(size: str = "tiny"):
  return config.base("transformer", size)
