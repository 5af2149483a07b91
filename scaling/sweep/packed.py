"""Which runs of a sweep share one compiled step: tasks of up to `pack` members with the same pack key.

Ladder members too small to fill a device waste it one at a time; runs that differ only in
scaling.train.members.FREE (seed, learning rate, ...) train together as one task through
`scaling.train.loop.train_members` (the vmapped step: scaling/train/members.py).
"""

from typing import Callable

import ml_collections

from scaling.train.members import pack_key


def groups(runs: list[tuple[str, ml_collections.ConfigDict]], pack: int,
           saved_steps: Callable[[str], set[int]] = lambda run_id: set()) -> list[list[str]]:
  """Run ids in tasks of up to `pack` packable members (input order kept within a group). Runs with
  checkpoints pack only with runs that share a saved step (the group resumes from the newest common one);
  a fresh run never joins a resumed one (the group would restart it from scratch)."""
  if pack <= 1:
    return [[r] for r, _ in runs]
  buckets: list[tuple[str, set[int], list[str]]] = []  # (pack key, steps all members share, members)
  out = []
  for r, c in runs:
    k, steps = pack_key(c), saved_steps(r)
    if k is None:
      out.append([r])
      continue
    for i, (bk, common, members) in enumerate(buckets):
      if bk == k and len(members) < pack and (common & steps if steps or common else True):
        buckets[i] = (bk, common & steps, members + [r])
        break
    else:
      buckets.append((k, steps, [r]))
  return out + [members for _, _, members in buckets]
