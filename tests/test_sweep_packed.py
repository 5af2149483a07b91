"""K runs in one vmapped step (`pack`) train exactly like K separate runs with the same seeds and lrs."""

import os

import numpy as np

from scaling import io, results
from test_sweep_run import env, sweep, write_config  # noqa: F401  (env is a fixture)


def curve(d, run_id, key):
  rows = io.read_jsonl(os.path.join(d, "runs", run_id, "metrics.jsonl"))
  return [(r["step"], r[key]) for r in rows if key in r]


def test_packed_runs_match_separate_runs(tmp_path, env):
  kw = dict(seeds=(0, 1), lr_multipliers=(1.0, 0.5))
  packed_dir, single_dir = str(tmp_path / "packed"), str(tmp_path / "single")
  p = sweep(env, write_config(tmp_path / "packed.py", pack=4, **kw), packed_dir)
  assert "(packed x4)" in p.stdout
  sweep(env, write_config(tmp_path / "single.py", pack=1, **kw), single_dir)
  a, b = results.load(packed_dir), results.load(single_dir)
  assert a["run_id"].tolist() == b["run_id"].tolist() and len(a) == 4
  assert (a["status"] == "completed").all() and (b["status"] == "completed").all()
  assert (a["packed"] == 4).all()
  for col in ("params", "tokens", "flops", "steps"):
    assert a[col].tolist() == b[col].tolist()
  np.testing.assert_allclose(a["eval_loss"], b["eval_loss"], rtol=2e-4)
  for run_id in a["run_id"]:
    for key in ("train_loss", "grad_norm", "lr"):
      x, y = curve(packed_dir, run_id, key), curve(single_dir, run_id, key)
      assert [s for s, _ in x] == [s for s, _ in y] and len(x) == 4
      np.testing.assert_allclose([v for _, v in x], [v for _, v in y], rtol=2e-4, err_msg=f"{run_id} {key}")
    # Each member is an ordinary run directory, checkpoint included.
    assert sorted(os.listdir(os.path.join(packed_dir, "runs", run_id, "checkpoints"))) == ["20", "data"]
  # Different seeds and lrs really gave different models.
  assert len(set(np.round(a["eval_loss"], 6))) == 4
