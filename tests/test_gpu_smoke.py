"""`bash benchmarks/gpu.sh --cpu-smoke`: the GPU run's script end to end at tiny sizes on CPU, so it cannot rot
between the sessions that have a GPU. Slow (~2-3 min on 2 cores): `make test-all`."""

import math
import os
import subprocess
import sys

import pytest

from scaling import io

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gpu_script_cpu_smoke_writes_its_json_and_rows(tmp_path, data_dir):
  out = tmp_path / "bench"
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the script sets its own (one device)
  env.update(PYTHON=sys.executable, SCALING_DATA_DIR=data_dir, PYTHONPATH=REPO)
  p = subprocess.run(["bash", "benchmarks/gpu.sh", "--cpu-smoke", str(out)], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
  res = io.read_json(str(out / "gpu.json"))
  assert res["mode"] == "cpu-smoke"

  steps = res["steps"]["entries"]
  assert [(e["model"], e["batch"], e["scan_layers"]) for e in steps] == [
      ("smoke-124M", 2, True), ("smoke-124M", 4, True), ("smoke-124M", 8, True), ("smoke-124M", 16, True),
      ("smoke-350M", 2, True), ("smoke-774M", 2, True), ("smoke-124M", 2, False)]
  for e in steps:
    assert "error" not in e, e
    assert e["remat"] == "none" and e["remat_why"] == "fits"  # tiny models fit the host as written
    assert e["compile_s"] > 0 and e["lower_s"] > 0 and e["peak_bytes"] > 0
    assert e["tokens_per_s"] == pytest.approx(e["batch"] * e["seq"] / e["step_s"], rel=1e-9)
    assert 0 < e["mfu"] < 1  # against the host's measured matmul peak, as the row says
  # The timed steps trained: every model's loss on its random tokens is below the uniform ln(259) it started near.
  assert all(e["loss"] < math.log(259) for e in steps)

  (pk,) = res["packing"]["entries"]
  assert pk["k"] == 2 and pk["run"]["ratio"] > 0 and pk["step"]["ratio"] > 0

  sw = res["sweep"]
  assert sw["rc"] == 0 and len(sw["runs"]) == 3
  assert all(r["status"] == "completed" and r["device_seconds"] > 0 and r["energy_j"] is None for r in sw["runs"])
  assert sw["plan"]["rc"] == 0 and "3 runs" in sw["plan"]["total"][0]

  # The RESULTS.md rows: one per measured step, the packing rows and the sweep line.
  rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| smoke-")]
  assert len(rows) == 7 and all(ln.count("|") == 12 for ln in rows)
  assert "| 2 | run |" in p.stdout and "3/3 runs completed" in p.stdout
