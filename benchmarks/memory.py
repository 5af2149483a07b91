"""XLA's memory analysis of the GPT train step per model size and remat policy (compile only, nothing runs).

  python benchmarks/memory.py [--sizes tiny,small,base,gpt2] [--batch 8] [--seq 1024] [--scan 1]

For each (size, model.remat) the step `scaling train` runs (AdamW, f32 params, one device) is lowered on
abstract state and compiled; `compiled.memory_analysis()` gives argument (state + batch), output, temporary
and peak bytes. Arguments are donated, so peak ~ arguments + temporaries; the activations saved for the
backward are what remat trades against recompute, and they live in the temporaries.
"""

import argparse
import time

import jax

from scaling.models import accounting, sizes, stack
from train_step import jitted_step  # benchmarks/ is the script's directory

GiB = 2 ** 30


def analysis(m, batch: int, seq: int):
  fn, state, b = jitted_step(m, batch, seq, abstract=True)
  t0 = time.perf_counter()
  compiled = fn.lower(state, b).compile()
  return compiled.memory_analysis(), time.perf_counter() - t0


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--sizes", default="tiny,small,base,gpt2")
  ap.add_argument("--remat", default=",".join(stack.REMAT))
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq", type=int, default=1024)
  ap.add_argument("--vocab", type=int, default=50304, help="GPT-2's padded vocabulary")
  ap.add_argument("--scan", type=int, default=1, help="model.scan_layers")
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; batch {args.batch} x {args.seq}, vocab {args.vocab}, f32, AdamW, "
        f"scan_layers={bool(args.scan)}; GiB from compiled.memory_analysis()")
  print(f"{'size':>6} {'params':>8} {'remat':>34} {'argument':>9} {'output':>7} {'temp':>7} {'peak':>7} {'compile s':>9}")
  for size in args.sizes.split(","):
    base = sizes.named("gpt", size)
    for policy in args.remat.split(","):
      m = base.copy_and_resolve_references()
      m.update(vocab_size=args.vocab, max_len=args.seq, scan_layers=bool(args.scan), remat=policy)
      ma, secs = analysis(m, args.batch, args.seq)
      n = accounting.params("gpt", m)["total"]
      print(f"{size:>6} {n / 1e6:>7.1f}M {policy:>34} {ma.argument_size_in_bytes / GiB:>9.3f} "
            f"{ma.output_size_in_bytes / GiB:>7.3f} {ma.temp_size_in_bytes / GiB:>7.3f} "
            f"{ma.peak_memory_in_bytes / GiB:>7.3f} {secs:>9.1f}", flush=True)


if __name__ == "__main__":
  main()
