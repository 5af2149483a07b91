"""Energy and money before launch (`scaling plan`: device-hours, kWh, cost, CO2e per run and in total, flags
with sourced defaults; a bad flag is one line, exit 2), and what a run then spent (result.json's device_seconds,
NVML's energy where the device reports it) as `results.load` columns."""

import os
import sys

import ml_collections
import pytest

from scaling import cli, config, io, results
from scaling.sweep import ladders, plan
from scaling.train import energy, loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sweep() -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.name = "energy"
  s.sizes = (1.2e4, 2.5e4)
  s.tokens = 8 * 32 * 10
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=2, log_every=5, peak_flops=1e11))
  s.executor.kind, s.executor.slurm.gpus_per_node = "slurm", 4  # 4 devices per run
  return s


def test_energy_cost_and_co2e_follow_the_formula(data_dir):
  s = _sweep()
  b = plan.budget(s, "h200", pue=1.1, price=3.5, grid=400.0, power=650.0)
  df = plan.table(s, b)
  assert b.devices == 4 and len(df) == 2
  for _, r in df.iterrows():
    device_h = r["flops"] / (989e12 * 0.336) / 3600
    assert r["device_hours"] == pytest.approx(device_h, rel=1e-12)
    assert r["hours"] == pytest.approx(device_h / 4, rel=1e-12)
    assert r["kwh"] == pytest.approx(device_h * 0.650 * 1.1, rel=1e-12)
    assert r["cost"] == pytest.approx(device_h * 3.5, rel=1e-12)
    assert r["co2e_kg"] == pytest.approx(device_h * 0.650 * 1.1 * 400 / 1000, rel=1e-12)
  text = plan.format_table(df, b)
  assert "650 W per device (--power) x PUE 1.1 (--pue)" in text and "$3.5 per device-hour (--price)" in text
  assert f"{df['kwh'].sum():,.4g} kWh, ${df['cost'].sum():,.0f}" in text

  # The defaults, each with its source: the H200's 700 W, PUE 1.58, the list price, 480 g/kWh.
  d = plan.budget(s, "h200")
  assert (d.power_w, d.pue, d.price, d.grid) == (700.0, 1.58, 2.99, 480.0)
  assert all((d.power_source, d.pue_source, d.price_source, d.grid_source))
  df = plan.table(s, d)
  assert df["kwh"].tolist() == pytest.approx((df["device_hours"] * 0.7 * 1.58).tolist(), rel=1e-12)
  # A chip without a published power or price: no kWh / cost rather than a guess, unless the flag gives one.
  v = plan.budget(s, "v5e")
  assert v.power_w is None and plan.table(s, v)["kwh"].isna().all()
  assert "pass --power" in plan.format_table(plan.table(s, v), v)
  a = plan.budget(s, "a100")
  assert a.price is None and plan.table(s, a)["cost"].isna().all()
  # CPU: the TDP share of the cores this process may use.
  w, src = energy.chip_power("cpu")
  assert w == pytest.approx(280 / 64 * len(os.sched_getaffinity(0))) and "cores" in src


@pytest.mark.parametrize("flag, names", [("--price=-1", "price: -1.0; allowed: a number >= 0"),
                                         ("--pue=0.9", "pue: 0.9; allowed: a number >= 1"),
                                         ("--grid=-5", "grid: -5.0; allowed: a number >= 0"),
                                         ("--power=0", "power: 0.0; allowed: a number > 0")])
def test_a_bad_energy_flag_is_one_line_and_exit_2(data_dir, monkeypatch, capfd, flag, names):
  monkeypatch.chdir(REPO)
  monkeypatch.setattr(sys, "argv", ["scaling", "plan", "--config=configs/sweeps/kaplan.py:smoke", flag])
  with pytest.raises(SystemExit) as e:
    cli.main()
  out, err = capfd.readouterr()
  assert e.value.code == 2
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"scaling plan: {names} (")
  assert "run_id" not in out  # refused before any run was expanded


def test_result_json_records_device_seconds_and_no_made_up_energy(tmp_path, data_dir):
  c = config.base("gpt", "nano")
  c.model.update(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_len=32)
  c.data.update(seq_len=32, batch_size=16)
  c.train.update(steps=3, log_every=1, eval_batches=1, progress=False, peak_flops=1e11)
  c.mesh.update(data=4, num_devices=4)  # 4 of the 8 fake devices
  d = str(tmp_path / "run")
  r = loop.train(c, d)
  saved = io.read_json(os.path.join(d, "result.json"))
  assert saved["devices"] == 4
  assert saved["device_seconds"] == pytest.approx(saved["wall_time_s"] * 4, rel=1e-12) and saved["device_seconds"] > 0
  assert "energy_j" not in saved and "energy_j" not in r  # CPU: nothing measured, nothing written
  df = results.load(d)
  assert df["device_seconds"].iloc[0] == saved["device_seconds"] and df["energy_j"].isna().all()
