"""The training engine: meshes agree, kill/resume is bitwise exact, multi-process, accumulation, bf16."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

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


def test_kill_and_resume_is_bitwise_exact(tmp_path, data_dir):
  """One run SIGKILLed at three random steps (relaunched after each) ends bitwise equal to a run never
  interrupted."""
  ref = loop.train(tiny(steps=14, train__checkpoint_every=2), str(tmp_path / "ref"))
  assert ref["status"] == "completed"
  _, ref_params = params_of(str(tmp_path / "ref"))
  wd = tmp_path / "killed"
  for kill_at in sorted(random.Random(0).sample(range(2, 14), 3)):
    p = subprocess.Popen(_train_cmd(wd), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and p.poll() is None:
      rows = io.read_jsonl(str(wd / "metrics.jsonl"))
      if rows and rows[-1].get("step", 0) >= kill_at:
        break
      time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (wd / "result.json").exists(), f"run finished before the kill at step {kill_at}"
  out = subprocess.run(_train_cmd(wd), cwd=REPO, env=_env(), check=True, capture_output=True, text=True)
  assert "resumed" in out.stdout
  step, params = params_of(str(wd))
  assert step == 14
  jax.tree.map(np.testing.assert_array_equal, params, ref_params)
  steps = [r["step"] for r in io.read_jsonl(str(wd / "metrics.jsonl")) if "train_loss" in r]
  assert steps == list(range(1, 15))  # no step logged twice, none missing


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
