"""The console script: help lists every command; an unknown command is a clear error."""

import os
import subprocess
import sys

from scaling import cli

SCRIPT = os.path.join(os.path.dirname(sys.executable), "scaling")  # the installed console script


def test_help_lists_commands():
  out = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, check=True).stdout
  for command in ("train", "sweep", "status", "plan", "fit", "predict", "compare", "plot", "sample", "baselines"):
    assert f"  {command} " in out
  assert set(cli.COMMANDS) == {"train", "sweep", "status", "plan", "fit", "predict", "compare", "plot", "sample", "baselines"}


def test_unknown_command():
  out = subprocess.run([SCRIPT, "fly"], capture_output=True, text=True)
  assert out.returncode == 2
  assert "unknown command 'fly'" in out.stderr
