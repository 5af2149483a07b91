"""A GPT ladder on a synthetic language whose entropy rate is known exactly (data.name='markov',
scaling/data/markov.py): does the fitted irreducible loss E of L(N) = E + A N^-alpha recover it?
Used by experiments/known_entropy.py; also `scaling sweep --config=configs/sweeps/known_entropy.py`.

The language: a random sparse order-2 Markov chain over 16 symbols (4 successors per context, 1 %
uniform smoothing): H = 1.146 nats/token. Order 2 makes the model learn to look one token back, and
256 contexts x 16 successors make the table big enough that small models cannot hold it (so L(N)
falls over the ladder) while the largest ones get close to the floor. Measured on CPU (1e6 tokens):
over 64 symbols (the data layer's default) an order-2 chain keeps a 1e5-parameter GPT on the unigram
plateau (loss 4.06 of 4.16, H = 1.16); over 16 symbols with learned absolute positions it stays there
too (2.75 of 2.77), while with rotary positions a 2.8e4-parameter GPT is at 1.37 after 6e5 tokens.

  ''      5 sizes, 5e4 .. 3.3e5 non-embedding params (measured with 2 seeds, 1.2e4 and 2.8e4 differed by 7
          and 14 % between seeds: when a small model leaves the unigram plateau is luck, and it swung the
          fitted E from -2 % to -100 % of H; from 5e4 up the seeds agree within 4 %), 3e6 tokens each (< 1 epoch of the 4.2M-token
          train split), 128-token windows (Bayes loss on a window: 1.157, 1 % above H), 2 seeds per size
          packed into one vmapped step (the fit uses each size's seed mean; the experiment also fits each
          seed alone, the spread a CPU's different rounding would show). The two largest sizes sit on
          the floor: they pin E, the smaller ones give the power law its slope.
  'depth2' 7 widths d_model 24 .. 80, all 2 layers (1.4e4 .. 1.5e5), 2 packed seeds, 5e6 tokens each (an
          8.4M-token train split): longer training so the small models leave the plateau on time, one depth
          so the ladder is smooth. Measured 2026-12-02 (docs/known_entropy.md): 28 min, the seeds agree within 2.3 %, but
          every size ends within 6 % of the floor, so E is no better pinned (95 % CI reaches 0).
  'wide'  'depth2' plus d_model 8, 12, 16, 20 (11 widths, 1.6e3 .. 1.5e5): losses from well above the floor down
          to it, the shape experiments/ci_coverage.py found can pin E (run with --reuse_from a depth2 sweep).
  'smoke' 3 tiny sizes, 24 steps (tests).
  'full'  6 sizes, 1e5 .. 3e7, an order-3 chain over 32 symbols (32k contexts: a table the largest
          models can just hold), a 2.7e8-token train split (the builder samples it in memory), 2.5e8
          tokens per run, 512-token windows.

No weight decay: the target is a lookup table, and decay would bias the fitted floor upward.
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full", "depth2", "wide")


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()  # lr 3e-3 x 128 / d_model, warmup 5 %, cosine to 10 %, 32 x 128-token windows
  s.name = "known_entropy" + (f"_{scale}" if scale else "")
  data = dict(name="markov", markov_order=2, markov_symbols=16, markov_branching=4, markov_smoothing=0.01,
              markov_seed=0)
  train = dict(weight_decay=0.0)
  model = dict(pos="rope")
  if scale == "full":
    s.sizes = ladders.logspace(1e5, 3e7, 6)
    s.tokens = int(2.5e8)
    data.update(markov_order=3, markov_symbols=32, markov_train_tokens=1 << 28, markov_eval_tokens=1 << 22,
                seq_len=512, batch_size=256)
    train.update(eval_batches=32, log_every=100, checkpoint_every=2000)
    model.update(dtype="bfloat16")
    ladders.slurm_gpus(s)
  elif scale == "smoke":
    s.sizes = (1.2e4, 2.5e4, 5e4)
    s.tokens = 24 * 8 * 32
    data.update(seq_len=32, batch_size=8)
    train.update(eval_batches=2, log_every=6, peak_flops=1e11)
    s.executor.compile_cache = ""
  else:
    s.seeds, s.pack = (0, 1), 2
    train.update(eval_batches=32, log_every=20, checkpoint_every=200)
    if scale == "":
      s.sizes, s.tokens = (5e4, 1e5, 1.6e5, 2.3e5, 3.3e5), int(3e6)
    else:
      s.tokens = int(5e6)
      data.update(markov_train_tokens=1 << 23)
  s.overrides.data = ml_collections.ConfigDict(data)
  s.overrides.train = ml_collections.ConfigDict(train)
  if scale in ("depth2", "wide"):
    widths = (24, 32, 40, 48, 56, 64, 80) if scale == "depth2" else (8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80)
    s.ladders = ladders.by_width(s, widths, 2, max_len=128, **model)  # from_params would mix depths
  else:
    s.overrides.model = ml_collections.ConfigDict(model)
  return ladders.cpu_pool(s) if scale in ("", "depth2", "wide") else s
