"""Seed noise as data: results.load / best_points carry each point's seed mean, std and count; the
figures draw it as error bars."""

import os

import numpy as np

from scaling import io
from scaling.laws import plot
from scaling.sweep import results


def _write(d, run_id, N, seed, loss, lr=1e-3, status="completed"):
  tags = {"sweep": "t", "ladder": "params", "budget": 1e6}
  cfg = {"family": "gpt", "size": f"{N:g}", "seed": seed, "tags": tags, "train": {"lr": lr}}
  io.atomic_write_json(os.path.join(d, "runs", run_id, "config.json"), cfg)
  io.atomic_write_json(os.path.join(d, "runs", run_id, "result.json"), dict(
      status=status, family="gpt", size=f"{N:g}", seed=seed, tags=tags, params=N + 100, params_embed=100,
      params_nonembed=N, tokens=1e6, flops=6e6 * N, eval_loss=loss, train_loss=loss, steps=10, wall_time_s=1.0))


def _sweep(d):
  # Size 1e4: 3 seeds at the best lr, 3 at a worse one; 2e4: 2 seeds; 4e4: one seed.
  for s, ell in enumerate((3.0, 3.2, 3.1)):
    _write(d, f"a-s{s}", 1e4, s, ell)
    _write(d, f"a-lrx2-s{s}", 1e4, s, ell + 0.5, lr=2e-3)
  for s, ell in enumerate((2.5, 2.7)):
    _write(d, f"b-s{s}", 2e4, s, ell)
  _write(d, "c-s0", 4e4, 0, 2.0)


def test_load_and_best_points_carry_seed_mean_std_and_count(tmp_path):
  d = str(tmp_path)
  _sweep(d)
  df = results.load(d)
  a = df[df["run_id"] == "a-s1"].iloc[0]
  assert a["seeds"] == 3 and np.isclose(a["eval_loss_mean"], 3.1) and np.isclose(a["eval_loss_std"], 0.1)
  worse = df[df["run_id"] == "a-lrx2-s0"].iloc[0]  # every setting has its own seed statistics
  assert worse["seeds"] == 3 and np.isclose(worse["eval_loss_mean"], 3.6) and not worse["is_best"]
  pts = results.best_points(df).set_index("params_nonembed")
  assert list(pts.index) == [1e4, 2e4, 4e4]
  assert np.allclose(pts["eval_loss"], [3.1, 2.6, 2.0])  # the loss column is the seed mean
  assert np.allclose(pts["eval_loss_std"].iloc[:2], [0.1, np.std([2.5, 2.7], ddof=1)])
  assert np.isnan(pts["eval_loss_std"].iloc[2])  # one seed: std unknown, not zero
  assert list(pts["seeds"]) == [3, 2, 1]
  assert pts["eval_loss_seeds"].iloc[0] == (3.0, 3.2, 3.1) and pts["eval_loss_seeds"].iloc[2] == (2.0,)


def test_a_diverged_seed_leaves_its_setting_out_and_is_not_counted(tmp_path):
  d = str(tmp_path)
  _sweep(d)
  _write(d, "c-s1", 4e4, 1, float("nan"), status="diverged")
  pts = results.best_points(results.load(d, status="completed")).set_index("params_nonembed")
  assert 4e4 not in pts.index  # its only setting has a diverged seed: no best setting
  df = results.load(d)
  assert df[df["run_id"] == "c-s0"].iloc[0]["seeds"] == 1  # completed seeds only


def test_every_point_figure_draws_seed_error_bars(tmp_path):
  d = str(tmp_path)
  _sweep(d)
  df = results.load(d)
  ax = plot.loss_vs_size_figure(df).axes[0]
  bars = [c for c in ax.containers if getattr(c, "get_label", lambda: "")().startswith("±1 std over seeds")]
  assert len(bars) == 1
  segs = bars[0].lines[2][0].get_segments()  # the vertical bars: two points with seeds, one without
  assert len(segs) == 2
  assert np.allclose(sorted(s[1][1] - s[0][1] for s in segs), sorted([0.2, 2 * np.std([2.5, 2.7], ddof=1)]))
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert "±1 std over seeds (2-3 each)" in labels
  without = df[df["seed"] == 0]  # one seed per point: no bars
  ax = plot.loss_vs_size_figure(without).axes[0]
  assert not [c for c in ax.containers if c.get_label().startswith("±1")]
