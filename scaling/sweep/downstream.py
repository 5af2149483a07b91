"""Pretrain a ladder, then fine-tune every member: does downstream quality scale too?

A sweep config with a `finetune` section (configs/sweeps/finetune_ladder.py) runs in two stages:
  1. SWEEP_DIR: the pretraining ladder, an ordinary sweep (`scaling fit` / `scaling plot` read it as
     usual; fine-tune rows never mix into the LM-loss fits).
  2. SWEEP_DIR/finetune: a sweep directory with, for each completed pretraining run P, the run
     `ft-P-fsK` (init_from P) and, with `finetune.scratch`, `scratch-P-fsK` (the same architecture from
     random init: what pretraining buys at that size). Their tags name the pretraining run and carry its
     params / tokens / FLOPs / losses (`pretrain_*`), so each row is self-contained.
After stage 2 every completed fine-tune is scored on the *test* split (`finetune.evaluate`: loss,
accuracy, balanced accuracy), cached in SWEEP_DIR/finetune/test_scores.json (derived, recomputed when a
run's result changes). Balanced accuracy is the headline metric: module_cls holds out whole files, so the
class mix of validation/test differs from train's and plain accuracy mostly rewards the large classes.
`load(SWEEP_DIR)` returns both stages as one DataFrame (`stage` = pretrain | finetune, `init` =
pretrained | scratch, `test_*` scores); `plot(SWEEP_DIR)` writes figures/downstream.png (downstream
balanced accuracy and loss vs pretraining params and vs pretraining loss). Relaunching resumes both
stages (completed runs are skipped).
"""

import logging
import os

import matplotlib
import ml_collections
import pandas as pd

from scaling import config as config_lib
from scaling import io, runid
from scaling.models import registry
from scaling.sweep import executors, results, runner, worker
from scaling.train import finetune
from scaling import errors

log = logging.getLogger(__name__)

FINETUNE_DIR = "finetune"
FIGURE = "downstream.png"
SCORES = "test_scores.json"
INITS = ("pretrained", "scratch")
PRETRAIN_FIELDS = ("params", "params_nonembed", "tokens", "flops", "eval_loss", "train_loss")


def defaults() -> ml_collections.ConfigDict:
  """The `finetune` section of a sweep config."""
  f = ml_collections.ConfigDict()
  f.overrides = ml_collections.ConfigDict()  # nested run-config fields over config.finetune_default
  f.scratch = True    # also fine-tune each architecture from random init (the no-pretraining baseline)
  f.seeds = (0,)      # fine-tuning seeds (head init and data order) per pretraining run
  f.lr_ratio = 0.0    # > 0: fine-tune peak lr = lr_ratio x the member's pretraining lr; 0: overrides' lr
  f.test_batches = 0  # batches of the test split each fine-tune is scored on (0: all of it)
  return f


def is_downstream(s: ml_collections.ConfigDict) -> bool:
  return "finetune" in s and s.finetune is not None


def validate(s: ml_collections.ConfigDict) -> None:
  f = s.finetune
  registry.load(s)
  if not registry.is_neural(s.family) or "module_cls" not in registry.get(s.family).tasks:
    ok = [n for n in registry.names() if "module_cls" in registry.get(n).tasks]
    raise errors.ConfigError(f"family: {s.family!r} not allowed with a finetune section; allowed: {', '.join(ok)}")
  if not isinstance(f.get("scratch"), bool):
    raise errors.ConfigError(f"finetune.scratch: got {f.get('scratch')!r}; allowed: True or False")
  if not f.get("seeds") or any(isinstance(x, bool) or not isinstance(x, int) for x in f.seeds):
    raise errors.ConfigError(f"finetune.seeds: got {f.get('seeds')!r}; allowed: a non-empty tuple of integers")
  tb = f.get("test_batches")
  if isinstance(tb, bool) or not isinstance(tb, int) or tb < 0:
    raise errors.ConfigError(f"finetune.test_batches: got {tb!r}; allowed: an integer >= 0 (0: the whole test split)")
  r = f.get("lr_ratio")
  if isinstance(r, bool) or not isinstance(r, (int, float)) or r < 0:
    raise errors.ConfigError(f"finetune.lr_ratio: got {r!r}; allowed: a number >= 0 (0: the overrides' train.lr)")


def finetune_config(s: ml_collections.ConfigDict, pre_dir: str, pre_row: dict, init: str,
                    seed: int) -> ml_collections.ConfigDict:
  """The finalized, validated run config fine-tuning the pretraining run in `pre_dir`."""
  f, pc = s.finetune, config_lib.run_config(pre_dir)
  c = config_lib.finetune_default("nano")
  # Where the pretraining data and devices were is where the fine-tune's are, unless overridden.
  c.data.data_dir, c.data.tokenizer = pc.data.get("data_dir", ""), pc.data.get("tokenizer", "byte")
  c.mesh.update(pc.mesh.to_dict())
  c.update(f.overrides.to_dict())
  c.seed = int(seed)
  if init == "pretrained":
    c.init_from = os.path.abspath(pre_dir)
  else:  # the pretrained architecture from random init (finalize adds the head)
    c.init_from = ""
    c.model = ml_collections.ConfigDict({k: v for k, v in pc.model.to_dict().items()
                                         if k not in config_lib.HEAD_FIELDS})
    c.size = pc.size
  if f.lr_ratio:
    c.train.lr = float(f.lr_ratio * pc.train.lr)
  c.train.progress = False
  with c.tags.unlocked():
    c.tags.update(dict(sweep=s.name, stage="finetune", init=init, pretrain_run=pre_row["run_id"],
                       pretrain_size=pc.size, pretrain_lr=float(pc.train.lr)))
    for k in PRETRAIN_FIELDS:
      v = pre_row.get(k)
      c.tags[f"pretrain_{k}"] = None if v is None or pd.isna(v) else float(v)
  c = config_lib.finalize(c)
  config_lib.validate(c)
  return c


def finetune_runs(s: ml_collections.ConfigDict, sweep_dir: str, pre_ids: list[str]) -> list[tuple]:
  """[(run_id, config)] of stage 2 for the completed pretraining runs among `pre_ids`."""
  pre = results.load(sweep_dir)
  pre = pre[pre["run_id"].isin(pre_ids)]
  skipped = pre[pre["status"] != "completed"]
  for rid, status in zip(skipped["run_id"], skipped["status"]):
    log.info(f"{s.name}: not fine-tuning {rid} (pretraining {status})")
  out = []
  for row in pre[pre["status"] == "completed"].to_dict("records"):
    pre_dir = os.path.join(sweep_dir, "runs", row["run_id"])
    for init in INITS if s.finetune.scratch else INITS[:1]:
      for seed in s.finetune.seeds:
        run_id = f"{'ft' if init == 'pretrained' else 'scratch'}-{row['run_id']}-fs{seed}"
        out.append((run_id, finetune_config(s, pre_dir, row, init, seed)))
  return out


def run_sweep(s: ml_collections.ConfigDict, sweep_dir: str, *, executor: str | None = None, workers: int = 0,
              retry_failed: bool = False, progress: bool = True, reuse_from: tuple[str, ...] = ()) -> pd.DataFrame:
  """Both stages (see module doc); -> `load(sweep_dir)` restricted to this sweep's runs."""
  s = ml_collections.ConfigDict(s.to_dict())
  validate(s)
  pre_df = runner.run_sweep(s, sweep_dir, executor=executor, workers=workers, retry_failed=retry_failed,
                            progress=progress, reuse_from=reuse_from)  # the pretraining stage only
  if executor:
    s.executor.kind = executor
  if workers:
    s.executor.workers = int(workers)
  sweep_dir = os.path.abspath(sweep_dir)
  ft_dir = os.path.join(sweep_dir, FINETUNE_DIR)
  runs = finetune_runs(s, sweep_dir, list(pre_df["run_id"]))
  os.makedirs(os.path.join(ft_dir, "runs"), exist_ok=True)
  runner.check_conflicts(ft_dir, runs, retry_failed)
  runner.write_sweep_json(ft_dir, s, runs)
  todo = [(r, c) for r, c in runs
          if (res := worker.read_result(os.path.join(ft_dir, "runs", r))) is None
          or (retry_failed and res.get("status") != "completed")]
  if todo:
    log.info(f"{s.name}: fine-tuning {len(todo)} of {len(runs)} runs into {ft_dir}")
    ex = executors.make(s.executor, ft_dir, retry_failed)
    bar = runner.Progress(ft_dir, len(runs), len(runs) - len(todo), progress, s.executor.lock_timeout_s)
    ended: list[str] = []

    def on_done(t, outcome):
      ended.extend(t.run_ids)
      bar.ended(t.run_ids, outcome, len(runs) - len(todo) + len(ended))

    try:
      ex.run([executors.Task([r], [runid.plain(c)]) for r, c in todo], lambda t: bar.started(t.run_ids), on_done)
    finally:
      bar.close()
  score_test(ft_dir, [r for r, _ in runs], max_batches=s.finetune.test_batches)
  df = load(sweep_dir)
  ids = set(pre_df["run_id"]) | {r for r, _ in runs}
  return df[df["run_id"].isin(ids)].reset_index(drop=True)


def score_test(ft_dir: str, run_ids: list[str], split: str = "test", max_batches: int = 0) -> dict:
  """{run_id: test-split scores} of the completed fine-tunes, computing only what the cache lacks."""
  path = os.path.join(ft_dir, SCORES)
  cache = io.read_json(path) if os.path.exists(path) else {}
  for r in run_ids:
    res = worker.read_result(os.path.join(ft_dir, "runs", r))
    if res is None or res.get("status") != "completed":
      continue
    # A re-run changes its result, a different test_batches the sample: score it again then.
    stamp = [res.get("steps"), res.get("wall_time_s"), max_batches]
    if cache.get(r, {}).get("stamp") != stamp:
      ev = finetune.evaluate(os.path.join(ft_dir, "runs", r), split, max_batches)
      cache[r] = {"stamp": stamp, f"{split}_loss": ev["loss"], f"{split}_accuracy": ev["accuracy"],
                  f"{split}_balanced_accuracy": ev["balanced_accuracy"], f"{split}_examples": ev["examples"]}
      io.atomic_write_json(path, cache)
  return cache


def load(sweep_dir: str) -> pd.DataFrame:
  """Pretraining and fine-tune runs as one DataFrame: `stage`, `init`, and for fine-tune rows the
  `pretrain_*` columns of the run they started from (scratch rows name the run whose architecture
  they share)."""
  pre = results.load(sweep_dir)
  pre["stage"] = "pretrain"
  ft_dir = os.path.join(sweep_dir, FINETUNE_DIR)
  if not os.path.isdir(os.path.join(ft_dir, "runs")) or not os.listdir(os.path.join(ft_dir, "runs")):
    return pre
  ft = results.load(ft_dir)
  ft["stage"] = "finetune"
  path = os.path.join(ft_dir, SCORES)
  if os.path.exists(path):
    scores = pd.DataFrame.from_dict(io.read_json(path), orient="index").drop(columns="stamp")
    ft = ft.merge(scores, left_on="run_id", right_index=True, how="left")
  return pd.concat([pre, ft], ignore_index=True)


METRICS = (("test_balanced_accuracy", "balanced accuracy (test)"), ("test_loss", "loss (test)"),
           ("eval_accuracy", "accuracy (validation)"), ("eval_loss", "loss (validation)"))


def table(df: pd.DataFrame) -> pd.DataFrame:
  """One row per pretraining run: its params and eval loss, and per init (pretrained | scratch) the
  fine-tuned metrics (means over fine-tuning seeds)."""
  ft = df[(df["stage"] == "finetune") & (df["status"] == "completed")] if "stage" in df else df.iloc[:0]
  if ft.empty:
    return pd.DataFrame()
  metrics = [m for m, _ in METRICS if m in ft]
  agg = ft.groupby(["pretrain_run", "pretrain_params_nonembed", "pretrain_eval_loss", "init"], dropna=False)[metrics].mean()
  wide = agg.unstack("init")
  wide.columns = [f"{m}_{i}" for m, i in wide.columns]
  return wide.reset_index().sort_values("pretrain_params_nonembed").reset_index(drop=True)


def plot(sweep_dir: str, out_dir: str | None = None) -> str:
  """figures/downstream.png: fine-tuned test balanced accuracy (top) and test loss (bottom; validation
  metrics when test scores are missing) vs the pretraining model's non-embedding params (left, with the
  from-scratch baseline) and vs its pretraining eval loss (right)."""
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import NullFormatter
  t = table(load(sweep_dir))
  if t.empty:
    raise errors.ConfigError(f"sweep_dir: {sweep_dir!r} has no completed fine-tune runs under {FINETUNE_DIR}/")
  rows = [(m, label) for m, label in METRICS if f"{m}_pretrained" in t]
  rows = [rows[0], next(r for r in rows if r[0].endswith("loss"))]  # headline accuracy + its loss
  out_dir = out_dir or os.path.join(sweep_dir, "figures")
  os.makedirs(out_dir, exist_ok=True)
  fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), constrained_layout=True)
  for r, (metric, label) in enumerate(rows):
    ax = axes[r, 0]
    for init, style in (("pretrained", "o-"), ("scratch", "s--")):
      if f"{metric}_{init}" in t:
        ax.plot(t["pretrain_params_nonembed"], t[f"{metric}_{init}"], style, label=f"fine-tuned from {init}")
    ax.set(xscale="log", xlabel="non-embedding params N of the pretrained model", ylabel=label)
    ax.set_xticks(t["pretrain_params_nonembed"], [f"{n:.2g}" for n in t["pretrain_params_nonembed"]])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend()
    ax = axes[r, 1]
    ax.plot(t["pretrain_eval_loss"], t[f"{metric}_pretrained"], "o-")
    for x, y, n in zip(t["pretrain_eval_loss"], t[f"{metric}_pretrained"], t["pretrain_params_nonembed"]):
      ax.annotate(f"N={n:.2g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="pretraining eval loss (nats/token)", ylabel=label)
    ax.invert_xaxis()  # better pretraining to the right, as bigger models are on the left panels
    ax.margins(x=0.15, y=0.1)
  fig.suptitle(f"Downstream quality vs pretraining ({os.path.basename(os.path.normpath(sweep_dir))})")
  path = os.path.join(out_dir, FIGURE)
  tmp = os.path.join(out_dir, f".tmp-{FIGURE}")
  fig.savefig(tmp, dpi=120, format="png")
  plt.close(fig)
  os.replace(tmp, path)  # readers never see half a figure
  return path


def main(config: ml_collections.ConfigDict, sweep_dir: str, *, executor: str | None = None, workers: int = 0,
         retry_failed: bool = False, reuse_from: tuple[str, ...] = ()) -> pd.DataFrame:
  """`scaling sweep` for a config with a `finetune` section: both stages, a summary, the figure."""
  import sys
  df = run_sweep(config, sweep_dir, executor=executor, workers=workers, retry_failed=retry_failed,
                 reuse_from=reuse_from)
  print(runner.summary(df))
  t = table(df)
  if not t.empty:
    print(t.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {plot(sweep_dir)}")
  if (df["status"] == "failed").any():
    sys.exit(1)
  return df
