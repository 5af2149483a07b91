"""configs/sweeps/*.py take their argument one way: `VARIANTS` names every variant, anything else is a one-line
error naming the file and the allowed variants (no expansion here: test_experiments / test_sweep_ladders do that)."""

import glob
import importlib.util
import os
import subprocess
import sys

import pytest

from scaling.models import accounting
from scaling.sweep import ladders, variants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "sweeps", "*.py")))
SCALING = os.path.join(os.path.dirname(sys.executable), "scaling")


def load(path: str):
  spec = importlib.util.spec_from_file_location(f"sweep_config_{os.path.basename(path)[:-3]}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_declared_variant_loads_and_passes_the_sweep_checks(path):
  mod = load(path)
  assert "" in mod.VARIANTS  # no argument: the file's default
  for v in mod.VARIANTS:
    s = mod.get_config(v)
    for sub in s.ladders.values() if s.ladders else [s]:
      ladders.validate(sub)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_an_unknown_argument_is_one_line_naming_the_file_and_every_variant(path):
  mod = load(path)
  with pytest.raises(ValueError) as e:
    mod.get_config("nope")
  msg = str(e.value)
  assert "\n" not in msg
  assert msg.startswith(f"config argument 'nope' for {os.path.basename(path)}: unknown variant")
  allowed = msg.split("; allowed: ", 1)[1]
  assert all(repr(v) in allowed for v in mod.VARIANTS if v)


def test_a_typo_names_the_nearest_variant():
  with pytest.raises(ValueError, match=r"\(did you mean 'full'\?\); allowed: '' \(no argument\), 'full'$"):
    variants.check("ful", ("", "full"), "configs/sweeps/gpt_ladder.py")
  assert variants.check("full", ("", "full"), "gpt_ladder.py") == "full"


def test_cli_rejects_a_typo_in_the_config_argument_with_one_line_and_exit_2(tmp_path):
  """`gpt_ladder.py:ful` used to give the CPU ladder silently."""
  for verb in (["plan"], ["sweep", f"--sweep_dir={tmp_path / 'sweep'}"]):
    p = subprocess.run([SCALING, *verb, "--config=configs/sweeps/gpt_ladder.py:ful"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scaling {verb[0]}: --config: config argument 'ful' for "
                                                   "gpt_ladder.py"), p.stderr
    assert "'full'" in lines[0] and p.stdout == ""
  assert not (tmp_path / "sweep").exists()  # nothing written


def test_the_paper_scale_ladder_grows_its_batch_with_n_on_gpu_nodes(data_dir):
  """gpt_ladder.py:full through variants.gpu_scale + growing_batch: 1024-token bf16 runs, batch ~ N^0.5."""
  s = load(os.path.join(ROOT, "configs", "sweeps", "gpt_ladder.py")).get_config("full")
  runs = [c for _, c in ladders.expand(s)]
  assert s.executor.kind == "slurm" and s.executor.slurm.gpus_per_node > 0
  assert {(c.data.seq_len, c.model.dtype) for c in runs} == {(1024, "bfloat16")}
  n = [accounting.params("gpt", c.model)["nonembed"] for c in runs]
  b = [c.data.batch_size for c in runs]
  assert b == sorted(b) and b[0] < b[-1]
  for n_i, b_i in zip(n, b):  # 256 sequences at 1e8 params, x (N / 1e8)^0.5, rounded to a multiple of 8
    assert b_i % 8 == 0 and abs(b_i - min(max(256 * (n_i / 1e8) ** 0.5, 16), 1024)) <= 4
