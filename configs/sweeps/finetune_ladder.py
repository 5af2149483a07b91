"""Pretrain a GPT ladder, then fine-tune every member on module_cls: does downstream quality scale too?

`scaling sweep --config=configs/sweeps/finetune_ladder.py --sweep_dir=DIR` (stage 1: the ladder in DIR,
an ordinary sweep; stage 2: DIR/finetune, one fine-tune per completed member from its checkpoint plus
the same architecture from scratch). Results: `scaling.sweep.downstream.load(DIR)`; figure:
DIR/figures/downstream.png (fine-tuned accuracy / loss vs pretraining params and vs pretraining loss).

Pretraining: the gpt_ladder rule (lr = 3e-3 * 128 / d_model, tokens = 20 N). Fine-tuning: the same
labelled budget for every size (finetune.overrides.train.steps x batch), peak lr = 0.5 x the member's
pretraining lr (lr_ratio; measured at d64: see config.finetune_default), so bigger members get the smaller rate they were
pretrained with. Headline metric: balanced accuracy on the test split (see scaling/sweep/downstream.py).
"""

import ml_collections

from scaling.sweep import downstream, ladders, variants

VARIANTS = ("",)


def get_config(arg: str = ""):
  variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()  # the gpt_ladder rule is defaults()'
  s.name = "finetune_ladder"
  s.sizes = ladders.logspace(1.5e4, 3e5, 4)
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=32))
  s.finetune = downstream.defaults()
  s.finetune.lr_ratio = 0.5
  s.finetune.overrides.data = ml_collections.ConfigDict(dict(task="module_cls", seq_len=128, batch_size=32))
  s.finetune.overrides.train = ml_collections.ConfigDict(dict(steps=500, log_every=50))
  return s
