"""The `make sweep` ladder: GPT (5 sizes) + DNN-LM (3 sizes) + n-gram (n = 1..5) on the embedded corpus.

Every neural member sees the same 2M tokens (Kaplan-style L(N) at fixed data; the stdlib corpus has ~8M
training tokens, so this is ~1/4 epoch and the larger members are far from converged) with a cosine
schedule sized to the run: lr 8e-3 for GPT and 3e-3 for the DNN, fixed across sizes, warmup 20 % (GPT, 2 seeds
per point, packed) and 5 % (DNN). The
n-gram models count the whole training split. Sized for minutes on 2 CPU cores; docs/make_sweep.md has the
measured time and losses.

GPT uses rotary positions. Measured at 2M tokens (489 steps) with learned absolute positions, the 2- and
3-layer members were still on the ~2.3 nats/byte plateau (before attention learns to look back / copy)
when the cosine schedule ended (d64-L2 2.31, d80-L3 2.23 vs d48-L2 2.08: not monotonic); with rope the
same ladder fell monotonically to 1.71. Runs go two at a time, each pinned to one core (tiny steps do not
use two cores well: two pinned runs train 1.35x the tokens/s of one unpinned), biggest first."""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "lrgrid", "depth2")


def _neural(family: str, sizes) -> ml_collections.ConfigDict:
  s = ladders.defaults()  # warmup 5 %, cosine to 10 %, weight decay 0.1, 32 x 128-byte stdlib windows
  s.family, s.sizes, s.tokens = family, sizes, 2_000_000
  # A fixed lr for both: with 1/width the wider GPTs were too slow to train in 489 steps and the ladder came
  # out non-monotonic (measured: d64-L2 at 6e-3 worse than d48-L2 at 8e-3); it overshoots for the narrowest MLPs.
  s.rule.lr_exponent = 0.0
  # Held-out loss at 8 points of each run as well (same windows as the final eval): the curves the compute
  # figure and approach 1 use, instead of single training batches.
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=16, log_every=20, curve_points=8))
  return s


def get_config(arg: str = ""):
  arg = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()
  s.name = "default"
  # 5 distinct rungs of from_params' grid, d16-L1 .. d64-L2 (a d80-L3 rung would double the wall time).
  s.ladders.gpt = _neural("gpt", (3e3, 1.2e4, 2.8e4, 5.6e4, 1e5))
  s.ladders.gpt.rule.lr = 8e-3
  # Two seeds per point (packed: one vmapped step trains both) and warmup 20 % of each run. Measured with 3
  # seeds (docs/seed_noise.md): at warmup 5 % the seed spread reached 7.2 % (std/mean, d64-L2); at 20 % it
  # is <= 0.67 % at every size and every seed's loss is lower.
  s.ladders.gpt.seeds, s.ladders.gpt.rule.warmup_frac = (0, 1), 0.2
  s.pack = 2
  s.ladders.gpt.overrides.model = ml_collections.ConfigDict(dict(pos="rope"))
  s.ladders.dnn = _neural("dnn", ladders.logspace(1e4, 1.6e5, 3))  # lr 3e-3, defaults()'
  ngram = ladders.defaults()
  ngram.family, ngram.sizes = "ngram", ("1", "2", "3", "4", "5")
  s.ladders.ngram = ngram
  if arg == "lrgrid":
    # The GPT ladder alone at lr x 0.25, 0.5, 1, 2 (2e-3 .. 1.6e-2), packed per size: is 8e-3 each size's
    # optimum? Measured (docs/make_sweep.md): yes at the three largest (bracketed), 1.6e-2 (the grid's top)
    # at the two smallest; fitted on the best per size, the law was no tighter and extrapolated worse, so
    # make sweep keeps 8e-3.
    s.name = "default_lrgrid"
    for k in ("dnn", "ngram"):
      del s.ladders[k]
    s.ladders.gpt.lr_multipliers, s.pack = (0.25, 0.5, 1.0, 2.0), 4
    s.ladders.gpt.seeds, s.ladders.gpt.rule.warmup_frac = (0,), 0.05  # as measured
  if arg == "depth2":
    # Every GPT 2 layers deep (d_model 16, 32, 48, 64, 80; the ladder above mixes 1- and 2-layer members),
    # everything else as make sweep: does one depth give a cleaner L(N)? Measured in docs/make_sweep.md.
    s.name = "default_depth2"
    s.ladders.gpt.seeds, s.ladders.gpt.rule.warmup_frac, s.pack = (0,), 0.05, 1  # as measured
    s.ladders = ladders.by_width(s.ladders.gpt, (16, 32, 48, 64, 80), 2, pos="rope", max_len=128)
  return ladders.cpu_pool(s)
