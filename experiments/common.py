"""What every experiment script shares: flags, running several ladders into one sweep directory, fit.json,
figures and the printed report.

An experiment is a thin composition: a sweep config from configs/sweeps/ (taking '' | 'smoke' | 'full';
several ladders go under its `ladders`), `run` (the sweep runner into one SWEEP_DIR, so `scaling
fit|plot SWEEP_DIR` and `scaling.results.load(SWEEP_DIR)` see every run), fits from scaling.laws.fit,
figures from scaling.laws.plot, and a table printed next to the paper's numbers.
"""

import argparse
import dataclasses
import importlib.util
import os
import sys
import tempfile
import time

import ml_collections
import numpy as np
import pandas as pd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `python experiments/NAME.py` from anywhere: the package and configs/ are here
  sys.path.insert(0, REPO)

from scaling import io
from scaling.laws import fit as fit_lib
from scaling.sweep import executors, results, runner


@dataclasses.dataclass
class Args:
  name: str
  sweep_dir: str
  scale: str  # '' (the small default), 'smoke' (tests: seconds per run) or 'full' (real hardware)
  executor: str | None
  workers: int
  retry_failed: bool
  n_boot: int
  progress: bool
  branches: bool = False  # budgets as cooldown branches off one trunk per size (experiments that offer --branches)


def parse_args(name: str, doc: str, argv: list[str] | None = None, branches: bool = False) -> Args:
  p = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=doc.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sweep_dir", default=os.path.join("sweeps", name),
                 help=f"where runs, fit.json and figures go (default: sweeps/{name}); relaunch to resume")
  size = p.add_mutually_exclusive_group()
  size.add_argument("--full", action="store_true", help="the paper-scale ladder (GPUs / SLURM)")
  size.add_argument("--smoke", action="store_true", help="a tiny variant for tests (3 sizes, few steps)")
  p.add_argument("--executor", choices=("local", "pool", "slurm"), default=None,
                 help="override the sweep configs' executor")
  p.add_argument("--workers", type=int, default=0, help="processes for --executor=pool")
  p.add_argument("--retry_failed", action="store_true", help="re-run failed / diverged runs")
  p.add_argument("--n_boot", type=int, default=200, help="bootstrap resamples for the 95%% intervals")
  p.add_argument("--no_progress", action="store_true", help="no progress bars")
  if branches:
    p.add_argument("--branches", action="store_true", help="run the budgets as cooldown branches (one constant-lr "
                   f"trunk per size; default sweep dir sweeps/{name}_branches)")
  a = p.parse_args(argv)
  scale = "full" if a.full else "smoke" if a.smoke else ""
  br = bool(getattr(a, "branches", False))
  sweep_dir = a.sweep_dir + ("_branches" if br and a.sweep_dir == p.get_default("sweep_dir") else "")
  return Args(name=name, sweep_dir=os.path.abspath(sweep_dir), scale=scale, executor=a.executor,
              workers=a.workers, retry_failed=a.retry_failed, n_boot=a.n_boot, progress=not a.no_progress,
              branches=br)


def sweep_config(name: str, arg: str = "") -> ml_collections.ConfigDict:
  """configs/sweeps/<name>.py's get_config(arg), loaded by path (configs/ is not a package)."""
  path = os.path.join(REPO, "configs", "sweeps", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"sweep_config_{name}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def run(args: Args, s: ml_collections.ConfigDict) -> pd.DataFrame:
  """Runs (or resumes) sweep config `s` (one ladder, or several under s.ladders) into args.sweep_dir with
  the sweep runner, prints its summary; -> one results.load row per run of `s`."""
  os.makedirs(args.sweep_dir, exist_ok=True)
  cache = executors.compile_cache_dir(s.executor, args.sweep_dir)
  if cache:
    import jax  # as `scaling sweep` does: a resumed run reuses its compiled step
    jax.config.update("jax_compilation_cache_dir", cache)
  t0 = time.time()
  df = runner.run_sweep(s, args.sweep_dir, executor=args.executor, workers=args.workers,
                        retry_failed=args.retry_failed, progress=args.progress)
  print(runner.summary(df))
  print(f"[{args.name}] {len(df)} runs, {time.time() - t0:.0f}s this launch", flush=True)
  return df


def completed(df: pd.DataFrame) -> pd.DataFrame:
  """Completed runs; warns about the rest (failed / diverged runs are reported, never fitted)."""
  bad = df[df["status"] != "completed"]
  for _, r in bad.iterrows():
    print(f"warning: run {r['run_id']} is {r['status']}: {r.get('error', '')}", flush=True)
  return df[df["status"] == "completed"].reset_index(drop=True)


def write_fit(sweep_dir: str, df: pd.DataFrame, fits: dict, *, law: str, x: str = "params_nonembed",
              loss: str = "eval_loss", n_boot: int = 200, seed: int = 0, skipped: dict | None = None,
              extrapolation: dict | None = None, **extra) -> dict:
  """SWEEP_DIR/fit.json (+ fit_boot.npz) in fit_sweep's layout, so `scaling plot SWEEP_DIR` and
  `fit.load_fit` read it; `fits` maps keys ('power/gpt', ...) to fit dicts from scaling.laws.fit.
  `extra` (paper references, truths) goes into fit.json as is. Returns the dict with bootstrap samples."""
  out = dict(law=law, x=x, loss=loss, n_boot=n_boot, seed=seed,
             run_ids=sorted(map(str, df.loc[df["status"] == "completed", "run_id"])), fits=fits,
             extrapolation=extrapolation or {}, skipped=skipped or {}, sweep_dir=sweep_dir, **extra)
  boot = {f"{k}/{p}": np.asarray(v) for k, f in fits.items() for p, v in f.get("boot", {}).items()}
  fd, tmp = tempfile.mkstemp(dir=sweep_dir, prefix=".tmp-fit_boot", suffix=".npz")
  with os.fdopen(fd, "wb") as fh:
    np.savez(fh, **boot)
  os.chmod(tmp, 0o644)
  os.replace(tmp, os.path.join(sweep_dir, "fit_boot.npz"))
  io.atomic_write_json(os.path.join(sweep_dir, "fit.json"), fit_lib._jsonable(out))  # last: marks a complete fit
  return out


def try_fit(fits: dict, skipped: dict, key: str, fn, *a, **kw) -> dict | None:
  """fits[key] = fn(...); a ValueError (too few points, no minimum, ...) is recorded in `skipped` and
  printed: a small sweep that cannot support one fit still reports the others."""
  try:
    fits[key] = fn(*a, **kw)
    return fits[key]
  except ValueError as e:
    skipped[key] = str(e)
    print(f"skipped {key}: {e}", flush=True)
    return None


def best_per_size(df: pd.DataFrame, x: str = "params_nonembed", loss: str = "eval_loss") -> pd.Series:
  """The loss of each size's best setting (results.best_points: its lowest-loss lr / batch, averaged over
  seeds, not the luckiest seed), indexed by x. A size trained for several lengths keeps its lowest."""
  return results.best_points(df, loss).groupby(x)[loss].min().sort_index()


def size_fit(fits: dict, skipped: dict, df: pd.DataFrame, family: str, *, law: str = "power",
             x: str = "params_nonembed", key: str | None = None, n_boot: int = 200, **extra) -> dict | None:
  """fits['<law>/<family>'] = power (E + A x^-alpha) or kaplan ((x_c / x)^alpha) law through the lowest
  loss per size of `family`'s runs in df; skipped (with why) when the runs cannot support it."""
  fn = {"power": fit_lib.power, "kaplan": fit_lib.kaplan}[law]
  best = best_per_size(df[df["family"] == family], x)
  return try_fit(fits, skipped, key or f"{law}/{family}", lambda: {
      **fn(best.index.to_numpy(float), best.to_numpy(float), x_name=x, n_boot=n_boot, seed=0),
      "family": family, **extra})


def fit_ylim(ax, losses, pad: float = 1.25) -> None:
  """Keep a loss axis on the data: a bootstrap band from a few wild resamples (A ~ 1e100 where the
  points barely constrain the law) would otherwise stretch it over many decades."""
  from scaling.laws import plot
  lo, hi = float(np.nanmin(losses)), float(np.nanmax(losses))
  ax.set_ylim(lo / pad, hi * pad)
  plot._plain_y(ax)  # plain tick labels for the new (narrow) range


def save_figure(fig, sweep_dir: str, name: str) -> str:
  """PNG + PDF into SWEEP_DIR (scaling.laws.plot.save); -> the PNG path."""
  from scaling.laws import plot
  return plot.save(fig, sweep_dir, name)[0]


def ci_text(f: dict, name: str, digits: int = 3) -> str:
  """'0.0712 [0.061, 0.083]' for a fitted parameter (params or derived) with its 95 % interval."""
  v = f["params"].get(name, f.get("derived", {}).get(name))
  lo, hi = f.get("ci", {}).get(name, [None, None])
  band = f" [{lo:.{digits}g}, {hi:.{digits}g}]" if lo is not None and np.isfinite(lo) else " [no CI]"
  return f"{v:.{digits + 1}g}{band}"


def finish(args: Args, fit: dict, lines: list[str], figures: list[str]) -> None:
  """Prints the fit table, the experiment's comparison lines and the paths it wrote."""
  print()
  print(fit_lib.format_table(fit))
  print("\n".join(lines))
  print()
  for p in [os.path.join(args.sweep_dir, "fit.json")] + figures:
    print(f"wrote {p}")
  print(f"results: scaling.results.load({args.sweep_dir!r})", flush=True)


def load_curves(sweep_dir: str, run_ids) -> pd.DataFrame:
  """Per-step metrics of these runs (results.load_curves, restricted to the experiment's runs)."""
  cv = results.load_curves(sweep_dir)
  return cv[cv["run_id"].isin(set(run_ids))].reset_index(drop=True)
