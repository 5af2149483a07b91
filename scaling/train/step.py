"""The jitted train and eval steps: explicit in/out shardings, donated state, f32 cross-entropy,
optional z-loss, gradient accumulation over micro-batches inside the step.

State is a plain pytree {'step', 'params', 'opt_state'} with `params` a pure dict (nnx.to_pure_dict);
`nnx.merge(graphdef, params)` rebuilds the module inside the trace. Keeping the state functional (rather
than nnx.Optimizer objects) makes shardings, donation, orbax checkpoints and vmap over K models plain JAX.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from scaling import config as config_lib
from scaling import parallel
from scaling import errors


def task_of(config: ml_collections.ConfigDict) -> str:
  return config.data.get("task", "lm")


def forward(model, batch: dict, task: str):
  """-> logits_...xV (f32), integer targets, weights; for every task the loss is a weighted CE."""
  if task == "lm":
    return model(batch["inputs"]), batch["targets"], batch["weights"]
  if task in config_lib.SEQ2SEQ_TASKS:
    logits = model(batch["inputs"], batch["decoder_inputs"], batch["input_mask"])
    return logits, batch["targets"], batch["weights"]
  if task == "classify":
    labels_B = batch["label"]  # padding rows of a finite eval split carry weight 0
    return model(batch["x"]), labels_B, batch.get("weights", jnp.ones(labels_B.shape, jnp.float32))
  if task == "module_cls":  # token snippets -> class (GPT classification head); weight 0 marks padding rows
    labels_B = batch["label"]
    return model.classify(batch["inputs"]), labels_B, batch.get("weights", jnp.ones(labels_B.shape, jnp.float32))
  raise errors.ConfigError(f"data.task: unknown {task!r}; allowed: lm, span, prefix_lm, classify, module_cls")


def loss_sums(logits, targets, weights, z_loss: float) -> dict:
  """Sums (not means) so micro-batches and hosts combine exactly: ce, z, weight, correct."""
  logits = logits.astype(jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  out = {"ce": jnp.sum(ce * weights), "weight": jnp.sum(weights),
         "correct": jnp.sum((jnp.argmax(logits, -1) == targets) * weights)}
  out["z"] = jnp.sum(jnp.square(jax.nn.logsumexp(logits, -1)) * weights) * z_loss if z_loss else jnp.float32(0)
  return out


def split_micro(batch: dict, n: int, mesh) -> dict:
  """[B, ...] -> [n, B/n, ...] taking rows i::n into micro-batch i, so each device keeps its rows
  (a contiguous split would move micro-batches across devices)."""
  def one(x):
    y = x.reshape(x.shape[0] // n, n, *x.shape[1:]).swapaxes(0, 1)
    spec = jax.sharding.PartitionSpec(None, parallel.BATCH_AXES, *([None] * (x.ndim - 1)))
    return jax.lax.with_sharding_constraint(y, jax.sharding.NamedSharding(mesh, spec))
  return jax.tree.map(one, batch)


def make_train_step(graphdef, tx: optax.GradientTransformation, lr_fn: Callable, task: str,
                    t: ml_collections.ConfigDict, mesh) -> Callable:
  """Un-jitted step(state, batch) -> (state, metrics); `jit_train_step` adds shardings."""

  def grads_of(params, batch, total_weight):
    def loss_fn(p):
      s = loss_sums(*forward(nnx.merge(graphdef, p), batch, task), t.z_loss)
      return (s["ce"] + s["z"]) / total_weight, s
    return jax.grad(loss_fn, has_aux=True)(params)

  def step(state, batch):
    params = state["params"]
    total_weight = jnp.maximum(jnp.sum(batch["weights"]) if "weights" in batch
                               else jnp.float32(jax.tree.leaves(batch)[0].shape[0]), 1.0)
    if t.accum_steps == 1:
      grads, sums = grads_of(params, batch, total_weight)
    else:
      def body(carry, micro):
        g, s = grads_of(params, micro, total_weight)
        return jax.tree.map(jnp.add, carry, (g, s)), None
      zero = (jax.tree.map(jnp.zeros_like, params),
              {k: jnp.float32(0) for k in ("ce", "weight", "correct", "z")})
      (grads, sums), _ = jax.lax.scan(body, zero, split_micro(batch, t.accum_steps, mesh))
    updates, opt_state = tx.update(grads, state["opt_state"], params)
    params = optax.apply_updates(params, updates)
    w = jnp.maximum(sums["weight"], 1.0)
    metrics = {"loss": sums["ce"] / w, "z_loss": sums["z"] / w, "accuracy": sums["correct"] / w,
               "grad_norm": optax.tree.norm(grads), "lr": lr_fn(state["step"])}
    return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, metrics

  return step


def jit_train_step(step_fn, state_shardings, mesh, donate: bool = True):
  return jax.jit(step_fn, in_shardings=(state_shardings, parallel.batch_sharding(mesh, 1)),
                 out_shardings=(state_shardings, parallel.replicated(mesh)),
                 donate_argnums=(0,) if donate else ())


def make_eval_step(graphdef, task: str, mesh, params_shardings) -> Callable:
  """eval(params, batch) -> sums of ce / weight / correct (the caller adds them over batches)."""
  def step(params, batch):
    return loss_sums(*forward(nnx.merge(graphdef, params), batch, task), 0.0)
  return jax.jit(step, in_shardings=(params_shardings, parallel.batch_sharding(mesh, 1)),
                 out_shardings=parallel.replicated(mesh))


def abstract_state(family: str, model_cfg, seed: int, tx: optax.GradientTransformation, mesh, build_fn):
  """-> (graphdef, abstract state with shardings, state_shardings, init): shapes only, nothing allocated.
  `jax.jit(init, out_shardings=state_shardings)()` creates the state straight into its shardings."""
  abstract = nnx.eval_shape(lambda: build_fn(family, model_cfg, seed))
  graphdef, abs_params = nnx.split(abstract)
  params_sh = nnx.to_pure_dict(parallel.state_shardings(abs_params, mesh))

  def init():
    params = nnx.to_pure_dict(nnx.split(build_fn(family, model_cfg, seed))[1])
    return {"step": jnp.int32(0), "params": params, "opt_state": tx.init(params)}

  abs_state = jax.eval_shape(init)
  rep = parallel.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abs_state["opt_state"], params_sh,
                                 transform_non_params=lambda _: rep)
  shardings = {"step": rep, "params": params_sh, "opt_state": opt_sh}
  abs_state = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), abs_state, shardings)
  return graphdef, abs_state, shardings, init


def init_state(family: str, model_cfg, seed: int, tx: optax.GradientTransformation, mesh, build_fn):
  """-> (graphdef, state, state_shardings). Parameters and optimizer state are created by one jitted
  function straight into their shardings: nothing is materialized whole on one device."""
  graphdef, _, shardings, init = abstract_state(family, model_cfg, seed, tx, mesh, build_fn)
  return graphdef, jax.jit(init, out_shardings=shardings)(), shardings
