"""Your own family against the GPT baseline: `scaling sweep --config=examples/custom_family/sweep.py`.

Two ladders in one sweep, 3 sizes each (a power law L = E + A C^-alpha has 3 parameters, so `compare` needs
3 points a ladder), on the embedded stdlib corpus at 32-byte windows: ~1 min on 2 CPU cores. The family file
is named once at the top; every process (pool workers, SLURM jobs, `scaling train` of a run dir) imports it
from the run's config.json before looking the family up.
"""

import os

import ml_collections

from scaling.sweep import ladders, variants

FAMILY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "my_family.py")
SIZES = (4e3, 1.6e4, 6.4e4)  # target non-embedding parameters


def _ladder(family: str) -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.family, s.sizes, s.tokens = family, SIZES, 8 * 32 * 120  # 120 steps of 8 x 32 tokens
  s.rule.lr_exponent = 0.0  # one lr (3e-3) for every size: a smoke comparison, not a tuned one
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=4, log_every=20))
  return s


def get_config(arg: str = ""):
  variants.check(arg, ("",), __file__)
  s = ladders.defaults()
  s.name = "custom_family"
  s.family_file = FAMILY_FILE
  s.ladders = ml_collections.ConfigDict({"gpt": _ladder("gpt"), "mixer": _ladder("mixer")})
  s.pack = 2  # members of one shape train in one vmapped step (packed = separate, bitwise)
  s.executor.compile_cache = ""
  return s
