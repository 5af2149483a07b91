"""Sweep configs -> run configs (no training): ladders, IsoFLOP budgets, rules, run ids, locks, packing."""

import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest

from scaling.models import accounting, sizes
from scaling.train import budget
from scaling.sweep import ladders, locks, packed, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, arg: str = "") -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", "sweeps", f"{name}.py"))
  m = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(m)
  return m.get_config(arg)


def tiny(**kw) -> ml_collections.ConfigDict:
  s = ladders.defaults()
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  for k, v in kw.items():
    s[k] = v
  return s


def test_parameter_ladder_members_budget_and_rule(data_dir):
  s = tiny(sizes=("nano", 3e4, 1e5), tokens_per_param=20.0, lr_multipliers=(1.0, 0.5), seeds=(0, 1))
  s.rule.lr, s.rule.width = 4e-3, 64
  runs = ladders.expand(s)
  # A numeric target that lands on a member already in the ladder is trained once (per lr x seed).
  shapes = {(m.d_model, m.n_layers) for m in [sizes.named("gpt", "nano")] + [sizes.from_params("gpt", t)
                                                                              for t in (3e4, 1e5)]}
  assert len(runs) == len(shapes) * 2 * 2
  for run_id, c in runs:
    assert re.fullmatch(r"gpt-d\d+-L\d+-t\d\.\de\d+-lrx(1|0\.5)-s[01]", run_id), run_id
    n = accounting.params("gpt", c.model)["nonembed"]
    assert c.train.tokens == round(20 * n)
    assert c.tags.budget == pytest.approx(20 * n) and c.tags.budget_unit == "tokens"
    assert c.train.lr == pytest.approx(4e-3 * 64 / c.model.d_model * c.tags.lr_mult)
    assert c.model.vocab_size > 0 and not c.train.progress  # finalized; the sweep bar reports progress
    assert budget.plan(c)["tokens"] >= c.train.tokens
  assert {(c.model.d_model, c.model.n_layers) for _, c in runs} == shapes and "nano" in {c.size for _, c in runs}
  assert len({r for r, _ in runs}) == len(runs)


def test_by_width_is_one_fixed_depth_ladder_per_width(data_dir):
  s = tiny(sizes=(3e4,), tokens=4096, seeds=(0, 1))
  s.rule.lr, s.rule.width, s.rule.lr_exponent = 4e-3, 64, 1.0
  s.ladders = ladders.by_width(s, (16, 32, 48), 2, pos="rope", max_len=32)
  runs = ladders.expand(s)
  assert sorted(s.ladders.keys()) == ["gpt_d16", "gpt_d32", "gpt_d48"] and len(runs) == 3 * 2
  assert {(c.model.d_model, c.model.n_layers, c.model.pos) for _, c in runs} == {(d, 2, "rope") for d in (16, 32, 48)}
  for _, c in runs:  # the width rule sees each ladder's own width; heads and MLP follow the GPT shape rules
    assert c.train.lr == pytest.approx(4e-3 * 64 / c.model.d_model)
    assert c.model.n_heads == sizes._heads(c.model.d_model) and c.model.d_ff == 4 * c.model.d_model


def test_isoflop_grid_flops_within_5_percent_of_budget(data_dir):
  s = load_config("isoflop")
  runs = ladders.expand(s)
  by_budget: dict[float, list] = {}
  for run_id, c in runs:
    by_budget.setdefault(c.tags.budget, []).append(c)
    assert c.train.flops == c.tags.budget and f"C{ladders.fmt(c.tags.budget)}" in run_id
  assert len(by_budget) >= 3
  for C, cs in by_budget.items():
    assert len({c.size for c in cs}) >= 5, C
    for c in cs:
      # The exact FLOPs the loop will train for (accounting x planned steps), not 6 N D.
      assert abs(budget.plan(c)["flops"] / C - 1) < 0.05
    # Sizes bracket the expected optimum N* = sqrt(C / 120).
    n = sorted(accounting.params("gpt", c.model)["nonembed"] for c in cs)
    assert n[0] < math.sqrt(C / 120) < n[-1]


def test_budget_shapes_are_the_loaders(data_dir):
  """budget.plan reads shapes from the dataset's metadata; the loader's batches must have them."""
  from scaling.data import pipeline
  for kind in ("isoflop",):
    _, c = ladders.expand(tiny(kind=kind, budgets=(3e10,), sizes_per_budget=2))[0]
    probe = next(iter(pipeline.make_loader(c.data, split="train", seed=0, shuffle=True, num_epochs=None)))
    for k, shape in budget.shapes(c).items():
      assert tuple(np.asarray(probe[k]).shape) == tuple(shape), k


def test_sweep_config_files_expand(data_dir):
  cpu, full = load_config("gpt_ladder"), load_config("gpt_ladder", "full")
  runs = ladders.expand(cpu)
  assert len({c.size for _, c in runs}) >= 5
  assert all(c.data.seq_len == 128 for _, c in runs)
  big = [accounting.params("gpt", c.model)["nonembed"] for _, c in ladders.expand(full)]
  assert max(big) > 5e8 and len(big) >= 5
  data = ladders.expand(load_config("data_ladder"))
  assert len({c.size for _, c in data}) == 1
  tokens = [c.train.tokens for _, c in data]
  assert tokens == sorted(tokens) and tokens[-1] / tokens[0] >= 100


def test_baseline_family_data_ladder(data_dir):
  s = tiny(kind="data", family="ngram", size="3", token_budgets=(1e4, 1e5))
  s.overrides = ml_collections.ConfigDict()
  runs = ladders.expand(s)
  assert [r for r, _ in runs] == ["ngram-3-n1.0e4-s0", "ngram-3-n1.0e5-s0"]
  assert [c.data.train_examples for _, c in runs] == [10000, 100000]


@pytest.mark.parametrize("field, value, match", [
    ("kind", "lattice", r"^kind: .*allowed: params, isoflop, data, grid$"),
    ("sizes", (), r"^sizes: "),
    ("family", "rnn", r"^family: "),
    ("budgets", (1e12, -1.0), r"^budgets: "),
    ("pack", 0, r"^pack: "),
])
def test_bad_sweep_config_is_one_line_naming_the_field(field, value, match):
  s = tiny(sizes=("nano",))
  if field == "budgets":
    s.kind = "isoflop"
  s[field] = value
  with pytest.raises(ValueError, match=match) as e:
    ladders.expand(s)
  assert "\n" not in str(e.value)


def test_bad_override_names_the_field(data_dir):
  s = tiny(sizes=("nano",))
  s.overrides.train = ml_collections.ConfigDict(dict(schedule="exponential"))
  with pytest.raises(ValueError, match=r"^train.schedule: unknown 'exponential'"):
    ladders.expand(s)


def test_pack_groups_only_runs_that_differ_in_seed_and_lr(data_dir):
  s = tiny(sizes=("nano", "micro"), seeds=(0, 1, 2), lr_multipliers=(1.0, 0.3), tokens=5120, pack=4)
  runs = ladders.expand(s)
  groups = packed.groups(runs, 4)
  cfg = dict(runs)
  assert sorted(len(g) for g in groups) == [2, 2, 4, 4]
  for g in groups:
    assert len({cfg[r].size for r in g}) == 1
  assert packed.groups(runs, 1) == [[r] for r, _ in runs]
  # Resumed runs pack only with runs that share a saved step; fresh ones only with fresh ones.
  nano = [r for r, c in runs if c.size == "nano"][:4]
  saved = {nano[0]: {5, 10}, nano[1]: {5}, nano[2]: {15}}
  g = packed.groups([(r, cfg[r]) for r in nano], 4, lambda r: saved.get(r, set()))
  assert sorted(g) == sorted([[nano[0], nano[1]], [nano[2]], [nano[3]]])


def test_batch_sizes_are_an_inner_grid_that_packs_per_batch(data_dir):
  """batch_sizes repeats every member per batch size (run id -b<B>, each trained to the same FLOP budget);
  packing groups the lrs of one batch size only (a vmapped step has one batch shape)."""
  s = tiny(kind="isoflop", budgets=(3e10,), sizes_per_budget=1, lr_multipliers=(0.5, 1.0), batch_sizes=(8, 16),
           pack=4, flops_tolerance=0.2)
  runs = ladders.expand(s)
  assert len(runs) == 4 and len({r for r, _ in runs}) == 4
  for run_id, c in runs:
    assert re.fullmatch(rf"gpt-d\d+-L\d+-C3\.0e10-lrx(0\.5|1)-b{c.data.batch_size}-s0", run_id), run_id
    assert abs(budget.plan(c)["flops"] / 3e10 - 1) < 0.2
  assert {c.data.batch_size for _, c in runs} == {8, 16}
  # The same held-out windows at every batch size: tiny()'s batch 8 x the default 8 eval batches.
  assert {c.data.batch_size * c.train.eval_batches for _, c in runs} == {64}
  from scaling.data import pipeline
  held_out = [np.concatenate([np.asarray(b["inputs"]) for _, b in zip(range(c.train.eval_batches), pipeline.make_loader(
      c.data, split="validation", seed=0, shuffle=False, num_epochs=1))]) for _, c in runs[:2]]
  assert held_out[0].shape[0] == 64 and np.array_equal(*held_out)
  cfg = dict(runs)
  groups = packed.groups(runs, 4)
  assert sorted(len(g) for g in groups) == [2, 2]
  assert all(len({cfg[r].data.batch_size for r in g}) == 1 for g in groups)
  with pytest.raises(ValueError, match=r"^batch_sizes: .*allowed: "):
    ladders.expand(tiny(sizes=("nano",), batch_sizes=(8, 0)))
  bad = tiny(sizes=("nano",), batch_sizes=(8, 16))
  bad.rule.batch_size = 32
  with pytest.raises(ValueError, match=r"^batch_sizes: .*rule.batch_size"):
    ladders.expand(bad)


def _dead_pid() -> int:
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  return p.pid


def _write_lock(run_dir, **info):
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, locks.LOCK), "w") as f:
    json.dump({"token": "x", **info}, f)


def test_lock_claim_is_exclusive_and_stale_locks_are_broken(tmp_path):
  d = str(tmp_path / "run")
  a = locks.claim(d, timeout_s=30)
  assert a is not None and locks.claim(d, timeout_s=30) is None  # live owner (us)
  a.release()
  assert locks.read(d) is None
  # Owner on this host whose pid is gone: stale at once.
  _write_lock(d, host=socket.gethostname(), pid=_dead_pid())
  b = locks.claim(d, timeout_s=30)
  assert b is not None and locks.read(d)["pid"] == os.getpid()
  b.release()
  # Owner on another host: live while it heartbeats, stale once the lock is older than the timeout.
  _write_lock(d, host="elsewhere", pid=1)
  assert locks.claim(d, timeout_s=30) is None
  old = time.time() - 60
  os.utime(os.path.join(d, locks.LOCK), (old, old))
  c = locks.claim(d, timeout_s=30)
  assert c is not None
  c.release()


def test_heartbeat_keeps_a_lock_fresh(tmp_path):
  d = str(tmp_path / "run")
  lock = locks.claim(d, timeout_s=0.4, heartbeat_s=0.05)
  time.sleep(0.8)
  assert locks.holder(d, timeout_s=0.4) is not None
  lock.release()


def test_relaunch_with_another_config_is_refused(tmp_path, data_dir):
  runs = ladders.expand(tiny(sizes=("nano",), tokens=5120))
  run_id, c = runs[0]
  d = tmp_path / "runs" / run_id
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps(c.to_dict()))
  (d / "result.json").write_text(json.dumps({"status": "completed"}))
  runner.check_conflicts(str(tmp_path), runs, retry_failed=False)  # same config: fine
  other = ladders.expand(tiny(sizes=("nano",), tokens=5120, lr_multipliers=(1.0,)))
  other[0][1].train.lr = 1.0
  with pytest.raises(ValueError, match=rf"^sweep_dir: run {run_id} .*train.lr"):
    runner.check_conflicts(str(tmp_path), other, retry_failed=False)


def test_baseline_ladder_runs_through_the_baseline_runner(tmp_path, data_dir):
  s = tiny(sizes=("8", "32"), family="tree")
  s.overrides = ml_collections.ConfigDict()
  df = runner.run_sweep(s, str(tmp_path), progress=False)
  assert df["run_id"].tolist() == ["tree-8-s0", "tree-32-s0"]
  assert (df["status"] == "completed").all() and (df["eval_accuracy"] > 0.5).all()
  assert df["params"].iloc[0] < df["params"].iloc[1]


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, data_dir):
  # A batch of 4 cannot be split over the 8 test devices: the trainer rejects it before compiling.
  s = tiny(sizes=("nano", "micro"), tokens=5120)
  s.overrides.data.batch_size = 4
  df = runner.run_sweep(s, str(tmp_path), progress=False)
  assert len(df) == 2 and (df["status"] == "failed").all()
  assert df["error"].str.startswith("ConfigError: data.batch_size:").all()
  assert "failed" in runner.summary(df)


def test_a_crashed_worker_leaves_a_failed_result(tmp_path):
  from scaling.sweep import executors, worker
  d = tmp_path / "runs" / "r0"
  _write_lock(str(d), host=socket.gethostname(), pid=_dead_pid())  # the worker died holding the lock
  task = executors.Task(["r0", "r1"], [{"family": "gpt", "size": "nano", "seed": 0}] * 2)
  (tmp_path / "runs" / "r1").mkdir()
  worker.record_failure(str(tmp_path / "runs" / "r1"), task.configs[1], "earlier")
  out = executors._crashed(str(tmp_path), task, "WorkerCrashed: killed by signal 9", 30.0)
  assert out == {"r0": "trained", "r1": "trained"}
  assert worker.read_result(str(d))["error"] == "WorkerCrashed: killed by signal 9"
  assert worker.read_result(str(tmp_path / "runs" / "r1"))["error"] == "earlier"
  assert locks.read(str(d)) is None
