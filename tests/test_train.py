"""The training engine: meshes agree, kill/resume is bitwise exact, multi-process, accumulation, bf16."""

import json
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from scaling import config, io, parallel
from scaling.train import checkpoint, loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(steps=8, **over):
  c = config.base("gpt", "nano")
  c.model.update(d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=32)
  c.data.update(seq_len=32, batch_size=16)
  c.train.update(steps=steps, lr=3e-3, log_every=1, eval_batches=2, progress=False, warmup_steps=2)
  for k, v in over.items():
    section, field = k.split("__")
    c[section][field] = v
  return c


def params_of(workdir):
  """Final params from the run's last checkpoint, as numpy."""
  ck = checkpoint.Checkpointer(workdir)
  step = max(ck.manager.all_steps())
  state = ck.manager.restore(step)
  ck.close()
  return step, jax.tree.map(np.asarray, state["params"])


def test_meshes_agree_and_params_are_sharded(tmp_path, data_dir):
  losses = {}
  for name, mesh in {"single": None, "data8": dict(data=8, fsdp=1, tensor=1),
                     "2x2x2": dict(data=2, fsdp=2, tensor=2)}.items():
    c = tiny(steps=6)
    c.mesh.update(**(mesh or dict(data=1, num_devices=1)))
    r = loop.train(c, str(tmp_path / name))
    assert r["status"] == "completed"
    losses[name] = [row["train_loss"] for row in io.read_jsonl(str(tmp_path / name / "metrics.jsonl"))
                    if "train_loss" in row]
  np.testing.assert_allclose(losses["data8"], losses["single"], rtol=2e-4)
  np.testing.assert_allclose(losses["2x2x2"], losses["single"], rtol=2e-4)
  assert losses["single"][-1] < losses["single"][0]

  # Parameters really are sharded as the rules say on the 2x2x2 mesh.
  c = loop.prepare(tiny())
  c.mesh.update(data=2, fsdp=2, tensor=2)
  from scaling import models
  from scaling.train import optim, step
  mesh = parallel.make_mesh(c.mesh)
  tx, _ = optim.make(c.train, 10)
  _, state, _ = step.init_state("gpt", c.model, 0, tx, mesh, models.build)
  specs = {k: tuple(v) for k, v in parallel.describe(state["params"]).items()}
  assert specs["['blocks'][0]['mlp']['w_in']"] == ("fsdp", "tensor")   # (embed, mlp)
  assert specs["['blocks'][0]['attn']['wq']"] == ("fsdp", "tensor", None)  # (embed, heads, kv)
  assert specs["['embed']"] == (None, "fsdp")  # vocab 259 is not divisible by tensor=2: replicated
  mu = state["opt_state"][1][0].mu  # adamw moments follow the parameter shardings
  assert tuple(mu["blocks"][0]["mlp"]["w_in"].sharding.spec) == ("fsdp", "tensor")


def _env():
  env = dict(os.environ)
  env.update(JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  return env


def _train_cmd(workdir, extra=()):
  return [sys.executable, "-m", "scaling.cli", "train", "--config=configs/gpt.py:nano", f"--workdir={workdir}",
          "--config.model.d_model=32", "--config.model.n_heads=2", "--config.model.d_ff=64",
          "--config.model.max_len=32", "--config.data.seq_len=32", "--config.data.batch_size=16",
          "--config.train.steps=14", "--config.train.log_every=1", "--config.train.checkpoint_every=2",
          "--config.train.warmup_steps=2", "--config.train.progress=False", "--config.train.eval_batches=2",
          *extra]


# One run killed at every phase boundary in turn (each relaunch resumes and dies at the next point), then
# relaunched clean: steps 1-10, checkpoints every 2, an eval at step 6 and at the end.
KILL_CHAIN = [
    "checkpoint_data_written@2",  # step 4's data state written, its orbax step not: resume from 2
    "checkpoint_saved@1",         # step 4 committed
    "eval_batch@1",               # inside the step-6 eval
    "checkpoint_saved@2",         # steps 6 and 8 committed
    "checkpoint_saved@1",         # the FINAL checkpoint (10) committed, before its eval and result.json
    "eval_batch@1",               # relaunch at the final step: inside the final eval (nothing trained)
    "before_result@1",            # final eval logged, result.json not written
    "write:result.json@1",        # result.json's temp file written, not renamed
]


def test_killed_at_every_phase_resumes_to_the_same_result(tmp_path, data_dir):
  """A run SIGKILLed (by an injected fault) at each phase boundary ends bitwise equal to one never interrupted,
  with every step and eval logged once."""
  extra = ["--config.train.steps=10", "--config.train.eval_every=6"]
  ref = loop.train(tiny(steps=10, train__checkpoint_every=2, train__eval_every=6), str(tmp_path / "ref"))
  assert ref["status"] == "completed"
  _, ref_params = params_of(str(tmp_path / "ref"))
  wd = tmp_path / "killed"
  env = dict(_env(), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  for fault in KILL_CHAIN:
    p = subprocess.run(_train_cmd(wd, extra), cwd=REPO, env=dict(env, SCALING_FAULT=fault), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, f"{fault}: exit {p.returncode}\n{p.stderr[-2000:]}"
    assert not (wd / "result.json").exists(), fault
  out = subprocess.run(_train_cmd(wd, extra), cwd=REPO, env=env, check=True, capture_output=True, text=True)
  assert "resumed" in out.stdout
  r = io.read_json(str(wd / "result.json"))
  assert r["status"] == "completed"
  assert (r["eval_loss"], r["train_loss"]) == (ref["eval_loss"], ref["train_loss"])
  step, params = params_of(str(wd))
  assert step == 10
  jax.tree.map(np.testing.assert_array_equal, params, ref_params)
  rows = io.read_jsonl(str(wd / "metrics.jsonl"))
  assert [r["step"] for r in rows if "train_loss" in r] == list(range(1, 11))  # no step twice, none missing
  assert [r["step"] for r in rows if "eval_loss" in r] == [6, 10]
  assert [r["eval_loss"] for r in rows if "eval_loss" in r] == [
      x["eval_loss"] for x in io.read_jsonl(str(tmp_path / "ref" / "metrics.jsonl")) if "eval_loss" in x]


def test_result_json_carries_throughput_and_memory(tmp_path, data_dir):
  r = loop.train(tiny(steps=4), str(tmp_path / "run"))
  assert r["status"] == "completed"
  saved = io.read_json(str(tmp_path / "run" / "result.json"))
  for k in ("tokens_per_s", "mfu", "step_time_s", "compile_time_s", "peak_bytes_per_device"):
    assert saved[k] > 0, k
  m = saved["memory"]
  # XLA's peak holds at least the donated train state's arguments; the analytic estimate is of the same order.
  assert m["peak"] >= m["argument"] - m["alias"] > 0
  assert 0.1 < m["analytic"] / m["peak"] < 10
  assert saved["step_time_s"] == pytest.approx(16 * 32 / saved["tokens_per_s"])


def test_impossible_run_is_refused_before_anything(tmp_path, data_dir, monkeypatch):
  """seq_len 100000 on a tiny GPT needs terabytes: refused by the analytic estimate, before the model is even
  traced (building the step would raise here)."""
  from scaling.train import step as step_lib

  def no_step(*a, **k):
    raise AssertionError("the train step was built for a run the analytic estimate refuses")
  monkeypatch.setattr(step_lib, "abstract_state", no_step)
  c = tiny(steps=2)
  c.model.max_len = 100_000
  c.data.seq_len = 100_000
  with pytest.raises(ValueError, match=r"^memory: the train step needs .* per device \(analytic estimate.*; "
                                       r"allowed: a smaller data.batch_size"):
    loop.train(c, str(tmp_path / "big"))
  assert not (tmp_path / "big").exists()


def test_xla_memory_check_refuses_what_the_floor_misses(tmp_path, data_dir, monkeypatch):
  """The analytic estimate passes (here: forced to 0), the compiled step's XLA analysis does not fit: refused,
  with XLA's figures named, and no run directory."""
  from scaling.train import memory
  b = loop.build(loop.prepare(tiny(steps=2)), peak_check=False)
  monkeypatch.setattr(memory, "analytic", lambda *a, **k: {"total": 0})
  monkeypatch.setattr(memory, "capacity", lambda: (b["memory"]["peak"], "test capacity"))  # 90 % usable
  with pytest.raises(memory.TooBig, match=r"^memory: .*XLA: arguments .*test capacity"):
    loop.train(tiny(steps=2), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_torn_checkpoint_is_skipped(tmp_path, data_dir):
  wd = tmp_path / "run"
  r = loop.train(tiny(steps=4, train__checkpoint_every=2), str(wd))
  assert r["status"] == "completed"
  ck = wd / "checkpoints"
  (ck / "6.orbax-checkpoint-tmp-123").mkdir()  # a save killed mid-write
  (ck / "8").mkdir()  # a step directory without its data state (or contents)
  c = tiny(steps=6, train__checkpoint_every=2)
  r = loop.train(c, str(wd))  # resumes from step 4, trains to 6
  assert r["status"] == "completed" and r["steps"] == 6


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path, data_dir):
  port = _free_port()
  procs = []
  for i in range(2):
    env = _env()
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    extra = [f"--config.mesh.coordinator=127.0.0.1:{port}", "--config.mesh.num_processes=2",
             f"--config.mesh.process_id={i}", "--config.train.checkpoint_every=0", "--config.train.steps=6"]
    procs.append(subprocess.Popen(_train_cmd(tmp_path / "mp", extra), cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outs = [p.communicate(timeout=300)[0] for p in procs]
  assert all(p.returncode == 0 for p in procs), outs[0][-3000:] + outs[1][-3000:]
  mp = [r["train_loss"] for r in io.read_jsonl(str(tmp_path / "mp" / "metrics.jsonl")) if "train_loss" in r]
  single = loop.train(tiny(steps=6), str(tmp_path / "single"))
  sp = [r["train_loss"] for r in io.read_jsonl(str(tmp_path / "single" / "metrics.jsonl")) if "train_loss" in r]
  assert len(mp) == 6
  np.testing.assert_allclose(mp, sp, rtol=2e-4)
  assert json.load(open(tmp_path / "mp" / "result.json"))["eval_loss"] == pytest.approx(single["eval_loss"], rel=2e-4)


def test_grad_accumulation_matches_full_batch(tmp_path, data_dir):
  full = loop.train(tiny(steps=3), str(tmp_path / "full"))
  acc = loop.train(tiny(steps=3, train__accum_steps=2, data__batch_size=16), str(tmp_path / "acc"))
  # 16 = 2 micro-batches of 8 on 8 devices.
  a = [r["train_loss"] for r in io.read_jsonl(str(tmp_path / "full" / "metrics.jsonl")) if "train_loss" in r]
  b = [r["train_loss"] for r in io.read_jsonl(str(tmp_path / "acc" / "metrics.jsonl")) if "train_loss" in r]
  np.testing.assert_allclose(a, b, rtol=1e-4)
  _, pa = params_of(str(tmp_path / "full"))
  _, pb = params_of(str(tmp_path / "acc"))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-5), pa, pb)
  assert full["status"] == acc["status"] == "completed"


def test_bf16_trains(tmp_path, data_dir):
  c = tiny(steps=30, model__dtype="bfloat16")
  r = loop.train(c, str(tmp_path / "bf16"))
  losses = [x["train_loss"] for x in io.read_jsonl(str(tmp_path / "bf16" / "metrics.jsonl")) if "train_loss" in x]
  assert r["status"] == "completed"
  assert np.mean(losses[-5:]) < losses[0] - 1.0  # from ~5.6 nats (uniform over 259) well down


def test_encoder_decoder_trains_on_prefix_lm(tmp_path, data_dir):
  """The encoder-decoder on the prefix-LM task: next-byte loss on each window's second half, counted as
  seq_len tokens per example (encoder + decoder)."""
  c = config.base("transformer", "nano", task="prefix_lm")
  c.data.update(seq_len=32, batch_size=16)
  c.train.update(steps=40, lr=3e-3, log_every=1, eval_batches=2, progress=False, warmup_steps=2)
  r = loop.train(c, str(tmp_path / "pl"))
  losses = [x["train_loss"] for x in io.read_jsonl(str(tmp_path / "pl" / "metrics.jsonl")) if "train_loss" in x]
  assert r["status"] == "completed" and r["tokens"] == 40 * 16 * 32
  assert np.mean(losses[-5:]) < losses[0] - 1.5 and r["eval_loss"] < 4.0  # from ln 259 = 5.56


def test_divergence_is_recorded(tmp_path, data_dir):
  c = tiny(steps=30, train__lr=1e4, train__grad_clip=0.0, train__warmup_steps=0)
  r = loop.train(c, str(tmp_path / "div"))
  assert r["status"] == "diverged"
  assert 1 <= r["diverged_step"] <= 30
  assert io.read_json(str(tmp_path / "div" / "result.json"))["status"] == "diverged"


@pytest.mark.parametrize("over,match", [
    (dict(mesh__data=3), "mesh: data\\*fsdp\\*tensor = 3"),
    (dict(data__batch_size=12), "data.batch_size: the \\(micro-\\)batch 12 is not divisible"),
    (dict(train__schedule="exponential"), "train.schedule: unknown 'exponential'"),
    (dict(model__vocab_size=100), "model.vocab_size: 100 is smaller than the data's 259 token ids"),
    (dict(data__task="span"), "data.task: 'span' does not fit family 'gpt'; allowed: lm, module_cls"),
    (dict(train__log_every=0), "train.log_every: got 0; allowed: an integer > 0"),  # was a ZeroDivisionError
    (dict(train__warmup_frac=2.0), "train.warmup_frac: got 2.0; allowed: a number in \\[0.0, 1.0\\)"),
    (dict(train__b2=1.0), "train.b2: got 1.0; allowed: a number in \\[0.0, 1.0\\)"),
    (dict(train__warmup_steps=-3), "train.warmup_steps: got -3; allowed: an integer >= 0, or -1"),
])
def test_bad_config_fails_before_compiling(tmp_path, data_dir, over, match):
  before = jax.config.jax_log_compiles
  with pytest.raises(ValueError, match=match):
    loop.train(tiny(**over), str(tmp_path / "bad"))
  assert not (tmp_path / "bad").exists()  # nothing written, nothing compiled
  assert before == jax.config.jax_log_compiles


@pytest.mark.parametrize("family,task,head,match", [
    ("transformer", "lm", None, "data.task: 'lm' does not fit family 'transformer'; allowed: span, prefix_lm"),
    ("dnn", "classify", "lm", "model.head: 'lm' does not fit data.task='classify'; allowed: classify"),
])
def test_family_task_mismatch_is_one_line(tmp_path, data_dir, family, task, head, match):
  c = config.base(family, "tiny")
  c.data.task, c.train.steps = task, 1
  if task == "classify":
    c.data.name = "digits"
  if head:
    c.model.head = head
  with pytest.raises(ValueError, match=match):
    loop.train(c, str(tmp_path / "bad"))
  assert not (tmp_path / "bad").exists()


def test_cli_reports_bad_config_in_one_line(tmp_path, data_dir):
  out = subprocess.run(_train_cmd(tmp_path / "x", ["--config.model.n_heads=3"]), cwd=REPO, env=_env(),
                       capture_output=True, text=True)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1] == (
      "scaling train: model.d_model: 32 is not divisible by model.n_heads=3; allowed n_heads: divisors of 32")


def test_curve_points_log_held_out_loss_on_fixed_windows(tmp_path, data_dir):
  """train.curve_points=4 over 8 steps: held-out rows at steps 2, 4, 6 and the final one at 8, each on the same
  windows (an eval of the final params on those windows gives the final row's loss exactly); training is
  unchanged by the evals (same final params and loss as a run without them)."""
  plain = loop.train(tiny(steps=8), str(tmp_path / "plain"))
  r = loop.train(tiny(steps=8, train__curve_points=4), str(tmp_path / "curves"))
  rows = [x for x in io.read_jsonl(str(tmp_path / "curves" / "metrics.jsonl")) if "eval_loss" in x]
  assert [x["step"] for x in rows] == [2, 4, 6, 8]
  assert rows[-1]["eval_loss"] == r["eval_loss"] == plain["eval_loss"] and r["train_loss"] == plain["train_loss"]
  assert rows[0]["eval_loss"] > rows[-1]["eval_loss"]  # a learning curve: the nano model learns in 8 steps
