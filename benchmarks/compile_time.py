"""Compile seconds of the GPT train step vs depth, layers scanned (`model.scan_layers`) and unrolled.

  python benchmarks/compile_time.py [--depths 2,4,8,16,32,48] [--d_model 128]

The step is the one `scaling train` runs (scaling.train.step's jitted step, AdamW, one device). For each
depth both forms are traced (`.lower`) and compiled (`.compile`) in this one process; the table gives
both times and the unrolled / scanned ratio. Unrolled, XLA sees every layer, so compile time grows with
depth; scanned, it compiles one block inside a loop.
"""

import argparse

import jax

from scaling.models import sizes
from train_step import timed_compile  # benchmarks/ is the script's directory


def compile_seconds(m, batch: int, seq: int) -> tuple[float, float, float]:
  """(state init seconds: its jit compiles too, trace + lower seconds, XLA compile seconds) of a fresh train
  step for model config m."""
  t = timed_compile(m, batch, seq)[1]
  return t["init_s"], t["lower_s"], t["compile_s"]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--depths", default="2,4,8,16,32,48")
  ap.add_argument("--d_model", type=int, default=128)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq", type=int, default=128)
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; GPT d_model {args.d_model}, batch {args.batch} x {args.seq}, "
        f"f32, AdamW; seconds: init = build + compile + run the state init, lower = trace the step, "
        f"compile = XLA compile of the step; ratio = unrolled / scanned (lower + compile)")
  print(f"{'layers':>6} | {'unrolled: init':>14} {'lower':>6} {'compile':>8} | {'scanned: init':>13} {'lower':>6} "
        f"{'compile':>8} | {'ratio':>6}")
  for n in map(int, args.depths.split(",")):
    row = []
    for scan in (False, True):
      m = sizes.gpt_model(args.d_model, n, vocab_size=259, max_len=args.seq, scan_layers=scan)
      jax.clear_caches()  # no reuse of an earlier compile (same shapes differ only in depth anyway)
      row.append(compile_seconds(m, args.batch, args.seq))
    (ui, ul, uc), (si, sl, sc) = row
    print(f"{n:>6} | {ui:>14.1f} {ul:>6.1f} {uc:>8.1f} | {si:>13.1f} {sl:>6.1f} {sc:>8.1f} | "
          f"{(ul + uc) / (sl + sc):>5.2f}x", flush=True)


if __name__ == "__main__":
  main()
