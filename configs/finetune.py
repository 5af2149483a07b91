"""Fine-tune a GPT on a labelled task: `--config=configs/finetune.py:tiny --config.init_from=RUN_DIR`.

Default task `module_cls` (which top-level stdlib package a snippet comes from) works offline. With
init_from the architecture is the pretrained run's, so the size argument only matters from scratch (the
baseline: leave init_from empty). The optimizer state always starts fresh. Defaults and their reasons:
scaling/train/finetune.py:default_config.
"""

from scaling import config as config_lib


def get_config(size: str = "tiny"):
  return config_lib.finetune_default(size)
