"""The data-constrained law (scaling/laws/data_constrained.py): planted R_D*, R_N* come back."""

import os

import numpy as np
import pytest

from scaling import io
from scaling.laws import data_constrained as dc, fit

LAW = dict(E=1.0, A=25.0, B=40.0, alpha=0.3, beta=0.3)  # N_opt(U_D) = 0.21 U_D under this law
TRUE = dict(LAW, R_D_star=15.4, R_N_star=5.3)          # the paper's values, planted


def _runs(seed=0, noise=1e-3, sizes=np.geomspace(1e5, 1e7, 3)):
  """Single-epoch runs at 5 / 20 / 80 tokens per parameter (none with excess parameters), and repeated
  runs: U in {1e6, 3e6, 1e7} unique tokens seen for 2 .. 64 epochs by `sizes` models."""
  rng = np.random.default_rng(seed)
  N, D, U = [], [], []
  for n in np.geomspace(1e5, 1e7, 5):
    for r in (5, 20, 80):
      N.append(n), D.append(r * n), U.append(0)
  for n in sizes:
    for u in (1e6, 3e6, 1e7):
      for ep in (2, 4, 8, 16, 32, 64):
        N.append(n), D.append(u * ep), U.append(u)
  N, D, U = map(np.array, (N, D, U))
  return N, D, U, dc.predict({"params": TRUE}, N, D, U) * np.exp(noise * rng.standard_normal(len(N)))


def test_effective_data_limits():
  U = 1e6
  assert dc.effective(U, 0.0, 15.4) == U  # one epoch: every token counts
  assert dc.effective(U, 0.1, 15.4) == pytest.approx(U * 1.1, rel=0.01)  # a few repeats: almost fresh
  assert dc.effective(U, 1e4, 15.4) == pytest.approx(U * 16.4)  # many: saturates at U (1 + R*)


def test_recovers_planted_R_D_star_and_R_N_star():
  N, D, U, L = _runs()
  f = dc.fit_data_constrained(N, D, U, L, n_boot=60)
  p = f["params"]
  # 5 %: 0.1 % loss noise reaches R_D* through the approach-3 stage (E, A, B, alpha, beta fitted on 15
  # single-epoch runs); over noise seeds 0-3 the worst R_D* error measured 3.2 % (AMD EPYC dev box).
  assert p["R_D_star"] == pytest.approx(15.4, rel=0.05)
  assert p["R_N_star"] == pytest.approx(5.3, rel=0.15)  # fewer runs inform it (only N > N_opt(U))
  for k in ("alpha", "beta"):
    assert p[k] == pytest.approx(LAW[k], rel=0.05)
  lo, hi = f["ci"]["R_D_star"]
  assert lo < p["R_D_star"] < hi and f["n_boot"] >= 50
  # Without repetition the law is Chinchilla's: the fitted law predicts a held-out fresh-data point.
  assert dc.predict(f, 3e6, 6e7, 0) == pytest.approx(fit.predict({"law": "approach3", "params": LAW}, 3e6, 6e7)[()],
                                                     rel=0.01)


def test_no_excess_parameters_fits_R_D_star_only():
  N, D, U, L = _runs(sizes=[1e5])  # 1e5 <= N_opt(1e6 unique tokens) = 2.1e5: no excess parameters
  f = dc.fit_data_constrained(N, D, U, L, n_boot=10)
  assert "R_N_star" not in f["params"] and any("R_N* not fitted" in n for n in f["notes"])
  assert f["params"]["R_D_star"] == pytest.approx(15.4, rel=0.1)


def test_bad_input_names_the_field(tmp_path):
  N, D, U, L = _runs()
  with pytest.raises(ValueError, match="single-epoch runs"):
    dc.fit_data_constrained(N[11:], D[11:], U[11:], L[11:])  # 4 single-epoch runs
  with pytest.raises(ValueError, match="^unique_tokens: negative"):
    dc.fit_data_constrained(N, D, -U, L)
  d = str(tmp_path)
  for i in range(6):  # a sweep whose runs never set data.unique_tokens
    rd = os.path.join(d, "runs", f"r{i}")
    io.atomic_write_json(os.path.join(rd, "config.json"), {"family": "gpt", "train": {"lr": 1e-3}})
    io.atomic_write_json(os.path.join(rd, "result.json"), dict(
        status="completed", family="gpt", params=1e4 * (i + 1), params_nonembed=1e4 * (i + 1), tokens=1e6,
        flops=6e10, eval_loss=3.0 - 0.1 * i, steps=10))
  with pytest.raises(ValueError, match="^unique_tokens: no such column"):
    fit.fit_sweep(d, law="data_constrained", n_boot=0)
  assert not os.path.exists(os.path.join(d, "fit.json"))


def test_fit_sweep_data_constrained(tmp_path):
  N, D, U, L = _runs()
  d = str(tmp_path)
  for i in range(len(N)):
    rd = os.path.join(d, "runs", f"r{i:02d}")
    io.atomic_write_json(os.path.join(rd, "config.json"), {
        "family": "gpt", "train": {"lr": 1e-3}, "data": {"batch_size": 32, "unique_tokens": int(U[i])}})
    io.atomic_write_json(os.path.join(rd, "result.json"), dict(
        status="completed", family="gpt", params=N[i], params_nonembed=N[i], tokens=D[i], flops=6 * N[i] * D[i],
        eval_loss=L[i], steps=100, tags={"budget": D[i], "budget_unit": "tokens"}))
  f = fit.fit_sweep(d, law="data_constrained", n_boot=10)["fits"]["data_constrained/gpt"]
  assert f["n"] == len(N) and f["params"]["R_D_star"] == pytest.approx(15.4, rel=0.05)
  assert "R_D_star" in fit.format_table(fit.load_fit(d))
