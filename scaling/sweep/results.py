"""Run directories -> tidy pandas DataFrames. The run directories are the only source of truth.

A sweep directory holds `sweep.json` and `runs/<run_id>/` with `config.json`, `metrics.jsonl` and,
written last and atomically, `result.json`. `load` gives one row per run: result.json's fields, every
config.json leaf as a dotted column (`model.d_model`, `train.lr`, `data.batch_size`, ...) with short
aliases for the common ones (ALIASES), and the throughput summary (THROUGHPUT, NA where a run has none).
`load_curves` gives one row per logged step.

Best per point: runs that share a point of the scaling study (`POINT`: ladder, family, parameter
count, training length, unique tokens, training examples) and differ only in learning rate, batch
size, warmup or seed are that point's inner grid. A setting is one (lr, batch size, warmup): `load`
marks every seed of the setting with the lowest mean eval_loss over its seeds `is_best` (the lowest
single run would be a minimum over seed noise, biased low; a setting with a diverged seed is out), and
writes `best_at_edge` on every run of the point: '' when the best lr (and batch size) lies inside the
values tried, else which one sits at which end ('lr largest of 3'): the optimum was not bracketed.
The fits use `best_points`: one row per point, its best setting's loss averaged over the seeds.

Seed noise is data: every run carries its setting's seed statistics (`seeds`: completed seeds,
`eval_loss_mean`, `eval_loss_std`: sample std, NaN with one seed), and `best_points` gives per point the
seed mean (in the loss column), `<loss>_std`, `seeds` and `<loss>_seeds` (the seeds' losses, for
bootstraps that resample seeds).
"""

import glob
import os

import ml_collections
import numpy as np
import pandas as pd

from scaling import io
from scaling.data import pipeline
from scaling.train import budget
from scaling.models import registry

# Columns every row has, in this order (result.json may add more, e.g. eval_accuracy).
COLUMNS = [
    "run_id", "family", "size", "status", "params", "params_embed", "params_nonembed", "tokens",
    "flops", "train_loss", "eval_loss", "steps", "wall_time_s",
]
# What makes a point of the study (`length`: the `budget` tag, else `tokens`); everything else is inner grid.
POINT = ("sweep", "family", "params", "params_nonembed", "length", "unique_tokens", "train_examples")
# Inner-grid hyperparameters checked for the edge (columns: ALIASES below).
HPARAMS = ("lr", "batch_size")
# A point's runs with equal values here are one setting (seeds of it); columns that exist are used.
SETTING = ("lr", "batch_size", "train.warmup_steps", "train.warmup_frac")
TRIED = ("completed", "diverged")  # runs that say how their hyperparameters did (failed / unfinished do not)
# Short names for the config fields one plots against most (NA where a family has no such field: the DNN
# has width / depth, not d_model / n_layers).
ALIASES = {"d_model": "model.d_model", "n_layers": "model.n_layers", "n_heads": "model.n_heads",
           "lr": "train.lr", "batch_size": "data.batch_size", "seq_len": "data.seq_len",
           "unique_tokens": "data.unique_tokens"}
# The trainer's throughput summary in result.json.
THROUGHPUT = ["tokens_per_s", "mfu", "step_time_s", "compile_time_s", "peak_bytes_per_device",
              "device_seconds", "energy_j"]  # energy_j: NVML-measured, NA elsewhere (scaling/train/energy.py)


def _run_dirs(path: str) -> list[str]:
  """`path` may be a sweep dir (with runs/) or a single run dir (with config.json)."""
  if os.path.isdir(os.path.join(path, "runs")):
    return sorted(d for d in glob.glob(os.path.join(path, "runs", "*")) if os.path.isdir(d))
  if os.path.exists(os.path.join(path, "config.json")) or os.path.exists(os.path.join(path, "result.json")):
    return [path]
  raise FileNotFoundError(f"sweep_dir: {path!r} has neither runs/ nor a run's config.json; allowed: a directory "
                          "written by `scaling sweep` or `scaling train`")


def config_columns(cfg: dict) -> dict:
  """config.json as {'model.d_model': 64, 'train.lr': 0.003, ...} (every leaf; tags are columns already)."""
  flat = pd.json_normalize({k: v for k, v in cfg.items() if k != "tags"}, sep=".").iloc[0].to_dict()
  return flat | {a: flat.get(k, pd.NA) for a, k in ALIASES.items()}


def load_run(run_dir: str) -> dict:
  """One run as a flat dict: result.json fields (+ `tags` expanded) and its config's columns; status
  'incomplete' when it has no result yet."""
  result_path = os.path.join(run_dir, "result.json")
  cfg_path = os.path.join(run_dir, "config.json")
  cfg = io.read_json(cfg_path) if os.path.exists(cfg_path) else {}
  if os.path.exists(result_path):
    row = dict(io.read_json(result_path))
  else:
    row = {"status": "incomplete", "family": cfg.get("family"), "size": cfg.get("size"), "tags": cfg.get("tags", {})}
  row.update(row.pop("tags", None) or {})
  row.update({k: v for k, v in config_columns(cfg).items() if k not in row} if cfg else {})
  row["run_id"] = os.path.basename(os.path.normpath(run_dir))
  return row


def loss_unit(df: pd.DataFrame) -> str:
  """'nats/byte' when every run read bytes (data.tokenizer 'byte': one token per byte), else 'nats/token'. A run
  whose config has no data.tokenizer used the default (pipeline.DEFAULTS: 'byte')."""
  default = pipeline.DEFAULTS["tokenizer"]
  tok = df["data.tokenizer"].fillna(default) if "data.tokenizer" in df.columns else pd.Series([default])
  return "nats/byte" if set(tok.astype(str)) <= {"byte"} else "nats/token"


def point_ids(df: pd.DataFrame) -> np.ndarray:
  """An integer per row; rows with the same id are one point's inner grid (see POINT). A frame without
  parameter counts (built by hand) has no way to tell sizes apart: every row is its own point."""
  if not {"params", "params_nonembed"} & set(df.columns):
    return np.arange(len(df))
  cols = {}
  for c in POINT:
    if c == "length":
      budget = pd.to_numeric(df["budget"], errors="coerce") if "budget" in df.columns else None
      tokens = pd.to_numeric(df["tokens"], errors="coerce") if "tokens" in df.columns else pd.Series(np.nan, df.index)
      cols[c] = tokens if budget is None else budget.fillna(tokens)
    elif c in df.columns:
      cols[c] = df[c]
  key = ["|".join(map(str, t)) for t in zip(*(c.tolist() for c in cols.values()))] if cols else [""] * len(df)
  return pd.factorize(pd.Series(key, dtype=object))[0]


def grid_edge(tried, value) -> str:
  """'' when `value` lies strictly inside the distinct values tried (or fewer than 2 were tried),
  else 'smallest of k' / 'largest of k'."""
  v = pd.to_numeric(pd.Series(np.asarray(tried, dtype=object)), errors="coerce").dropna().unique()
  if v.size < 2 or not np.isfinite(value):
    return ""
  if value <= v.min():
    return f"smallest of {v.size}"
  if value >= v.max():
    return f"largest of {v.size}"
  return ""


def mark_best(df: pd.DataFrame, loss: str = "eval_loss") -> pd.DataFrame:
  """A copy of df with `is_best` (every seed of the best setting) and `best_at_edge` (module docstring)."""
  df, loss_col = df.copy(), loss
  pid = point_ids(df)
  loss = pd.to_numeric(df[loss], errors="coerce").to_numpy(dtype=np.float64)
  status = df["status"].to_numpy() if "status" in df.columns else np.full(len(df), "completed")
  ok = (status == "completed") & np.isfinite(loss)
  # A diverged seed counts as an infinite loss: its setting's mean is infinite.
  tried = ok | (status == "diverged")
  setting = pd.factorize(pd.Series(["|".join(map(str, t)) for t in zip(
      *(df[c].tolist() for c in SETTING if c in df.columns), [""] * len(df))], dtype=object))[0]
  is_best, edge = np.zeros(len(df), bool), np.full(len(df), "", dtype=object)
  for g in np.unique(pid):
    rows = np.flatnonzero(pid == g)
    cand = rows[tried[rows]]
    means = {k: np.mean(np.where(ok[cand[setting[cand] == k]], loss[cand[setting[cand] == k]], np.inf))
             for k in np.unique(setting[cand])}
    if not means or not np.isfinite(min(means.values())):
      continue
    best_rows = cand[(setting[cand] == min(means, key=means.get)) & ok[cand]]
    is_best[best_rows] = True
    b = best_rows[0]
    tried_rows = rows[np.isin(status[rows], TRIED)]
    parts = []
    for h in HPARAMS:
      if h in df.columns:
        where = grid_edge(df[h].to_numpy()[tried_rows], pd.to_numeric(pd.Series([df[h].iloc[b]]), errors="coerce")[0])
        if where:
          parts.append(f"{h} {where}")
    edge[rows] = "; ".join(parts)
  df["is_best"], df["best_at_edge"] = is_best, edge
  seeds = pd.Series(np.where(ok, loss, np.nan), index=df.index).groupby(pid * (setting.max(initial=0) + 1) + setting)
  df["seeds"] = seeds.transform("count").astype(int)
  df[f"{loss_col}_mean"], df[f"{loss_col}_std"] = seeds.transform("mean"), seeds.transform("std")
  return df


def best_points(df: pd.DataFrame, loss: str = "eval_loss") -> pd.DataFrame:
  """One row per point: its best setting (the `is_best` runs), with `loss` the mean over that setting's
  seeds, `<loss>_std` their sample std (NaN with one seed), `seeds` their number and `<loss>_seeds` their
  losses (a tuple, in run-id order); the other columns are its first seed's run."""
  best = df[df["is_best"].astype(bool)] if "is_best" in df.columns else mark_best(df, loss).query("is_best")
  pid = pd.Series(point_ids(best), index=best.index)
  by = pd.to_numeric(best[loss], errors="coerce").groupby(pid)
  order = best["run_id"].astype(str) if "run_id" in best.columns else pd.Series(np.arange(len(best)), best.index)
  per_seed = pd.to_numeric(best[loss], errors="coerce")[order.sort_values(kind="stable").index].groupby(pid).agg(tuple)
  out = best.assign(**{loss: by.transform("mean"), f"{loss}_std": by.transform("std"),
                       "seeds": pid.map(pid.value_counts()), f"{loss}_seeds": pid.map(per_seed)})
  return out[~pid.duplicated().to_numpy()]


def load(sweep_dir: str, *, status: str | None = None, trunks: bool = False) -> pd.DataFrame:
  """One row per run (config.json's columns, is_best and best_at_edge). `status='completed'` keeps finished
  runs only. The constant-lr trunks of cooldown branches (tag role='trunk': not a budget's result) only
  with `trunks=True`."""
  rows = [load_run(d) for d in _run_dirs(sweep_dir)]
  if not trunks:
    rows = [r for r in rows if r.get("role") != "trunk"]
  df = pd.DataFrame(rows)
  for c in COLUMNS + THROUGHPUT + list(ALIASES):
    if c not in df.columns:
      df[c] = pd.NA
  df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
  df = mark_best(df)  # before the status filter: failed / diverged runs still count as tried
  if status is not None:
    df = df[df["status"] == status]
  return df.sort_values(["family", "params", "tokens", "run_id"], na_position="last").reset_index(drop=True)


def planned_flops_per_token(run_dir: str) -> float | None:
  """Training FLOPs per token of a run without a result yet, from its config.json by the loop's own
  accounting (budget.plan); None where that cannot be known (no config, not a neural run)."""
  cfg_path = os.path.join(run_dir, "config.json")
  cfg = io.read_json(cfg_path) if os.path.exists(cfg_path) else {}
  if not registry.is_neural_config(cfg):
    return None
  try:
    p = budget.plan(ml_collections.ConfigDict(cfg))  # config.json holds the finalized config
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
