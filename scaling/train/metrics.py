"""Throughput and MFU, and the writers for metrics.jsonl and TensorBoard events."""

import json
import os
import time

import jax
import jax.numpy as jnp

# Published dense bf16 peaks (FLOP/s per chip), matched against jax's device_kind.
PEAK_BF16 = {
    "H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "V100": 125e12,
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12,
    "TPU v5": 459e12,
}
_measured_cpu_peak: float | None = None


def measure_matmul_peak(n: int = 1024, reps: int = 10) -> float:
  """FLOP/s of a jitted f32 n x n matmul on the default device, best of `reps` (the CPU 'peak')."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best


def peak_flops(override: float = 0.0) -> tuple[float, str]:
  """(peak FLOP/s for all local devices together, where the number comes from)."""
  global _measured_cpu_peak
  if override:
    return override, "config"
  d = jax.devices()[0]
  if d.platform != "cpu":
    for k in sorted(PEAK_BF16, key=len, reverse=True):
      if k.lower() in d.device_kind.lower():
        return PEAK_BF16[k] * jax.device_count(), f"published bf16 peak of {d.device_kind}"
  if _measured_cpu_peak is None:
    _measured_cpu_peak = measure_matmul_peak()
  # Fake CPU devices share the same cores: the host's matmul peak is the peak of all of them.
  return _measured_cpu_peak, "measured f32 matmul peak of this host"


class Writer:
  """metrics.jsonl (append, one JSON object per line) + TensorBoard events, process 0 only."""

  def __init__(self, workdir: str, enabled: bool = True, tensorboard: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.tb = None
    if enabled and tensorboard:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(os.path.join(workdir, "tb"), flush_secs=30)

  def truncate_after(self, step: int) -> None:
    """On resume: drop rows logged after the checkpoint so no step appears twice."""
    if not (self.enabled and os.path.exists(self.path)):
      return
    from scaling import io
    rows = [r for r in io.read_jsonl(self.path) if r.get("step", 0) <= step]
    io.atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))

  def rows(self) -> list[dict]:
    from scaling import io
    return io.read_jsonl(self.path) if self.enabled else []

  def write(self, row: dict) -> None:
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if self.tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)):
          self.tb.add_scalar(k, v, row["step"])

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()
