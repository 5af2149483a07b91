"""The prediction ledger: SWEEP_DIR/predictions.jsonl, one forecast per line (scaling/laws/predict.py
writes them), scored against the runs that later train at the forecast's (N, D).

A line holds what was forecast (`family`, `x`: the size column, `N`, `D`, `loss`, the 95 % predictive
interval `lo`, `hi`, the law, the runs the fit came from, the code version) and, once scored, `actual` (the
seed mean of the best setting of the matching runs), `actual_runs`, `error` (loss / actual - 1) and `inside`
(lo <= actual <= hi). A run matches a forecast when its size and tokens are within RTOL of the forecast's
(relative; tokens also within one training step, since a run trains whole steps), it completed, and it was
not one of the runs the forecast was fitted on. RTOL is 2 %: sizes are exact parameter counts, and two
adjacent rungs of a ladder differ by far more (sizes.from_params lands 1-30 % from a target).

Appends and rewrites (scoring) hold an exclusive flock on SWEEP_DIR/.predictions.lock; an append is one
write() of one line; a rewrite goes through a temp file and a rename, so readers never see half a ledger.
No jax here: the sweep runner scores the ledger after every sweep.
"""

import logging
import contextlib
import fcntl
import json
import math
import os
import time

import numpy as np
import pandas as pd

from scaling import io
from scaling.sweep import results
from scaling import errors

log = logging.getLogger(__name__)

LEDGER = "predictions.jsonl"
RTOL = 0.02
SCORED = ("actual", "actual_runs", "error", "inside", "scored_at")


def path(sweep_dir: str) -> str:
  return os.path.join(sweep_dir, LEDGER)


@contextlib.contextmanager
def _locked(sweep_dir: str):
  with open(os.path.join(sweep_dir, ".predictions.lock"), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _line(record: dict) -> str:
  return json.dumps(record, sort_keys=True, default=io._default, allow_nan=False) + "\n"


def read(sweep_dir: str) -> list[dict]:
  """Every forecast of SWEEP_DIR, in the order made ([] when there is no ledger)."""
  return io.read_jsonl(path(sweep_dir))


def append(sweep_dir: str, record: dict) -> dict:
  """Appends `record` as the next line; returns it with its `index` (0-based line number)."""
  with _locked(sweep_dir):
    record = {**record, "index": len(read(sweep_dir))}
    data = _line(record).encode()
    fd = os.open(path(sweep_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
      os.write(fd, data)
      os.fsync(fd)
    finally:
      os.close(fd)
  return record


def entry(spec: str) -> dict:
  """'SWEEP_DIR[:INDEX]' (INDEX an integer or 'last', the default) -> that forecast's line, with `ledger`
  (the sweep dir). A sweep config's `forecast` field names one this way (ladders.py)."""
  where, _, which = str(spec).rpartition(":") if ":" in str(spec) else (str(spec), "", "last")
  rows = read(where) if os.path.isdir(where) else None
  if rows is None:
    raise errors.ConfigError(f"forecast: {where!r} is not a sweep directory; allowed: SWEEP_DIR[:INDEX|:last] of a "
                     "sweep with forecasts (`scaling predict`)")
  if not rows:
    raise errors.ConfigError(f"forecast: {path(where)!r} holds no forecast; allowed: a sweep that `scaling predict` wrote to")
  if which == "last":
    return {**rows[-1], "ledger": os.path.abspath(where)}
  try:
    i = int(which)
  except ValueError:
    i = -1
  if not 0 <= i < len(rows):
    raise errors.ConfigError(f"forecast: index {which!r}; allowed: 'last' or 0..{len(rows) - 1}")
  return {**rows[i], "ledger": os.path.abspath(where)}


def _match(rec: dict, df: pd.DataFrame, rtol: float) -> pd.DataFrame:
  """Completed runs of the forecast's family at its (N, D), not among the runs it was fitted on."""
  done = df[(df["status"] == "completed") & (df["family"] == rec["family"])]
  done = done[~done["run_id"].astype(str).isin(rec.get("runs", []))]
  n = pd.to_numeric(done.get(rec["x"], pd.Series(np.nan, done.index)), errors="coerce")
  d = pd.to_numeric(done["tokens"], errors="coerce")
  step = d / pd.to_numeric(done.get("steps", pd.Series(np.nan, done.index)), errors="coerce")
  return done[((n / rec["N"] - 1).abs() <= rtol) & ((d - rec["D"]).abs() <= np.fmax(rtol * rec["D"], step))]


def score_records(records: list[dict], df: pd.DataFrame, rtol: float = RTOL) -> list[dict]:
  """`records` with the scoring fields set where a run matches (module docstring); others unchanged."""
  out = []
  for rec in records:
    rec = dict(rec)
    m = _match(rec, df, rtol) if len(df) else df
    loss = rec.get("loss_column", "eval_loss")
    pts = results.best_points(m.assign(point=results.point_ids(m)), loss) if len(m) else m
    if len(pts):
      # Several points match only when two ladders share a size: the one nearest the forecast's N.
      p = pts.iloc[int(np.argmin(np.abs(np.log(pd.to_numeric(pts[rec["x"]]).to_numpy() / rec["N"]))))]
      ids = sorted(m[(results.point_ids(m) == p["point"]) & m["is_best"].astype(bool)]["run_id"].astype(str))
      actual = float(p[loss])
      if math.isfinite(actual):
        rec.update(actual=actual, actual_runs=ids, error=rec["loss"] / actual - 1,
                   inside=bool(rec["lo"] <= actual <= rec["hi"]), scored_at=time.time())
    out.append(rec)
  return out


def score(sweep_dir: str, df: pd.DataFrame | None = None, rtol: float = RTOL) -> list[dict]:
  """Scores SWEEP_DIR's ledger against `df` (default: results.load(SWEEP_DIR)) and rewrites it when a line
  changed; returns every line. No ledger: []."""
  if not os.path.exists(path(sweep_dir)):
    return []
  if df is None:
    df = results.load(sweep_dir)
  with _locked(sweep_dir):
    before = read(sweep_dir)
    after = score_records(before, df, rtol)
    changed = [a for a, b in zip(after, before) if {k: a.get(k) for k in SCORED[:4]} != {k: b.get(k) for k in SCORED[:4]}]
    if changed:
      io.atomic_write_text(path(sweep_dir), "".join(_line(r) for r in after))
  return after


def score_sweep(sweep_dir: str, df: pd.DataFrame, announce: bool = True) -> list[dict]:
  """After a sweep: its own ledger, and the ledgers its forecast members came from (tag `forecast_ledger`),
  scored against its runs; prints one line per forecast scored when `announce`."""
  ledgers = {os.path.abspath(sweep_dir)}
  if "forecast_ledger" in df.columns:
    ledgers |= {os.path.abspath(str(p)) for p in df["forecast_ledger"].dropna().unique() if os.path.isdir(str(p))}
  scored = []
  for d in sorted(ledgers):
    for r in score(d, df):
      if "actual" in r and set(r.get("actual_runs", [])) & set(map(str, df["run_id"])):
        scored.append(r)
        if announce:
          log.info(f"forecast {d}:{r['index']}: {describe(r)}")
  return scored


def describe(r: dict) -> str:
  head = f"{r['family']} {r['x']}={r['N']:.4g} D={r['D']:.4g}: forecast {r['loss']:.4f} [{r['lo']:.4f}, {r['hi']:.4f}]"
  if "actual" not in r:
    return head + ", not trained yet"
  return head + f", actual {r['actual']:.4f} ({100 * r['error']:+.2f}%, {'inside' if r['inside'] else 'OUTSIDE'})"


def format_table(records: list[dict]) -> str:
  """One row per forecast: what, the interval, and how it scored."""
  if not records:
    return "no forecasts yet (`scaling predict SWEEP_DIR --N=... --D=...` makes one)\n"
  rows = [{"#": r["index"], "family": r["family"], "law": r.get("fit_key", r.get("law")),
           "N": f"{r['N']:.4g}", "D": f"{r['D']:.4g}", "forecast": f"{r['loss']:.4f}",
           "95% interval": f"[{r['lo']:.4f}, {r['hi']:.4f}]",
           "actual": f"{r['actual']:.4f}" if "actual" in r else "-",
           "error": f"{100 * r['error']:+.2f}%" if "actual" in r else "-",
           "inside": ("yes" if r["inside"] else "NO") if "actual" in r else "-"} for r in records]
  scored = [r for r in records if "actual" in r]
  tail = (f"\n{len(scored)} of {len(records)} scored, {sum(r['inside'] for r in scored)} inside their interval"
          if scored else f"\n0 of {len(records)} scored")
  return pd.DataFrame(rows).to_string(index=False) + tail + "\n"
