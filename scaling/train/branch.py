"""Cooldown branches (Hägele et al. 2024): a run that starts from another run's checkpoint.

A trunk trains warmup -> constant lr and saves a checkpoint (state + data-iterator position) where each
budget's cool-down begins. A branch is an ordinary run with schedule 'wsd' over its own budget and
`train.branch_from` / `train.branch_step` naming the trunk and that step: it restores the trunk's
checkpoint and trains the rest. Up to branch_step the trunk's lr equals the branch's WSD lr at every step
(same warmup, then the same constant), so a branch computes what a separate WSD run of its length does.
"""

import os

import ml_collections

from scaling import io, runid
from scaling.train import checkpoint, optim
from scaling import errors

# Fields a trunk and its branches may differ in: the budget and the schedule after the branch point.
BRANCH_FIELDS = ("train.schedule", "train.steps", "train.tokens", "train.flops", "train.decay_frac",
                 "train.decay_shape", "train.branch_from", "train.branch_step", "train.checkpoint_steps")


def trunk_dir(c: ml_collections.ConfigDict, workdir: str) -> str:
  return os.path.normpath(os.path.join(os.path.abspath(workdir), c.train.branch_from))


def check(c: ml_collections.ConfigDict, steps: int, workdir: str | None) -> None:
  """A branch's config against its plan (`steps`) and its trunk: one ValueError naming the field.
  `workdir` None checks only what the config itself decides (a sweep's expansion, before any trunk ran)."""
  t = c.train
  src, at = t.get("branch_from", ""), t.get("branch_step", 0)
  if isinstance(at, bool) or not isinstance(at, int) or at < 0:
    raise errors.ConfigError(f"train.branch_step: got {at!r}; allowed: an integer >= 0 (0: not a branch)")
  if bool(src) != bool(at):
    raise errors.ConfigError(f"train.branch_from: {src!r} with branch_step={at}; allowed: both set (a branch: its trunk "
                     "run and the step it starts from) or neither")
  if not src:
    return
  if t.schedule != "wsd":
    raise errors.ConfigError(f"train.schedule: a cooldown branch cools down with 'wsd', got {t.schedule!r}; allowed: wsd")
  if t.warmup_steps < 0:
    raise errors.ConfigError("train.warmup_steps: a cooldown branch needs its trunk's fixed warmup; allowed: an integer >= 0")
  start = steps - optim.decay_steps(t, steps)
  if not t.warmup_steps <= at <= start:
    raise errors.ConfigError(f"train.branch_step: {at} is outside [warmup {t.warmup_steps}, cool-down start {start}] of "
                     f"this {steps}-step budget; allowed: a step in that range (a budget shorter than warmup + "
                     f"cool-down cannot branch)")
  if workdir is None:
    return
  trunk = trunk_dir(c, workdir)
  if not checkpoint.has_step(trunk, at):
    raise errors.ConfigError(f"train.branch_from: no committed checkpoint at step {at} in {trunk}; allowed: a trunk run "
                     "directory that saved that step (train.checkpoint_steps)")
  cfg = os.path.join(trunk, "config.json")
  diff = [d for d in runid.config_diff(io.read_json(cfg), c) if not d.startswith(BRANCH_FIELDS)] \
      if os.path.exists(cfg) else ["config.json missing"]
  if diff:
    raise errors.ConfigError(f"train.branch_from: the trunk {trunk} was trained with another config ({'; '.join(diff[:3])}); "
                     "allowed: a trunk that differs only in budget and schedule")


def restore(c: ml_collections.ConfigDict, workdir: str, abstract_state):
  """-> (state, data_state) of the trunk's checkpoint at the branch step."""
  return checkpoint.restore_step(trunk_dir(c, workdir), c.train.branch_step, abstract_state)
