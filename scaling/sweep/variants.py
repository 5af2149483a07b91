"""A sweep config file's variants: which one its argument names (`--config=configs/sweeps/NAME.py:ARG`), and
the paper-scale ('full') setup most of them share.

ml_collections passes whatever follows the colon to `get_config(arg)`; without a check a typo
(`gpt_ladder.py:ful`) silently gives the default ladder. Every sweep config starts with
`arg = variants.check(arg, VARIANTS, __file__)`.
"""

import difflib
import os

import ml_collections

from scaling import errors
from scaling.sweep import ladders


def check(arg: str, allowed: tuple[str, ...], path: str) -> str:
  """`arg` when it is one of `allowed` ('' is the file's default); else a one-line ValueError naming the file
  and every allowed value (the CLI prints it as `--config: ...`, exit 2)."""
  if arg in allowed:
    return arg
  names = ", ".join(repr(a) if a else "'' (no argument)" for a in allowed)
  near = difflib.get_close_matches(arg, [a for a in allowed if a], n=1)
  hint = f" (did you mean {near[0]!r}?)" if near else ""
  raise errors.ConfigError(f"config argument {arg!r} for {os.path.basename(path)}: unknown variant{hint}; allowed: {names}")


def gpu_scale(s: ml_collections.ConfigDict, **train) -> ml_collections.ConfigDict:
  """The paper-scale ('full') setup the ladders share: 256 sequences of 1024 tokens per step, bf16 compute, one
  SLURM job per run on a whole GPU node; `train` (eval / log / checkpoint cadence) becomes the train overrides."""
  s.overrides.data = ml_collections.ConfigDict(dict(seq_len=1024, batch_size=256))
  s.overrides.train = ml_collections.ConfigDict(train)
  s.overrides.model = ml_collections.ConfigDict(dict(dtype="bfloat16"))
  return ladders.slurm_gpus(s)


def growing_batch(s: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A batch growing as N^0.5 (256 sequences at 1e8 parameters, within [16, 1024]) for ladders spanning 3e6 .. 1e9."""
  s.rule.batch_size, s.rule.batch_params, s.rule.batch_exponent = 256, 1e8, 0.5
  s.rule.batch_min, s.rule.batch_max = 16, 1024
  return s
