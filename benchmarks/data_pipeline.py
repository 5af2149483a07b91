"""Is the input pipeline a bottleneck? Pipeline batches/s vs what a GPT train step consumes, one run.

  .venv/bin/python benchmarks/data_pipeline.py [--size nano] [--task lm] [--seq_len 128] [--batch 32]

Prints, measured side by side in this process: the loader alone (grain, with and without its
prefetch thread), the jitted train step alone on a fixed batch (scaling.train.step), and the train
step fed by the loader; ratios > 1 mean the pipeline outruns the consumer.
"""

import argparse
import time

import jax
from ml_collections import ConfigDict

from scaling import config as config_lib
from scaling import models, parallel
from scaling.data import pipeline
from scaling.train import optim
from scaling.train import step as step_lib


def rate(fn, n: int) -> float:
  """Calls per second of fn() over n calls (after one warm-up call)."""
  fn()
  t = time.perf_counter()
  for _ in range(n):
    fn()
  return n / (time.perf_counter() - t)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--size", default="nano")
  ap.add_argument("--task", default="lm", choices=["lm", "span"])
  ap.add_argument("--name", default="stdlib")
  ap.add_argument("--seq_len", type=int, default=128)
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--n", type=int, default=200, help="batches per loader measurement")
  ap.add_argument("--steps", type=int, default=20, help="train steps per step measurement")
  args = ap.parse_args()

  family = "gpt" if args.task == "lm" else "transformer"
  c = config_lib.base(family, args.size, task=args.task)
  c.data.update(name=args.name, seq_len=args.seq_len, batch_size=args.batch)
  c = config_lib.finalize(c)
  info = pipeline.dataset_info(c.data)  # Builds/tokenizes once (cached), outside the timings.

  def loader(threads: int):
    d = ConfigDict({**c.data.to_dict(), "num_threads": threads})
    return iter(pipeline.make_loader(d, split="train", seed=0, shuffle=True, num_epochs=None))

  tokens_per_batch = args.batch * args.seq_len
  results = {}
  for threads in (0, 1):
    it = loader(threads)
    results[f"loader (num_threads={threads})"] = rate(lambda: next(it), args.n)

  mesh = parallel.make_mesh(c.mesh)
  tx, lr_fn = optim.make(c.train, 1000)
  graphdef, state, shardings = step_lib.init_state(family, c.model, 0, tx, mesh, models.build)
  step = step_lib.jit_train_step(step_lib.make_train_step(graphdef, tx, lr_fn, args.task, c.train, mesh),
                                 shardings, mesh, donate=True)
  fixed = parallel.global_batch(next(loader(0)), mesh)
  box = {"state": state}

  def train_fixed():
    box["state"], m = step(box["state"], fixed)
    jax.block_until_ready(m["loss"])

  it = loader(int(pipeline.DEFAULTS["num_threads"]))

  def train_fed():
    box["state"], m = step(box["state"], parallel.global_batch(next(it), mesh))
    jax.block_until_ready(m["loss"])

  step_rate = rate(train_fixed, args.steps)
  fed_rate = rate(train_fed, args.steps)

  print(f"data={args.name} task={args.task} seq_len={args.seq_len} batch={args.batch} "
        f"vocab={info['vocab_size']} | model {family}:{args.size} on {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s)")
  for k, v in results.items():
    print(f"  {k:<28} {v:9.1f} batches/s {v * tokens_per_batch:12,.0f} tokens/s  "
          f"{v / step_rate:7.1f}x the train step")
  print(f"  {'train step, fixed batch':<28} {step_rate:9.1f} batches/s {step_rate * tokens_per_batch:12,.0f} tokens/s")
  print(f"  {'train step, fed by loader':<28} {fed_rate:9.1f} batches/s {fed_rate * tokens_per_batch:12,.0f} tokens/s"
        f"  ({fed_rate / step_rate:.1%} of fixed-batch speed)")


if __name__ == "__main__":
  main()
