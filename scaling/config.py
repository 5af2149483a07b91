"""The run config: one ml_collections ConfigDict per run (family, size, seed, model, data, train, mesh).

`base(family, size)` builds the default for a member; `finalize` fills what comes from the data
(vocabulary, features, classes, context length) and `validate` checks everything before any compile.
"""

import os

import ml_collections

from scaling import io, models
from scaling.models import registry, sizes, transformer_family
from scaling.runid import FILES_DEFAULTS
from scaling import errors

SCHEDULES = ("cosine", "wsd", "constant", "linear")
OPTIMIZERS = ("adamw", "sgd", "momentum")
# What each neural family trains on is its registry entry's `tasks` (scaling/models/*_family.py).
SEQ2SEQ_TASKS = transformer_family.SEQ2SEQ_TASKS
BASELINES = registry.BASELINES
DECAY_SHAPES = ("linear", "1-sqrt")  # WSD cool-down shapes (Hägele et al. 2024: 1-sqrt is best)


def base(family: str = "gpt", size: str = "tiny", task: str | None = None,
         family_file: str = "") -> ml_collections.ConfigDict:
  """`family_file`: a researcher's own family (a .py file that registers it), imported here first."""
  registry.load_file(family_file)
  c = ml_collections.ConfigDict()
  c.family, c.size, c.seed = family, size, 0
  if family_file:  # only then: a config.json without it means "" (runid.ADDED_DEFAULTS), old run ids stay
    c.family_file = family_file
  c.tags = ml_collections.ConfigDict()
  c.init_from = ""  # a pretrained run dir to start from (fine-tuning)
  c.model = sizes.named(family, size)
  c.model.vocab_size = 0  # 0: from the data's tokenizer (finalize)
  fam = registry.get(family)
  task = task or fam.tasks[0]
  if fam.for_task is not None:
    fam.for_task(c.model, task)
  c.data = ml_collections.ConfigDict(dict(
      name="digits" if task == "classify" else "stdlib", task=task, seq_len=128, batch_size=32,
      tokenizer="byte", data_dir="", unique_tokens=0,  # 0: the whole training split; U: its first U tokens, repeated
      **FILES_DEFAULTS))
  c.train = ml_collections.ConfigDict(dict(
      steps=200,          # used when tokens and flops are 0
      tokens=0,           # train for this many tokens (examples for classification) instead
      flops=0.0,          # or for this many training FLOPs (accounting.train_flops)
      optimizer="adamw", lr=3e-3, momentum=0.9, b1=0.9, b2=0.95, eps=1e-8,
      weight_decay=0.1, decay_embeddings=False,
      schedule="cosine", warmup_steps=-1, warmup_frac=0.05, min_lr_ratio=0.1, decay_frac=0.2,
      decay_shape="linear",  # wsd cool-down: linear | 1-sqrt
      # A cooldown branch (scaling/train/branch.py): start from the checkpoint at step branch_step of the
      # trunk run in branch_from (a path, relative to this run's directory or absolute).
      branch_from="", branch_step=0,
      checkpoint_steps=(),  # extra checkpoints at these steps, never deleted by keep_checkpoints
      grad_clip=1.0, z_loss=0.0, accum_steps=1,
      eval_every=0,       # 0: only at the end
      # Held-out evals at this many evenly spaced steps as well (the same fixed windows as the final eval:
      # the first eval_batches validation batches, unshuffled), so learning curves compare across runs.
      curve_points=0,
      eval_batches=8, log_every=10, checkpoint_every=0,  # 0: only at the end
      keep_checkpoints=2, divergence_threshold=1e3, peak_flops=0.0, progress=True))
  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, num_devices=0, distributed="auto",
                                          coordinator="", num_processes=1, process_id=0))
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Fills model fields that the data decides. Cheap: reads dataset metadata, builds nothing big."""
  from scaling.data import pipeline  # local: keeps `import scaling.config` light
  if not registry.is_neural_config(c):  # imports c.family_file first
    return c
  fam = registry.get(c.family)
  with c.unlocked():
    if c.get("init_from"):  # fine-tuning: the architecture is the pretrained run's (see train/finetune.py)
      inherit_model(c)
    check_task(c)
    info = pipeline.dataset_info(c.data)
    if fam.uses_vocab(c.model):  # a classifier's inputs are features: no vocabulary
      if not c.model.get("vocab_size"):
        c.model.vocab_size = int(info["vocab_size"])
      elif info.get("vocab_size") and c.model.vocab_size < info["vocab_size"]:  # else: NaN logits at step 1
        raise errors.ConfigError(f"model.vocab_size: {c.model.vocab_size} is smaller than the data's "
                                 f"{info['vocab_size']} token ids (tokenizer {info['tokenizer']!r}, task "
                                 f"{info['task']!r}); 0 takes it from the data")
    if c.data.get("task") == "module_cls":
      c.model.num_classes = int(info["num_classes"])
    if fam.finalize is not None:
      fam.finalize(c, info)
  return c


def _num(section, field, *, lo=None, integer=False, allow_zero=True):
  v = section.get(field)
  ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (not integer or isinstance(v, int))
  if ok and lo is not None:
    ok = v > lo or (allow_zero and v == 0)
  if not ok:
    raise errors.ConfigError(f"train.{field}: got {v!r}; allowed: {'an integer' if integer else 'a number'}"
                     + (f" > {lo}" if lo is not None else "") + (" or 0" if allow_zero and lo is not None else ""))


def _fraction(t, field: str, lo: float, hi: float, hi_open: bool = False):
  v = t.get(field)
  ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v and (v < hi if hi_open else v <= hi)
  if not ok:
    raise errors.ConfigError(f"train.{field}: got {v!r}; allowed: a number in [{lo}, {hi}{')' if hi_open else ']'}")


def check_task(c: ml_collections.ConfigDict) -> None:
  """The family can train on data.task (else a shape error deep inside the first trace)."""
  task, fam = c.data.get("task", "lm"), registry.get(c.family)
  if task not in fam.tasks:
    raise errors.ConfigError(f"data.task: {task!r} does not fit family {c.family!r}; allowed: {', '.join(fam.tasks)}")
  if fam.check_task is not None:
    fam.check_task(c, task)


def validate(c: ml_collections.ConfigDict, n_devices: int | None = None) -> None:
  """One clear ValueError naming the field and what is allowed. Run before anything compiles."""
  if not registry.is_neural_config(c) and c.family not in BASELINES:  # imports c.family_file first
    raise errors.ConfigError(f"family: unknown {c.family!r}; allowed: {', '.join(registry.names() + BASELINES)}")
  if c.family in BASELINES:
    from scaling.baselines import run as baseline_run
    return baseline_run.validate(c)
  models.validate(c.family, c.model)
  d, t = c.data, c.train
  check_task(c)
  if not str(d.get("name", "")).startswith("files:") and str(d.get("holdout", "auto")) != "auto":
    # The built-in corpora come with their own held-out split: a holdout there would be silently ignored.
    raise errors.ConfigError(f"data.holdout: {d.holdout!r} applies only to data.name='files:GLOB' (data.name is "
                             f"{d.get('name')!r}, which has its own held-out split); allowed: 'auto'")
  if c.model.get("num_classes", 0) and "module_cls" in registry.get(c.family).tasks and d.get("task") != "module_cls":
    raise errors.ConfigError(f"model.num_classes: a GPT classification head needs data.task='module_cls', got "
                     f"{d.get('task')!r}; allowed: 0 for other tasks")
  if not isinstance(d.seq_len, int) or d.seq_len <= 0:
    raise errors.ConfigError(f"data.seq_len: must be a positive integer, got {d.seq_len!r}")
  if not isinstance(d.batch_size, int) or d.batch_size <= 0:
    raise errors.ConfigError(f"data.batch_size: must be a positive integer, got {d.batch_size!r}")
  if "max_len" in c.model and "n_dec_layers" not in c.model and d.seq_len > c.model.max_len:
    raise errors.ConfigError(f"data.seq_len: {d.seq_len} exceeds model.max_len={c.model.max_len}")
  if t.schedule not in SCHEDULES:
    raise errors.ConfigError(f"train.schedule: unknown {t.schedule!r}; allowed: {', '.join(SCHEDULES)}")
  if t.optimizer not in OPTIMIZERS:
    raise errors.ConfigError(f"train.optimizer: unknown {t.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
  for f in ("lr",):
    _num(t, f, lo=0, allow_zero=False)
  for f in ("steps", "accum_steps", "curve_points"):
    if f in t:  # curve_points: absent from the config.json of runs made before it existed (0 then)
      _num(t, f, lo=0, integer=True, allow_zero=f in ("steps", "curve_points"))
  for f in ("tokens", "flops", "weight_decay", "grad_clip", "z_loss", "eval_every", "checkpoint_every"):
    _num(t, f, lo=0)
  for f in ("log_every", "eval_batches", "keep_checkpoints"):
    _num(t, f, lo=0, integer=True, allow_zero=False)
  w = t.get("warmup_steps")
  if isinstance(w, bool) or not isinstance(w, int) or w < -1:
    raise errors.ConfigError(f"train.warmup_steps: got {w!r}; allowed: an integer >= 0, or -1 (warmup_frac of the run)")
  _num(t, "eps", lo=0, allow_zero=False)
  _num(t, "divergence_threshold", lo=0, allow_zero=False)
  _fraction(t, "warmup_frac", 0.0, 1.0, hi_open=True)
  _fraction(t, "decay_frac", 0.0, 1.0)
  _fraction(t, "min_lr_ratio", 0.0, 1.0)
  for f in ("b1", "b2", "momentum"):
    _fraction(t, f, 0.0, 1.0, hi_open=True)
  if t.get("decay_shape", "linear") not in DECAY_SHAPES:
    raise errors.ConfigError(f"train.decay_shape: got {t.decay_shape!r}; allowed: {', '.join(DECAY_SHAPES)}")
  if not (t.steps or t.tokens or t.flops):
    raise errors.ConfigError("train.steps: one of train.steps, train.tokens, train.flops must be > 0")
  if d.batch_size % t.accum_steps:
    raise errors.ConfigError(f"train.accum_steps: {t.accum_steps} does not divide data.batch_size={d.batch_size}")
  if n_devices is not None:
    from scaling import parallel
    if c.mesh.get("num_devices", 0):
      if not 0 < c.mesh.num_devices <= n_devices:
        raise errors.ConfigError(f"mesh.num_devices: {c.mesh.num_devices} not allowed; allowed: 0 (all) to {n_devices}")
      n_devices = c.mesh.num_devices
    shape = dict(zip(parallel.MESH_AXES, parallel.mesh_shape(c.mesh, n_devices)))
    div = shape["data"] * shape["fsdp"]
    micro = d.batch_size // t.accum_steps
    if micro % div:
      raise errors.ConfigError(f"data.batch_size: the (micro-)batch {micro} is not divisible by the data axes "
                       f"data*fsdp={div}; allowed: multiples of {div * t.accum_steps}")


# Fine-tuning (`init_from=RUN_DIR`, scaling/train/finetune.py loads the weights): the config pieces.
# Model fields the fine-tune config owns; everything else in `model` comes from the pretrained run.
HEAD_FIELDS = ("num_classes",)


def finetune_default(size: str = "tiny") -> ml_collections.ConfigDict:
  """A GPT fine-tuned on `module_cls` (offline: the embedded stdlib corpus). Set `init_from` to start
  from a pretrained run; left empty it trains the same model from scratch (the baseline)."""
  c = base("gpt", size, task="module_cls")
  c.data.name, c.data.seq_len, c.data.batch_size = "stdlib", 128, 32
  t = c.train
  # Short warmup, cosine decay, little weight decay, and half the default pretraining rate (3e-3).
  # Measured at d64 pretrained at 6e-3, on validation loss and balanced accuracy after fine-tuning from
  # it: 1/2 of that rate beat 1/3 (300 steps), 1/3 beat 1/6 (200 steps). From scratch the lower rates
  # gave 0.04-0.06 lower loss and the same balanced accuracy.
  t.steps, t.lr, t.warmup_frac, t.weight_decay = 500, 1.5e-3, 0.1, 0.01
  # Score all of the validation split (it is cheap next to training) so accuracy differences of a
  # point between runs are not sampling noise.
  t.eval_batches = 1_000_000
  return c


def run_config(run_dir: str, field: str = "init_from") -> ml_collections.ConfigDict:
  """The config.json of a run directory (ValueError naming `field` when it is not one)."""
  path = os.path.join(os.path.expanduser(run_dir), "config.json")
  if not run_dir or not os.path.exists(path):
    raise errors.ConfigError(f"{field}: {run_dir!r} is not a run directory (no config.json); allowed: a directory "
                     "written by `scaling train`")
  return ml_collections.ConfigDict(io.read_json(path))


def inherit_model(c: ml_collections.ConfigDict) -> None:
  """In place (on an unlocked config): take family, size and model from `c.init_from`'s run, keeping only
  the fine-tune's own head fields. Called by config.finalize, so mismatches fail before any compile."""
  pc = run_config(c.init_from)
  if pc.family != c.family:
    raise errors.ConfigError(f"init_from: the run {c.init_from!r} is a {pc.family!r} model; family={c.family!r} "
                     f"cannot start from it; allowed: family={pc.family!r}")
  tok, ptok = c.data.get("tokenizer", "byte"), pc.data.get("tokenizer", "byte")
  if tok != ptok:
    raise errors.ConfigError(f"data.tokenizer: {tok!r} differs from the pretrained run's {ptok!r} (init_from="
                     f"{c.init_from!r}); allowed: {ptok!r}")
  heads = {f: c.model[f] for f in HEAD_FIELDS if f in c.model}
  c.model = ml_collections.ConfigDict(pc.model.to_dict())
  for f in HEAD_FIELDS:  # a pretrained run that was itself a classifier does not pass its head on
    if f in c.model:
      del c.model[f]
  c.model.update(heads)
  c.size = pc.size
