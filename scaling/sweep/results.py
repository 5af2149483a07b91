"""Run directories -> tidy pandas DataFrames. The run directories are the only source of truth.

A sweep directory holds `sweep.json` and `runs/<run_id>/` with `config.json`, `metrics.jsonl` and,
written last and atomically, `result.json`. `load` gives one row per run: result.json's fields, every
config.json leaf as a dotted column (`model.d_model`, `train.lr`, `data.batch_size`, ...) with short
aliases for the common ones (ALIASES), and the throughput summary (THROUGHPUT, NA where a run has none).
`load_curves` gives one row per logged step.
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
# Short names for the config fields one plots against most (NA where a family has no such field: the DNN
# has width / depth, not d_model / n_layers).
ALIASES = {"d_model": "model.d_model", "n_layers": "model.n_layers", "n_heads": "model.n_heads",
           "lr": "train.lr", "batch_size": "data.batch_size", "seq_len": "data.seq_len"}
# The trainer's throughput summary in result.json.
THROUGHPUT = ["tokens_per_s", "mfu", "step_time_s", "compile_time_s", "peak_bytes_per_device"]


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


def load(sweep_dir: str, *, status: str | None = None) -> pd.DataFrame:
  """One row per run. `status='completed'` keeps finished runs only."""
  rows = [load_run(d) for d in _run_dirs(sweep_dir)]
  df = pd.DataFrame(rows)
  for c in COLUMNS + THROUGHPUT + list(ALIASES):
    if c not in df.columns:
      df[c] = pd.NA
  df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
  if status is not None:
    df = df[df["status"] == status]
  return df.sort_values(["family", "params", "tokens", "run_id"], na_position="last").reset_index(drop=True)


def load_curves(sweep_dir: str) -> pd.DataFrame:
  """Per-step metrics of every run (metrics.jsonl), with run_id/family/size/params columns joined."""
  frames = []
  for d in _run_dirs(sweep_dir):
    rows = io.read_jsonl(os.path.join(d, "metrics.jsonl"))
    if not rows:
      continue
    f = pd.DataFrame(rows)
    info = load_run(d)
    for k in ("run_id", "family", "size", "params", "params_nonembed"):
      f[k] = info.get(k)
    frames.append(f)
  if not frames:
    return pd.DataFrame(columns=["run_id", "step"])
  return pd.concat(frames, ignore_index=True)
