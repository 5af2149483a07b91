"""A user's mistake through any CLI verb: one line on stderr naming the field or argument, exit status 2, no
traceback, and no run or sweep directory left behind. The table runs `scaling.cli.main` in this process (a
subprocess per case cost ~5 s of imports each); a few cases also go through the installed console script."""

import os
import subprocess
import sys
import traceback

import pytest
from scaling import cli

SCRIPT = os.path.join(os.path.dirname(sys.executable), "scaling")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NANO = ["--config=configs/gpt.py:nano", "--config.train.steps=2"]

# (verb and arguments; OUT is replaced by a fresh path that must not exist afterwards), text the line names
CASES = [
    (["train", *NANO, "--workdir=OUT", "--config.train.lrr=1"], "--config.train.lrr"),
    (["train", *NANO, "--workdir=OUT", "--config.modle.d_model=8"], "--config.modle"),
    (["train", "--config=configs/gpt.py:huge", "--workdir=OUT"], "size"),
    (["train", "--config=configs/nope.py", "--workdir=OUT"], "configs/nope.py"),
    (["train", *NANO, "--workdir=OUT", "--config.train.lr=abc"], "--config.train.lr"),
    (["train", *NANO, "--workdir=OUT", "--config.train.lr=-1"], "train.lr"),
    (["train", *NANO, "--workdir=OUT", "--config.train.schedule=cosin"], "train.schedule"),
    (["train", *NANO, "--workdir=OUT", "--config.model.n_heads=3"], "n_heads"),
    (["train", *NANO, "--workdir=OUT", "--config.data.batch_size=0"], "data.batch_size"),
    (["train", *NANO, "--workdir=OUT", "--config.data.task=span"], "data.task"),
    (["train", *NANO, "--workdir=OUT", "--config.mesh.data=3"], "mesh"),
    (["train", *NANO, "--workdir=OUT", "--config.data.name=nosuchdataset"], "data.name"),
    (["train", *NANO, "--workdir=OUT", "--config.data.seq_len=100000"], "memory"),
    (["train", "--workdir=OUT"], "--config"),
    (["train", *NANO], "--workdir"),
    (["train", *NANO, "--workdir=OUT", "--bogus=1"], "--bogus"),
    (["train", *NANO, "--workdir=OUT", "stray"], "stray"),
    (["sweep", "--config=configs/sweeps/nope.py", "--sweep_dir=OUT"], "configs/sweeps/nope.py"),
    (["sweep", "--config=configs/sweeps/gpt_ladder.py", "--sweep_dir=OUT", "--config.sizez=1"], "--config.sizez"),
    (["sweep", "--config=configs/sweeps/gpt_ladder.py", "--sweep_dir=OUT", "--executor=cloud"], "--executor"),
    (["sweep", "--config=configs/sweeps/gpt_ladder.py"], "--sweep_dir"),
    (["sweep", "--config=configs/sweeps/gpt_ladder.py", "--sweep_dir=OUT", "--reuse_from=NOTSWEEP"], "reuse_from"),
    (["fit", "NOTSWEEP"], "sweep_dir"),
    (["fit", "OUT"], "SWEEP_DIR"),
    (["fit"], "SWEEP_DIR"),
    (["fit", "NOTSWEEP", "--law=powr"], "law"),
    (["plot", "NOTSWEEP"], "sweep_dir"),
    (["plot", "OUT"], "SWEEP_DIR"),
    (["sample", "--workdir=NOTSWEEP"], "workdir"),
    (["sample"], "--workdir"),
    (["baselines", "--config=configs/baseline.py:svmx,3", "--workdir=OUT"], "family"),
    (["baselines", "--config=configs/baseline.py:tree,abc", "--workdir=OUT"], "size"),
    (["baselines", "--config=configs/baseline.py:tree,64"], "--workdir"),
    (["train", *NANO, "--workdir=OUT", "--config.data.unique_tokens=99999999999"], "data.unique_tokens"),
    (["train", *NANO, "--workdir=OUT", "--config.train.schedule=wsd", "--config.train.warmup_steps=0",
      "--config.train.steps=10", "--config.train.branch_from=NO_TRUNK", "--config.train.branch_step=8"],
     "train.branch_from"),
    (["train", *NANO, "--workdir=OUT", "--config.data.holdout=2.0"], "data.holdout"),
    (["sweep", "--config=configs/sweeps/gpt_ladder.py", "--sweep_dir=NOTSWEEP/notes.txt"], "sweep_dir"),
]


def _in_process(args: list[str], capfd) -> tuple[int, str]:
  """(exit status, stderr) of `scaling ARGS` run by cli.main here; an escaping exception prints its traceback."""
  old = sys.argv
  sys.argv = ["scaling", *args]
  code = 0
  try:
    cli.main()
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
  except BaseException:  # what the console script would print
    traceback.print_exc()
    code = 1
  finally:
    sys.argv = old
  return code, capfd.readouterr().err


def _paths(tmp_path, args):
  out, not_sweep = tmp_path / "out", tmp_path / "not_a_sweep"
  not_sweep.mkdir()
  (not_sweep / "notes.txt").write_text("a directory, but no sweep")
  return out, not_sweep, [a.replace("OUT", str(out)).replace("NOTSWEEP", str(not_sweep)) for a in args]


def _check(code, err, args, names, out, not_sweep):
  lines = err.strip().splitlines()
  assert code == 2, err[-3000:]
  assert len(lines) == 1, err[-3000:]
  assert "Traceback" not in err
  assert lines[0].startswith(f"scaling {args[0]}: ") and names in lines[0], lines[0]
  assert not out.exists(), f"{out} was left behind"
  assert sorted(os.listdir(not_sweep)) == ["notes.txt"]


@pytest.mark.parametrize("args,names", CASES, ids=[" ".join(a[:1] + a[-1:]) for a, _ in CASES])
def test_mistake_is_one_line_exit_2(tmp_path, data_dir, capfd, monkeypatch, args, names):
  monkeypatch.chdir(REPO)
  out, not_sweep, args = _paths(tmp_path, args)
  code, err = _in_process(args, capfd)
  _check(code, err, args, names, out, not_sweep)


@pytest.mark.parametrize("case", [0, 3, 12, 21], ids=lambda i: CASES[i][0][0] + " " + CASES[i][0][-1])
def test_mistake_through_the_console_script(tmp_path, data_dir, case):
  args, names = CASES[case]
  out, not_sweep, args = _paths(tmp_path, args)
  env = dict(os.environ, SCALING_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
  p = subprocess.run([SCRIPT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  _check(p.returncode, p.stderr, args, names, out, not_sweep)


def test_user_errors_are_a_type_not_a_message():
  """The CLI's one-line rule keys on errors.ConfigError (field, problem, allowed as attributes), not on the text:
  a ValueError from a bug that happens to read 'x: y' is not mistaken for the user's."""
  from scaling import errors
  e = errors.ConfigError("train.lr: got -1; allowed: a number > 0")
  assert (e.field, e.problem, e.allowed) == ("train.lr", "got -1", "a number > 0")
  assert cli._is_user_error(e) and isinstance(e, ValueError)
  assert not cli._is_user_error(ValueError("train.lr: looks like ours, but is not"))
