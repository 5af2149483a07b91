"""The training loop: budget -> steps, sharded init or resume, train/eval/log/checkpoint, result.json.

`train(config, workdir)` is what `scaling train`, sweeps and tests call. Everything that can be wrong
with the config is checked before anything compiles; `result.json` is written last and atomically.
"""

import math
import os
import time
import traceback

import jax
import ml_collections
import numpy as np

from scaling import config as config_lib
from scaling import faults, io, models, parallel
from scaling.models import accounting
from scaling.train import branch, checkpoint, energy, memory, metrics, optim, progress
from scaling.train import step as step_lib


class Diverged(Exception):
  pass


def tokens_per_example(c: ml_collections.ConfigDict, shapes: dict) -> int:
  """Tokens a training example contributes: sequence length (LM), encoder + decoder lengths (span, prefix LM),
  1 example (classification: the budget is counted in examples)."""
  task = step_lib.task_of(c)
  if task in config_lib.SEQ2SEQ_TASKS:
    return shapes["inputs"][1] + shapes["targets"][1]
  if task == "classify":
    return 1
  return shapes["inputs"][1]


def flops_per_example(c: ml_collections.ConfigDict, shapes: dict) -> float:
  if step_lib.task_of(c) in config_lib.SEQ2SEQ_TASKS:
    return accounting.train_flops(c.family, c.model, shapes["inputs"][1], shapes["targets"][1])
  return accounting.train_flops(c.family, c.model, shapes["inputs"][1] if "inputs" in shapes else 1)


def plan(c: ml_collections.ConfigDict, shapes: dict) -> dict:
  """Steps, tokens and FLOPs of the run, from train.steps / train.tokens / train.flops."""
  b = c.data.batch_size
  tok_step = tokens_per_example(c, shapes) * b
  flops_step = flops_per_example(c, shapes) * b
  t = c.train
  if t.flops:
    steps = max(1, round(t.flops / flops_step))
  elif t.tokens:
    steps = max(1, math.ceil(t.tokens / tok_step))
  else:
    steps = t.steps
  p = accounting.params(c.family, c.model)
  return {"steps": int(steps), "tokens_per_step": tok_step, "flops_per_step": flops_step,
          "tokens": int(steps * tok_step), "flops": float(steps * flops_step), "params": p}


def prepare(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Validate + finalize: every error a config can have is raised here, before any compile."""
  parallel.maybe_initialize_distributed(c)  # must precede any jax call (device_count below)
  c = ml_collections.ConfigDict(c.to_dict())
  if c.get("family") not in config_lib.NEURAL:
    raise ValueError(f"family: {c.get('family')!r} is not trained by this loop; allowed: {', '.join(config_lib.NEURAL)}")
  c = config_lib.finalize(c)
  config_lib.validate(c, jax.device_count())
  return c


def check_resume_layout(c: ml_collections.ConfigDict, workdir: str) -> None:
  """A run resumes only in the layer layout its checkpoints were written in (orbax restores the whole train
  state, optimizer moments included, by structure). Fine-tuning and sampling convert either way."""
  from scaling.models import stack
  from scaling.train import finetune
  if c.family not in ("gpt", "transformer") or not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return
  saved = finetune.saved_layout(workdir)
  if saved is not None and saved != stack.scanned(c.model):
    raise ValueError(f"model.scan_layers: {stack.scanned(c.model)} but the checkpoints in {workdir!r} were "
                     f"written with scan_layers={saved}; allowed: {saved} to resume this run")


def evaluate(eval_step, params, c, mesh, split: str = "validation") -> dict:
  from scaling.data import pipeline
  loader = pipeline.make_loader(c.data, split=split, seed=0, shuffle=False, num_epochs=1)
  tot = {"ce": 0.0, "weight": 0.0, "correct": 0.0}
  for i, batch in enumerate(loader):
    if i >= c.train.eval_batches:
      break
    s = eval_step(params, parallel.global_batch(batch, mesh))
    for k in tot:
      tot[k] += float(s[k])
    faults.point("eval_batch")
  w = max(tot["weight"], 1.0)
  return {"eval_loss": tot["ce"] / w, "eval_accuracy": tot["correct"] / w}


def abstract_batch(local_batch: dict, mesh) -> dict:
  """ShapeDtypeStructs of the global batch that `parallel.global_batch` builds from this process's share."""
  n = jax.process_count()
  return {k: jax.ShapeDtypeStruct((v.shape[0] * n, *v.shape[1:]), v.dtype, sharding=parallel.batch_sharding(mesh, v.ndim))
          for k, v in ((k, np.asarray(v)) for k, v in local_batch.items())}


def loader_bytes(local_batch: dict, c: ml_collections.ConfigDict) -> int:
  """Host memory the train loader holds: this process's batch times the batches grain keeps in flight."""
  from scaling.data import pipeline
  per_batch = sum(np.asarray(v).nbytes for v in local_batch.values())
  return per_batch * (int(c.data.get("prefetch", pipeline.DEFAULTS["prefetch"])) + 2)


def build(c: ml_collections.ConfigDict, peak_check: bool = True) -> dict:
  """Everything a run needs before its first step, with no file written: mesh, plan, the compiled step and
  its memory. Raises memory.TooBig (one line) when the step cannot fit: first from the analytic estimate
  (when over by more than its error), before any compile, then from XLA's analysis of the compiled step."""
  from scaling.data import pipeline
  t = c.train
  mesh = parallel.make_mesh(c.mesh)
  task = step_lib.task_of(c)
  probe = next(iter(pipeline.make_loader(c.data, split="train", seed=c.seed, shuffle=True, num_epochs=None)))
  shapes = {k: np.asarray(v).shape for k, v in probe.items()}
  p = plan(c, shapes)
  cap, cap_src = memory.capacity()
  est = memory.analytic(c, shapes)
  if peak_check:
    memory.check(c, est["total"], "analytic estimate: params, grads, optimizer state, activations", cap, cap_src,
                 slack=memory.ANALYTIC_SLACK)
  tx, lr_fn = optim.make(t, p["steps"], c.family, c.model)
  graphdef, abs_state, shardings, init = step_lib.abstract_state(c.family, c.model, c.seed, tx, mesh, models.build)
  jitted = step_lib.jit_train_step(step_lib.make_train_step(graphdef, tx, lr_fn, task, t, mesh), shardings, mesh)
  t0 = time.perf_counter()
  compiled = jitted.lower(abs_state, abstract_batch(probe, mesh)).compile()
  compile_s = time.perf_counter() - t0
  mem = memory.from_compiled(compiled)
  host = loader_bytes(probe, c)
  mem.update(analytic=est["total"], loader=host, capacity=cap, capacity_source=cap_src)
  need = mem.get("peak", 0) + (host // jax.local_device_count() if jax.local_devices()[0].platform == "cpu" else 0)
  if peak_check and mem.get("peak"):
    memory.check(c, need, f"XLA: arguments {memory.fmt(mem['argument'])}, temporaries {memory.fmt(mem['temp'])}"
                 f"{', loader ' + memory.fmt(host) if need > mem['peak'] else ''}", cap, cap_src)
  return dict(mesh=mesh, task=task, plan=p, tx=tx, lr_fn=lr_fn, graphdef=graphdef, shardings=shardings,
              init=init, train_step=compiled, compile_time_s=compile_s, memory=mem)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Train one run into `workdir` (resuming if it holds a checkpoint); returns the result dict.
  Config errors and a step that cannot fit in memory raise ValueError before anything is written."""
  parallel.maybe_initialize_distributed(config)
  c = prepare(config)
  check_resume_layout(c, workdir)
  if c.train.get("branch_from") or c.train.get("branch_step"):  # its trunk, before anything compiles
    from scaling.sweep import ladders  # local: the sweep package imports this module
    branch.check(c, ladders.plan(c)["steps"], workdir)
  b = build(c)
  os.makedirs(workdir, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:
    io.atomic_write_json(os.path.join(workdir, "config.json"), c.to_dict())
  meter = energy.Meter(b["mesh"].devices.flat)  # issue 27: device_seconds and NVML energy into result.json
  t_start = time.time()
  result = {"family": c.family, "size": c.size, "seed": c.seed, "tags": c.tags.to_dict(),
            "status": "failed", "steps": 0, "tokens": 0, "flops": 0.0}
  writer = metrics.Writer(workdir, enabled=is_main)
  try:
    result = _train(c, b, workdir, result, t_start, is_main, writer)
  except Diverged as e:
    result.update(status="diverged", diverged_step=int(str(e)))
  except Exception as e:
    result.update(status="failed", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  traceback=traceback.format_exc()[-4000:])
    _finish(result, workdir, t_start, is_main, meter)
    raise
  finally:
    writer.close()
  _finish(result, workdir, t_start, is_main, meter)
  return result


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


def _train(c, b, workdir, result, t_start, is_main, writer):
  from scaling.data import pipeline
  t, mesh, p = c.train, b["mesh"], b["plan"]
  result.update(params=p["params"]["total"], params_embed=p["params"]["embed"],
                params_nonembed=p["params"]["nonembed"], planned_steps=p["steps"],
                flops_per_token=p["flops_per_step"] / max(p["tokens_per_step"], 1))
  shardings, train_step = b["shardings"], b["train_step"]
  state = jax.jit(b["init"], out_shardings=shardings)()
  if c.get("init_from"):
    from scaling.train import finetune
    state = finetune.load_pretrained(c, state, shardings)
  eval_step = step_lib.make_eval_step(b["graphdef"], b["task"], mesh, shardings["params"])

  loader = pipeline.make_loader(c.data, split="train", seed=c.seed, shuffle=True, num_epochs=None)
  it = iter(loader)
  pinned = set(t.get("checkpoint_steps", ()))  # a trunk's branch points
  ckpt = checkpoint.Checkpointer(workdir, keep=t.keep_checkpoints, pinned=pinned)
  start = 0
  restored = ckpt.restore_latest(checkpoint.abstract_like(state, shardings))
  if restored is not None:
    start, state, data_state, _ = restored
    it.set_state(data_state)
    print(f"resumed {workdir} from step {start}")
  elif t.get("branch_from"):
    state, data_state = branch.restore(c, workdir, checkpoint.abstract_like(state, shardings))
    start = t.branch_step
    it.set_state(data_state)
    print(f"branched {workdir} from {branch.trunk_dir(c, workdir)} at step {start}")
  writer.truncate_after(start)  # rows past the checkpoint (or from a run killed before its first one)
  peak, peak_src = metrics.peak_flops(t.peak_flops)
  result.update(peak_flops=peak, peak_source=peak_src)

  bar = progress.Bar(p["steps"], start, f"{c.family}:{c.size}", is_main and t.progress)
  pending = None  # (step, metrics) of the previous step, read after the next one is dispatched
  last = {"loss": float("nan")}
  t_window, steps_window = time.perf_counter(), 0

  def check(step_i, m):
    nonlocal last
    last = {k: float(v) for k, v in m.items()}
    if not np.isfinite(last["loss"]) or last["loss"] > t.divergence_threshold:
      raise Diverged(step_i)

  try:
    for step_i in range(start, p["steps"]):
      batch = parallel.global_batch(next(it), mesh)
      state, m = train_step(state, batch)
      if pending is not None:
        check(*pending)
      pending = (step_i + 1, m)
      steps_window += 1
      done = step_i + 1
      if done % t.log_every == 0 or done == p["steps"]:
        check(*pending)
        pending = None
        dt = time.perf_counter() - t_window
        tok_s = steps_window * p["tokens_per_step"] / dt
        mfu = steps_window * p["flops_per_step"] / dt / peak
        writer.write({"step": done, "tokens": done * p["tokens_per_step"], "train_loss": last["loss"],
                      "lr": last["lr"], "grad_norm": last["grad_norm"], "tokens_per_s": tok_s, "mfu": mfu})
        bar.report(done, f"{last['loss']:.3f}", tok_s, mfu)
        t_window, steps_window = time.perf_counter(), 0
      bar.update(1)
      if t.eval_every and done % t.eval_every == 0 and done != p["steps"]:
        ev = evaluate(eval_step, state["params"], c, mesh)
        writer.write({"step": done, "tokens": done * p["tokens_per_step"], **ev})
      if ((t.checkpoint_every and done % t.checkpoint_every == 0) or done in pinned) and done != p["steps"]:
        ckpt.save(done, state, it.get_state())
    if pending is not None:
      check(*pending)
  except Diverged as e:
    bar.close()
    result.update(steps=int(str(e)), train_loss=last["loss"])
    raise
  bar.close()
  steps_done = p["steps"]
  if start < steps_done:
    ckpt.save(steps_done, state, it.get_state())
  ckpt.close()
  # A relaunch of a run killed after its final checkpoint trains nothing: the final train row is in
  # metrics.jsonl, and so is the final eval row if the kill came after it (eval is never logged twice).
  logged = {k: v for r in writer.rows() if r.get("step") == steps_done for k, v in r.items()}
  ev = {k: logged[k] for k in ("eval_loss", "eval_accuracy") if k in logged}
  if len(ev) < 2:
    ev = evaluate(eval_step, state["params"], c, mesh)
    writer.write({"step": steps_done, "tokens": steps_done * p["tokens_per_step"], **ev})
  train_loss = last["loss"] if start < steps_done else logged.get("train_loss", float("nan"))
  faults.point("before_result")
  elapsed = time.time() - t_start
  result.update(status="completed", steps=steps_done, tokens=p["tokens"], flops=p["flops"],
                train_loss=train_loss, eval_loss=ev["eval_loss"], eval_accuracy=ev["eval_accuracy"],
                **pipeline.epochs(c.data, steps_done * c.data.batch_size), **throughput(writer.rows(), b))
  if t.get("branch_from"):  # tokens / flops are the budget's; what this run itself trained:
    result.update(branch_step=t.branch_step, branch_flops=(steps_done - t.branch_step) * p["flops_per_step"])
  print(f"{c.family}:{c.size} params={p['params']['total']:,} steps={steps_done} "
        f"train_loss={train_loss:.4f} eval_loss={ev['eval_loss']:.4f} ({elapsed:.1f}s)")
  return result
