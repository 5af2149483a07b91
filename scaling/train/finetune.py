"""Fine-tuning from a pretrained run: `--config.init_from=RUN_DIR`.

The architecture is the pretrained run's (its config.json's `model`); the fine-tune config may only add
a task head (`model.num_classes`). `load_pretrained` copies every parameter the checkpoint has into the
freshly initialized state, straight onto the new run's shardings; parameters the checkpoint lacks (the
new head) keep their fresh initialization, and the optimizer state and step start from zero.
`restore_params` is the one place that reads a run's parameters (sampling uses it too).
"""

import logging
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from scaling import config as config_lib
from scaling.models import stack
from scaling import errors

log = logging.getLogger(__name__)

def latest_steps(run_dir: str) -> list[int]:
  """Committed orbax steps under RUN/checkpoints, newest first."""
  d = os.path.join(os.path.abspath(os.path.expanduser(run_dir)), "checkpoints")
  if not os.path.isdir(d):
    return []
  return sorted((int(s) for s in os.listdir(d) if s.isdigit()), reverse=True)


def restore_params(run_dir: str, abstract_params: dict, field: str = "init_from") -> tuple[int, dict]:
  """-> (step, params) of the newest readable checkpoint of `run_dir`: only the entries of
  `abstract_params` (a pure dict of ShapeDtypeStructs carrying shardings) that the checkpoint has are read
  (orbax partial restore; the optimizer state is never loaded). Missing entries are absent from the result."""
  steps = latest_steps(run_dir)
  if not steps:
    raise errors.ConfigError(f"{field}: {run_dir!r} has no checkpoint under checkpoints/; allowed: a run that "
                     "finished or saved a checkpoint")
  ckpt_dir = os.path.join(os.path.abspath(os.path.expanduser(run_dir)), "checkpoints")
  manager = _reader(ckpt_dir)
  try:
    for step in steps:
      saved = _saved_params(manager, step)
      if saved is None:
        continue
      # A checkpoint of the other model.scan_layers layout: read it in its own layout, convert after.
      saved_scan = stack.layout(dict(saved))
      convert = saved_scan is not None and saved_scan != stack.layout(abstract_params)
      want = stack.to_layout(abstract_params, saved_scan) if convert else abstract_params
      have = _common(want, saved)
      restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape,
                                                                 dtype=x.dtype), have)
      out = manager.restore(step, args=ocp.args.PyTreeRestore(
          item={"params": have}, restore_args={"params": restore_args}, partial_restore=True))
      params = _rekey(want, out["params"])
      if convert:  # stack / unstack, then onto the shardings the caller asked for
        params = stack.to_layout(params, not saved_scan)
        params = jax.tree.map(lambda x, a: jax.device_put(x, a.sharding), params, _rekey(abstract_params, params))
      return step, params
  finally:
    manager.close()
  raise errors.ConfigError(f"{field}: no readable checkpoint in {ckpt_dir!r} (steps {steps})")


def _reader(ckpt_dir: str) -> ocp.CheckpointManager:
  # The generic PyTree handler reads the metadata and restores a subtree of what the training
  # Checkpointer wrote with StandardSave (same on-disk format). This manager never saves or deletes
  # (no max_to_keep, no tmp cleanup); orbax's read_only mode would do the same but warns on every use.
  return ocp.CheckpointManager(ckpt_dir, options=ocp.CheckpointManagerOptions(create=False),
                               item_handlers=ocp.PyTreeCheckpointHandler())


def _saved_params(manager: ocp.CheckpointManager, step: int):
  """The metadata tree of a checkpoint's params, None for a torn step."""
  try:
    tree = manager.item_metadata(step)
    return tree["params"] if "params" in tree else None
  except Exception:
    return None


def saved_layout(run_dir: str) -> bool | None:
  """model.scan_layers of the newest readable checkpoint of run_dir (None: no checkpoint, or no layer stack)."""
  steps = latest_steps(run_dir)
  if not steps:
    return None
  manager = _reader(os.path.join(os.path.abspath(os.path.expanduser(run_dir)), "checkpoints"))
  try:
    for step in steps:
      saved = _saved_params(manager, step)
      if saved is not None:
        return stack.layout(dict(saved))
  finally:
    manager.close()
  return None


# Keys are compared as strings: the pure dict of an nnx.List has int keys, orbax stores them as strings.


def _common(want: dict, saved, path: str = "") -> dict:
  """The part of `want` whose keys the saved tree has, keyed like the checkpoint; a shape mismatch is a
  clear error (the architecture must be the pretrained one)."""
  out = {}
  for k, v in want.items():
    if str(k) not in saved:
      continue
    p = f"{path}/{k}"
    if isinstance(v, dict):
      sub = _common(v, saved[str(k)], p)
      if sub:
        out[str(k)] = sub
    else:
      shape = tuple(getattr(saved[str(k)], "shape", ()))
      if shape != tuple(v.shape):
        raise errors.ConfigError(f"init_from: parameter {p} has shape {shape} in the checkpoint but {tuple(v.shape)} "
                         "in this model; allowed: the pretrained run's model config (do not override model.*)")
      out[str(k)] = v
  return out


def _rekey(want: dict, got: dict) -> dict:
  """`got` (checkpoint keys, or already the model's) with the keys of `want` (the model's own, e.g. int list
  indices)."""
  out = {}
  for k, v in want.items():
    g = got[k] if k in got else got.get(str(k))
    if g is not None:
      out[k] = _rekey(v, g) if isinstance(v, dict) else g
  return out


def _merge(fresh: dict, loaded: dict, path: str = "") -> tuple[dict, list[str]]:
  """`fresh` with every leaf that `loaded` has replaced; also the paths that stayed fresh."""
  out, kept = {}, []
  for k, v in fresh.items():
    p = f"{path}/{k}"
    if isinstance(v, dict):
      out[k], sub = _merge(v, loaded.get(k, {}), p)
      kept += sub
    elif k in loaded:
      out[k] = loaded[k]
    else:
      out[k], kept = v, kept + [p]
  return out, kept


def load_pretrained(c: ml_collections.ConfigDict, state: dict, shardings: dict) -> dict:
  """The fresh train state with the pretrained parameters of `c.init_from` copied in (see module doc)."""
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          state["params"], shardings["params"])
  step, loaded = restore_params(c.init_from, abstract)
  params, fresh = _merge(state["params"], loaded)
  n_loaded = len(jax.tree.leaves(loaded))
  if not n_loaded:
    raise errors.ConfigError(f"init_from: the checkpoint of {c.init_from!r} shares no parameter with this model")
  if jax.process_index() == 0:
    log.info(f"init_from {c.init_from}: loaded {n_loaded} tensors from step {step}; "
          f"freshly initialized: {', '.join(fresh) or 'none'}")
  return {**state, "params": params}


def evaluate(run_dir: str, split: str = "test", max_batches: int = 0) -> dict:
  """Scores a fine-tuned classifier run (task module_cls) on `split` (default the test split, which no
  run ever selects on): loss, accuracy, balanced accuracy (mean per-class recall over the classes
  present) and the confusion matrix. Parameters are restored onto the run's own mesh.

  Balanced accuracy matters here because module_cls splits hold out whole files: the class mix of
  validation/test differs a lot from train's (a package with few training files can have a big
  held-out one), so plain accuracy mostly rewards predicting the few large classes."""
  import jax.numpy as jnp
  import numpy as np
  import optax
  from flax import nnx

  from scaling import models, parallel
  from scaling.data import pipeline

  c = config_lib.run_config(run_dir, field="run_dir")
  if c.data.get("task") != "module_cls" or not c.model.get("num_classes", 0):
    raise errors.ConfigError(f"run_dir: {run_dir!r} is not a classifier run; allowed: a run with data.task='module_cls'")
  mesh = parallel.make_mesh(c.mesh)
  graphdef, abs_state = nnx.split(nnx.eval_shape(lambda: models.build(c.family, c.model, c.seed)))
  shardings = nnx.to_pure_dict(parallel.state_shardings(abs_state, mesh))
  want = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      nnx.to_pure_dict(abs_state), shardings)
  _, params = restore_params(run_dir, want, field="run_dir")
  k = c.model.num_classes

  @jax.jit
  def sums(params, batch):
    logits_BxC = nnx.merge(graphdef, params).classify(batch["inputs"])
    w_B = batch["weights"]
    ce = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["label"]) * w_B)
    # confusion[true, predicted], padding rows weighted 0
    confusion_CxC = jnp.zeros((k, k)).at[batch["label"], jnp.argmax(logits_BxC, -1)].add(w_B)
    return ce, confusion_CxC

  loader = pipeline.make_loader(c.data, split=split, seed=0, shuffle=False, num_epochs=1)
  ce, confusion = 0.0, np.zeros((k, k))
  for i, batch in enumerate(loader):
    if max_batches and i >= max_batches:
      break
    s_ce, s_conf = sums(params, parallel.global_batch(batch, mesh))
    ce, confusion = ce + float(s_ce), confusion + np.asarray(s_conf)
  n = confusion.sum()
  support = confusion.sum(1)
  recall = np.divide(np.diag(confusion), support, out=np.zeros(k), where=support > 0)
  return {"split": split, "examples": int(n), "loss": float(ce / max(n, 1)), "accuracy": float(np.trace(confusion) / max(n, 1)),
          "balanced_accuracy": float(recall[support > 0].mean()), "per_class_recall": recall.tolist(),
          "confusion": confusion.astype(int).tolist()}
