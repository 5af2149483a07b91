"""XLA's memory analysis of the GPT train step per model size and remat policy (compile only, nothing runs).

  python benchmarks/memory.py [--sizes tiny,small,base,gpt2] [--batch 8] [--seq 1024] [--scan 1]

For each (size, model.remat) the step `scaling train` runs (AdamW, f32 params, one device) is lowered on
abstract state and compiled; `compiled.memory_analysis()` gives argument (state + batch), output, temporary
and peak bytes (scaling.train.memory.from_compiled, the run preflight's reader), next to the analytic
estimate from the config alone (scaling.train.memory.analytic: params + grads + Adam moments + the
activations backward keeps under the remat policy). The activations saved for the backward are what remat
trades against recompute; they live in XLA's temporaries.
"""

import argparse
import time

import jax

from scaling import config as config_lib
from scaling.models import accounting, stack
from scaling.train import memory
from train_step import jitted_step  # benchmarks/ is the script's directory

GiB = 2 ** 30


def analysis(c, batch: int, seq: int) -> tuple[dict, dict, float]:
  """(XLA's figures, the analytic estimate, compile seconds) of config c's train step."""
  fn, state, b = jitted_step(c.model, batch, seq, abstract=True)
  t0 = time.perf_counter()
  compiled = fn.lower(state, b).compile()
  secs = time.perf_counter() - t0
  return memory.from_compiled(compiled), memory.analytic(c, {"inputs": (batch, seq)}, n_devices=1), secs


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
  print(f"{'size':>6} {'params':>8} {'remat':>32} | {'XLA: argument':>13} {'temp':>6} {'peak':>6} | "
        f"{'analytic: state':>15} {'activations':>11} {'total':>6} | {'compile s':>9}")
  for size in args.sizes.split(","):
    for policy in args.remat.split(","):
      c = config_lib.base("gpt", size)
      c.model.update(vocab_size=args.vocab, max_len=args.seq, scan_layers=bool(args.scan), remat=policy)
      c.data.update(batch_size=args.batch, seq_len=args.seq)
      c.mesh.update(data=1, num_devices=1)
      xla, est, secs = analysis(c, args.batch, args.seq)
      n = accounting.params("gpt", c.model)["total"]
      print(f"{size:>6} {n / 1e6:>7.1f}M {policy:>32} | {xla['argument'] / GiB:>13.2f} {xla['temp'] / GiB:>6.2f} "
            f"{xla['peak'] / GiB:>6.2f} | {(est['total'] - est['activations']) / GiB:>15.2f} "
            f"{est['activations'] / GiB:>11.2f} {est['total'] / GiB:>6.2f} | {secs:>9.1f}", flush=True)


if __name__ == "__main__":
  main()
