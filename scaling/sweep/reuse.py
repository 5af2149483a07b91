"""`scaling sweep --reuse_from=DIR[,DIR...]`: completed runs of other sweeps whose config computes the same
thing as a run of this sweep (runid.config_diff is empty: tags, logging cadence and paths aside) are
copied in instead of trained again. Matched by config, not by run id, so a run keeps this sweep's id and
tags; its result.json says where it came from (`reused_from`).

Only a run with no directory here is reused (a partial run of this sweep resumes from its own
checkpoints). The copy is assembled under SWEEP_DIR/.reuse/ (checkpoint files hard-linked where the
filesystem allows, so they cost no space; logs copied) and renamed into runs/ in one step: a sweep killed
mid-copy leaves no half run behind, and the next launch on this host clears what a dead process left in
.reuse/.
"""

import os
import shutil
import socket

from scaling import faults, io, runid
from scaling.sweep import locks, worker
from scaling import errors

TMP = ".reuse"


def check_sources(sources) -> list[str]:
  """The absolute source dirs; ValueError (one line) for one that is not a sweep directory."""
  out = []
  for src in sources:
    if not src:
      continue
    if not os.path.isdir(os.path.join(src, "runs")):
      raise errors.ConfigError(f"reuse_from: {src} has no runs/ directory; allowed: sweep directories written by "
                       f"`scaling sweep`, comma-separated")
    out.append(os.path.abspath(src))
  return out


def _index(sources: list[str]) -> dict[str, str]:
  """config key -> run dir, over the completed runs of `sources` (the first source wins a tie)."""
  index = {}
  for src in sources:
    runs = os.path.join(src, "runs")
    for rid in sorted(os.listdir(runs)):
      d = os.path.join(runs, rid)
      r = worker.read_result(d)
      if r is None or r.get("status") != "completed" or not os.path.exists(os.path.join(d, "config.json")):
        continue
      index.setdefault(runid.config_key(io.read_json(os.path.join(d, "config.json"))), d)
  return index


def _link_or_copy(src: str, dst: str) -> None:
  """Checkpoint files are hard-linked (large; never rewritten in place: orbax writes new step directories).
  Logs are copied: a link would let an append here change the source sweep's file."""
  if f"{os.sep}checkpoints{os.sep}" in src:
    try:
      os.link(src, dst)
      return
    except OSError:  # another filesystem, or links not allowed
      pass
  shutil.copy2(src, dst)


def _retag(path: str, tags: dict, extra: dict) -> None:
  """Rewrite a copied JSON file with this sweep's tags (a new file: the source's hard link is untouched)."""
  d = io.read_json(path)
  d["tags"] = tags
  io.atomic_write_json(path, {**d, **extra})


def adopt(sweep_dir: str, runs, sources: list[str]) -> list[str]:
  """Copy into sweep_dir/runs the planned runs (run_id, config) that have no directory there and match a
  completed run of `sources`; -> the adopted run ids."""
  tmp_root = os.path.join(sweep_dir, TMP)
  _clear_dead(tmp_root)
  sources = check_sources(sources)
  if not sources:
    return []
  index = _index(sources)
  os.makedirs(os.path.join(sweep_dir, "runs"), exist_ok=True)
  adopted = []
  for run_id, c in runs:
    dst = os.path.join(sweep_dir, "runs", run_id)
    src = index.get(runid.config_key(c))
    if src is None or os.path.exists(dst) or os.path.abspath(src) == dst:
      continue
    tmp = os.path.join(tmp_root, f"{run_id}@{socket.gethostname()}@{os.getpid()}")
    shutil.copytree(src, tmp, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".lock*"))
    tags = runid.plain(c)["tags"]
    _retag(os.path.join(tmp, "config.json"), tags, {})
    _retag(os.path.join(tmp, "result.json"), tags, {"reused_from": src})
    faults.point("reuse_copied")
    try:
      os.rename(tmp, dst)
    except OSError:
      if not os.path.exists(dst):
        raise
      shutil.rmtree(tmp, ignore_errors=True)  # another sweep put the run there meanwhile: theirs stands
      continue
    adopted.append(run_id)
  try:
    os.rmdir(tmp_root)  # only when empty: another sweep on this directory may be copying too
  except OSError:
    pass
  return adopted


def _clear_dead(tmp_root: str) -> None:
  """Remove what a killed adoption left: entries of this host whose process is gone."""
  if not os.path.isdir(tmp_root):
    return
  for name in os.listdir(tmp_root):
    parts = name.rsplit("@", 2)  # run_id@host@pid
    if (len(parts) == 3 and parts[1] == socket.gethostname() and parts[2].isdigit()
        and locks._alive({"host": parts[1], "pid": int(parts[2])}) is False):
      shutil.rmtree(os.path.join(tmp_root, name), ignore_errors=True)
