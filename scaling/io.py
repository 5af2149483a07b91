"""Small filesystem helpers shared by runs, sweeps and fits: atomic JSON writes and reads."""

import json
import os
import tempfile
from typing import Any

from scaling import faults


_UMASK = os.umask(0)
os.umask(_UMASK)


def _default(o: Any):
  # numpy / jax scalars and arrays reach us from metrics and fits.
  if hasattr(o, "tolist"):
    return o.tolist()
  if hasattr(o, "item"):
    return o.item()
  raise TypeError(f"not JSON serializable: {type(o).__name__}")


def atomic_write_text(path: str, text: str) -> None:
  """Write via a temp file in the same directory + rename, so readers never see half a file."""
  d = os.path.dirname(os.path.abspath(path))
  os.makedirs(d, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-" + os.path.basename(path))
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file ordinary permissions
    faults.point("write:" + os.path.basename(path))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def atomic_write_json(path: str, obj: Any) -> None:
  atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n")


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_jsonl(path: str) -> list[dict]:
  """Reads a JSON-lines file; a torn last line (killed writer) is ignored."""
  rows = []
  if not os.path.exists(path):
    return rows
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        break
  return rows
