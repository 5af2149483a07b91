"""Compile seconds of the GPT train step vs depth, layers scanned (`model.scan_layers`) and unrolled.

  python benchmarks/compile_time.py [--depths 2,4,8,16,32,48] [--d_model 128]

The step is the one `scaling train` runs (scaling.train.step's jitted step, AdamW, one device). For each
depth both forms are traced (`.lower`) and compiled (`.compile`) in this one process; the table gives
both times and the unrolled / scanned ratio. Unrolled, XLA sees every layer, so compile time grows with
depth; scanned, it compiles one block inside a loop.
"""

import argparse
import time

import jax

from scaling.models import sizes
from train_step import jitted_step  # benchmarks/ is the script's directory


def compile_seconds(m, batch: int, seq: int) -> tuple[float, float]:
  """(trace + lower seconds, XLA compile seconds) of a fresh train step for model config m."""
  fn, state, b = jitted_step(m, batch, seq)
  t0 = time.perf_counter()
  lowered = fn.lower(state, b)
  t1 = time.perf_counter()
  lowered.compile()
  return t1 - t0, time.perf_counter() - t1


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--depths", default="2,4,8,16,32,48")
  ap.add_argument("--d_model", type=int, default=128)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq", type=int, default=128)
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; GPT d_model {args.d_model}, batch {args.batch} x {args.seq}, "
        f"f32, AdamW; seconds = trace+lower / XLA compile")
  print(f"{'layers':>6} {'unrolled lower':>14} {'compile':>8} {'scanned lower':>13} {'compile':>8} "
        f"{'total ratio':>11}")
  for n in map(int, args.depths.split(",")):
    row = []
    for scan in (False, True):
      m = sizes.gpt_model(args.d_model, n, vocab_size=259, max_len=args.seq, scan_layers=scan)
      jax.clear_caches()  # no reuse of an earlier compile (same shapes differ only in depth anyway)
      row.append(compile_seconds(m, args.batch, args.seq))
    (ul, uc), (sl, sc) = row
    print(f"{n:>6} {ul:>14.2f} {uc:>8.2f} {sl:>13.2f} {sc:>8.2f} {(ul + uc) / (sl + sc):>10.2f}x", flush=True)


if __name__ == "__main__":
  main()
