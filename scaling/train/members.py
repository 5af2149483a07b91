"""The step of K runs: one run's compiled step (`Single`, K = 1) or K runs vmapped into one (`Packed`).

The loop (scaling/train/loop.py) drives either through the same methods, so eval, logging, checkpoints,
fault points and divergence exist once; only how K states are stepped differs.

Packing: runs that differ only in seed and learning rate share one compiled step. The state gets a leading
K axis (init vmapped over seeds) and one jitted step vmaps `step.make_train_step` over (state, batch, lr
scale). Every schedule in `scaling.train.optim` is linear in the peak lr, so member k's lr is exactly the
shared schedule times `lr_k / lr_0`: we scale the optimizer's updates (`_scaled`), which keeps each member's
optimizer state identical in structure to a single run's (its checkpoints load, and resume, as single runs).
Member k reads its own data stream (seeded by its seed), so it trains exactly like a single run of its
config, up to float reassociation in the batched matmuls. K = 1 never goes through vmap: a single run's
numbers are those of its own un-batched step.
"""

import json
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import io, models, parallel
from scaling.train import step as step_lib
from scaling.models import registry
from scaling import errors


# Config fields packed members may differ in (anything else must match: model, data, schedule, steps).
FREE = ("seed", "tags", "size", "train.lr", "train.progress")


def pack_key(cfg) -> str | None:
  """Members with the same key can share one vmapped step; None for runs that never pack."""
  d = json.loads(json.dumps(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg, default=io._default))
  if not registry.is_neural_config(d) or d.get("init_from"):
    return None
  for f in FREE:
    *head, last = f.split(".")
    sub = d
    for h in head:
      sub = sub.get(h, {})
    sub.pop(last, None)
  return json.dumps(d, sort_keys=True)


def check_packable(cs: list[ml_collections.ConfigDict]) -> None:
  keys = {pack_key(c) for c in cs}
  if None in keys or len(keys) != 1:
    raise errors.ConfigError("pack: packed runs must be neural runs that differ only in "
                     f"{', '.join(FREE)}; allowed: same model, data and train settings")


def abstract_batch(local_batch: dict, mesh) -> dict:
  """ShapeDtypeStructs of the global batch that `parallel.global_batch` builds from this process's share."""
  n = jax.process_count()
  return {k: jax.ShapeDtypeStruct((v.shape[0] * n, *v.shape[1:]), v.dtype, sharding=parallel.batch_sharding(mesh, v.ndim))
          for k, v in ((k, np.asarray(v)) for k, v in local_batch.items())}


class Single:
  """One run: its step jitted with explicit shardings and compiled from shapes before anything is allocated."""
  k = 1

  def __init__(self, c: ml_collections.ConfigDict, tx, lr_fn, task: str, mesh, probe: dict):
    self.mesh = mesh
    self.graphdef, abs_state, self.shardings, self._init = step_lib.abstract_state(
        c.family, c.model, c.seed, tx, mesh, models.build)
    jitted = step_lib.jit_train_step(step_lib.make_train_step(self.graphdef, tx, lr_fn, task, c.train, mesh),
                                     self.shardings, mesh)
    t0 = time.perf_counter()
    self.compiled = jitted.lower(abs_state, abstract_batch(probe, mesh)).compile()
    self.compile_time_s = time.perf_counter() - t0
    self._eval = step_lib.make_eval_step(self.graphdef, task, mesh, self.shardings["params"])

  def init_state(self):
    return jax.jit(self._init, out_shardings=self.shardings)()

  def step(self, state, local_batches: list[dict]):
    return self.compiled(state, parallel.global_batch(local_batches[0], self.mesh))

  def eval_sums(self, params, local_batch: dict) -> dict:
    """-> {ce, weight, correct}: float64 arrays [1]."""
    s = self._eval(params, parallel.global_batch(local_batch, self.mesh))
    return {n: np.array([float(s[n])]) for n in ("ce", "weight", "correct")}

  def member(self, state, j: int):
    return state

  def stack(self, states: list):
    return states[0]

  @property
  def member_shardings(self):
    return self.shardings


def _scaled(tx: optax.GradientTransformation, scale) -> optax.GradientTransformation:
  """tx with its updates multiplied by `scale` (= a peak lr multiplier; same state as tx)."""
  def update(grads, state, params=None):
    updates, state = tx.update(grads, state, params)
    return jax.tree.map(lambda u: u * scale, updates), state
  return optax.GradientTransformation(tx.init, update)


def _stacked(sharding: NamedSharding) -> NamedSharding:
  return NamedSharding(sharding.mesh, P(None, *sharding.spec))


def stack_batches(batches: list[dict], mesh) -> dict:
  """K per-process batches -> global [K, B, ...] arrays, B sharded over data x fsdp."""
  def one(*xs):
    x = np.stack([np.asarray(v) for v in xs])
    spec = P(None, parallel.BATCH_AXES, *([None] * (x.ndim - 2)))
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), x)
  return jax.tree.map(one, *batches)


def init(family, model_cfg, seeds, tx, mesh):
  """-> (graphdef, stacked state, stacked shardings, member shardings): the K inits in one vmapped jit."""
  abstract = nnx.eval_shape(lambda: models.build(family, model_cfg, 0))
  graphdef, abs_params = nnx.split(abstract)
  params_sh = nnx.to_pure_dict(parallel.state_shardings(abs_params, mesh))

  def init_one(seed):
    # nnx.Rngs(int) is nnx.Rngs(jax.random.key(int)); a key also traces under vmap.
    params = nnx.to_pure_dict(nnx.split(models.build(family, model_cfg, jax.random.key(seed)))[1])
    return {"step": jnp.int32(0), "params": params, "opt_state": tx.init(params)}

  abs_state = jax.eval_shape(init_one, 0)
  rep = parallel.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abs_state["opt_state"], params_sh,
                                 transform_non_params=lambda _: rep)
  member_sh = {"step": rep, "params": params_sh, "opt_state": opt_sh}
  stacked_sh = jax.tree.map(_stacked, member_sh)
  seeds = jnp.asarray(seeds, jnp.int32)
  state = jax.jit(jax.vmap(init_one), out_shardings=stacked_sh)(seeds)
  return graphdef, state, stacked_sh, member_sh


def make_step(graphdef, tx, lr_fn, task, t, mesh, stacked_sh):
  """jit(vmap(step)) over (state [K], batch [K, B, ...], lr scale [K])."""
  def member_step(state, batch, scale):
    step = step_lib.make_train_step(graphdef, _scaled(tx, scale), lambda i: lr_fn(i) * scale, task, t, mesh)
    return step(state, batch)

  rep = parallel.replicated(mesh)
  return jax.jit(jax.vmap(member_step), in_shardings=(stacked_sh, None, rep),
                 out_shardings=(stacked_sh, rep), donate_argnums=(0,))


def make_eval(graphdef, task):
  def member_eval(params, batch):
    return step_lib.loss_sums(*step_lib.forward(nnx.merge(graphdef, params), batch, task), 0.0)
  return jax.jit(jax.vmap(member_eval, in_axes=(0, None)))


class Packed:
  """K runs of one size in one vmapped step; the state is created (vmapped init) when the engine is."""

  def __init__(self, cs: list[ml_collections.ConfigDict], tx, lr_fn, task: str, mesh, probe: dict):
    c0 = cs[0]
    self.k, self.mesh = len(cs), mesh
    self.scales = jnp.asarray([c.train.lr / c0.train.lr for c in cs], jnp.float32)
    self.graphdef, self._state, self.stacked_sh, self._member_sh = init(
        c0.family, c0.model, [c.seed for c in cs], tx, mesh)
    abs_batch = {n: jax.ShapeDtypeStruct((self.k, *x.shape), x.dtype, sharding=_stacked(x.sharding))
                 for n, x in abstract_batch(probe, mesh).items()}
    t0 = time.perf_counter()
    self.compiled = make_step(self.graphdef, tx, lr_fn, task, c0.train, mesh, self.stacked_sh).lower(
        self._state, abs_batch, self.scales).compile()
    self.compile_time_s = time.perf_counter() - t0
    self._eval = make_eval(self.graphdef, task)
    # One compile for all leaves (indexing leaf by leaf would compile one gather per shape).
    self._member = jax.jit(lambda state, j: jax.tree.map(lambda x: x[j], state), out_shardings=self._member_sh)
    self._stack = jax.jit(lambda states: jax.tree.map(lambda *xs: jnp.stack(xs), *states),
                          out_shardings=self.stacked_sh)

  def init_state(self):
    state, self._state = self._state, None
    return state

  def step(self, state, local_batches: list[dict]):
    return self.compiled(state, stack_batches(local_batches, self.mesh), self.scales)

  def eval_sums(self, params, local_batch: dict) -> dict:
    s = self._eval(params, parallel.global_batch(local_batch, self.mesh))
    return {n: np.asarray(s[n]).astype(np.float64) for n in ("ce", "weight", "correct")}

  def member(self, state, j: int):
    return self._member(state, j)

  def stack(self, states: list):
    return self._stack(states)

  @property
  def member_shardings(self):
    return self._member_sh
