"""scaling: neural scaling-law experiments in JAX / Flax NNX (see README.md).

Library code logs through the `scaling` logger instead of printing. Its one handler writes each record as a
flushed stdout line through `tqdm.write`, so a run's end line lands above a live progress bar, never inside
it; a notebook or script gets INFO unless it configures the `scaling` logger itself, the CLI sets the level.
"""

import logging
import sys

from tqdm.auto import tqdm


class _LineHandler(logging.Handler):
  def emit(self, record: logging.LogRecord) -> None:
    try:
      tqdm.write(self.format(record), file=sys.stdout)  # sys.stdout at emit time: pytest's capture swaps it
      sys.stdout.flush()
    except Exception:  # logging must never take a run down
      self.handleError(record)


_log = logging.getLogger("scaling")
if not _log.handlers:
  _handler = _LineHandler()
  _handler.setFormatter(logging.Formatter("%(message)s"))
  _log.addHandler(_handler)
  _log.setLevel(logging.INFO)
  _log.propagate = False  # one line per event, not a second copy through the root logger
