"""K small models in one compiled step: `jax.vmap` over the train state of K runs of the same size.

Ladder members too small to fill a device waste it one at a time. Runs that differ only in seed and
learning rate are packed: the state gets a leading K axis (init vmapped over seeds), and one jitted step
vmaps `scaling.train.step.make_train_step` over (state, batch, lr scale). Every schedule in
`scaling.train.optim` is linear in the peak lr, so member k's lr is exactly the shared schedule times
`lr_k / lr_0`: we scale the optimizer's updates (`_scaled`), which keeps each member's optimizer state
identical in structure to a single run's. Member k reads its own data stream (seeded by its seed, as a
single run would), so member k trains exactly like `loop.train` on its config, up to float reassociation
in the batched matmuls.

Results land as K ordinary run directories: config.json, metrics.jsonl, per-member orbax checkpoints
(loadable, and resumable, as single runs) and result.json written last. A member that diverges is
recorded as 'diverged' and the others go on (vmapped members never mix).
"""

import json
import os
import time
import traceback
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import config as config_lib
from scaling import faults, io, models, parallel
from scaling.train import checkpoint, loop, memory, metrics, optim, progress
from scaling.train import step as step_lib

# Config fields packed members may differ in (anything else must match: model, data, schedule, steps).
FREE = ("seed", "tags", "size", "train.lr", "train.progress")


def pack_key(cfg) -> str | None:
  """Members with the same key can share one vmapped step; None for runs that never pack."""
  d = json.loads(json.dumps(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg, default=io._default))
  if d.get("family") not in config_lib.NEURAL or d.get("init_from"):
    return None
  for f in FREE:
    *head, last = f.split(".")
    sub = d
    for h in head:
      sub = sub.get(h, {})
    sub.pop(last, None)
  return json.dumps(d, sort_keys=True)


def groups(runs: list[tuple[str, ml_collections.ConfigDict]], pack: int,
           saved_steps: Callable[[str], set[int]] = lambda run_id: set()) -> list[list[str]]:
  """Run ids in tasks of up to `pack` packable members (input order kept within a group). Runs with
  checkpoints pack only with runs that share a saved step (the group resumes from the newest common one);
  a fresh run never joins a resumed one (the group would restart it from scratch)."""
  if pack <= 1:
    return [[r] for r, _ in runs]
  buckets: list[tuple[str, set[int], list[str]]] = []  # (pack key, steps all members share, members)
  out = []
  for r, c in runs:
    k, steps = pack_key(c), saved_steps(r)
    if k is None:
      out.append([r])
      continue
    for i, (bk, common, members) in enumerate(buckets):
      if bk == k and len(members) < pack and (common & steps if steps or common else True):
        buckets[i] = (bk, common & steps, members + [r])
        break
    else:
      buckets.append((k, steps, [r]))
  return out + [members for _, _, members in buckets]


def _scaled(tx: optax.GradientTransformation, scale) -> optax.GradientTransformation:
  """tx with its updates multiplied by `scale` (= a peak lr multiplier; same state as tx)."""
  def update(grads, state, params=None):
    updates, state = tx.update(grads, state, params)
    return jax.tree.map(lambda u: u * scale, updates), state
  return optax.GradientTransformation(tx.init, update)


def _stacked(sharding: NamedSharding) -> NamedSharding:
  return NamedSharding(sharding.mesh, P(None, *sharding.spec))


def _stack_batches(batches: list[dict], mesh) -> dict:
  """K per-process batches -> global [K, B, ...] arrays, B sharded over data x fsdp."""
  def one(*xs):
    x = np.stack([np.asarray(v) for v in xs])
    spec = P(None, parallel.BATCH_AXES, *([None] * (x.ndim - 2)))
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), x)
  return jax.tree.map(one, *batches)


def check_packable(cs: list[ml_collections.ConfigDict]) -> None:
  keys = {pack_key(c) for c in cs}
  if None in keys or len(keys) != 1:
    raise ValueError("pack: packed runs must be neural runs that differ only in "
                     f"{', '.join(FREE)}; allowed: same model, data and train settings")


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


def evaluate(eval_fn, params, c, mesh, k: int) -> list[dict]:
  from scaling.data import pipeline
  loader = pipeline.make_loader(c.data, split="validation", seed=0, shuffle=False, num_epochs=1)
  tot = {n: np.zeros(k) for n in ("ce", "weight", "correct")}
  for i, batch in enumerate(loader):
    if i >= c.train.eval_batches:
      break
    s = eval_fn(params, parallel.global_batch(batch, mesh))
    for n in tot:
      tot[n] += np.asarray(s[n])
    faults.point("eval_batch")
  w = np.maximum(tot["weight"], 1.0)
  return [{"eval_loss": float(tot["ce"][j] / w[j]), "eval_accuracy": float(tot["correct"][j] / w[j])}
          for j in range(k)]


def member_fn(member_sh):
  """jit(state [K], j) -> member j's state in a single run's shardings: one compile for all leaves
  (indexing leaf by leaf would compile one gather per shape)."""
  return jax.jit(lambda state, j: jax.tree.map(lambda x: x[j], state), out_shardings=member_sh)


def train_packed(configs: list[ml_collections.ConfigDict], workdirs: list[str]) -> list[dict]:
  """Trains K packable runs together; writes each run directory like `loop.train`; -> K results."""
  cs = [loop.prepare(c) for c in configs]
  check_packable(cs)
  for c, d in zip(cs, workdirs):
    loop.check_resume_layout(c, d)
  k, is_main = len(cs), jax.process_index() == 0
  t_start = time.time()
  results = []
  for c, d in zip(cs, workdirs):
    os.makedirs(d, exist_ok=True)
    if is_main:
      io.atomic_write_json(os.path.join(d, "config.json"), c.to_dict())
    results.append({"family": c.family, "size": c.size, "seed": c.seed, "tags": c.tags.to_dict(),
                    "status": "failed", "steps": 0, "tokens": 0, "flops": 0.0, "packed": k,
                    "packed_with": [os.path.basename(os.path.normpath(x)) for x in workdirs if x != d]})
  writers = [metrics.Writer(d, enabled=is_main) for d in workdirs]
  try:
    _train(cs, workdirs, results, writers, is_main, t_start)
  except Exception as e:
    for r, d in zip(results, workdirs):
      if r["status"] == "failed":
        r.update(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                 traceback=traceback.format_exc()[-4000:])
        _finish(r, d, t_start, is_main)
    raise
  finally:
    for w in writers:
      w.close()
  for r, d in zip(results, workdirs):
    if r["status"] == "completed":
      _finish(r, d, t_start, is_main)
  return results


def _finish(result, workdir, t_start, is_main):
  result["wall_time_s"] = time.time() - t_start
  if is_main:
    io.atomic_write_json(os.path.join(workdir, "result.json"), result)


def _train(cs, workdirs, results, writers, is_main, t_start):
  from scaling.data import pipeline
  c0, k = cs[0], len(cs)
  t = c0.train
  mesh = parallel.make_mesh(c0.mesh)
  task = step_lib.task_of(c0)
  probe = next(iter(pipeline.make_loader(c0.data, split="validation", seed=0, shuffle=False, num_epochs=1)))
  p = loop.plan(c0, {n: np.asarray(v).shape for n, v in probe.items()})
  for r in results:
    r.update(params=p["params"]["total"], params_embed=p["params"]["embed"],
             params_nonembed=p["params"]["nonembed"], planned_steps=p["steps"],
             flops_per_token=p["flops_per_step"] / max(p["tokens_per_step"], 1))
  tx, lr_fn = optim.make(t, p["steps"], c0.family, c0.model)
  scales = jnp.asarray([c.train.lr / t.lr for c in cs], jnp.float32)
  graphdef, state, stacked_sh, member_sh = init(c0.family, c0.model, [c.seed for c in cs], tx, mesh)
  its = [iter(pipeline.make_loader(c.data, split="train", seed=c.seed, shuffle=True, num_epochs=None))
         for c in cs]
  first = next(iter(pipeline.make_loader(c0.data, split="train", seed=c0.seed, shuffle=True, num_epochs=None)))
  abs_batch = {n: jax.ShapeDtypeStruct((k, *x.shape), x.dtype, sharding=_stacked(x.sharding))
               for n, x in loop.abstract_batch(first, mesh).items()}
  t0 = time.perf_counter()
  train_step = make_step(graphdef, tx, lr_fn, task, t, mesh, stacked_sh).lower(state, abs_batch, scales).compile()
  b = {"plan": p, "compile_time_s": time.perf_counter() - t0, "memory": memory.from_compiled(train_step)}
  cap, cap_src = memory.capacity()
  b["memory"].update(capacity=cap, capacity_source=cap_src)
  if b["memory"].get("peak"):
    memory.check(c0, b["memory"]["peak"], f"{k} packed models; XLA: temporaries {memory.fmt(b['memory']['temp'])}",
                 cap, cap_src)
  eval_fn = make_eval(graphdef, task)

  ckpts = [checkpoint.Checkpointer(d, keep=t.keep_checkpoints) for d in workdirs]
  member = member_fn(member_sh)
  start, restored = 0, _restore(ckpts, its, member(state, 0), member_sh, stacked_sh)
  if restored is None and any(ck.manager.all_steps() for ck in ckpts):
    # Members saved at different steps (e.g. some trained alone before): the group starts afresh, and
    # the old checkpoints move aside so that a later resume never picks up a newer stale step.
    for ck, d in zip(ckpts, workdirs):
      ck.close()
      if os.path.isdir(ck.dir):
        os.makedirs(os.path.join(d, "attempts"), exist_ok=True)
        os.rename(ck.dir, os.path.join(d, "attempts", f"checkpoints-{int(time.time())}"))
    ckpts = [checkpoint.Checkpointer(d, keep=t.keep_checkpoints) for d in workdirs]
    print("packed: members' checkpoints disagree; starting the group afresh (old ones in attempts/)")
  if restored is not None:
    start, state = restored
    print(f"resumed packed {', '.join(os.path.basename(d) for d in workdirs)} from step {start}")
  for w in writers:
    w.truncate_after(start)
  peak, peak_src = metrics.peak_flops(t.peak_flops)
  alive = np.ones(k, bool)
  last = [{"loss": float("nan")} for _ in range(k)]
  t_window, steps_window = time.perf_counter(), 0
  bar = progress.Bar(p["steps"], start, f"{c0.family}:{c0.size} packed x{k}", is_main and t.progress)

  def check(step_i, m):
    host = {n: np.asarray(v) for n, v in m.items()}
    for j in np.flatnonzero(alive):
      last[j] = {n: float(v[j]) for n, v in host.items()}
      if not np.isfinite(last[j]["loss"]) or last[j]["loss"] > t.divergence_threshold:
        alive[j] = False
        results[j].update(status="diverged", diverged_step=int(step_i), steps=int(step_i),
                          train_loss=last[j]["loss"])
        _finish(results[j], workdirs[j], t_start, is_main)
        print(f"{os.path.basename(workdirs[j])}: diverged at step {step_i}")

  pending = None  # (step, metrics) of the previous step, read after the next one is dispatched
  for step_i in range(start, p["steps"]):
    batch = _stack_batches([next(it) for it in its], mesh)
    state, m = train_step(state, batch, scales)
    if pending is not None:
      check(*pending)
    pending = (step_i + 1, m)
    done = step_i + 1
    steps_window += 1
    if done % t.log_every == 0 or done == p["steps"]:
      check(*pending)
      pending = None
      dt = time.perf_counter() - t_window
      tok_s = steps_window * p["tokens_per_step"] / dt  # per member; the device did k times this
      mfu = k * steps_window * p["flops_per_step"] / dt / peak
      for j in np.flatnonzero(alive):
        writers[j].write({"step": done, "tokens": done * p["tokens_per_step"], "train_loss": last[j]["loss"],
                          "lr": last[j]["lr"], "grad_norm": last[j]["grad_norm"], "tokens_per_s": tok_s,
                          "mfu": mfu, "packed": k})
      bar.report(done, "/".join(f"{last[j]['loss']:.3f}" for j in np.flatnonzero(alive)), tok_s, mfu)
      t_window, steps_window = time.perf_counter(), 0
    bar.update(1)
    if not alive.any():
      return
    if t.eval_every and done % t.eval_every == 0 and done != p["steps"]:
      ev = evaluate(eval_fn, state["params"], c0, mesh, k)
      for j in np.flatnonzero(alive):
        writers[j].write({"step": done, "tokens": done * p["tokens_per_step"], **ev[j]})
    if t.checkpoint_every and done % t.checkpoint_every == 0 and done != p["steps"]:
      _save(ckpts, alive, member, state, its, done)
  bar.close()
  if pending is not None:
    check(*pending)
  if not alive.any():
    return
  steps_done = p["steps"]
  if start < steps_done:
    _save(ckpts, alive, member, state, its, steps_done)
  for ck in ckpts:
    ck.close()
  # A relaunch after the final checkpoint trains nothing: train rows (and eval rows, if the kill came after
  # them) are in each member's metrics.jsonl; eval is never logged twice.
  logged = [{n: v for r in w.rows() if r.get("step") == steps_done for n, v in r.items()} for w in writers]
  if any("eval_loss" not in logged[j] for j in np.flatnonzero(alive)):
    ev = evaluate(eval_fn, state["params"], c0, mesh, k)
    for j in np.flatnonzero(alive):
      if "eval_loss" not in logged[j]:
        writers[j].write({"step": steps_done, "tokens": steps_done * p["tokens_per_step"], **ev[j]})
        logged[j].update(ev[j])
  faults.point("before_result")
  for j in np.flatnonzero(alive):
    ev_j = {n: logged[j][n] for n in ("eval_loss", "eval_accuracy")}
    train_loss = last[j]["loss"] if start < steps_done else logged[j].get("train_loss", float("nan"))
    results[j].update(status="completed", steps=steps_done, tokens=p["tokens"], flops=p["flops"],
                      train_loss=train_loss, peak_flops=peak, peak_source=peak_src, **ev_j,
                      **pipeline.epochs(c0.data, steps_done * c0.data.batch_size),
                      **loop.throughput(writers[j].rows(), b))
    print(f"{os.path.basename(workdirs[j])}: params={p['params']['total']:,} steps={steps_done} "
          f"train_loss={train_loss:.4f} eval_loss={ev_j['eval_loss']:.4f} (packed x{k})")


def _save(ckpts, alive, member, state, its, step):
  for j in np.flatnonzero(alive):
    ckpts[j].save(step, member(state, j), its[j].get_state())


def _restore(ckpts, its, member_state, member_sh, stacked_sh):
  """(step, stacked state) at the newest step every member has a checkpoint of, else None (fresh). A group
  killed between its members' saves resumes from the step before; redoing it is deterministic."""
  common = set.intersection(*(set(ck.complete_steps()) for ck in ckpts))
  if not common:
    return None
  abstract = checkpoint.abstract_like(member_state, member_sh)
  got = [ck.restore_latest(abstract, at_most=max(common)) for ck in ckpts]
  if any(g is None for g in got) or len({g[0] for g in got}) != 1:
    return None
  for it, g in zip(its, got):
    it.set_state(g[2])
  stack = jax.jit(lambda states: jax.tree.map(lambda *xs: jnp.stack(xs), *states), out_shardings=stacked_sh)
  return got[0][0], stack([g[1] for g in got])
