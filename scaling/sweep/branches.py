"""Branching ladders (`branch = 'cooldown'`): a data ladder, IsoFLOP grid or N x D grid as cooldown branches.

Members that differ only in their budget (same size, seed, lr, data) share one trunk: a run that warms
up and then holds the lr constant, saving a pinned checkpoint (state + data position) at every member's
cool-down start s_i = S_i - decay_steps(S_i). Each member becomes a branch: the same run with schedule
'wsd' (decay_frac = `cooldown_frac`, shape `cooldown_shape`) over its own S_i steps that starts from the
trunk's checkpoint at s_i (scaling/train/branch.py). All members of a group get the warmup of its
shortest one, so every lr a branch sees is the lr a separate WSD run of its budget would use.

Trunks are ordinary run directories tagged role='trunk' (left out of results.load by default); branches
carry tags trunk (its run id), branch_tokens (tokens of their own cool-down), branch, cooldown_frac,
cooldown_shape. The runner holds a branch ('held') until its trunk has committed the step it starts from.
"""

import json
import os

import ml_collections
import pandas as pd

from scaling import config as config_lib
from scaling.sweep import worker
from scaling.train import budget, checkpoint, optim
from scaling.models import registry
from scaling import errors

MODES = ("", "cooldown")
KINDS = ("data", "isoflop", "grid")  # ladder kinds whose members share sizes across budgets
BUDGET = {"tokens": 0, "flops": 0.0, "steps": 0}  # train fields that only set the budget


def validate(s: ml_collections.ConfigDict) -> None:
  if s.branch not in MODES:
    raise errors.ConfigError(f"branch: got {s.branch!r}; allowed: '' (separate runs) or 'cooldown'")
  if not s.branch:
    return
  if s.kind not in KINDS:
    raise errors.ConfigError(f"branch: 'cooldown' needs budgets to branch to (kind {', '.join(KINDS)}), got kind "
                     f"{s.kind!r}; allowed: '' for kind {s.kind!r}")
  if not registry.is_neural_config(s):
    raise errors.ConfigError(f"branch: 'cooldown' trains neural families; allowed: '' for family {s.family!r}")
  f = s.cooldown_frac
  if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
    raise errors.ConfigError(f"cooldown_frac: got {f!r}; allowed: a number in (0, 1) (the cool-down's share of each budget)")
  if s.cooldown_shape not in config_lib.DECAY_SHAPES:
    raise errors.ConfigError(f"cooldown_shape: got {s.cooldown_shape!r}; allowed: {', '.join(config_lib.DECAY_SHAPES)}")
  if s.pack != 1:
    raise errors.ConfigError(f"pack: {s.pack} with branch='cooldown'; allowed: 1 (trunks and branches train one at a time)")


def _group_key(c: ml_collections.ConfigDict) -> str:
  d = c.to_dict()
  d.pop("tags")
  d["train"] = {**d["train"], **BUDGET, "warmup_steps": None, "schedule": None}
  return json.dumps(d, sort_keys=True, default=str)


def make(s: ml_collections.ConfigDict, runs: list, finish) -> list:
  """[(run_id, config)] of separate runs -> trunks and branches, trunks first (ValueError for a budget
  too short to branch, naming the budget field). `finish(s, c, id_parts, seed, lr_mult, tags)` -> (run_id, config)
  is the ladder's own member finisher (scaling/sweep/ladders.py), so a trunk is named and finalized like any member."""
  groups: dict[str, list] = {}
  for run_id, c in runs:
    groups.setdefault(_group_key(c), []).append((run_id, c))
  trunks, out = [], []
  field = "budgets" if s.kind == "isoflop" else "token_budgets"
  for members in groups.values():
    steps = [budget.plan(c)["steps"] for _, c in members]
    c0 = members[0][1]
    w = c0.train.warmup_steps if c0.train.warmup_steps >= 0 else int(c0.train.warmup_frac * min(steps))
    starts = []
    for (run_id, c), n in zip(members, steps):
      c.train.update(schedule="wsd", decay_frac=float(s.cooldown_frac), decay_shape=s.cooldown_shape, warmup_steps=w)
      at = n - optim.decay_steps(c.train, n)
      if at < max(w, 1):
        raise errors.ConfigError(f"{field}: {run_id} has {n} steps; its cool-down ({s.cooldown_frac:g} of them) would begin at "
                         f"step {at}, before the end of warmup ({w} steps); allowed: budgets long enough for warmup + "
                         "cool-down (or a smaller cooldown_frac / warmup)")
      starts.append(at)
    t = ml_collections.ConfigDict(c0.to_dict())
    t.train.update(schedule="constant", steps=max(starts), tokens=0, flops=0.0, checkpoint_steps=tuple(sorted(set(starts))))
    keep = {k: c0.tags[k] for k in ("target_params",) if k in c0.tags}
    with t.unlocked():
      t.tags = ml_collections.ConfigDict(keep)
    seed, lr_mult = c0.seed, c0.tags.get("lr_mult", 1.0)
    trunk_id, t = finish(s, t, ["trunk", f"n{max(starts)}"], seed, lr_mult,
                          dict(role="trunk", branch=s.branch))
    trunks.append((trunk_id, t))
    for (run_id, c), at, n in zip(members, starts, steps):
      c.train.update(branch_from=f"../{trunk_id}", branch_step=at)
      tok_step = budget.plan(c)["tokens_per_step"]
      with c.tags.unlocked():
        c.tags.update(trunk=trunk_id, branch=s.branch, branch_tokens=float((n - at) * tok_step),
                      cooldown_frac=float(s.cooldown_frac), cooldown_shape=s.cooldown_shape)
      suffix = f"-s{c.seed}"
      out.append((run_id[:-len(suffix)] + "-cd" + suffix, c))
  return trunks + out


def waiting(run_dir: str, c: dict, retry_failed: bool, attempted: set) -> bool:
  """A branch whose trunk has not committed its step yet and still may: the runner holds it ('held').
  A trunk that ended without the step (diverged, failed and not retried) frees its branches, which then
  fail with one line saying so."""
  t = c.get("train", {})
  if not t.get("branch_from"):
    return False
  trunk = os.path.normpath(os.path.join(run_dir, t["branch_from"]))
  if checkpoint.has_step(trunk, t["branch_step"]):
    return False
  r = worker.read_result(trunk)
  return r is None or (retry_failed and r.get("status") != "completed" and os.path.basename(trunk) not in attempted)


def flops_summary(df: pd.DataFrame) -> str | None:
  """'FLOPs spent vs the same ladder as separate runs' of a results.load(..., trunks=True) frame."""
  if "role" not in df.columns or "branch_flops" not in df.columns:
    return None
  trunks = df[(df["role"] == "trunk") & (df["status"] == "completed")]
  br = df[df["branch_flops"].notna() & (df["status"] == "completed")]
  if br.empty:
    return None
  spent = float(trunks["flops"].sum()) + float(br["branch_flops"].sum())
  separate = float(br["flops"].sum())
  return (f"cooldown branches: {spent:.3g} FLOPs spent ({len(trunks)} trunks {trunks['flops'].sum():.3g} + "
          f"{len(br)} cool-downs {br['branch_flops'].sum():.3g}) vs {separate:.3g} as separate runs: "
          f"{separate / spent:.2f}x fewer")
