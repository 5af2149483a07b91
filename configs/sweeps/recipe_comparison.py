"""GPT-2 recipe vs the modern one (scaling/models/sizes.py RECIPES) on the embedded stdlib corpus: two GPT
parameter ladders in one sweep, same sizes, same D tokens, same optimizer, each with its own lr. Used by
experiments/recipe_comparison.py, which picks each recipe's lr from the 'lr_grid' sweep first; also
`scaling sweep --config=configs/sweeps/recipe_comparison.py[:smoke]`.

  gpt2    LayerNorm with biases, GELU MLP (d_ff = 4 d), tied embeddings
  modern  RMSNorm without biases, SwiGLU MLP (3 matrices at 2/3 d_ff rounded to 8: the GELU MLP's parameters),
          qk-norm, untied output embedding

Both use rotary positions (configs/sweeps/default.py: with learned positions the 2-3 layer members stay on a
~2.3 nats/byte plateau at 2M tokens, which would make the comparison one of position encodings).

  ''             5 sizes (3e3 .. 1e5 non-embedding params, as make sweep) x 2 seeds per recipe, D = 2e6 tokens
                 (make sweep's), cosine, warmup 20 % (make sweep's: seed spread <= 1 %), lr fixed across sizes
                 (LR below unless the experiment sets rule.lr)
  'short'        the same at D = 5e5 tokens, warmup 5 % (the first measurement: too short for a power law)
  'smoke'        the same 5 sizes x 2 seeds, 24 steps of 8 x 32 tokens (about a minute on 2 cores)
  'lr_grid'      each recipe's middle size (2.8e4) at lr x 0.5, 1, 2 of LR, one seed: the experiment takes the
                 best held-out loss per recipe as that recipe's lr for its whole ladder
  'short_lr_grid', 'smoke_lr_grid'  the same grid at those scales
Members of the same size and seed are packed (pack = 2: both seeds in one vmapped step).
"""

import ml_collections

from scaling.models import sizes
from scaling.sweep import ladders, variants

RECIPES = ("gpt2", "modern")
VARIANTS = ("", "short", "smoke", "lr_grid", "short_lr_grid", "smoke_lr_grid")
SIZES = (3e3, 1.2e4, 2.8e4, 5.6e4, 1e5)  # d16-L1, d32-L1, d48-L1, d48-L2, d64-L2 (as make sweep)
GRID_SIZE = SIZES[2]  # the middle one
# make sweep's 2e6 tokens (489 steps of 32 x 128): at 5e5 (122 steps, 'short') neither ladder was a power law and the
# multiplier came out infinite (docs/recipe_comparison.md).
TOKENS = {"": 2_000_000, "short": 500_000, "smoke": 24 * 8 * 32}
WARMUP = {"": 0.2, "short": 0.05, "smoke": 0.05}
LR = 8e-3  # make sweep's GPT lr: the grid's centre for both recipes
LR_GRID = (0.5, 1.0, 2.0)


def _ladder(recipe: str, scale: str, grid: bool) -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.kind, s.family = "params", "gpt"
  s.sizes = (GRID_SIZE,) if grid else SIZES
  s.seeds = (0,) if grid else (0, 1)
  s.lr_multipliers = LR_GRID if grid else (1.0,)
  s.tokens = TOKENS[scale]
  s.rule.lr, s.rule.lr_exponent, s.rule.warmup_frac = LR, 0.0, WARMUP[scale]
  s.overrides.model = ml_collections.ConfigDict(dict(pos="rope", **sizes.RECIPES[recipe]))
  data = dict(name="stdlib", seq_len=128, batch_size=32)
  train = dict(schedule="cosine", min_lr_ratio=0.1, weight_decay=0.1, eval_batches=16, log_every=20)
  if scale == "smoke":
    data.update(seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=6, peak_flops=1e11)  # no peak measurement
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  return s


def get_config(arg: str = ""):
  arg = variants.check(arg, VARIANTS, __file__)
  grid = arg.endswith("lr_grid")
  scale = arg.removesuffix("lr_grid").removesuffix("_")
  s = ladders.defaults()
  s.name = "recipe_comparison" + (f"_{arg}" if arg else "")
  for recipe in RECIPES:
    s.ladders[recipe] = _ladder(recipe, scale, grid)
  s.pack = len(LR_GRID) if grid else 2
  if scale == "smoke":
    s.executor.compile_cache = ""
  return ladders.cpu_pool(s)
