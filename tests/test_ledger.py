"""The prediction ledger: forecast -> run -> scored, on fabricated sweeps and on a tiny real one."""

import json
import os
import subprocess
import threading

import ml_collections
import numpy as np
import pytest

from scaling.laws import predict
from scaling.models import accounting, sizes
from scaling.sweep import ladders, ledger, results, runner
from test_predict import ROOT, SCALING, truth, write_ladder, write_run


def test_appends_are_whole_lines_with_their_index_even_when_concurrent(tmp_path):
  d = str(tmp_path)
  rec = dict(family="gpt", x="params_nonembed", N=1.0, D=1.0, loss=1.0, lo=0.9, hi=1.1, runs=[], pad="x" * 5000)

  def many(k):
    for i in range(25):
      ledger.append(d, {**rec, "writer": k, "i": i})
  threads = [threading.Thread(target=many, args=(k,)) for k in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  rows = ledger.read(d)
  assert len(rows) == 100 and [r["index"] for r in rows] == list(range(100))
  assert sorted((r["writer"], r["i"]) for r in rows) == [(k, i) for k in range(4) for i in range(25)]
  with open(ledger.path(d)) as f:
    assert all(json.loads(line)["pad"] == rec["pad"] for line in f)


def test_forecast_then_run_then_scored(tmp_path):
  d = str(tmp_path)
  write_ladder(d)
  r = predict.predict(d, N=6e5, n_boot=50)
  assert ledger.score(d)[0] == r  # nothing trained there yet: the line is unchanged
  # A run 5 % off in N is another size, not this forecast; one at (N, D) with two seeds scores it.
  write_run(d, "near", 6.3e5, 20 * 6.3e5, 1.40)
  actual = [truth(6e5) * 1.002, truth(6e5) * 0.996]
  for s, ell in enumerate(actual):
    write_run(d, f"big-s{s}", 6e5, 20 * 6e5 + 50, ell, seed=s)  # tokens off by less than a step (D / 100 steps)
  (line,) = ledger.score(d)
  assert line["actual"] == pytest.approx(np.mean(actual)) and line["actual_runs"] == ["big-s0", "big-s1"]
  assert line["error"] == pytest.approx(r["loss"] / np.mean(actual) - 1)
  assert line["inside"] == (r["lo"] <= np.mean(actual) <= r["hi"])
  assert ledger.read(d) == [line]  # written back
  table = ledger.format_table(ledger.read(d))
  assert "1 of 1 scored" in table and f"{np.mean(actual):.4f}" in table


def test_runs_the_forecast_was_fitted_on_do_not_score_it(tmp_path):
  d = str(tmp_path)
  write_ladder(d)
  largest = float(np.geomspace(3e3, 1.5e5, 5)[-1])
  predict.predict(d, N=largest, n_boot=20)  # in-sample: its own runs are not a test of it
  assert "actual" not in ledger.score(d)[0]


def test_score_verb_prints_the_table(tmp_path):
  d = str(tmp_path)
  write_ladder(d)
  predict.predict(d, N=6e5, n_boot=20)
  write_run(d, "big-s0", 6e5, 20 * 6e5, truth(6e5))
  p = subprocess.run([SCALING, "predict", d, "--score"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                     env=dict(os.environ, PYTHONPATH=ROOT))
  assert p.returncode == 0, p.stderr
  assert "1 of 1 scored" in p.stdout and "power/gpt" in p.stdout
  assert ledger.read(d)[0]["actual_runs"] == ["big-s0"]


def test_forecast_member_expands_to_the_forecasts_n_and_d(tmp_path, data_dir):
  d = str(tmp_path)
  write_ladder(d)
  target = sizes.from_params("gpt", 6e5)
  target.vocab_size = 259  # the embedded corpus' byte vocabulary; non-embedding counts do not depend on it
  n = accounting.params("gpt", target)["nonembed"]
  predict.predict(d, N=n, n_boot=20)
  s = ladders.defaults()
  s.name, s.sizes, s.forecast = "loop", (), f"{d}:last"
  (run_id, c), = ladders.expand(s)
  assert c.train.tokens == round(20 * n) and c.tags.forecast == 0 and c.tags.forecast_ledger == d
  assert accounting.params("gpt", c.model)["nonembed"] == n
  s.kind, s.budgets = "isoflop", (1e12,)
  with pytest.raises(ValueError, match="^forecast: "):
    ladders.expand(s)
  s.kind, s.forecast = "params", str(tmp_path / "nowhere")
  with pytest.raises(ValueError, match="^forecast: "):
    ladders.expand(s)


def test_fit_predict_train_score_is_one_loop(tmp_path, data_dir):
  # A tiny real ladder (3 sizes x 2 seeds, packed, ~20 steps each), a forecast at a size it did not train,
  # then the same sweep relaunched with that forecast as a member: the sweep scores it when it completes.
  d = str(tmp_path / "sweep")
  s = ladders.defaults()
  s.name, s.sizes, s.seeds, s.tokens, s.pack = "loop", (1.2e4, 2.5e4, 5e4), (0, 1), 5120, 2
  s.rule.lr, s.rule.width = 3e-3, 32
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=2, log_every=5, checkpoint_every=0,
                                                     peak_flops=1e11))
  s.executor.compile_cache = ""
  runner.run_sweep(s, d, progress=False)
  target = sizes.from_params("gpt", 1e5)
  target.vocab_size = 259
  n = accounting.params("gpt", target)["nonembed"]
  r = predict.predict(d, N=n, n_boot=50)
  assert r["D"] == pytest.approx(5120, rel=0.01) and len(r["runs"]) == 6
  s.forecast = f"{d}:{r['index']}"
  df = runner.run_sweep(s, d, progress=False)
  (line,) = ledger.read(d)
  big = df[df["params_nonembed"] == n]
  assert len(big) == 2 and (big["status"] == "completed").all()  # the forecast member, at both seeds
  assert line["actual_runs"] == sorted(big["run_id"]) and line["actual"] == pytest.approx(big["eval_loss"].mean())
  assert line["inside"] == (line["lo"] <= line["actual"] <= line["hi"])
  assert set(results.load(d)["forecast"].dropna()) == {0}
