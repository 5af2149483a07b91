"""Hyperparameter laws (scaling/laws/hparams.py) and best-per-point selection (results.mark_best)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from scaling import io
from scaling.laws import fit, hparams
from scaling.sweep import results

K_LR, A_LR, K_B, A_B = 0.3118, -0.125, 0.292, 0.3271  # DeepSeek LLM's fit, planted


def _grid(seed=0, noise=1e-4, step=0.25, n=17, budgets=np.geomspace(1e15, 1e21, 7), bowl=0.005):
  """loss(C, lr, B) = L*(C) (1 + bowl (ln lr/lr_opt)^2 + bowl (ln B/B_opt)^2) x lognormal noise, on a
  log2 grid of n x n (lr, B) per budget whose offset from the optimum is random (not centred on it)."""
  rng = np.random.default_rng(seed)
  rows = []
  for C in budgets:
    lr0, b0 = K_LR * C ** A_LR, K_B * C ** A_B
    olr, ob = rng.uniform(-0.5, 0.5, 2) * step
    for i in range(n):
      for k in range(n):
        lr, B = lr0 * 2 ** (olr + step * (i - n // 2)), b0 * 2 ** (ob + step * (k - n // 2))
        L = 3.0 * C ** -0.05 * (1 + bowl * np.log(lr / lr0) ** 2 + bowl * np.log(B / b0) ** 2)
        rows.append((C, lr, B, L * np.exp(noise * rng.standard_normal())))
  return np.array(rows).T


@pytest.mark.parametrize("method", hparams.METHODS)
def test_recovers_planted_exponents(method):
  C, lr, B, L = _grid()
  f = hparams.fit_hparams(C, lr, B, L, method=method, n_boot=100)
  p = f["params"]
  # 5 %: the band's centre is quantized by the grid (step 2^(1/4)) and 0.01 % noise moves runs across
  # the band's edge; over grid seeds 0-4 the worst exponent error measured 1.5 % (AMD EPYC dev box).
  assert p["a_lr"] == pytest.approx(A_LR, rel=0.05)
  assert p["a_B"] == pytest.approx(A_B, rel=0.05)
  assert p["k_lr"] == pytest.approx(K_LR, rel=0.5) and p["k_B"] == pytest.approx(K_B, rel=0.5)
  for k in ("a_lr", "a_B"):
    lo, hi = f["ci"][k]
    assert lo < p[k] < hi and hi - lo < 0.05
  assert all(b["near_optimal"] >= 10 for b in f["per_budget"]) and not f["notes"]
  assert f["derived"]["lr_opt@1e+15"] == pytest.approx(K_LR * 1e15 ** A_LR, rel=0.1)


def test_band_edge_and_missing_batch_grid_are_said():
  C, lr, B, L = _grid(step=0.5, n=5)
  keep = lr < np.array([K_LR * c ** A_LR for c in C])  # drop every lr above the optimum: not bracketed
  B_fixed = np.full(keep.sum(), 4096.0)
  f = hparams.fit_hparams(C[keep], lr[keep], B_fixed, L[keep], n_boot=20)
  assert "a_B" not in f["params"]
  assert any("no B_opt law" in n for n in f["notes"])
  assert any(n.startswith("best lr at the edge") for n in f["notes"])
  with pytest.raises(ValueError, match="^band: "):
    hparams.fit_hparams(C, lr, B, L, band=2.0)
  with pytest.raises(ValueError, match="need at least 2"):
    hparams.fit_hparams(C[C == C[0]], lr[C == C[0]], B[C == C[0]], L[C == C[0]])


def _write(d, run_id, *, params, lr, batch, loss, budget, status="completed", **extra):
  rd = os.path.join(d, "runs", run_id)
  tags = {"sweep": "s", "ladder": "isoflop", "budget": budget, "budget_unit": "flops"}
  io.atomic_write_json(os.path.join(rd, "config.json"), {
      "family": "gpt", "train": {"lr": lr}, "data": {"batch_size": batch, "seq_len": 128}, "tags": tags})
  tokens = budget / (6 * params)
  io.atomic_write_json(os.path.join(rd, "result.json"), dict(
      status=status, family="gpt", size=str(params), params=params, params_nonembed=params, tokens=tokens,
      flops=budget, eval_loss=loss, train_loss=loss, steps=tokens / (batch * 128), tags=tags, **extra))


def test_best_per_point_edge_and_fit_sweep_hparams(tmp_path):
  d = str(tmp_path)
  io.atomic_write_json(os.path.join(d, "sweep.json"), {"name": "s"})
  # Two budgets x three sizes x an lr grid; the middle lr wins except for the smallest size, whose
  # best lr is the largest tried (its optimum was not bracketed), and one lr diverged at the largest.
  lrs = (1e-3, 2e-3, 4e-3)
  for C in (1e12, 1e13):
    for N in (1e4, 3e4, 1e5):
      for lr in lrs:
        best = 4e-3 if N == 1e4 else 2e-3
        loss = 3.0 * (N / 1e4) ** -0.1 * (C / 1e12) ** -0.02 * (1 + 0.05 * abs(np.log2(lr / best)))
        _write(d, f"N{N:.0e}-C{C:.0e}-lr{lr:g}", params=N, lr=lr, batch=32, loss=loss, budget=C)
  _write(d, "N1e+05-C1e+13-lr0.008", params=1e5, lr=8e-3, batch=32, loss=float("nan"), budget=1e13, status="diverged")
  df = results.load(d)
  best = df[df["is_best"]]
  assert len(best) == 6 and (best["lr"] == np.where(best["params"] == 1e4, 4e-3, 2e-3)).all()
  edge = df.groupby("run_id")["best_at_edge"].first()
  assert edge["N1e+04-C1e+12-lr0.001"] == "lr largest of 3"
  assert edge["N1e+05-C1e+13-lr0.001"] == ""  # 2e-3 is inside 1e-3 .. 8e-3 (the diverged run counts)
  f = fit.fit_sweep(d, law="kaplan", n_boot=10)
  assert len(f["run_ids"]) == 6  # the best run per point only
  note = f["best_at_edge"]["gpt"]
  assert note.startswith("2 of 6 points") and "params_nonembed=1e+04" in note and "lr largest of 3" in note
  assert "best at the edge, gpt:" in fit.format_table(f)
  h = fit.fit_sweep(d, law="hparams", n_boot=10)["fits"]["hparams/gpt"]
  assert h["budgets"] == [1e12, 1e13] and h["per_budget"][0]["runs"] == 9
  assert "a_B" not in h["params"]  # one batch size everywhere
  assert json.load(open(os.path.join(d, "fit.json")))["fits"]["hparams/gpt"]["law"] == "hparams"


def test_best_setting_is_chosen_by_its_mean_over_seeds():
  """lr 1e-3 has the single lowest run (seed noise) but lr 2e-3 the lower mean over 3 seeds: every seed of
  2e-3 is_best, a diverged seed disqualifies its setting, and the fits see one row per point, the mean."""
  rows = []
  for N in (1e4, 3e4, 1e5):
    base = 3.0 * (N / 1e4) ** -0.1
    for lr, offs in ((1e-3, (-0.02, 0.05, 0.05)), (2e-3, (0.0, 0.0, 0.01)), (4e-3, (-0.03, 0.0, 0.0))):
      for s, o in enumerate(offs):
        diverged = lr == 4e-3 and s == 2
        rows.append(dict(run_id=f"N{N:g}-lr{lr:g}-s{s}", family="gpt", params=N, params_nonembed=N, tokens=1e6,
                         lr=lr, batch_size=8, seed=s, status="diverged" if diverged else "completed",
                         eval_loss=float("nan") if diverged else base + o))
  df = results.mark_best(pd.DataFrame(rows))
  best = df[df["is_best"]]
  assert len(best) == 9 and (best["lr"] == 2e-3).all()
  assert (df["best_at_edge"] == "").all()  # 2e-3 lies inside 1e-3 .. 4e-3
  pts = results.best_points(df)
  assert len(pts) == 3 and (pts["seeds"] == 3).all()
  means = np.array([3.0 * (N / 1e4) ** -0.1 + 0.01 / 3 for N in (1e4, 3e4, 1e5)])
  np.testing.assert_allclose(pts.sort_values("params")["eval_loss"], means, rtol=1e-12)
  f = fit.fit_frame(df, law="kaplan", n_boot=0)
  assert len(f["run_ids"]) == 9  # every seed of the best setting went into the fit
  ref = fit.kaplan(np.array([1e4, 3e4, 1e5]), means, x_name="params_nonembed", n_boot=0)
  assert f["fits"]["kaplan/gpt"]["params"]["alpha"] == pytest.approx(ref["params"]["alpha"], rel=1e-9)
  # Without its diverged seed, lr 4e-3 (mean -0.015) beats 2e-3: the divergence is what kept it out.
  df2 = results.mark_best(pd.DataFrame([r for r in rows if r["status"] == "completed"]))
  assert (df2.loc[df2["is_best"], "lr"] == 4e-3).all()


def test_hparams_band_is_relative_to_the_best_settings_seed_mean():
  """At each budget lr 1e-3 has the single lowest run (seed 0: 0.98) but lr 2e-3 the lower mean (1.00 vs
  1.04); lr 4e-3 is 0.2 % above 2e-3's mean. Per run, the band (0.25 %) around 0.98 would hold 1e-3 alone;
  on seed means it holds 2e-3 and 4e-3, so the centre is their geometric mean (2.83e-3) at every budget."""
  rows = []
  for C in (1e12, 1e13, 1e14):
    for lr, losses in ((1e-3, (0.98, 1.10)), (2e-3, (1.00, 1.00)), (4e-3, (1.002, 1.002))):
      rows += [dict(family="gpt", flops=C, lr=lr, tokens=C / 6e4, steps=100, eval_loss=L, seed=s, run_id=f"{C}-{lr}-{s}",
                    params=1e4, params_nonembed=1e4) for s, L in enumerate(losses)]
  f = hparams.fit_frame(pd.DataFrame(rows), n_boot=0)
  assert [b["runs"] for b in f["per_budget"]] == [3, 3, 3]  # settings, not runs
  assert [b["lr_centre"] for b in f["per_budget"]] == pytest.approx([np.sqrt(2e-3 * 4e-3)] * 3, rel=1e-9)
  assert f["params"]["a_lr"] == pytest.approx(0.0, abs=1e-9)


def test_hparams_figure_and_plot_sweep(tmp_path):
  """DeepSeek Fig. 3 from a sweep with an lr x batch grid per budget: the near-optimal runs, one band centre
  per budget and the fitted line in each panel; `scaling plot` writes it."""
  from scaling.laws import plot, plot_hparams
  d = str(tmp_path)
  io.atomic_write_json(os.path.join(d, "sweep.json"), {"name": "s"})
  for C in (1e12, 1e13, 1e14):
    lr0, b0 = K_LR * C ** A_LR, K_B * C ** A_B / 128  # the optimum, in sequences of 128 tokens
    for lr in lr0 * 2.0 ** np.arange(-2, 3):
      for batch in (4, 8, 16, 32):
        loss = 3.0 * C ** -0.05 * (1 + 0.01 * np.log(lr / lr0) ** 2 + 0.01 * np.log(batch / b0) ** 2)
        _write(d, f"C{C:.0e}-lr{lr:.3g}-b{batch}", params=1e4, lr=lr, batch=batch, loss=loss, budget=C)
  f = fit.fit_sweep(d, law="hparams", n_boot=20)
  h = f["fits"]["hparams/gpt"]
  fig = plot_hparams.figure(results.load(d), fit.load_fit(d), "gpt")
  for ax, name in zip(fig.axes, ("lr", "B")):
    by = {c.get_gid(): len(c.get_offsets()) for c in ax.collections if c.get_gid()}
    assert by["grid"] == 60 and by["near-optimal"] == sum(b["near_optimal"] for b in h["per_budget"])
    assert by["centre"] == 3
    line = next(l for l in ax.get_lines() if l.get_gid() == "fit")
    cs, ys = line.get_data()
    assert ys == pytest.approx(h["params"][f"k_{name}"] * cs ** h["params"][f"a_{name}"])
  assert plot_hparams.figure(results.load(d), None, "gpt") is None
  names = {os.path.basename(p) for p in plot.plot_sweep(d)}
  assert "hparams_gpt.png" in names
