"""Branching ladders end to end: a data ladder as cooldown branches (one trunk, branches held until their
checkpoint exists), its FLOPs saving, trunk and branch SIGKILLed and resumed to the same numbers, bad
branch configs refused in one line before anything trains."""

import os
import signal
import subprocess

import pytest

from scaling import io, results
from scaling.sweep import ladders, runner
from tests.test_sweep_run import ROOT, SCALING, env, events, load_config  # noqa: F401 (env: a fixture)

# 8 x 32 tokens per step: budgets of 10 and 20 steps, warmup 2, cool-downs of 2 and 4 steps from a 16-step trunk.
CONFIG = """
import ml_collections
from scaling.sweep import ladders


def get_config(arg=""):
  s = ladders.defaults()
  s.name = "branches"
  s.kind, s.size, s.token_budgets = "data", "1.2e4", (2560, 5120)
  s.branch, s.cooldown_frac, s.cooldown_shape = "cooldown", 0.2, "1-sqrt"
  s.rule.lr, s.rule.width, s.rule.warmup_steps = 3e-3, 32, 2
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=32, batch_size=8))
  s.overrides.train = ml_collections.ConfigDict(dict(eval_batches=2, log_every=2, peak_flops=1e11))
  s.executor.poll_s, s.executor.compile_cache = 0.5, ""
  return s
"""


@pytest.mark.slow  # ~2 min of sweeps; make test-all
def test_branched_data_ladder_killed_anywhere_resumes_to_the_same_result(tmp_path, env, capsys):
  cfg_path = tmp_path / "branches.py"
  cfg_path.write_text(CONFIG)
  s = load_config(str(cfg_path))
  runs = ladders.expand(s)
  trunk_id = runs[0][0]
  assert [r for r, _ in runs] == [trunk_id, *(r for r, _ in runs[1:])] and "trunk" in trunk_id and len(runs) == 3
  trunk = runs[0][1]
  assert (trunk.train.schedule, trunk.train.steps, tuple(trunk.train.checkpoint_steps)) == ("constant", 16, (8, 16))
  assert [(c.train.branch_step, c.train.warmup_steps, c.train.decay_shape) for _, c in runs[1:]] == [
      (8, 2, "1-sqrt"), (16, 2, "1-sqrt")]

  ref_dir = str(tmp_path / "ref")
  df = runner.run_sweep(s, ref_dir, progress=False)
  out = capsys.readouterr().out
  assert len(df) == 2 and (df["status"] == "completed").all()  # branches only: the trunk is no budget's result
  assert set(df["trunk"]) == {trunk_id} and sorted(df["branch_tokens"]) == [2 * 256, 4 * 256]
  assert sorted(df["tokens"]) == [2560, 5120] and df["unique_tokens"].nunique() == 1
  e = df.sort_values("tokens")["epochs"].tolist()
  assert 0 < e[0] and e[1] == pytest.approx(2 * e[0])  # passes over the training split, per run
  full = results.load(ref_dir, trunks=True)
  assert len(full) == 3 and (full["role"] == "trunk").sum() == 1
  per_step = df["flops"].sum() / 30
  assert f"vs {30 * per_step:.3g} as separate runs: {30 / 22:.2f}x fewer" in out  # 16 + 2 + 4 steps, not 10 + 20
  ref = full.set_index("run_id")

  # Killed: the trunk right after committing its first branch point (8); relaunched, the trunk resumes and
  # commits 16 and the 10-step branch (started from 8) is killed after committing its own final step; a clean
  # relaunch finishes both branches. Every number equals the uninterrupted sweep's.
  d = str(tmp_path / "sweep")
  cmd = [SCALING, "sweep", f"--config={cfg_path}", f"--sweep_dir={d}"]
  for fault in ("checkpoint_saved@1", "checkpoint_saved@2"):
    p = subprocess.run(cmd, env=dict(env, SCALING_FAULT=fault), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, f"{fault}: exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
  short = next(r for r, c in runs[1:] if c.train.branch_step == 8)
  assert os.path.isdir(os.path.join(d, "runs", short, "checkpoints", "10"))
  assert not os.path.exists(os.path.join(d, "runs", short, "result.json"))
  subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
  got = results.load(d, trunks=True).set_index("run_id")
  assert (got["status"] == "completed").all() and len(got) == 3
  for run_id in ref.index:
    assert (got.loc[run_id, "eval_loss"], got.loc[run_id, "train_loss"]) == (
        ref.loc[run_id, "eval_loss"], ref.loc[run_id, "train_loss"]), run_id
    assert [e["status"] for e in events(d, run_id) if e["event"] == "end"] == ["completed"], run_id
  starts = [e["resumed_from"] for e in events(d, trunk_id) if e["event"] == "start"]
  assert starts == [0, 8]  # the trunk resumed from its branch point, never restarted
  steps = [r["step"] for r in io.read_jsonl(os.path.join(d, "runs", short, "metrics.jsonl")) if "train_loss" in r]
  assert steps == [10]  # the branch logged its own steps only (log_every 2: 10), once


def test_ladders_differing_only_in_unique_tokens_get_a_trunk_each(tmp_path, data_dir):
  """A data-constrained study (experiments/data_constrained.py): one branched data ladder per U; each U trains
  its own trunk on its own U, and run ids carry U (budgets U x epochs coincide across ladders)."""
  cfg_path = tmp_path / "branches.py"
  cfg_path.write_text(CONFIG)
  s = ladders.defaults()
  for u in (2560, 5120):
    lad = load_config(str(cfg_path))
    lad.token_budgets = (u, 2 * u, 4 * u)
    lad.overrides.data.unique_tokens = u
    s.ladders[f"u{u}"] = lad
  runs = dict(ladders.expand(s))
  trunks = {r: c for r, c in runs.items() if c.tags.get("role") == "trunk"}
  assert sorted(trunks) == ["gpt-d32-L1-trunk-n32-u2.6e3-s0", "gpt-d32-L1-trunk-n64-u5.1e3-s0"]
  assert "gpt-d32-L1-t5.1e3-u2.6e3-cd-s0" in runs and "gpt-d32-L1-t5.1e3-u5.1e3-cd-s0" in runs
  for r, c in runs.items():
    if r not in trunks:
      assert trunks[c.tags.trunk].data.unique_tokens == c.data.unique_tokens, r


@pytest.mark.parametrize("over, msg", [
    (dict(cooldown_frac=1.0), r"cooldown_frac: got 1.0; allowed: a number in \(0, 1\)"),
    (dict(cooldown_frac=0), r"cooldown_frac: got 0.0; allowed: a number in \(0, 1\)"),
    (dict(cooldown_shape="cosine"), "cooldown_shape: got 'cosine'; allowed: linear, 1-sqrt"),
    (dict(token_budgets=(512, 5120)), "token_budgets: .* has 2 steps; its cool-down .* before the end of warmup"),
    (dict(kind="params", sizes=("nano",)), "branch: 'cooldown' needs budgets"),
    (dict(branch="yes"), "branch: got 'yes'; allowed"),
])
def test_bad_branch_sweeps_are_one_line(tmp_path, data_dir, over, msg):
  cfg_path = tmp_path / "b.py"
  cfg_path.write_text(CONFIG)
  s = load_config(str(cfg_path))
  s.update(over)
  with pytest.raises(ValueError, match=f"^{msg}") as e:
    ladders.expand(s)
  assert "; allowed: " in str(e.value) and "\n" not in str(e.value)


def test_cli_refuses_a_bad_cooldown_before_anything_runs(tmp_path, env):
  cfg_path = tmp_path / "b.py"
  cfg_path.write_text(CONFIG)
  d = tmp_path / "sweep"
  p = subprocess.run([SCALING, "sweep", f"--config={cfg_path}", f"--sweep_dir={d}", "--config.cooldown_frac=1.5"],
                     env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert p.returncode == 2 and p.stderr.strip().splitlines() == [
      "scaling sweep: cooldown_frac: got 1.5; allowed: a number in (0, 1) (the cool-down's share of each budget)"]
  assert not d.exists()


def test_a_branch_is_held_until_its_trunk_commits_its_step(tmp_path):
  from scaling.sweep import branches
  trunk, br = tmp_path / "runs" / "trunk", tmp_path / "runs" / "br"
  trunk.mkdir(parents=True)
  br.mkdir()
  cfg = {"train": {"branch_from": "../trunk", "branch_step": 8}}
  held = lambda retry=False, attempted=(): runner._state(str(br), retry, set(attempted), 30.0, lambda d: False, cfg)
  assert held() == "held"  # trunk running (or not started): wait
  (trunk / "checkpoints" / "8").mkdir(parents=True)
  assert held() == "held"  # orbax step without its data state is not committed yet
  (trunk / "checkpoints" / "data").mkdir()
  (trunk / "checkpoints" / "data" / "8.p0.json").write_text("{}")
  assert held() == "todo"
  (trunk / "checkpoints" / "8").rmdir()
  io.atomic_write_json(str(trunk / "result.json"), {"status": "diverged"})
  assert held() == "todo"  # the trunk ended without the step: the branch runs and fails in one line
  assert held(retry=True) == "held"  # ... unless the trunk is about to be retried
  assert held(retry=True, attempted={"trunk"}) == "todo"
  assert not branches.waiting(str(br), {"train": {}}, False, set())  # not a branch
