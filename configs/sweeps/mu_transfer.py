"""μTransfer (Yang et al. 2022, Fig. 1): held-out loss vs learning rate for GPTs of growing width, SP and
μP side by side. Used by experiments/mu_transfer.py; also `scaling sweep --config=configs/sweeps/mu_transfer.py`.

One ladder per (parametrization, width): 2 layers, 4 heads (head dim grows with width), d_ff = 4 d_model,
the same lr grid (factors of 2 around `LR`) for every width, packed into one vmapped step per width.
μP members use base_width = the smallest width, so the smallest SP and μP models are the same model.

  ''      widths 16..128 (×8), 7 lrs 2^-2..2^4 x 3e-3, 1.3e5 tokens each (125 steps of 16 x 64) on the
          embedded stdlib corpus; CPU-sized (~10 min on 2 cores).
  'smoke' widths 16..128, 3 lrs, 8 steps (tests).
  'full'  widths 256..2048 (×8), 8 layers, 9 lrs, 2e8 tokens, 512-token windows, bf16 (GPUs).
"""

import ml_collections

from scaling.sweep import ladders, variants

VARIANTS = ("", "smoke", "full")
LR = 3e-3


def get_config(arg: str = ""):
  scale = variants.check(arg, VARIANTS, __file__)
  s = ladders.defaults()
  s.name = "mu_transfer" + (f"_{scale}" if scale else "")
  widths, layers, seq, batch, tokens = (16, 32, 64, 128), 2, 64, 16, 128_000
  mults = tuple(2.0 ** k for k in range(-2, 5))  # 7.5e-4 .. 0.048: brackets both optima at every width (measured)
  model = dict(n_layers=layers, n_heads=4, pos="rope", base_width=widths[0])
  if scale == "smoke":
    seq, batch, tokens, mults = 32, 8, 8 * 8 * 32, (0.5, 1.0, 2.0)
  elif scale == "full":
    widths, seq, batch, tokens = (256, 512, 1024, 2048), 512, 256, 200_000_000
    mults = tuple(2.0 ** k for k in range(-4, 5))
    model.update(n_layers=8, base_width=widths[0], dtype="bfloat16")
  for par in ("sp", "mup"):
    for w in widths:
      lad = ladders.defaults()  # warmup 5 %, cosine to 10 %, weight decay 0.1
      lad.sizes, lad.tokens, lad.lr_multipliers = ("nano",), tokens, mults
      lad.rule.lr, lad.rule.lr_exponent = LR, 0.0  # one lr grid for every width: what transfers?
      lad.overrides.model = ml_collections.ConfigDict(dict(
          model, d_model=w, d_ff=4 * w, max_len=seq, parametrization=par))
      lad.overrides.data = ml_collections.ConfigDict(dict(seq_len=seq, batch_size=batch))
      lad.overrides.train = ml_collections.ConfigDict(dict(eval_batches=16, log_every=25))
      s.ladders[f"{par}_d{w}"] = lad
  s.pack = len(mults)
  return ladders.slurm_gpus(s) if scale == "full" else ladders.cpu_pool(s, max_workers=2)
