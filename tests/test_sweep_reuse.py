"""`scaling sweep --reuse_from`: completed runs of an equal config are copied in, never retrained; a different
config, a run already here, or a copy killed halfway never leave a wrong or half run behind."""

import os
import socket
import subprocess
import sys

import pytest

from experiments import common
from scaling import io, runid
from scaling.sweep import ladders, results, reuse, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALING = os.path.join(os.path.dirname(sys.executable), "scaling")


def _smoke_runs():
  return ladders.expand(common.sweep_config("known_entropy", "smoke"))  # 3 tiny GPTs


def _fake_source(src: str, runs, change_lr_of: str = "") -> None:
  """A finished sweep in `src` with the same run configs under another sweep's tags (and ids), as if trained."""
  for i, (run_id, c) in enumerate(runs):
    cfg = runid.plain(c)
    cfg["tags"] = dict(cfg["tags"], sweep="other")
    if run_id == change_lr_of:
      cfg["train"]["lr"] *= 2
    d = os.path.join(src, "runs", f"other-{i}")
    os.makedirs(os.path.join(d, "checkpoints", "24"))
    io.atomic_write_json(os.path.join(d, "config.json"), cfg)
    io.atomic_write_text(os.path.join(d, "checkpoints", "24", "blob"), "weights")
    io.atomic_write_text(os.path.join(d, "metrics.jsonl"), '{"step": 24, "eval_loss": 1.5}\n')
    io.atomic_write_json(os.path.join(d, "result.json"), dict(
        status="completed", family="gpt", eval_loss=1.5 - 0.1 * i, params=1000 * (i + 1), tags=cfg["tags"]))


def test_equal_configs_are_copied_in_with_this_sweeps_tags(tmp_path):
  runs = _smoke_runs()
  src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
  _fake_source(src, runs, change_lr_of=runs[1][0])
  os.makedirs(os.path.join(dst, "runs", runs[2][0]))  # this sweep already started that run: it resumes itself
  assert reuse.adopt(dst, runs, [src]) == [runs[0][0]]  # [1]: another lr; [2]: present here
  d, s = os.path.join(dst, "runs", runs[0][0]), os.path.join(src, "runs", "other-0")
  assert io.read_json(os.path.join(d, "config.json"))["tags"] == runid.plain(runs[0][1])["tags"]
  r = io.read_json(os.path.join(d, "result.json"))
  assert r["reused_from"] == s and r["tags"]["sweep"] == "known_entropy_smoke" and r["eval_loss"] == 1.5
  assert runid.config_diff(io.read_json(os.path.join(d, "config.json")), runs[0][1]) == []
  # Checkpoints are hard links (no second copy); logs are copies (an append here must not reach the source).
  inode = lambda *p: os.stat(os.path.join(*p)).st_ino
  assert inode(d, "checkpoints", "24", "blob") == inode(s, "checkpoints", "24", "blob")
  assert inode(d, "metrics.jsonl") != inode(s, "metrics.jsonl")
  assert io.read_json(os.path.join(s, "config.json"))["tags"]["sweep"] == "other"  # the source is untouched
  assert not os.path.exists(os.path.join(dst, reuse.TMP))
  assert reuse.adopt(dst, runs, [src]) == []  # a relaunch finds it here already


def test_a_copy_killed_before_its_rename_leaves_no_run(tmp_path):
  runs = _smoke_runs()
  src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
  _fake_source(src, runs)
  code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests import test_sweep_reuse as t; "
          "from scaling.sweep import reuse; reuse.adopt(sys.argv[2], t._smoke_runs(), [sys.argv[3]])")
  p = subprocess.run([sys.executable, "-c", code, ROOT, dst, src], cwd=ROOT, capture_output=True,
                     env=dict(os.environ, SCALING_FAULT="reuse_copied@2"))
  assert p.returncode == -9, p.stderr.decode()[-2000:]
  # The first run was renamed into runs/ before the kill; the second sits only under .reuse/.
  assert sorted(os.listdir(os.path.join(dst, "runs"))) == [runs[0][0]]
  assert os.listdir(os.path.join(dst, reuse.TMP))
  # Another live sweep's copy in progress (this process stands in for it) is left alone.
  live = os.path.join(dst, reuse.TMP, f"x@{socket.gethostname()}@{os.getpid()}")
  os.makedirs(live)
  assert reuse.adopt(dst, runs, [src]) == [runs[1][0], runs[2][0]]
  assert os.listdir(os.path.join(dst, reuse.TMP)) == [os.path.basename(live)]  # the dead one's copy is gone


def test_sweep_reuse_from_trains_nothing_and_loads(tmp_path):
  runs = _smoke_runs()
  src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
  _fake_source(src, runs)
  p = subprocess.run([SCALING, "sweep", "--config=configs/sweeps/known_entropy.py:smoke", f"--sweep_dir={dst}",
                      f"--reuse_from={src}"], cwd=ROOT, capture_output=True, text=True,
                     env=dict(os.environ, SCALING_FAULT="run_claimed"))  # a run that starts training dies
  assert p.returncode == 0, p.stderr[-2000:]
  assert "reused 3 completed runs" in p.stdout and "3 runs: 3 completed" in p.stdout
  df = results.load(dst)
  assert sorted(df["run_id"]) == sorted(r for r, _ in runs) and (df["status"] == "completed").all()


def test_reuse_from_must_be_sweep_dirs(tmp_path):
  with pytest.raises(ValueError, match=r"^reuse_from: .* has no runs/ directory"):
    runner.run_sweep(common.sweep_config("known_entropy", "smoke"), str(tmp_path / "dst"),
                     reuse_from=(str(tmp_path),))
  assert not os.path.exists(tmp_path / "dst")
