"""The training loop: budget -> steps, sharded init or resume, train/eval/log/checkpoint, result.json.

`train(config, workdir)` is what `scaling train`, sweeps and tests call; `train_members(configs, workdirs)`
is the same loop for K runs packed into one step (scaling/train/members.py: K = 1 is a single run's own step).
Everything that can be wrong with a config is checked before anything compiles; `result.json` is written
last and atomically. Eval, logging, checkpoints, divergence and fault points exist here once.
"""

import logging
import os
import time
import traceback

import jax
import ml_collections
import numpy as np

from scaling import config as config_lib
from scaling import faults, io, parallel
from scaling.data import pipeline
from scaling.models import accounting, registry, stack
from scaling.train import branch, budget, checkpoint, finetune, energy, members, memory, metrics, optim, progress
from scaling.train import step as step_lib
from scaling import errors

log = logging.getLogger(__name__)

def prepare(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Validate + finalize: every error a config can have is raised here, before any compile."""
  parallel.maybe_initialize_distributed(c)  # must precede any jax call (device_count below)
  c = ml_collections.ConfigDict(c.to_dict())
  if not registry.is_neural_config(c):
    raise errors.ConfigError(f"family: {c.get('family')!r} is not trained by this loop; allowed: {', '.join(registry.names())}")
  c = config_lib.finalize(c)
  config_lib.validate(c, jax.device_count())
  return c


def check_resume_layout(c: ml_collections.ConfigDict, workdir: str) -> None:
  """A run resumes only in the layer layout its checkpoints were written in (orbax restores the whole train
  state, optimizer moments included, by structure). Fine-tuning and sampling convert either way."""
  if not registry.get(c.family).scan_layers or not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return
  saved = finetune.saved_layout(workdir)
  if saved is not None and saved != stack.scanned(c.model):
    raise errors.ConfigError(f"model.scan_layers: {stack.scanned(c.model)} but the checkpoints in {workdir!r} were "
                     f"written with scan_layers={saved}; allowed: {saved} to resume this run")


def evaluate(engine, params, c, split: str = "validation") -> list[dict]:
  """Held-out loss and accuracy of each of the engine's K members on the first train.eval_batches batches."""
  loader = pipeline.make_loader(c.data, split=split, seed=0, shuffle=False, num_epochs=1)
  tot = {n: np.zeros(engine.k) for n in ("ce", "weight", "correct")}
  for i, batch in enumerate(loader):
    if i >= c.train.eval_batches:
      break
    s = engine.eval_sums(params, batch)
    for n in tot:
      tot[n] += s[n]
    faults.point("eval_batch")
  w = np.maximum(tot["weight"], 1.0)
  return [{"eval_loss": float(tot["ce"][j] / w[j]), "eval_accuracy": float(tot["correct"][j] / w[j])}
          for j in range(engine.k)]


def loader_bytes(local_batch: dict, c: ml_collections.ConfigDict) -> int:
  """Host memory the train loader holds: this process's batch times the batches grain keeps in flight."""
  per_batch = sum(np.asarray(v).nbytes for v in local_batch.values())
  return per_batch * (int(c.data.get("prefetch", pipeline.DEFAULTS["prefetch"])) + 2)


def build_members(cs: list[ml_collections.ConfigDict], peak_check: bool = True) -> dict:
  """Everything K runs need before their first step, with no file written: mesh, plan, the compiled step and
  its memory. Raises memory.TooBig (one line) when the step cannot fit: first from the analytic estimate
  (when over by more than its error), before any compile, then from XLA's analysis of the compiled step."""
  c0, k = cs[0], len(cs)
  t = c0.train
  mesh = parallel.make_mesh(c0.mesh)
  task = step_lib.task_of(c0)
  probe = next(iter(pipeline.make_loader(c0.data, split="train", seed=c0.seed, shuffle=True, num_epochs=None)))
  shapes = {n: np.asarray(v).shape for n, v in probe.items()}
  p = budget.plan(c0)
  what = f"{k} packed models; " if k > 1 else ""
  cap, cap_src = memory.capacity()
  est = memory.analytic(c0, shapes)["total"] * k
  if peak_check:
    memory.check(c0, est, f"{what}analytic estimate: params, grads, optimizer state, activations", cap, cap_src,
                 slack=memory.ANALYTIC_SLACK)
  tx, lr_fn = optim.make(t, p["steps"], c0.family, c0.model)
  engine = (members.Single(c0, tx, lr_fn, task, mesh, probe) if k == 1
            else members.Packed(cs, tx, lr_fn, task, mesh, probe))
  mem = memory.from_compiled(engine.compiled)
  host = loader_bytes(probe, c0) * k
  mem.update(analytic=est, loader=host, capacity=cap, capacity_source=cap_src)
  need = mem.get("peak", 0) + (host // jax.local_device_count() if jax.local_devices()[0].platform == "cpu" else 0)
  if peak_check and mem.get("peak"):
    memory.check(c0, need, f"{what}XLA: arguments {memory.fmt(mem['argument'])}, temporaries "
                 f"{memory.fmt(mem['temp'])}{', loader ' + memory.fmt(host) if need > mem['peak'] else ''}",
                 cap, cap_src)
  return dict(mesh=mesh, task=task, plan=p, tx=tx, lr_fn=lr_fn, engine=engine, train_step=engine.compiled,
              compile_time_s=engine.compile_time_s, memory=mem)


def build(c: ml_collections.ConfigDict, peak_check: bool = True) -> dict:
  return build_members([c], peak_check)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Train one run into `workdir` (resuming if it holds a checkpoint); returns the result dict.
  Config errors and a step that cannot fit in memory raise ValueError before anything is written."""
  return train_members([config], [workdir])[0]


def train_members(configs: list[ml_collections.ConfigDict], workdirs: list[str]) -> list[dict]:
  """Train K runs that differ only in members.FREE together (K = 1: one run); each run directory is written
  as a single run's; -> K results. A member that diverges is recorded and the others go on."""
  for c in configs:
    parallel.maybe_initialize_distributed(c)
  cs = [prepare(c) for c in configs]
  if len(cs) > 1:
    members.check_packable(cs)
  for c, d in zip(cs, workdirs):
    check_resume_layout(c, d)
    if c.train.get("branch_from") or c.train.get("branch_step"):  # its trunk, before anything compiles
      branch.check(c, budget.plan(c)["steps"], d)
  b = build_members(cs)
  k, is_main = len(cs), jax.process_index() == 0
  meter = energy.Meter(b["mesh"].devices.flat, share=k)  # device-seconds (and NVML energy) per member
  t_start = time.time()
  results = []
  for c, d in zip(cs, workdirs):
    os.makedirs(d, exist_ok=True)
    if is_main:
      io.atomic_write_json(os.path.join(d, "config.json"), c.to_dict())
    r = {"family": c.family, "size": c.size, "seed": c.seed, "tags": c.tags.to_dict(),
         "status": "failed", "steps": 0, "tokens": 0, "flops": 0.0}
    if k > 1:
      r.update(packed=k, packed_with=[os.path.basename(os.path.normpath(x)) for x in workdirs if x != d])
    results.append(r)
  writers = [metrics.Writer(d, enabled=is_main) for d in workdirs]
  try:
    _train(cs, b, workdirs, results, writers, t_start, is_main, meter)
  except Exception as e:
    for r, d in zip(results, workdirs):
      if r["status"] == "failed":
        r.update(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                 traceback=traceback.format_exc()[-4000:])
        _finish(r, d, t_start, is_main, meter)
    raise
  finally:
    for w in writers:
      w.close()
  for r, d in zip(results, workdirs):
    if r["status"] == "completed":
      _finish(r, d, t_start, is_main, meter)
  return results


def _finish(result, workdir, t_start, is_main, meter=None):
  result["wall_time_s"] = time.time() - t_start
  if meter is not None:
    result.update(meter.read(result["wall_time_s"]))
  if is_main:
    io.atomic_write_json(os.path.join(workdir, "result.json"), result)


def throughput(rows: list[dict], b: dict) -> dict:
  """The run's throughput summary from its logged windows (all of them, across resumes): medians."""
  tok = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
  mfu = [r["mfu"] for r in rows if r.get("mfu")]
  out = {"compile_time_s": b["compile_time_s"], "peak_bytes_per_device": b["memory"].get("peak"),
         "memory": b["memory"]}
  if tok:
    out.update(tokens_per_s=float(np.median(tok)), step_time_s=b["plan"]["tokens_per_step"] / float(np.median(tok)))
  if mfu:
    out["mfu"] = float(np.median(mfu))
  return out


def _resume(cs, workdirs, ckpts, its, engine, state, shardings):
  """-> (start step, state): the newest step every member has a complete checkpoint of (a group killed
  between its members' saves resumes from the step before; redoing it is deterministic), a cooldown branch's
  trunk step, or (0, the fresh state)."""
  common = set.intersection(*(set(ck.complete_steps()) for ck in ckpts))
  abstract = checkpoint.abstract_like(engine.member(state, 0), shardings)
  got = [ck.restore_latest(abstract, at_most=max(common)) for ck in ckpts] if common else []
  if got and all(g is not None for g in got) and len({g[0] for g in got}) == 1:
    for it, g in zip(its, got):
      it.set_state(g[2])
    log.info(f"resumed {', '.join(workdirs)} from step {got[0][0]}")
    return got[0][0], engine.stack([g[1] for g in got])
  if any(ck.manager.all_steps() for ck in ckpts):
    # Members saved at different steps (e.g. some trained alone before), or only unreadable steps: start
    # afresh, and move the old checkpoints aside so that a later resume never picks up a newer stale step.
    for ck, d in zip(ckpts, workdirs):
      ck.close()
      if os.path.isdir(ck.dir):
        os.makedirs(os.path.join(d, "attempts"), exist_ok=True)
        os.rename(ck.dir, os.path.join(d, "attempts", f"checkpoints-{int(time.time())}"))
      ck.reopen()
    log.info(f"{', '.join(workdirs)}: no checkpoint step all can resume from; starting afresh (old ones in attempts/)")
  c = cs[0]
  if len(cs) == 1 and c.train.get("branch_from"):
    state, data_state = branch.restore(c, workdirs[0], abstract)
    its[0].set_state(data_state)
    log.info(f"branched {workdirs[0]} from {branch.trunk_dir(c, workdirs[0])} at step {c.train.branch_step}")
    return c.train.branch_step, state
  return 0, state


def _train(cs, b, workdirs, results, writers, t_start, is_main, meter):
  c0, k, engine = cs[0], len(cs), b["engine"]
  t, p = c0.train, b["plan"]
  for r in results:
    r.update(params=p["params"]["total"], params_embed=p["params"]["embed"],
             params_nonembed=p["params"]["nonembed"], planned_steps=p["steps"],
             flops_per_token=p["flops_per_step"] / max(p["tokens_per_step"], 1))
  state = engine.init_state()
  shardings = engine.member_shardings
  if c0.get("init_from"):  # never packed (members.pack_key)
    state = finetune.load_pretrained(c0, state, shardings)
  its = [iter(pipeline.make_loader(c.data, split="train", seed=c.seed, shuffle=True, num_epochs=None)) for c in cs]
  pinned = set(t.get("checkpoint_steps", ()))  # a trunk's branch points
  ckpts = [checkpoint.Checkpointer(d, keep=t.keep_checkpoints, pinned=pinned) for d in workdirs]
  start, state = _resume(cs, workdirs, ckpts, its, engine, state, shardings)
  for w in writers:
    w.truncate_after(start)  # rows past the checkpoint (or from a run killed before its first one)
  peak, peak_src = metrics.peak_flops(t.peak_flops)
  for r in results:
    r.update(peak_flops=peak, peak_source=peak_src)
  names = [os.path.basename(os.path.normpath(d)) for d in workdirs]
  label = f"{c0.family}:{c0.size}" + (f" packed x{k}" if k > 1 else "")
  bar = progress.Bar(p["steps"], start, label, is_main and t.progress)
  alive = np.ones(k, bool)
  last = [{"loss": float("nan")} for _ in range(k)]
  t_window, steps_window = time.perf_counter(), 0

  def check(step_i, m):
    host = {n: np.atleast_1d(np.asarray(v)) for n, v in m.items()}
    for j in np.flatnonzero(alive):
      last[j] = {n: float(v[j]) for n, v in host.items()}
      if not np.isfinite(last[j]["loss"]) or last[j]["loss"] > t.divergence_threshold:
        alive[j] = False
        results[j].update(status="diverged", diverged_step=int(step_i), steps=int(step_i), train_loss=last[j]["loss"])
        _finish(results[j], workdirs[j], t_start, is_main, meter)
        log.info(f"{names[j]}: diverged at step {step_i}")

  def save(step):
    for j in np.flatnonzero(alive):
      ckpts[j].save(step, engine.member(state, j), its[j].get_state())

  n_curve = int(t.get("curve_points", 0))
  curve = {round(i * p["steps"] / n_curve) for i in range(1, n_curve)} if n_curve else set()
  pending = None  # (step, metrics) of the previous step, read after the next one is dispatched
  for step_i in range(start, p["steps"]):
    state, m = engine.step(state, [next(it) for it in its])
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
        row = {"step": done, "tokens": done * p["tokens_per_step"], "train_loss": last[j]["loss"],
               "lr": last[j]["lr"], "grad_norm": last[j]["grad_norm"], "tokens_per_s": tok_s, "mfu": mfu}
        writers[j].write({**row, "packed": k} if k > 1 else row)
      bar.report(done, "/".join(f"{last[j]['loss']:.3f}" for j in np.flatnonzero(alive)), tok_s, mfu)
      t_window, steps_window = time.perf_counter(), 0
    bar.update(1)
    if not alive.any():
      break
    if ((t.eval_every and done % t.eval_every == 0) or done in curve) and done != p["steps"]:
      ev = evaluate(engine, state["params"], c0)
      for j in np.flatnonzero(alive):
        writers[j].write({"step": done, "tokens": done * p["tokens_per_step"], **ev[j]})
    if ((t.checkpoint_every and done % t.checkpoint_every == 0) or done in pinned) and done != p["steps"]:
      save(done)
  bar.close()
  if pending is not None:
    check(*pending)
  if not alive.any():
    for ck in ckpts:
      ck.close()
    return
  steps_done = p["steps"]
  if start < steps_done:
    save(steps_done)
  for ck in ckpts:
    ck.close()
  # A relaunch of a run killed after its final checkpoint trains nothing: the final train row is in
  # metrics.jsonl, and so is the final eval row if the kill came after it (eval is never logged twice).
  logged = [{n: v for r in w.rows() if r.get("step") == steps_done for n, v in r.items()} for w in writers]
  if any("eval_loss" not in logged[j] or "eval_accuracy" not in logged[j] for j in np.flatnonzero(alive)):
    ev = evaluate(engine, state["params"], c0)
    for j in np.flatnonzero(alive):
      if "eval_loss" not in logged[j] or "eval_accuracy" not in logged[j]:
        writers[j].write({"step": steps_done, "tokens": steps_done * p["tokens_per_step"], **ev[j]})
        logged[j].update(ev[j])
  faults.point("before_result")
  elapsed = time.time() - t_start
  for j in np.flatnonzero(alive):
    c = cs[j]
    ev_j = {n: logged[j][n] for n in ("eval_loss", "eval_accuracy")}
    train_loss = last[j]["loss"] if start < steps_done else logged[j].get("train_loss", float("nan"))
    results[j].update(status="completed", steps=steps_done, tokens=p["tokens"], flops=p["flops"],
                      flops_source=accounting.flops_source(c.family),
                      train_loss=train_loss, **ev_j, **pipeline.epochs(c.data, steps_done * c.data.batch_size),
                      **throughput(writers[j].rows(), b))
    if c.train.get("branch_from"):  # tokens / flops are the budget's; what this run itself trained:
      results[j].update(branch_step=c.train.branch_step,
                        branch_flops=(steps_done - c.train.branch_step) * p["flops_per_step"])
    log.info(f"{names[j]} ({c.family}:{c.size}): params={p['params']['total']:,} steps={steps_done} "
          f"train_loss={train_loss:.4f} eval_loss={ev_j['eval_loss']:.4f} ({elapsed:.1f}s)"
          f"{f' (packed x{k})' if k > 1 else ''}")
