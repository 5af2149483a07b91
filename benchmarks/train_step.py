"""Train-step throughput of GPT sizes vs the matmul peak measured in the same run.

  python benchmarks/train_step.py                  # CPU: d_model 128 / 256 / 512, f32
  python benchmarks/train_step.py --gpu [--ablate]  # GPU: ~124M GPT-2 shape, seq 1024, bf16, MFU vs
                                                   # the chip's published bf16 peak and a measured bf16 matmul

Prints tokens/s, model FLOP/s (exact accounting, 3x forward) and the ratio to the peak. The step is
the one `scaling train` runs (scaling.train.step), on one device, with random tokens. Each size also
runs the same model as plain JAX writes it (autodiff backward for the projections and LayerNorm,
jax.nn.dot_product_attention), its steps alternating with ours: the reference for the hand-written
pieces in scaling/models/layers.py (on GPU: cuDNN's fused attention).
"""

import contextlib

import argparse
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from scaling import models, parallel
from scaling.models import accounting, layers, sizes
from scaling.train import metrics, optim
from scaling.train import step as step_lib


def matmul_peak(dtype, n: int) -> float:
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(10):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best


@contextlib.contextmanager
def plain_jax(implementation: str | None = None):
  """The reference: the same model as plain JAX writes it. Autodiff's backward for the projections and
  LayerNorm, jax.nn.dot_product_attention (why ours differ: scaling/models/layers.py)."""
  saved = layers.dense, layers.attention, layers.layer_norm
  layers.dense = lambda x, w: jnp.einsum("...d,df->...f", x, w)
  layers.attention = lambda q, k, v, *, mask_BxLxS=None, is_causal=False: jax.nn.dot_product_attention(
      q, k, v, mask=None if mask_BxLxS is None else mask_BxLxS[:, None], is_causal=is_causal,
      implementation=implementation)
  layers.layer_norm = lambda x, s, b: ((x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(
      jnp.square(x - x.mean(-1, keepdims=True)).mean(-1, keepdims=True) + 1e-5) * s + b)
  try:
    yield
  finally:
    layers.dense, layers.attention, layers.layer_norm = saved


def jitted_step(m: ml_collections.ConfigDict, batch: int, seq: int, abstract: bool = False) -> list:
  """[jitted (not yet compiled) train step as `scaling train` builds it, state, batch] for one device and
  random tokens; `abstract`: state and batch as ShapeDtypeStructs (lower and compile, allocate nothing)."""
  t = ml_collections.ConfigDict(dict(lr=1e-3, schedule="constant", warmup_steps=0, warmup_frac=0.0,
                                     min_lr_ratio=0.1, decay_frac=0.2, grad_clip=1.0, optimizer="adamw",
                                     b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1, decay_embeddings=False,
                                     momentum=0.9, z_loss=0.0, accum_steps=1))
  mesh = parallel.make_mesh(ml_collections.ConfigDict(dict(data=1, fsdp=1, tensor=1)), jax.devices()[:1])
  tx, lr = optim.make(t, 1000)
  if abstract:
    graphdef, state, sh, _ = step_lib.abstract_state("gpt", m, 0, tx, mesh, models.build)
    fn = step_lib.jit_train_step(step_lib.make_train_step(graphdef, tx, lr, "lm", t, mesh), sh, mesh)
    tokens = jax.ShapeDtypeStruct((batch, seq), jnp.int32, sharding=parallel.batch_sharding(mesh))
    return [fn, state, {"inputs": tokens, "targets": tokens,
                        "weights": jax.ShapeDtypeStruct((batch, seq), jnp.float32, sharding=tokens.sharding)}]
  graphdef, state, sh = step_lib.init_state("gpt", m, 0, tx, mesh, models.build)
  fn = step_lib.jit_train_step(step_lib.make_train_step(graphdef, tx, lr, "lm", t, mesh), sh, mesh)
  rng = np.random.default_rng(0)
  x = rng.integers(0, m.vocab_size, (batch, seq + 1)).astype(np.int32)
  b = parallel.global_batch({"inputs": x[:, :-1], "targets": x[:, 1:],
                             "weights": np.ones((batch, seq), np.float32)}, mesh)
  return [fn, state, b]


def timed_compile(m: ml_collections.ConfigDict, batch: int, seq: int) -> tuple[list, dict]:
  """([compiled train step, state, batch], seconds {'init_s': state init (its jit compiles too), 'lower_s':
  trace + lower, 'compile_s': XLA compile}) for one device and random tokens."""
  t0 = time.perf_counter()
  fn, state, b = jitted_step(m, batch, seq)
  jax.block_until_ready(state)
  t1 = time.perf_counter()
  lowered = fn.lower(state, b)
  t2 = time.perf_counter()
  compiled = lowered.compile()
  return [compiled, state, b], {"init_s": t1 - t0, "lower_s": t2 - t1, "compile_s": time.perf_counter() - t2}


def compiled_step(m: ml_collections.ConfigDict, batch: int, seq: int) -> list:
  """[compiled train step, state, batch] for one device and random tokens."""
  return timed_compile(m, batch, seq)[0]


@contextlib.contextmanager
def model_fields(m: ml_collections.ConfigDict, **fields):
  """m with `fields` set while the step is built (e.g. the other model.scan_layers layout)."""
  saved = {k: m[k] for k in fields if k in m}
  m.update(fields)
  try:
    yield
  finally:
    for k in fields:
      if k not in saved:
        del m[k]
    m.update(saved)


def bench(m: ml_collections.ConfigDict, batch: int, seq: int, steps: int, variants=(contextlib.nullcontext,)) -> list:
  """-> [(tokens/s, model FLOP/s)] per variant (a context manager the step is built under; the first is
  ours as shipped), from the median step time. All are compiled first and their steps alternate, so
  drift in the machine's speed hits them alike."""
  runs = []
  for v in variants:
    with v():
      runs.append(compiled_step(m, batch, seq))
  times = [[] for _ in runs]
  for i in range(steps + 1):  # the first round warms up
    for r, ts in zip(runs, times):
      t0 = time.perf_counter()
      r[1], out = r[0](r[1], r[2])
      jax.block_until_ready(out)
      if i:
        ts.append(time.perf_counter() - t0)
  flops = accounting.train_flops("gpt", m, seq) * batch
  return [(batch * seq / np.median(ts), flops / np.median(ts)) for ts in times]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--gpu", action="store_true")
  ap.add_argument("--steps", type=int, default=10)
  ap.add_argument("--batch", type=int, default=8, help="--gpu: sequences of 1024 tokens per step")
  ap.add_argument("--ablate", action="store_true", help="--gpu: also ours with XLA attention and plain JAX "
                  "with cuDNN attention (two more compiles)")
  args = ap.parse_args()
  dev = jax.devices()[0]
  if args.gpu:
    # XLA:GPU compiles this step in ~2 min (H200, jax 0.11.2), so the default is two variants at one batch.
    peak_pub, src = metrics.peak_flops()
    peak_meas = matmul_peak(jnp.bfloat16, 8192)
    m = sizes.gpt_model(768, 12, n_heads=12, vocab_size=50304, max_len=1024, dtype="bfloat16")
    print(f"device: {dev.device_kind}; published peak {peak_pub / 1e12:.0f} TFLOP/s ({src}); "
          f"measured bf16 matmul {peak_meas / 1e12:.0f} TFLOP/s")
    variants = {"ours (cuDNN attention)": contextlib.nullcontext, "plain JAX (jax.nn XLA attention)": plain_jax}
    if args.ablate:  # what each hand-written piece is worth on this chip
      variants |= {"ours, XLA attention": lambda: model_fields(m, attention="xla"),
                   "plain JAX + cuDNN attention": lambda: plain_jax("cudnn")}
    res = bench(m, args.batch, 1024, args.steps, tuple(variants.values()))
    print(f"gpt2-124M ({accounting.params('gpt', m)['total'] / 1e6:.0f}M params), batch {args.batch}, seq 1024, "
          f"bf16 compute (f32 params, AdamW); steps alternate between variants:")
    for name, (tok, fl) in zip(variants, res):
      print(f"  {name:<34} {tok:>9,.0f} tokens/s {fl / 1e12:6.1f} TFLOP/s  MFU {fl / peak_pub:6.1%} (published)"
            f"  {fl / peak_meas:6.1%} of measured matmul  {fl / res[0][1]:5.2f}x ours")
    return
  # This box's matmul rate drifts by +-30 % between minutes (shared VM): each row divides by the larger
  # of two peak measurements taken right before and right after its steps, so the ratio is conservative.
  rows = []
  for d, layers_, batch, seq in [(128, 4, 16, 256), (256, 4, 16, 256), (512, 4, 8, 256)]:
    m = sizes.gpt_model(d, layers_, vocab_size=259, max_len=seq)
    peak0 = matmul_peak(jnp.float32, 1024)
    other = lambda: model_fields(m, scan_layers=not m.scan_layers)
    ours, ref, flip = bench(m, batch, seq, args.steps, (contextlib.nullcontext, plain_jax, other))
    peak = max(peak0, matmul_peak(jnp.float32, 1024))
    rows.append((d, layers_, accounting.params("gpt", m)["total"], batch, seq, *ours, peak, ref[1], flip[1]))
  print(f"device: {dev.device_kind} ({jax.device_count()} device(s)); peak = measured 1024^2 f32 matmul; "
        f"ours = model.scan_layers={sizes.SCAN_LAYERS} (the default), 'other layout' = the opposite")
  print(f"{'d_model':>8} {'layers':>6} {'params':>10} {'batch':>5} {'seq':>4} {'tokens/s':>10} {'GFLOP/s':>8} "
        f"{'peak':>6} {'/peak':>6} {'plain-JAX GFLOP/s':>18} {'speedup':>8} {'other layout':>13} {'ours/other':>10}")
  for d, nl, n, batch, seq, tok, fl, peak, ref, flip in rows:
    print(f"{d:>8} {nl:>6} {n:>10,} {batch:>5} {seq:>4} {tok:>10,.0f} {fl / 1e9:>8.1f} {peak / 1e9:>6.0f} "
          f"{fl / peak:>6.1%} {ref / 1e9:>18.1f} {fl / ref:>7.2f}x {flip / 1e9:>13.1f} {fl / flip:>9.2f}x")

if __name__ == "__main__":
  main()
