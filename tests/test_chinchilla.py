"""Chinchilla approaches 1 and 2 on planted IsoFLOP sweeps whose truth is known: unbracketed budgets,
lopsided loss-vs-size curves, noise, seeds (experiments/approach2_window.py has the full study)."""

import numpy as np
import pytest

from scaling.laws import fit

CHINCHILLA = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
LOPSIDED = dict(E=1.69, A=3000.0, B=60.0, alpha=0.7, beta=0.2)  # steep small-N wall, long flat large-N tail
BUDGETS = np.logspace(17, 23, 9)


def a_true(p):
  return p["beta"] / (p["alpha"] + p["beta"])


def n_opt(p, C):
  G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
  return G * (C / 6) ** a_true(p)


def isoflop(p, *, span=1.0, n=12, sigma=0.0, seed=0, fixed=True, seeds=1, budgets=BUDGETS):
  """`n` sizes over +-span decades: the same sizes at every budget (fixed, as real ladders are; the
  optimum moves 2.7 decades over the budgets, so the ends are unbracketed) or centred on each optimum.
  `seeds` runs per point, each with its own log-normal noise."""
  rng = np.random.default_rng(seed)
  mid = n_opt(p, budgets[len(budgets) // 2])
  N = np.concatenate([(mid if fixed else n_opt(p, C)) * np.logspace(-span, span, n) for C in budgets])
  C = np.repeat(budgets, n)
  N, C = np.repeat(N, seeds), np.repeat(C, seeds)
  D = C / (6 * N)
  L = (p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]) * np.exp(sigma * rng.standard_normal(N.size))
  return C, N, D, L


def test_approach2_leaves_out_unbracketed_budgets_and_names_them():
  C, N, D, L = isoflop(CHINCHILLA)
  f = fit.approach2(N, D, L, C, n_boot=20)
  # Noise-free: the windowed parabolas on the 5 bracketed budgets give a to 0.02 % (measured); 0.5 % is
  # the windows' own curvature bias, far below the 15.8 % of one parabola through every size (below).
  assert f["params"]["a"] == pytest.approx(a_true(CHINCHILLA), rel=0.005)
  out = [b["C"] for b in f["per_budget"] if not b["bracketed"]]
  assert out == pytest.approx([1e17, 10 ** 17.75, 10 ** 22.25, 1e23])
  assert [b["used"] for b in f["per_budget"]] == [b["bracketed"] for b in f["per_budget"]]
  assert len(f["notes"]) == 1 and "1e+17, 5.62e+17, 1.78e+22, 1e+23" in f["notes"][0]
  assert "left out of the exponent fit" in f["notes"][0]
  # The old estimator (every size, every budget) on the same runs: off by > 10 %.
  old = fit.approach2(N, D, L, C, n_boot=0, window=10 ** 6, keep_unbracketed=True)
  assert abs(old["params"]["a"] / a_true(CHINCHILLA) - 1) > 0.10


def test_approach2_keep_unbracketed_keeps_them():
  C, N, D, L = isoflop(CHINCHILLA)
  f = fit.approach2(N, D, L, C, n_boot=0, keep_unbracketed=True)
  assert all(b["used"] for b in f["per_budget"]) and f["keep_unbracketed"]
  assert "kept in the exponent fit" in f["notes"][0]
  drop = fit.approach2(N, D, L, C, n_boot=0)
  # The extrapolated vertices pull a off (2.3 % measured): keeping them is worse, as the default says.
  assert abs(f["params"]["a"] / a_true(CHINCHILLA) - 1) > abs(drop["params"]["a"] / a_true(CHINCHILLA) - 1)


def test_approach2_on_noisy_lopsided_curves():
  # A wide grid (3 decades, 12 sizes) on lopsided curves with 0.5 % noise per run. Measured over noise
  # seeds 0-3: |a error| 0.3-3.3 % with the default window, 13-18 % with one parabola through every size;
  # the 95 % intervals held a_true in all (and in 10/10 of experiments/approach2_window.py's sweeps).
  errs = []
  for seed in range(4):
    C, N, D, L = isoflop(LOPSIDED, span=1.5, sigma=0.005, seed=seed)
    f = fit.approach2(N, D, L, C, n_boot=100, seed=seed)
    lo, hi = f["ci"]["a"]
    assert lo <= a_true(LOPSIDED) <= hi
    errs.append(abs(f["params"]["a"] / a_true(LOPSIDED) - 1))
    old = fit.approach2(N, D, L, C, n_boot=0, window=10 ** 6, keep_unbracketed=True)
    assert abs(old["params"]["a"] / a_true(LOPSIDED) - 1) > 0.08
  assert np.median(errs) < 0.05


def test_approach2_bootstrap_redraws_seeds_of_each_point():
  budgets = np.logspace(18, 22, 5)
  # Three identical seeds per point: no seed noise, so resampling seeds changes nothing: a zero-width
  # interval (resampling sizes, as with one run per point, would move the windows and widen it).
  C, N, D, L = isoflop(CHINCHILLA, n=9, fixed=False, seeds=3, budgets=budgets)
  f = fit.approach2(N, D, L, C, n_boot=50)
  assert {b["bootstrap"] for b in f["per_budget"]} == {"seeds"} and f["n"] == N.size
  lo, hi = f["ci"]["a"]
  assert hi - lo < 1e-9
  single = fit.approach2(N[::3], D[::3], L[::3], C[::3], n_boot=50)
  assert {b["bootstrap"] for b in single["per_budget"]} == {"runs"}
  assert np.diff(single["ci"]["a"])[0] > 1e-4
  # With seed noise the intervals open and hold the truth at about the nominal rate: measured 17/20 here,
  # 37/40 (3 seeds) and 39/40 (2 seeds) over 40 sweeps at n_boot=200; 16/20 leaves room for a resample
  # drawn differently, not for the 15/20 a per-point (unpooled, unscaled) seed resample gave (seeds 0-19).
  hits = 0
  for seed in range(20):
    C, N, D, L = isoflop(CHINCHILLA, n=9, fixed=False, seeds=3, sigma=0.003, budgets=budgets, seed=seed)
    f = fit.approach2(N, D, L, C, n_boot=100, seed=seed)
    lo, hi = f["ci"]["a"]
    hits += bool(lo <= a_true(CHINCHILLA) <= hi)
  assert hits >= 16
  m = fit.approach2(N[::3], D[::3], L.reshape(-1, 3).mean(1), C[::3], n_boot=0)  # a point's loss: its seeds' mean
  assert f["params"]["a"] == pytest.approx(m["params"]["a"], rel=1e-12)


def test_approach2_window_rules():
  C, N, D, L = isoflop(CHINCHILLA, n=4, span=0.3, fixed=False, budgets=np.logspace(18, 22, 3))
  f = fit.approach2(N, D, L, C, n_boot=0)  # fewer sizes than the window: every size
  assert all(b["window"] == pytest.approx([min(N[C == b["C"]]), max(N[C == b["C"]])]) for b in f["per_budget"])
  C, N, D, L = isoflop(CHINCHILLA, fixed=False)
  f = fit.approach2(N, D, L, C, n_boot=0)
  # 12 sizes centred on the optimum: the 5 around the lowest loss, a factor 10^(2/11) apart.
  assert all(b["window"][1] / b["window"][0] == pytest.approx(10 ** (8 / 11)) for b in f["per_budget"])
  for bad in (2, 3.5, True):
    with pytest.raises(ValueError, match="^window: must be an integer >= 3"):
      fit.approach2(N, D, L, C, window=bad)
  L2 = L.copy()
  L2[C == BUDGETS[0]] = 3.0 - 0.01 * (np.log(N[C == BUDGETS[0]]) - 17) ** 2  # concave: no minimum
  f = fit.approach2(N, D, L2, C, n_boot=0)
  assert not f["per_budget"][0]["used"] and "budget 1e+17: loss vs log N is not convex" in f["notes"][0]


def test_approach1_leaves_out_budgets_won_by_an_edge_size():
  C, N, D, L = isoflop(CHINCHILLA)
  f = fit.approach1(C, N, D, L, np.arange(N.size), n_boot=0)
  keep = fit.approach1(C, N, D, L, np.arange(N.size), n_boot=0, keep_unbracketed=True)
  edge = [c for c, b in zip(f["envelope"]["C"], f["envelope"]["bracketed"]) if not b]
  assert edge == pytest.approx([1e17, 10 ** 17.75, 10 ** 22.25, 1e23])
  assert "1e+17, 5.62e+17, 1.78e+22, 1e+23" in f["notes"][0] and "kept" in keep["notes"][0]
  # The envelope snaps N_opt to the sizes tried (8.7 % off here, measured); the edge winners, stuck at
  # the grid's ends, pull it to 15.9 %.
  err = abs(f["params"]["a"] / a_true(CHINCHILLA) - 1)
  assert err < 0.10 < abs(keep["params"]["a"] / a_true(CHINCHILLA) - 1)
