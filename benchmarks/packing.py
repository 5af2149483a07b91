"""Models per hour: K tiny GPTs packed in one vmapped step vs the same K trained one at a time.

  .venv/bin/python benchmarks/packing.py [--d_model 64 --n_layers 2 --seq_len 64 --batch 8 --ks 2,4,8]

Two measurements, side by side in this process:
  step:  steady-state train steps (compiled, warm, synthetic tokens), packed `members.make_step` on K
         models vs `step.make_train_step` on one model: models/hour = 3600 / (steps x seconds per step).
  run:   end to end, what a sweep sees: `loop.train_members` on K configs vs K x `loop.train`, each
         including compile, data, eval and the final checkpoint (--run_steps steps per model).
Ratios > 1 mean packing trains more models per hour.
"""

import argparse
import os
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from scaling import config as config_lib
from scaling import models, parallel
from scaling.train import members
from scaling.train import loop, optim
from scaling.train import step as step_lib


def tiny_config(a, seed: int = 0, lr: float = 3e-3):
  c = config_lib.base("gpt", "nano")
  c.model.d_model, c.model.n_layers, c.model.n_heads, c.model.d_ff = a.d_model, a.n_layers, max(1, a.d_model // 32), 4 * a.d_model
  c.data.seq_len, c.data.batch_size = a.seq_len, a.batch
  c.train.steps, c.train.lr, c.train.progress, c.train.peak_flops = a.run_steps, lr, False, 1e11
  c.train.eval_batches, c.train.log_every, c.seed = 2, 25, seed
  return loop.prepare(c)


def timed(fn, state, args, n: int):
  """(state, seconds per step over n steps)."""
  t = time.perf_counter()
  for _ in range(n):
    state, m = fn(state, *args)
  jax.block_until_ready(m)
  return state, (time.perf_counter() - t) / n


def bench_steps(a, k: int, repeats: int = 7) -> tuple[float, float]:
  c = tiny_config(a)
  mesh = parallel.make_mesh(c.mesh)
  tx, lr_fn = optim.make(c.train, 10_000)
  rng = np.random.default_rng(0)
  tok = rng.integers(0, c.model.vocab_size, (k, a.batch, a.seq_len + 1), dtype=np.int32)
  batch = {"inputs": tok[..., :-1], "targets": tok[..., 1:], "weights": np.ones(tok[..., 1:].shape, np.float32)}
  # One model at a time.
  graphdef, state, sh = step_lib.init_state("gpt", c.model, 0, tx, mesh, models.build)
  single = step_lib.jit_train_step(step_lib.make_train_step(graphdef, tx, lr_fn, "lm", c.train, mesh), sh, mesh)
  one = (parallel.global_batch({n: v[0] for n, v in batch.items()}, mesh),)
  # K packed.
  graphdef, pstate, psh, _ = members.init("gpt", c.model, list(range(k)), tx, mesh)
  step = members.make_step(graphdef, tx, lr_fn, "lm", c.train, mesh, psh)
  kb = (members.stack_batches([{n: v[j] for n, v in batch.items()} for j in range(k)], mesh),
        jnp.ones(k, jnp.float32))
  state, _ = timed(single, state, one, 3)  # compile + warm up
  pstate, _ = timed(step, pstate, kb, 3)
  t1 = tk = float("inf")
  for _ in range(repeats):  # alternate, keep the best of each: both see the same machine load
    state, t = timed(single, state, one, a.steps)
    t1 = min(t1, t)
    pstate, t = timed(step, pstate, kb, a.steps)
    tk = min(tk, t)
  return 3600 / (a.run_steps * t1), 3600 * k / (a.run_steps * tk)


def bench_runs(a, k: int) -> tuple[float, float]:
  root = tempfile.mkdtemp(prefix="packing-bench-")
  try:
    cs = [tiny_config(a, seed=j, lr=3e-3 * 0.7 ** j) for j in range(k)]
    t = time.perf_counter()
    for j, c in enumerate(cs):
      loop.train(c, os.path.join(root, f"single{j}"))
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    loop.train_members(cs, [os.path.join(root, f"packed{j}") for j in range(k)])
    tk = time.perf_counter() - t
    return 3600 * k / t1, 3600 * k / tk
  finally:
    shutil.rmtree(root, ignore_errors=True)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--d_model", type=int, default=32)
  p.add_argument("--n_layers", type=int, default=1)
  p.add_argument("--seq_len", type=int, default=32)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--ks", default="2,4,8")
  p.add_argument("--steps", type=int, default=20, help="timed steady-state steps (best of 7, alternating)")
  p.add_argument("--run_steps", type=int, default=200, help="steps per model (models/hour)")
  p.add_argument("--skip_runs", action="store_true", help="only the steady-state step measurement")
  a = p.parse_args()
  ks = [int(x) for x in a.ks.split(",")]
  print(f"tiny GPT d_model={a.d_model} n_layers={a.n_layers} seq_len={a.seq_len} batch={a.batch}, "
        f"{a.run_steps} steps per model; devices: {jax.device_count()} x {jax.devices()[0].device_kind}")
  print(f"{'K':>3} {'measure':>7} {'one-at-a-time models/h':>24} {'packed models/h':>16} {'ratio':>7}")
  for k in ks:
    one, many = bench_steps(a, k)
    print(f"{k:>3} {'step':>7} {one:>24,.0f} {many:>16,.0f} {many / one:>6.2f}x")
    if not a.skip_runs:
      one, many = bench_runs(a, k)
      print(f"{k:>3} {'run':>7} {one:>24,.0f} {many:>16,.0f} {many / one:>6.2f}x")


if __name__ == "__main__":
  main()
