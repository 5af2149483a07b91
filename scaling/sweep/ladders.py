"""Sweep configs -> run configs: parameter ladders, IsoFLOP grids and data ladders.

A sweep config is an ml_collections file with `get_config(arg='')` that starts from `defaults()` and
sets what it needs (every field exists in `defaults()`, so any of them can be overridden on the command
line: `--config.sizes="('nano', 3e5)" --config.overrides.train.lr=1e-3`):

  name            the sweep's name (a tag on every run)
  kind            'params'  parameter ladder: one run per `sizes` x `seeds` x `lr_multipliers`;
                            tokens = `tokens` (fixed) or `tokens_per_param` x N (Chinchilla's ~20)
                  'isoflop' IsoFLOP grid (Chinchilla approach 2): for each budget C in `budgets`,
                            `sizes_per_budget` sizes log-spaced over [N*/spread, N* x spread] around
                            N* = sqrt(C / (6 r)) (r = `tokens_per_param`), each trained for
                            train.flops = C (exact accounting FLOPs; steps = round(C / FLOPs per step))
                  'data'    data ladder: one `size`, one run per tokens in `token_budgets`
                  'grid'    N x D grid (Chinchilla approach 3): every size in `sizes` at every `token_budgets`
  branch          '' (separate runs) or 'cooldown': a data / isoflop / grid ladder as cooldown branches off
                  one constant-lr trunk per size (scaling/sweep/branches.py), each cooling down over the
                  last `cooldown_frac` (0.2) of its budget with shape `cooldown_shape` ('linear' | '1-sqrt')
  family          gpt | transformer | dnn, or a classic baseline svm | tree | forest | logreg | ngram
                  (baselines run through `scaling.baselines.run.run`; their budget is data.train_examples)
  task            '' (the family's default) or a data task (lm, span, prefix_lm, classify)
  sizes           names ('tiny', see scaling/models/sizes.py) or target non-embedding parameter counts
                  (3e5 -> `sizes.from_params`); `logspace(lo, hi, n)` makes a log-spaced tuple
  size            the data ladder's one size (a name or a number as a string, e.g. '3e5')
  param_count     which N `tokens_per_param` multiplies and numeric sizes target: 'nonembed' (Kaplan's
                  N) or 'total' (numeric sizes always target non-embedding params)
  seeds, lr_multipliers    every member is repeated per seed and per LR multiplier (tags.lr_mult)
  batch_sizes     () or sequences per step: every neural member is also repeated per batch size (run ids
                  `-b16`; train.eval_batches scaled so that every member is held out on the eval windows
                  of data.batch_size x train.eval_batches); with seeds and lr_multipliers a point's inner grid
  rule            per-size optimizer rule, applied after `overrides`:
                    lr = rule.lr * (rule.width / width) ** rule.lr_exponent   (width: d_model or DNN width;
                    lr_exponent 1 is the 1/width rule, 0 a fixed lr), times the member's lr multiplier;
                    warmup: rule.warmup_steps (>= 0) or rule.warmup_frac of the run's steps;
                    batch: rule.batch_size (0: keep data.batch_size) x (N / rule.batch_params) **
                    rule.batch_exponent, rounded to a multiple of rule.batch_multiple, clipped to
                    [batch_min, batch_max]
  overrides       nested fields applied to every run's `scaling.config.base(family, size)` config
  ladders         several ladders in one sweep (e.g. GPT + DNN-LM + n-gram on one corpus): a dict name ->
                  sweep config (each from `defaults()`); when non-empty the top-level ladder fields are
                  ignored, `executor` and `pack` are the top level's, and each run is tagged with its
                  ladder's name as `sweep` (run ids must stay distinct across ladders)
  forecast        '' or 'SWEEP_DIR[:INDEX|:last]': adds to this (kind 'params') ladder one member at that forecast's
                  (N, D) from SWEEP_DIR/predictions.jsonl (`scaling predict`; a numeric size target, trained
                  for D tokens), tagged forecast / forecast_ledger so that the sweep scores it when it completes
                  (scaling/sweep/ledger.py); with `sizes=()` the forecast member is the whole ladder
  pack            > 1: train up to `pack` members that differ only in seed / lr in one vmapped step
                  (scaling/sweep/packed.py); each still gets its own run directory
  executor        kind local | pool | slurm; workers (pool); gpus_per_worker (pool: CUDA_VISIBLE_DEVICES
                  slots); cpus_per_worker (pool: pin slot i to its own CPU cores, e.g. 1 on a 2-core
                  laptop, where two pinned tiny-model runs train 1.35x the tokens/s of one run on both
                  cores: small steps do not use two cores well; `cpu_pool(s)` sets this up);
                  lock_timeout_s (a run lock without heartbeat for this long is stale); poll_s;
                  compile_cache ('auto': SWEEP_DIR/jax_cache for worker processes, '' off, or a path);
                  slurm.* (partition, timeout_min, gpus_per_node, nodes, tasks_per_node, cpus_per_task,
                  mem_gb, array, array_parallelism, account, qos, constraint, setup, cluster, wait)

`expand(sweep_cfg) -> [(run_id, run_config)]`: full, finalized and validated run configs with readable,
stable ids (`gpt-d128-L4-t1.0e6-s0`, `gpt-d96-L3-C1.0e12-s0`, `dnn-w256-D2-t1.0e6-lrx0.5-s1`; a run on
`data.unique_tokens` adds it: `gpt-d48-L1-t4.1e5-u1.0e5-s0`) and tags
(sweep, ladder, budget, budget_unit, tokens_per_param, target_params, lr_mult). Finalizing reads the
dataset's metadata (vocabulary, span lengths), building the dataset cache on first use.
"""

import logging
import math

import ml_collections
import numpy as np

from scaling import config as config_lib
from scaling.models import accounting, registry, sizes as sizes_lib
from scaling.sweep import branches, ledger, worker
from scaling.train import budget, fit_memory
from scaling import errors

log = logging.getLogger(__name__)

KINDS = ("params", "isoflop", "data", "grid")
PARAM_COUNTS = ("nonembed", "total")
EXECUTORS = ("local", "pool", "slurm")


def defaults() -> ml_collections.ConfigDict:
  s = ml_collections.ConfigDict()
  s.name = "sweep"
  s.kind = "params"
  s.family = "gpt"
  s.task = ""
  s.sizes = ()
  s.size = ""
  s.param_count = "nonembed"
  s.seeds = (0,)
  s.lr_multipliers = (1.0,)
  s.batch_sizes = ()
  s.tokens = 0
  s.tokens_per_param = 20.0
  s.budgets = ()
  s.sizes_per_budget = 5
  s.spread = 4.0
  s.flops_tolerance = 0.05
  s.token_budgets = ()
  s.branch = ""
  s.cooldown_frac = 0.2
  s.cooldown_shape = "linear"
  s.rule = ml_collections.ConfigDict(dict(
      lr=3e-3, width=128, lr_exponent=1.0, warmup_steps=-1, warmup_frac=0.05,
      batch_size=0, batch_params=1e6, batch_exponent=0.0, batch_multiple=8, batch_min=8, batch_max=4096))
  s.overrides = ml_collections.ConfigDict()
  s.forecast = ""
  s.pack = 1
  s.ladders = ml_collections.ConfigDict()
  s.executor = ml_collections.ConfigDict(dict(
      kind="local", workers=2, gpus_per_worker=0, cpus_per_worker=0, lock_timeout_s=600.0, poll_s=5.0,
      compile_cache="auto", chip=""))  # chip: the memory rule's target (scaling/train/fit_memory.py)
  s.executor.slurm = ml_collections.ConfigDict(dict(
      cluster="", partition="", timeout_min=240, gpus_per_node=0, nodes=1, tasks_per_node=1,
      cpus_per_task=8, mem_gb=0, array=True, array_parallelism=64, account="", qos="", constraint="",
      setup=(), wait=True))
  return s


def cpu_pool(s: ml_collections.ConfigDict, max_workers: int = 4) -> ml_collections.ConfigDict:
  """The executor for small ladders on a CPU box: one process per core (up to `max_workers`), each
  pinned to its core. Measured on 2 cores: two pinned d64-L2 runs train 1.35x the tokens/s of one run
  using both cores (tiny steps do not keep two cores busy); the runner starts the biggest runs first."""
  s.executor.kind, s.executor.cpus_per_worker = "pool", 1
  s.executor.workers = max(1, min(max_workers, len(worker.usable_cpus())))
  return s


def by_width(base: ml_collections.ConfigDict, widths, n_layers: int, **model) -> ml_collections.ConfigDict:
  """One ladder per GPT width at a fixed depth, each a copy of `base` with that model (from_params would pick
  a depth per size): {'gpt_d<width>': ladder}, to assign to a sweep's `ladders`."""
  out = ml_collections.ConfigDict()
  for d in widths:
    lad = ml_collections.ConfigDict(base.to_dict())
    if "ladders" in lad:
      del lad["ladders"]
    lad.sizes = ("nano",)
    lad.overrides.model = ml_collections.ConfigDict(dict(
        d_model=d, n_layers=n_layers, n_heads=sizes_lib._heads(d), d_ff=4 * d, **model))
    out[f"gpt_d{d}"] = lad
  return out


def slurm_gpus(s: ml_collections.ConfigDict, gpus_per_node: int = 8, timeout_min: int = 24 * 60,
               chip: str = "h100") -> ml_collections.ConfigDict:
  """The executor of the paper-scale ('full') ladders: one SLURM job per run on a whole GPU node of `chip`
  (the memory rule's target: an H100 setting also fits an H200)."""
  s.executor.kind, s.executor.chip = "slurm", chip
  s.executor.slurm.gpus_per_node, s.executor.slurm.timeout_min = gpus_per_node, timeout_min
  return s


def logspace(lo: float, hi: float, n: int) -> tuple[float, ...]:
  """n values log-spaced over [lo, hi], rounded to 3 significant digits (readable in run ids)."""
  return tuple(float(f"{v:.3g}") for v in np.geomspace(lo, hi, n))


def fmt(x: float) -> str:
  """1e6 -> '1.0e6', 2.35e12 -> '2.4e12' (run-id spelling of budgets)."""
  m, e = f"{float(x):.1e}".split("e")
  return f"{m}e{int(e)}"


# ------------------------------------------------------------------------------------------------
# Validation of the sweep config (one line naming the field).


def _fail(field: str, value, allowed: str):
  raise errors.ConfigError(f"{field}: got {value!r}; allowed: {allowed}")


def _positive_numbers(field: str, values, *, allow_empty: bool = False):
  if not isinstance(values, (tuple, list)) or (not values and not allow_empty):
    _fail(field, values, "a non-empty tuple of numbers > 0")
  for v in values:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
      _fail(field, values, "a non-empty tuple of numbers > 0")


def _size_value(field: str, v):
  """'tiny' -> 'tiny'; 3e5 / '3e5' -> 300000.0 (a target non-embedding parameter count)."""
  if isinstance(v, str):
    try:
      v = float(v)
    except ValueError:
      return v
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
    _fail(field, v, "a size name or a target parameter count > 0")
  return float(v)


def validate(s: ml_collections.ConfigDict) -> None:
  registry.load(s)
  fams = registry.names() + config_lib.BASELINES
  if s.kind not in KINDS:
    _fail("kind", s.kind, ", ".join(KINDS))
  if s.family not in fams:
    _fail("family", s.family, ", ".join(fams))
  if s.param_count not in PARAM_COUNTS:
    _fail("param_count", s.param_count, ", ".join(PARAM_COUNTS))
  if not s.seeds or any(isinstance(x, bool) or not isinstance(x, int) for x in s.seeds):
    _fail("seeds", s.seeds, "a non-empty tuple of integers")
  _positive_numbers("lr_multipliers", s.lr_multipliers)
  if s.batch_sizes:
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in s.batch_sizes):
      _fail("batch_sizes", s.batch_sizes, "() or a tuple of integers >= 1 (sequences per step)")
    if not registry.is_neural_config(s) or s.rule.batch_size:
      _fail("batch_sizes", s.batch_sizes, "() for baselines and with rule.batch_size (one batch rule at a time)")
  if s.kind == "params":
    if not isinstance(s.sizes, (tuple, list)) or not (s.sizes or s.get("forecast")):
      _fail("sizes", s.sizes, "a non-empty tuple of size names or target parameter counts")
    for v in s.sizes:
      _size_value("sizes", v)
    if isinstance(s.tokens, bool) or not isinstance(s.tokens, (int, float)) or s.tokens < 0:
      _fail("tokens", s.tokens, "a number >= 0 (0: tokens_per_param x N)")
    if not isinstance(s.tokens_per_param, (int, float)) or s.tokens_per_param < 0:
      _fail("tokens_per_param", s.tokens_per_param, "a number >= 0 (0 with tokens 0: overrides' train budget)")
  elif s.kind == "isoflop":
    if not registry.is_neural_config(s):
      _fail("family", s.family, f"{', '.join(registry.names())} for kind 'isoflop' (baselines have no FLOPs)")
    _positive_numbers("budgets", s.budgets)
    if isinstance(s.sizes_per_budget, bool) or not isinstance(s.sizes_per_budget, int) or s.sizes_per_budget < 1:
      _fail("sizes_per_budget", s.sizes_per_budget, "an integer >= 1")
    if not isinstance(s.spread, (int, float)) or s.spread < 1:
      _fail("spread", s.spread, "a number >= 1")
    if not isinstance(s.tokens_per_param, (int, float)) or s.tokens_per_param <= 0:
      _fail("tokens_per_param", s.tokens_per_param, "a number > 0 (the expected optimum D/N)")
    if not isinstance(s.flops_tolerance, (int, float)) or not 0 < s.flops_tolerance < 1:
      _fail("flops_tolerance", s.flops_tolerance, "a number in (0, 1)")
  elif s.kind == "grid":
    if not isinstance(s.sizes, (tuple, list)) or not s.sizes:
      _fail("sizes", s.sizes, "a non-empty tuple of size names or target parameter counts")
    for v in s.sizes:
      _size_value("sizes", v)
    _positive_numbers("token_budgets", s.token_budgets)
  else:
    _size_value("size", s.size) if s.size != "" else _fail("size", s.size, "a size name or a number")
    _positive_numbers("token_budgets", s.token_budgets)
  branches.validate(s)
  if isinstance(s.pack, bool) or not isinstance(s.pack, int) or s.pack < 1:
    _fail("pack", s.pack, "an integer >= 1")
  if s.executor.kind not in EXECUTORS:
    _fail("executor.kind", s.executor.kind, ", ".join(EXECUTORS))
  c = s.executor.cpus_per_worker
  if isinstance(c, bool) or not isinstance(c, int) or c < 0:
    _fail("executor.cpus_per_worker", c, "an integer >= 0 (0: no pinning)")
  r = s.rule
  for f in ("lr", "width", "batch_params", "batch_multiple", "batch_min", "batch_max"):
    if isinstance(r[f], bool) or not isinstance(r[f], (int, float)) or r[f] <= 0:
      _fail(f"rule.{f}", r[f], "a number > 0")


# ------------------------------------------------------------------------------------------------
# Members.


def _model_tag(c: ml_collections.ConfigDict) -> str:
  if registry.is_neural_config(c):
    return registry.get(c.family).tag(c.model)
  return "".join(ch if ch.isalnum() or ch in ".x" else "_" for ch in str(c.size))


def _width(c: ml_collections.ConfigDict) -> int:
  return registry.get(c.family).width(c.model)


def _member(s: ml_collections.ConfigDict, size) -> ml_collections.ConfigDict:
  """The base run config of one ladder member (before finalize / rule / budget)."""
  size = _size_value("sizes", size)
  task = s.task or None
  if s.family in config_lib.BASELINES:
    from scaling.baselines import run as baseline_run
    c = baseline_run.default_config(s.family, size if isinstance(size, str) else f"{size:g}")
  elif isinstance(size, str):
    c = config_lib.base(s.family, size, task, family_file=s.get("family_file", ""))
  else:
    fam = registry.get(s.family)
    c = config_lib.base(s.family, next(iter(fam.sizes)), task, family_file=s.get("family_file", ""))
    # task-decided fields (the MLP's head) shape the candidates too
    kw = {k: c.model[k] for k in ("head",) if k in c.model}
    # shape-free model overrides (the GPT recipe fields among them) shape the candidates too
    for k in ("pos", "dtype", "tie_embeddings", *accounting.RECIPE_DEFAULTS):
      if k in s.overrides.get("model", {}):
        kw[k] = s.overrides.model[k]
    m = sizes_lib.from_params(s.family, size, **kw)
    m.vocab_size = c.model.vocab_size
    with c.unlocked():
      c.model = m
      c.size = _model_tag(c)
    c.tags.target_params = size
  _merge(c, s.overrides, "overrides")
  return c


def _merge(dst: ml_collections.ConfigDict, src, path: str) -> None:
  for k, v in src.items():
    if isinstance(v, (ml_collections.ConfigDict, dict)) and isinstance(dst.get(k), ml_collections.ConfigDict):
      _merge(dst[k], v, f"{path}.{k}")
      continue
    try:
      with dst.unlocked():
        dst[k] = v.to_dict() if isinstance(v, ml_collections.ConfigDict) else v
    except TypeError as e:
      raise errors.ConfigError(f"{path}.{k}: {v!r} does not fit the run config field ({e})") from None


def _n(c: ml_collections.ConfigDict, param_count: str) -> float:
  return accounting.params(c.family, c.model)[param_count]


def _apply_rule(c: ml_collections.ConfigDict, s: ml_collections.ConfigDict, lr_mult: float,
                batch: int | None = None) -> None:
  r = s.rule
  c.train.lr = float(r.lr * (r.width / _width(c)) ** r.lr_exponent * lr_mult)
  if r.warmup_steps >= 0:
    c.train.warmup_steps = int(r.warmup_steps)
  else:
    c.train.warmup_steps, c.train.warmup_frac = -1, float(r.warmup_frac)
  if r.batch_size:
    b = r.batch_size * (_n(c, s.param_count) / r.batch_params) ** r.batch_exponent
    b = int(min(max(round(b / r.batch_multiple) * r.batch_multiple, r.batch_min), r.batch_max))
    c.data.batch_size = b
  if batch is not None:  # a member of `batch_sizes`: held out on the same windows whatever its batch size
    c.train.eval_batches = max(1, round(c.train.eval_batches * c.data.batch_size / batch))
    c.data.batch_size = int(batch)
  if c.data.batch_size % c.train.accum_steps:
    c.train.accum_steps = 1


def _inner(s):
  """(lr multiplier, batch size or None, seed) of every member of a point's inner grid."""
  for lr_mult in s.lr_multipliers:
    for batch in s.batch_sizes or (None,):
      for seed in s.seeds:
        yield lr_mult, batch, seed


def _finish(s, c, run_id_parts, seed, lr_mult, tags) -> tuple[str, ml_collections.ConfigDict]:
  c.seed = int(seed)
  with c.tags.unlocked():
    c.tags.sweep, c.tags.ladder = s.name, s.kind
    c.tags.lr_mult = float(lr_mult)
    for k, v in tags.items():
      c.tags[k] = v
  if registry.is_neural_config(c):
    c.train.progress = False  # the sweep's own bar reports progress
  config_lib.validate(c)
  lr = "" if len(s.lr_multipliers) == 1 and lr_mult == 1 else f"-lrx{lr_mult:g}"
  lr += f"-b{c.data.batch_size}" if len(s.get("batch_sizes", ())) > 1 else ""
  u = c.get("data", {}).get("unique_tokens", 0)  # ladders that differ only in U (data-constrained) stay apart
  parts = [*run_id_parts, f"u{fmt(u)}"] if u else list(run_id_parts)
  return "-".join([c.family, _model_tag(c), *parts]) + f"{lr}-s{seed}", c


def _neural_budget(c, tokens: float | None = None, flops: float | None = None) -> None:
  c.train.steps, c.train.tokens, c.train.flops = 0, int(round(tokens or 0)), float(flops or 0.0)


def _params_ladder(s):
  out = []
  for size in s.sizes:
    for lr_mult, batch, seed in _inner(s):
      c = _member(s, size)
      tags, parts = {}, []
      if registry.is_neural_config(c):
        c = config_lib.finalize(c)
        _apply_rule(c, s, lr_mult, batch)
        if s.tokens:
          tokens = float(s.tokens)
        elif s.tokens_per_param:
          tokens = s.tokens_per_param * _n(c, s.param_count)
          tags["tokens_per_param"] = float(s.tokens_per_param)
        else:
          tokens = None
        if tokens:
          _neural_budget(c, tokens=tokens)
          tags.update(budget=float(tokens), budget_unit="tokens")
          parts.append(f"t{fmt(tokens)}")
        else:
          parts.append(f"n{c.train.steps}")
      elif s.tokens:
        c.data.train_examples = int(s.tokens)
        tags.update(budget=float(s.tokens), budget_unit="examples")
        parts.append(f"n{fmt(s.tokens)}")
      out.append(_finish(s, c, parts, seed, lr_mult, tags))
  return out


def _isoflop(s):
  out = []
  for C in s.budgets:
    n_star = math.sqrt(C / (6 * s.tokens_per_param))
    targets = np.geomspace(n_star / s.spread, n_star * s.spread, s.sizes_per_budget)
    for target in targets:
      for lr_mult, batch, seed in _inner(s):
        c = config_lib.finalize(_member(s, float(f"{target:.3g}")))
        _apply_rule(c, s, lr_mult, batch)
        _neural_budget(c, flops=C)
        p = budget.plan(c)
        # Rounding C / (FLOPs per step) to whole steps: a member with too few steps misses C.
        if abs(p["flops"] / C - 1) > s.flops_tolerance:
          log.info(f"isoflop: skipping {c.family} {_model_tag(c)} at C={fmt(C)}: {p['steps']} steps give "
                f"{p['flops']:.3g} FLOPs (off by more than flops_tolerance={s.flops_tolerance})")
          continue
        tags = dict(budget=float(C), budget_unit="flops", tokens_per_param=float(s.tokens_per_param),
                    n_star=float(n_star))
        out.append(_finish(s, c, [f"C{fmt(C)}"], seed, lr_mult, tags))
  return out


def _data_ladder(s):
  out = []
  for tokens in s.token_budgets:
    for lr_mult, batch, seed in _inner(s):
      c = _member(s, s.size)
      if registry.is_neural_config(c):
        c = config_lib.finalize(c)
        _apply_rule(c, s, lr_mult, batch)
        _neural_budget(c, tokens=tokens)
        unit, part = "tokens", f"t{fmt(tokens)}"
      else:
        c.data.train_examples = int(tokens)
        unit, part = "examples", f"n{fmt(tokens)}"
      out.append(_finish(s, c, [part], seed, lr_mult, dict(budget=float(tokens), budget_unit=unit)))
  return out


def _grid(s):
  out = []
  for size in s.sizes:
    sub = ml_collections.ConfigDict(s.to_dict())
    sub.size = size if isinstance(size, str) else f"{size:g}"  # a data ladder's size field is a string
    out += _data_ladder(sub)
  return out


LADDERS = {"params": _params_ladder, "isoflop": _isoflop, "data": _data_ladder, "grid": _grid}


def _forecast(s: ml_collections.ConfigDict) -> list:
  """The `forecast` member (module docstring): the ladder's recipe at the forecast's (N, D)."""
  if not s.get("forecast"):
    return []
  if s.kind != "params" or s.branch:
    _fail("forecast", s.forecast, "'' unless kind is 'params' (and branch '')")
  rec = ledger.entry(s.forecast)
  if rec.get("x") != "params_nonembed":
    _fail("forecast", s.forecast, f"a forecast in params_nonembed (what numeric sizes target); this one is in {rec.get('x')}")
  sub = ml_collections.ConfigDict(s.to_dict())
  sub.sizes, sub.tokens, sub.forecast = (float(rec["N"]),), int(round(rec["D"])), ""
  runs = _params_ladder(sub)
  for run_id, c in runs:
    with c.tags.unlocked():
      c.tags.forecast, c.tags.forecast_ledger = int(rec["index"]), rec["ledger"]
    n = _n(c, "nonembed")
    if abs(n / rec["N"] - 1) > ledger.RTOL:  # sizes come on a grid: the ledger scores only what was forecast
      log.info(f"forecast {rec['ledger']}:{rec['index']}: {run_id} has N={n:.4g}, {100 * (n / rec['N'] - 1):+.1f} % from "
            f"the forecast's {rec['N']:.4g}; the ledger scores it only within {100 * ledger.RTOL:g} %: forecast "
            f"that size with `scaling predict {rec['ledger']} --N={n:.6g} --D={rec['D']:.6g}`")
  return runs


def _ladder(s: ml_collections.ConfigDict, fit: fit_memory.Target | None) -> list:
  runs = (LADDERS[s.kind](s) if s.kind != "params" or s.sizes else []) + _forecast(s)
  # Memory rule (issue 27): per member the cheapest remat / accum_steps / fsdp that fits the target chip
  # (scaling/train/fit_memory.py); a knob `overrides` sets is kept; no target: unchanged.
  runs = fit_memory.apply(runs, s.overrides, fit, budget.shapes)
  return branches.make(s, runs, _finish) if s.branch else runs


def _same(a: ml_collections.ConfigDict, b: ml_collections.ConfigDict) -> bool:
  """The same training run up to its name and tags."""
  drop = {"tags": None, "size": None}
  return a.to_dict() | drop == b.to_dict() | drop


def expand(s: ml_collections.ConfigDict, fit: fit_memory.Target | None = None
           ) -> list[tuple[str, ml_collections.ConfigDict]]:
  """[(run_id, run config)] of a sweep config; ValueError (one line, naming the field) when it is bad.
  `fit`: the memory rule's target (`scaling plan --chip`); None: the sweep's executor.chip, if any."""
  fit = fit or fit_memory.target(s.executor)
  if s.get("ladders"):
    runs = []
    for name, sub in s.ladders.items():
      sub = ml_collections.ConfigDict(sub.to_dict())
      sub.name = name
      if s.get("family_file") and not sub.get("family_file"):  # one family file for every ladder
        sub.family_file = s.family_file
      validate(sub)
      runs += _ladder(sub, fit)
  else:
    validate(s)
    runs = _ladder(s, fit)
  seen: dict[str, ml_collections.ConfigDict] = {}
  out = []
  for run_id, c in runs:
    if run_id in seen:
      if _same(seen[run_id], c):  # two numeric targets landed on the same member: train it once
        log.info(f"{s.name}: {run_id} appears twice (size targets closer than the size grid); training it once")
        continue
      raise errors.ConfigError(f"sizes: two different members share the run id {run_id!r}; allowed: distinct "
                       f"sizes, budgets and unique tokens")
    seen[run_id] = c
    out.append((run_id, c))
  if not out:
    raise errors.ConfigError("budgets: no run left (every member missed its FLOP budget); allowed: budgets large "
                     "enough for several steps of each size")
  return out
