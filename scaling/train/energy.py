"""Energy: each chip's power for planning (`scaling plan`), and what a run spent (result.json).

A run records `device_seconds` (its wall seconds x the devices its mesh uses, all processes) and, where the
device reports it, `energy_j`: NVML's energy counter (nvmlDeviceGetTotalEnergyConsumption, NVIDIA Volta and
later) read before and after, summed over this process's GPUs (`energy_devices` of them; on a multi-host run
process 0's share only). Needs `pynvml` (pip install nvidia-ml-py); without it, or on CPU / TPU, no
`energy_j` is written: absent, never estimated.
"""

import os

import jax

try:
  import pynvml  # optional (nvidia-ml-py)
except ImportError:  # no NVML bindings: device-seconds only
  pynvml = None

# Board power per device at full load (W) for planning, and where each number comes from. A run's measured
# draw is usually below it (NVML's energy_j says by how much).
POWER_W = {
    "h100": (700.0, "NVIDIA H100 SXM5 datasheet: max thermal design power 700 W"),
    "h200": (700.0, "NVIDIA H200 SXM datasheet: max thermal design power up to 700 W"),
    "a100": (400.0, "NVIDIA A100 SXM4 datasheet: max thermal design power 400 W"),
}
# CPU: the dev box's CPU family's TDP per core, times the cores this process may use.
CPU_W_PER_CORE = (280.0 / 64, "AMD EPYC 7763 TDP 280 W / 64 cores")


def chip_power(chip: str) -> tuple[float | None, str]:
  """(W per device, source) for planning; None where no power is published (TPU v5e): pass --power."""
  if chip == "cpu":
    cores = len(os.sched_getaffinity(0))
    w, src = CPU_W_PER_CORE
    return w * cores, f"{src} x {cores} cores"
  if chip in POWER_W:
    return POWER_W[chip]
  return None, f"no published power for {chip}"


def _nvml_handles(devices) -> list:
  """NVML handles of this process's GPUs among `devices` (jax's ordinal -> CUDA_VISIBLE_DEVICES' entry)."""
  local = [d for d in devices if d.process_index == jax.process_index() and d.platform == "gpu"]
  if pynvml is None or not local:
    return []
  try:
    pynvml.nvmlInit()
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if not visible:
      visible = [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
    handles = []
    for d in local:
      v = visible[d.local_hardware_id]
      handles.append(pynvml.nvmlDeviceGetHandleByIndex(int(v)) if v.isdigit()
                     else pynvml.nvmlDeviceGetHandleByUUID(v))
    for h in handles:  # raises NVMLError_NotSupported on GPUs without the counter
      pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    return handles
  except (pynvml.NVMLError, IndexError, ValueError):
    return []


def _energy_mj(handles) -> list[int]:
  return [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]


class Meter:
  """Started when the run's devices are known; `read(wall_s)` gives result.json's energy fields."""

  def __init__(self, devices, share: int = 1):
    # K packed members share the devices: each is charged 1/K of their time and energy.
    devices = list(devices)
    self.devices, self.share = len(devices), share
    self.handles = _nvml_handles(devices)
    self.start_mj = _energy_mj(self.handles)

  def read(self, wall_s: float) -> dict:
    out = {"device_seconds": wall_s * self.devices / self.share, "devices": self.devices}
    if self.handles:
      try:
        used = [b - a for a, b in zip(self.start_mj, _energy_mj(self.handles))]
        out.update(energy_j=sum(used) / 1000.0 / self.share, energy_devices=len(used))
      except pynvml.NVMLError:  # the counter went away mid-run (driver reset): nothing measured
        pass
    return out
