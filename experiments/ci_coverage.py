"""How far can a 95 % bootstrap interval from a handful of sizes be trusted? Coverage of `fit.power`'s
intervals on planted laws L = E + A N^-alpha with log-normal noise, for the ladder shapes this repo runs.

For each design (sizes, noise sigma) and resampling scheme it draws `reps` noisy ladders, fits each with
a bootstrap, and counts how often the interval contains the planted alpha and E (95 % intended), and
how wide it is (alpha's hi/lo, E's width / E). Two schemes (`fit.BOOTSTRAPS`):
  pairs     resample (size, loss) points with replacement (the default everywhere in scaling.laws)
  residual  keep the sizes, add redrawn, rescaled residuals to the fitted curve (fixed-design; narrower)
Designs: 'sweep' is make sweep's GPT ladder (3e3 .. 1.5e5 non-embedding params, 2.35 -> ~1.6 nats,
far from E); 'floor' is a ladder whose losses span 3 % with the larger half on the floor E (known_entropy's
5e4 .. 3.3e5 ladder of 2026-12-01); 'wide' spans 1.2e4 .. 3.3e5, from 21 % above the floor down to it.
sigma is the per-point noise: one seed's spread, or a seed mean's (/ sqrt(seeds)).

  python experiments/ci_coverage.py [--reps=50] [--n_boot=200] [--out=sweeps/ci_coverage]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scaling import io  # noqa: E402
from scaling.laws import fit  # noqa: E402

DESIGNS = {  # name: (smallest, largest N, E, alpha, loss at the smallest N)
    "sweep": (3e3, 1.5e5, 1.2, 0.3, 2.35),
    "floor": (5e4, 3.3e5, 1.156, 1.3, 1.19),
    "wide": (1.2e4, 3.3e5, 1.156, 1.3, 1.40),
}
GRID = [("sweep", 5, 0.01), ("sweep", 8, 0.01), ("sweep", 5, 0.003), ("floor", 5, 0.003), ("floor", 8, 0.003),
        ("wide", 5, 0.01), ("wide", 8, 0.01), ("wide", 8, 0.003)]


def law(design: str, n_sizes: int) -> tuple[np.ndarray, dict]:
  lo, hi, E, alpha, l0 = DESIGNS[design]
  return np.geomspace(lo, hi, n_sizes), dict(E=E, A=(l0 - E) * lo ** alpha, alpha=alpha)


def coverage(design: str, n_sizes: int, sigma: float, bootstrap: str, reps: int, n_boot: int) -> dict:
  """Coverage and width of the 95 % intervals of alpha and E over `reps` noisy ladders (seeded)."""
  N, p = law(design, n_sizes)
  rng = np.random.default_rng(0)
  hit_alpha, hit_E, ratio, width = [], [], [], []
  for r in range(reps):
    loss = (p["E"] + p["A"] * N ** -p["alpha"]) * np.exp(sigma * rng.standard_normal(N.size))
    f = fit.power(N, loss, n_boot=n_boot, seed=r, bootstrap=bootstrap)
    (alo, ahi), (elo, ehi) = f["ci"]["alpha"], f["ci"]["E"]
    hit_alpha.append(alo <= p["alpha"] <= ahi)
    hit_E.append(elo <= p["E"] <= ehi)
    ratio.append(ahi / alo if alo > 0 else np.inf)
    width.append((ehi - elo) / p["E"])
  return dict(design=design, sizes=n_sizes, sigma=sigma, bootstrap=bootstrap, reps=reps,
              cover_alpha=float(np.mean(hit_alpha)), cover_E=float(np.mean(hit_E)),
              alpha_hi_lo_median=float(np.median(ratio)), alpha_hi_lo_q90=float(np.quantile(ratio, 0.9)),
              E_width_median=float(np.median(width)))


def main(argv=None) -> list[dict]:
  ap = argparse.ArgumentParser(prog="experiments/ci_coverage.py", description=__doc__.split("\n\n")[0])
  ap.add_argument("--reps", type=int, default=50, help="noisy ladders per design")
  ap.add_argument("--n_boot", type=int, default=200, help="bootstrap resamples per fit")
  ap.add_argument("--out", default=os.path.join("sweeps", "ci_coverage"), help="where coverage.json goes")
  a = ap.parse_args(argv)
  for name in ("reps", "n_boot"):
    if getattr(a, name) < 2:
      ap.exit(2, f"{name}: must be an integer >= 2; got {getattr(a, name)}\n")
  rows = []
  print(f"{'design':7s} {'sizes':>5s} {'sigma':>6s} {'bootstrap':9s}  cover alpha  cover E  "
        f"alpha hi/lo (median, q90)  E width/E")
  with np.errstate(over="ignore", invalid="ignore"):  # wild resamples overflow A; they stay finite elsewhere
    for design, n_sizes, sigma in GRID:
      for bootstrap in fit.BOOTSTRAPS:
        r = coverage(design, n_sizes, sigma, bootstrap, a.reps, a.n_boot)
        rows.append(r)
        print(f"{design:7s} {n_sizes:5d} {100 * sigma:5.1f}% {bootstrap:9s}  {r['cover_alpha']:11.2f}  "
              f"{r['cover_E']:7.2f}  {r['alpha_hi_lo_median']:8.2f}, {r['alpha_hi_lo_q90']:8.1f}        "
              f"{r['E_width_median']:8.3f}", flush=True)
  os.makedirs(a.out, exist_ok=True)
  io.atomic_write_json(os.path.join(a.out, "coverage.json"), rows)
  print(f"\nwrote {os.path.join(a.out, 'coverage.json')} ({a.reps} ladders per row, 95 % intervals intended)")
  return rows


if __name__ == "__main__":
  main()
