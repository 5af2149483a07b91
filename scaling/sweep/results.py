"""Run directories -> tidy pandas DataFrames. The run directories are the only source of truth.

A sweep directory holds `sweep.json` and `runs/<run_id>/` with `config.json`, `metrics.jsonl` and,
written last and atomically, `result.json`. `load` gives one row per run; `load_curves` one row per
logged step.
"""

import glob
import os

import pandas as pd

from scaling import io

# Columns every row has, in this order (result.json may add more, e.g. eval_accuracy).
COLUMNS = [
    "run_id", "family", "size", "status", "params", "params_embed", "params_nonembed", "tokens",
    "flops", "train_loss", "eval_loss", "steps", "wall_time_s",
]


def _run_dirs(path: str) -> list[str]:
  """`path` may be a sweep dir (with runs/) or a single run dir (with config.json)."""
  if os.path.isdir(os.path.join(path, "runs")):
    return sorted(d for d in glob.glob(os.path.join(path, "runs", "*")) if os.path.isdir(d))
  if os.path.exists(os.path.join(path, "config.json")) or os.path.exists(os.path.join(path, "result.json")):
    return [path]
  raise FileNotFoundError(f"sweep_dir: {path!r} has neither runs/ nor a run's config.json; allowed: a directory "
                          "written by `scaling sweep` or `scaling train`")


def load_run(run_dir: str) -> dict:
  """One run as a flat dict: result.json fields (+ `tags` expanded); 'incomplete' when no result yet."""
  result_path = os.path.join(run_dir, "result.json")
  if os.path.exists(result_path):
    row = dict(io.read_json(result_path))
  else:
    row = {"status": "incomplete"}
    cfg_path = os.path.join(run_dir, "config.json")
    if os.path.exists(cfg_path):
      cfg = io.read_json(cfg_path)
      row.update(family=cfg.get("family"), size=cfg.get("size"), tags=cfg.get("tags", {}))
  row.update(row.pop("tags", None) or {})
  row["run_id"] = os.path.basename(os.path.normpath(run_dir))
  return row


def load(sweep_dir: str, *, status: str | None = None, trunks: bool = False) -> pd.DataFrame:
  """One row per run. `status='completed'` keeps finished runs only. The constant-lr trunks of cooldown
  branches (tag role='trunk': not a budget's result) only with `trunks=True`."""
  rows = [load_run(d) for d in _run_dirs(sweep_dir)]
  if not trunks:
    rows = [r for r in rows if r.get("role") != "trunk"]
  df = pd.DataFrame(rows)
  for c in COLUMNS:
    if c not in df.columns:
      df[c] = pd.NA
  df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
  if status is not None:
    df = df[df["status"] == status]
  return df.sort_values(["family", "params", "tokens", "run_id"], na_position="last").reset_index(drop=True)


def planned_flops_per_token(run_dir: str) -> float | None:
  """Training FLOPs per token of a run without a result yet, from its config.json by the loop's own
  accounting (loop.plan); None where that cannot be known (no config, not a neural run)."""
  from scaling import config as config_lib  # local: jax-heavy, and only runs in flight need it
  cfg_path = os.path.join(run_dir, "config.json")
  cfg = io.read_json(cfg_path) if os.path.exists(cfg_path) else {}
  if cfg.get("family") not in config_lib.NEURAL:
    return None
  import ml_collections
  from scaling.sweep import ladders
  try:
    p = ladders.plan(ml_collections.ConfigDict(cfg))  # config.json holds the finalized config
  except (ValueError, KeyError, TypeError, AttributeError):  # a config the loop rejected: it has no FLOPs
    return None
  return p["flops_per_step"] / max(p["tokens_per_step"], 1)


def _flops_per_token(info: dict, run_dir: str) -> float | None:
  if info.get("flops_per_token"):
    return float(info["flops_per_token"])
  if info.get("flops") and info.get("tokens"):  # result.json from before flops_per_token was recorded
    return float(info["flops"]) / float(info["tokens"])
  return planned_flops_per_token(run_dir) if info.get("status") == "incomplete" else None


def load_curves(sweep_dir: str) -> pd.DataFrame:
  """Per-step metrics of every run (metrics.jsonl), with run_id/family/size/params columns joined and
  `flops` = tokens x the run's training FLOPs per token (result.json's flops_per_token, or the config's
  accounting for a run still in flight; NaN where neither exists, e.g. classic baselines)."""
  frames = []
  for d in _run_dirs(sweep_dir):
    rows = io.read_jsonl(os.path.join(d, "metrics.jsonl"))
    if not rows:
      continue
    f = pd.DataFrame(rows)
    info = load_run(d)
    for k in ("run_id", "family", "size", "params", "params_nonembed"):
      f[k] = info.get(k)
    fpt = _flops_per_token(info, d)
    tokens = pd.to_numeric(f["tokens"], errors="coerce") if "tokens" in f.columns else float("nan")
    f["flops"] = tokens * (float(fpt) if fpt else float("nan"))
    frames.append(f)
  if not frames:
    return pd.DataFrame(columns=["run_id", "step", "tokens", "flops"])
  return pd.concat(frames, ignore_index=True)
