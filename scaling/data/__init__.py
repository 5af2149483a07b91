"""Data: tokenizers, built-in corpora (TFDS builders), grain pipelines, task batch builders.

  from scaling.data import pipeline, tasks, tokenizer
  pipeline.dataset_info(cfg.data); pipeline.make_loader(cfg.data, split='train', seed=0, ...)
"""
