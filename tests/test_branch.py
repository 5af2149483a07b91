"""Cooldown branches: a branch restores its trunk's checkpoint bitwise and trains what a separate WSD run of
its budget trains; branch points survive keep_checkpoints; bad branch configs are one line; a
data-constrained run records its epochs, and its trunk resumes mid-epoch and branches like any other."""

import jax
import numpy as np
import pytest

from scaling import faults, io
from scaling.train import checkpoint, loop, optim
from tests.test_train import params_of, tiny


def _lrs(workdir):
  return {r["step"]: r["lr"] for r in io.read_jsonl(f"{workdir}/metrics.jsonl") if "lr" in r}


def test_branch_equals_a_separate_wsd_run_of_its_budget(tmp_path, data_dir):
  # Trunk: warmup 2 then constant lr, branch points 8 (a 10-step budget: 2-step cool-down) and 12 (a 15-step one).
  trunk = tiny(steps=12, train__schedule="constant", train__checkpoint_steps=(8, 12), train__checkpoint_every=2,
               train__keep_checkpoints=1)
  assert loop.train(trunk, str(tmp_path / "trunk"))["status"] == "completed"
  assert checkpoint.Checkpointer(str(tmp_path / "trunk"), keep=1).complete_steps() == [8, 10, 12]  # pinned + the newest other

  wsd = dict(train__schedule="wsd", train__decay_frac=0.2, train__decay_shape="1-sqrt")
  sep = loop.train(tiny(steps=10, train__checkpoint_every=8, **wsd), str(tmp_path / "wsd10"))
  br = loop.train(tiny(steps=10, train__branch_from="../trunk", train__branch_step=8, **wsd), str(tmp_path / "br10"))
  assert br["status"] == "completed" and br["branch_step"] == 8
  assert br["branch_flops"] == pytest.approx(br["flops"] * 2 / 10)

  # The restored state is the trunk's step 8, bitwise the separate WSD run's step 8.
  ck = checkpoint.Checkpointer(str(tmp_path / "wsd10"), keep=5)
  ref8 = ck.manager.restore(8)
  ck.close()
  ck = checkpoint.Checkpointer(str(tmp_path / "trunk"), keep=5)
  trunk8 = ck.manager.restore(8)
  ck.close()
  jax.tree.map(np.testing.assert_array_equal, trunk8, ref8)

  # ... and the branch ends bitwise where the separate run ends, with WSD's lr at every step.
  assert (br["train_loss"], br["eval_loss"]) == (sep["train_loss"], sep["eval_loss"])
  jax.tree.map(np.testing.assert_array_equal, params_of(str(tmp_path / "br10"))[1], params_of(str(tmp_path / "wsd10"))[1])
  t = tiny(steps=10, **wsd).train
  sched = optim.schedule(t, 10)
  lr_br, lr_sep, lr_trunk = _lrs(tmp_path / "br10"), _lrs(tmp_path / "wsd10"), _lrs(tmp_path / "trunk")
  assert sorted(lr_br) == [9, 10]
  for step, lr in {**{s: lr_trunk[s] for s in range(1, 9)}, **lr_br}.items():
    assert lr == lr_sep[step] == pytest.approx(float(sched(step - 1)), rel=1e-6)
  assert lr_br[10] < lr_br[9] == lr_trunk[8] == lr_trunk[3] == pytest.approx(t.lr)  # cool-down from the constant


def test_bad_branch_configs_are_one_line_before_anything_is_written(tmp_path, data_dir):
  wsd = dict(train__schedule="wsd", train__decay_frac=0.2)
  cases = [
      (dict(train__branch_from=str(tmp_path / "none"), train__branch_step=8, **wsd), "train.branch_from: no committed"),
      (dict(train__branch_step=8, **wsd), "train.branch_from: '' with branch_step=8"),
      (dict(train__branch_from="x", train__branch_step=9, **wsd), r"train.branch_step: 9 is outside \[warmup 2, "
                                                                     r"cool-down start 8\]"),
      (dict(train__branch_from="x", train__branch_step=8, train__schedule="cosine"), "train.schedule: a cooldown"),
      (dict(train__branch_from="x", train__branch_step=8, train__warmup_steps=-1, **wsd), "train.warmup_steps"),
      (dict(train__decay_shape="sqrt", **wsd), "train.decay_shape: got 'sqrt'; allowed: linear, 1-sqrt"),
  ]
  for over, msg in cases:
    with pytest.raises(ValueError, match=f"^{msg}") as e:
      loop.train(tiny(steps=10, **over), str(tmp_path / "run"))
    assert "; allowed: " in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_data_constrained_run_records_its_epochs(tmp_path, data_dir):
  r = loop.train(tiny(steps=6, data__unique_tokens=2000), str(tmp_path / "u"))
  n = 2000 // 32  # windows of 32 targets in the first 2000 tokens (the 63rd is the partial tail)
  assert r["unique_tokens"] == 2000 and r["epochs"] == pytest.approx(6 * 16 / (n + 1))
  whole = loop.train(tiny(steps=1), str(tmp_path / "all"))
  assert whole["unique_tokens"] > 1e6 and whole["epochs"] < 0.01


class _Killed(BaseException):
  """Stands in for SIGKILL at a fault point: no `except Exception` catches it, so nothing after the point runs."""


def test_data_constrained_trunk_killed_mid_epoch_resumes_and_branches_like_a_separate_run(tmp_path, data_dir,
                                                                                           monkeypatch, capsys):
  # U = 2000 tokens: 63 windows of 32, an epoch every 63/16 steps. The trunk (constant lr, branch point 8) is
  # killed right after committing step 3, mid-epoch; relaunched, it resumes across two epoch boundaries (at
  # 3.9 and 7.9 steps) to 8; the branch cools down to 10 steps. Every number equals a separate WSD run's.
  u = dict(data__unique_tokens=2000)
  trunk = tiny(steps=8, train__schedule="constant", train__checkpoint_steps=(8,), train__checkpoint_every=3, **u)
  killed = []

  def kill_at_first_commit(name):
    if name == "checkpoint_saved" and not killed:
      killed.append(name)
      raise _Killed
  monkeypatch.setattr(faults, "point", kill_at_first_commit)
  with pytest.raises(_Killed):
    loop.train(trunk, str(tmp_path / "trunk"))
  assert checkpoint.Checkpointer(str(tmp_path / "trunk")).complete_steps() == [3]
  assert not (tmp_path / "trunk" / "result.json").exists()
  capsys.readouterr()
  assert loop.train(trunk, str(tmp_path / "trunk"))["status"] == "completed"
  assert "from step 3" in capsys.readouterr().out
  assert [r["step"] for r in io.read_jsonl(str(tmp_path / "trunk" / "metrics.jsonl")) if "train_loss" in r] == list(
      range(1, 9))  # each step logged once across the kill

  wsd = dict(train__schedule="wsd", train__decay_frac=0.2, train__decay_shape="1-sqrt", **u)
  br = loop.train(tiny(steps=10, train__branch_from="../trunk", train__branch_step=8, **wsd), str(tmp_path / "br"))
  sep = loop.train(tiny(steps=10, **wsd), str(tmp_path / "sep"))
  assert (br["train_loss"], br["eval_loss"]) == (sep["train_loss"], sep["eval_loss"])
  jax.tree.map(np.testing.assert_array_equal, params_of(str(tmp_path / "br"))[1], params_of(str(tmp_path / "sep"))[1])
  assert br["unique_tokens"] == 2000 and br["epochs"] == pytest.approx(10 * 16 / 63)
