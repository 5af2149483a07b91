"""Fine-tune a GPT on a labelled task: `--config=configs/finetune.py:tiny --config.init_from=RUN_DIR`.

Default task `module_cls` (which top-level stdlib package a snippet comes from) works offline. With
init_from the architecture is the pretrained run's (the size argument only matters from scratch, which
is the baseline: leave init_from empty). The optimizer state always starts fresh; the schedule is a
short warmup then cosine decay at a lower peak rate than pretraining.
"""

from scaling import config


def get_config(size: str = "tiny"):
  c = config.base("gpt", size, task="module_cls")
  c.init_from = ""  # --config.init_from=RUN_DIR (a `scaling train` run of family gpt)
  c.data.name, c.data.seq_len, c.data.batch_size = "stdlib", 128, 32
  t = c.train
  t.steps, t.lr, t.warmup_frac, t.weight_decay = 500, 1e-3, 0.1, 0.01
  # The validation split is ordered by file: score all of it, not the first few batches of one package.
  t.eval_batches = 1_000_000
  return c
