"""Data-constrained scaling (Muennighoff et al. 2023, Fig. 3): one GPT size trained on U unique tokens
repeated for 1 .. 16+ epochs, next to a single-epoch N x D grid that fixes the law's approach-3 stage.
Used by experiments/data_constrained.py; also `scaling sweep --config=configs/sweeps/data_constrained.py`.

Two kinds of ladder in one sweep, every budget a cooldown branch (Hägele et al. 2024) off one constant-lr
trunk, so each trunk gives all its budgets for ~1.2x the longest:
  grid        configs/sweeps/cooldown.py's branched N x D grid, unchanged (the same runs as
              experiments/cooldown_branches.py's `branches`): single-epoch runs on the whole training split
              for E, A, B, alpha, beta (stage 1). Its smallest budget gives >= 5 tokens per parameter at
              every size (scaling/laws/data_constrained.py says why single-epoch runs should not be starved).
  unique_<U>  the main size on data.unique_tokens = U, budgets U x EPOCHS (run ids carry `u<U>`): R_D*.
Both share the grid's data (stdlib, 128-token windows, batch 16), lr 8e-3, warmup 12 steps and 1-sqrt
cool-down over the last 20 %, so the two agree. U is a whole number of steps (2048 tokens each), so a
1-epoch budget reads each unique token once and no more.

  ''      grid 3 sizes (1.2e4, 3e4, 8e4 non-embedding) x 4 budgets 5e5 .. 4e6; main size 3e4 on
          U = 1e5, 2e5, 4e5 tokens (x 2048 / 2000) for 1, 2, 4, 8, 16 epochs (and 32 for the smallest U).
          34 runs (6 trunks, 28 branches), 29.7M tokens trained: grid 14.1M (trunks 9.6M + cool-downs
          4.5M), U ladders 15.6M. Measured 2026-12-02 on the 2-core box: the U ladders 12.5 min under
          load ~6 (the grid was the cooldown experiment's, adopted); docs/data_constrained.md has the results.
  'smoke' grid 2 tiny sizes x 3 budgets (cooldown.py's smoke), main size 3e3 on 2 U x 1, 2, 4 epochs (tests).
  'full'  grid 4 sizes 1e7 .. 1e8 x 5 budgets 1e9 .. 1.6e10 (1024-token context), main size ~2.2e7 on
          U = 2^26, 2^28, 2^30 tokens x 1 .. 16 epochs (GPUs; use a corpus of > 1.1e9 training tokens).
"""

import importlib.util
import os

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")
# scale -> (main size, {U: epochs}); U a multiple of the grid's tokens per step.
MAIN = {
    "": ("3e4", {102400: (1, 2, 4, 8, 16, 32), 204800: (1, 2, 4, 8, 16), 409600: (1, 2, 4, 8, 16)}),
    "smoke": ("3e3", {1280: (1, 2, 4), 2560: (1, 2, 4)}),
    "full": ("2.15e7", {2 ** 26: (1, 2, 4, 8, 16), 2 ** 28: (1, 2, 4, 8, 16), 2 ** 30: (1, 2, 4, 8, 16)}),
}


def _cooldown_grid(scale: str) -> ml_collections.ConfigDict:
  """configs/sweeps/cooldown.py's branched grid at this scale (one home for its settings)."""
  spec = importlib.util.spec_from_file_location("cooldown_sweep", os.path.join(os.path.dirname(__file__), "cooldown.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(f"{scale},branches")


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  grid = _cooldown_grid(scale)
  s = ladders.defaults()
  s.name = "data_constrained" + (f"_{scale}" if scale else "")
  s.executor = ml_collections.ConfigDict(grid.executor.to_dict())
  s.ladders.grid = grid
  size, unique = MAIN[scale]
  for u, epochs in unique.items():
    lad = ml_collections.ConfigDict(grid.to_dict())
    lad.kind, lad.size, lad.token_budgets = "data", size, tuple(float(u * e) for e in epochs)
    lad.overrides.data.unique_tokens = u
    s.ladders[f"unique_{u}"] = lad
  return s
