"""`scaling plan --config=configs/sweeps/X.py[:arg] [--chip=...] [--mfu=F] [--pue --price --grid --power]`: a
sweep's budget before it runs.

Every run's id, parameters, tokens, FLOPs (the loop's own accounting, `ladders.plan`), steps, batch, memory
per device, the memory rule's setting for the chip (scaling/train/fit_memory.py: remat / accum_steps / fsdp,
the cheapest that fits), its time at an assumed MFU, device-hours, energy, cost and CO2e, with totals.
Nothing is compiled and no model is built: `ladders.expand` finalizes the configs from the dataset's metadata
(the corpus is built on first use, as the sweep itself would) and the rest is arithmetic.

Time = FLOPs x the remat policy's recompute (fit_memory.REMAT_COST: 4/3 for 'block') / (devices x peak x
MFU). Peaks are the published dense bf16 ones (scaling/train/metrics.py PEAK_BF16); `cpu` measures this
host's f32 matmul peak (one small jitted matmul). Devices per run: the sweep's SLURM allocation
(gpus_per_node x nodes) when its executor is slurm, else 1.
Energy (kWh) = device-hours x the chip's power (scaling/train/energy.py POWER_W) x PUE; cost = device-hours x
price per device-hour; CO2e = kWh x the grid's carbon intensity. What a run then spent is in its result.json
(device_seconds, and energy_j where NVML reports it), so `results.load` checks the plan.
"""

import dataclasses
import math

import ml_collections
import pandas as pd

from scaling.sweep import ladders, status
from scaling.train import budget as budget_lib
from scaling.train import energy, fit_memory, memory, metrics, progress
from scaling import errors
from scaling.models import registry

# --chip -> the key of metrics.PEAK_BF16 (None: measured on this host).
CHIPS = {"h100": "H100", "h200": "H200", "a100": "A100", "v5e": "TPU v5e", "cpu": None}
# Default MFU per chip, and where it comes from (benchmarks/RESULTS.md where measured).
DEFAULT_MFU = {
    "h200": (0.336, "measured: GPT-2 124M bf16 train step on an H200, benchmarks/RESULTS.md"),
    "h100": (0.336, "the H200's measured 33.6 % (same compute units and bf16 peak; not measured on an H100)"),
    "a100": (0.30, "assumed, not measured on this chip"),
    "v5e": (0.30, "assumed, not measured on this chip"),
    "cpu": (0.30, "measured: GPT d_model 128 train step at 29-30 % of the f32 matmul peak, benchmarks/RESULTS.md; "
                  "smaller models are overhead-bound and run lower"),
}
# Price per device-hour (USD) by default; a contract's differs: --price. None: no default, cost left out.
PRICE = {
    "h100": (2.99, "Lambda's on-demand list price for 8x H100 SXM, per GPU-hour (2025)"),
    "h200": (2.99, "the H100's list price (no H200 price checked)"),
    "v5e": (1.20, "Google Cloud's on-demand TPU v5e price per chip-hour (us regions)"),
    "cpu": (0.0446, "AWS EC2 c7i.large on-demand, $0.0893/h for 2 vCPUs (us-east-1), per vCPU-hour x cores"),
    "a100": (None, "no A100 price checked"),
}
# Power usage effectiveness: facility power / IT power. Uptime Institute Global Data Center Survey 2023: industry
# average 1.58 (large new and hyperscale sites report 1.1-1.3: --pue=1.1).
PUE = (1.58, "Uptime Institute Global Data Center Survey 2023, industry average")
# Carbon intensity of electricity, gCO2e/kWh: Ember, Global Electricity Review 2024, world average for 2023.
GRID = (480.0, "Ember Global Electricity Review 2024: world average 2023")


@dataclasses.dataclass
class Budget:
  chip: str
  peak: float        # FLOP/s of one device
  peak_source: str
  mfu: float
  mfu_source: str
  devices: int       # devices per run
  capacity: float    # bytes of one device
  capacity_source: str
  power_w: float | None = None  # W per device (None: unknown, no energy)
  power_source: str = ""
  pue: float = PUE[0]
  pue_source: str = PUE[1]
  price: float | None = None    # USD per device-hour (None: unknown, no cost)
  price_source: str = ""
  grid: float = GRID[0]         # gCO2e / kWh
  grid_source: str = GRID[1]


def _check(field: str, v, ok: bool, allowed: str):
  if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok):
    raise errors.ConfigError(f"{field}: {v}; allowed: {allowed}")


def budget(s: ml_collections.ConfigDict, chip: str, mfu: float = 0.0, *, pue: float | None = None,
           price: float | None = None, grid: float | None = None, power: float | None = None) -> Budget:
  """The chip's figures, each overridable (None / 0 for mfu: the default, with its source). ValueError (one
  line naming the flag) for a value out of range, before anything is expanded."""
  if chip not in CHIPS:
    raise errors.ConfigError(f"chip: {chip!r}; allowed: {', '.join(CHIPS)}")
  if mfu and not 0 < mfu <= 1:
    raise errors.ConfigError(f"mfu: {mfu}; allowed: a fraction in (0, 1] (0: the chip's default)")
  _check("pue", pue, pue is not None and pue >= 1, "a number >= 1 (facility power / IT power)")
  _check("price", price, price is not None and price >= 0, "a number >= 0 (USD per device-hour)")
  _check("grid", grid, grid is not None and grid >= 0, "a number >= 0 (gCO2e per kWh)")
  _check("power", power, power is not None and power > 0, "a number > 0 (W per device)")
  if CHIPS[chip] is None:
    peak, src = metrics.measure_matmul_peak(), "this host's measured f32 matmul peak"
  else:
    peak, src = metrics.PEAK_BF16[CHIPS[chip]], f"published dense bf16 peak of the {CHIPS[chip]}"
  m, m_src = (mfu, "--mfu") if mfu else DEFAULT_MFU[chip]
  devices = fit_memory.devices_per_run(s.executor, chip)
  cap, cap_src = memory.chip_capacity(chip)
  w, w_src = (power, "--power") if power is not None else energy.chip_power(chip)
  usd, usd_src = (price, "--price") if price is not None else PRICE[chip]
  return Budget(chip, peak, src, m, m_src, devices, cap, cap_src, w, w_src,
                *((pue, "--pue") if pue is not None else PUE), usd, usd_src,
                *((grid, "--grid") if grid is not None else GRID))


def table(s: ml_collections.ConfigDict, b: Budget, rule: bool = True) -> pd.DataFrame:
  """One row per run of the sweep: run_id, family, params, params_nonembed, tokens, flops, steps, batch_size,
  seq_len, fit (the memory rule's setting on the chip; `rule=False`: the members as written),
  bytes_per_device (fit_memory.need: memory.analytic over `b.devices` devices, times XLA's measured excess),
  fits (within memory.HEADROOM of the chip's memory), recompute (the remat policy's time factor),
  device_hours, hours (wall, on `b.devices` devices), kwh, cost, co2e_kg. Baselines have no FLOPs (NA)."""
  target = fit_memory.Target(b.chip, b.capacity, b.capacity_source, b.devices)
  if not rule:
    s = ml_collections.ConfigDict(s.to_dict())
    s.executor.chip = ""
  rows = []
  for run_id, c in ladders.expand(s, fit=target if rule else None):
    row = {"run_id": run_id, "family": c.family}
    if registry.is_neural_config(c):
      p = budget_lib.plan(c)
      mem = fit_memory.need(c, budget_lib.shapes(c), b.devices)
      recompute = fit_memory.REMAT_COST[c.model.get("remat", "none")]
      device_h = p["flops"] * recompute / (b.peak * b.mfu) / 3600
      kwh = device_h * b.power_w / 1000 * b.pue if b.power_w is not None else float("nan")
      row.update(params=p["params"]["total"], params_nonembed=p["params"]["nonembed"], tokens=p["tokens"],
                 flops=p["flops"], steps=p["steps"], batch_size=c.data.batch_size, seq_len=c.data.get("seq_len"),
                 fit=fit_memory.label(c, b.devices), bytes_per_device=mem, fits=mem <= memory.HEADROOM * b.capacity,
                 recompute=recompute, device_hours=device_h, hours=device_h / b.devices, kwh=kwh,
                 cost=device_h * b.price if b.price is not None else float("nan"), co2e_kg=kwh * b.grid / 1000)
    rows.append(row)
  return pd.DataFrame(rows, columns=["run_id", "family", "params", "params_nonembed", "tokens", "flops", "steps",
                                     "batch_size", "seq_len", "fit", "bytes_per_device", "fits", "recompute",
                                     "device_hours", "hours", "kwh", "cost", "co2e_kg"])


def _g(v, spec: str = ".3g") -> str:
  return "-" if pd.isna(v) else format(v, spec)


def format_table(df: pd.DataFrame, b: Budget) -> str:
  t = pd.DataFrame({
      "run_id": df["run_id"], "params": df["params"].map(lambda v: _g(v, ",.0f")),
      "tokens": df["tokens"].map(_g), "FLOPs": df["flops"].map(_g), "steps": df["steps"].map(lambda v: _g(v, ",.0f")),
      "batch": df["batch_size"].map(lambda v: _g(v, ".0f")), "fit": df["fit"].fillna("-"),
      "mem/device": [("-" if pd.isna(m) else memory.fmt(m) + ("" if f else " !"))
                     for m, f in zip(df["bytes_per_device"], df["fits"])],
      "time": df["hours"].map(lambda h: "-" if pd.isna(h) else progress.duration(h * 3600)),
      "device-h": df["device_hours"].map(_g), "kWh": df["kwh"].map(_g), "USD": df["cost"].map(lambda v: _g(v, ",.0f")),
      "CO2e kg": df["co2e_kg"].map(_g)})
  per = f"{b.devices} device{'s' if b.devices > 1 else ''} per run"
  over = int((df["fits"] == False).sum())  # noqa: E712 (NA for baselines)
  fitted = int((df["fit"].fillna("-") != "-").sum())
  remat = int((df["recompute"] > 1).sum())
  power = (f"{b.power_w:.4g} W per device ({b.power_source})" if b.power_w is not None
           else f"power unknown ({b.power_source}): no kWh / CO2e, pass --power")
  price = (f"${b.price:.4g} per device-hour ({b.price_source})" if b.price is not None
           else f"price unknown ({b.price_source}): no cost, pass --price")
  kwh, usd, co2 = df["kwh"].sum(min_count=1), df["cost"].sum(min_count=1), df["co2e_kg"].sum(min_count=1)
  return "\n".join([
      f"chip {b.chip}: {b.peak:.3g} FLOP/s ({b.peak_source}) x MFU {b.mfu:.1%} ({b.mfu_source}); {per}; "
      f"{memory.fmt(b.capacity)} per device ({b.capacity_source})",
      f"energy: {power} x PUE {b.pue:.3g} ({b.pue_source}); {price}; grid {b.grid:.4g} gCO2e/kWh ({b.grid_source})",
      "mem/device: memory.analytic of the setting in `fit` (params, grads, optimizer state, activations), x "
      f"{memory.XLA_OVER_ANALYTIC['none']} without remat, x {memory.XLA_OVER_ANALYTIC['remat']} with (XLA's compiled "
      "peak measured up to that over it)",
      status.text_table(t),
      f"{len(df)} runs, {df['flops'].sum():.3g} FLOPs: {df['device_hours'].sum():,.3g} device-hours "
      f"({progress.duration(df['hours'].sum() * 3600)} one run after another on {per}), "
      f"{_g(kwh, ',.4g')} kWh, ${_g(usd, ',.0f')}, {_g(co2 / 1000 if pd.notna(co2) else co2, ',.3g')} t CO2e"]
      + ([f"{fitted} run{'s' if fitted > 1 else ''} set by the memory rule to fit (column fit; "
          f"scaling/train/fit_memory.py)" + (f"; remat 'block' adds its recompute (x4/3) to the time of {remat}"
                                             if remat else "")] if fitted else [])
      + ([f"{over} run{'s' if over > 1 else ''} marked ! need more than {memory.HEADROOM:.0%} of a device's "
          f"memory even with the memory rule: more devices per run (executor.slurm), a smaller batch or seq_len"]
         if over else []))


def main(s: ml_collections.ConfigDict, chip: str = "h100", mfu: float = 0.0, **energy_flags) -> pd.DataFrame:
  """The `scaling plan` command; ValueError (a bad chip, mfu, pue, price, grid, power or sweep config) -> one
  line, exit 2 in cli.py. `energy_flags`: pue, price, grid, power (None: the defaults above)."""
  b = budget(s, chip, mfu, **energy_flags)
  df = table(s, b)
  print(format_table(df, b))
  return df
