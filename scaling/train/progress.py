"""Progress output: a tqdm bar on a terminal, plain log lines when stdout is a file or a pipe.

Under SLURM, CI or `make sweep > log` tqdm is off (stdout is not a TTY) and a carriage-return bar would be
unreadable in a file anyway. There every event is one flushed line (a file sees it as it happens) and a
running loop prints a progress line every `every_s()` seconds (env SCALING_LOG_EVERY_S, default 30).
The training loop (loop.py) and the sweep runner report through here.

Library code logs (stdlib `logging`, under the `scaling` logger: its handler is set up in scaling/__init__.py)
instead of printing. The CLI chooses the level (`--verbosity`).
"""

import logging
import math
import os
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("scaling")


def every_s() -> float:
  return float(os.environ.get("SCALING_LOG_EVERY_S", "30"))


def interactive() -> bool:
  return bool(getattr(sys.stdout, "isatty", lambda: False)())


def line(text: str) -> None:
  log.info(text)


def duration(s: float | None) -> str:
  """Seconds -> '<1s', '42s', '3:07', '2:03:07', '3d 4:05:00'; '-' when unknown."""
  if s is None or not math.isfinite(s) or s < 0:
    return "-"
  if 0 < s < 0.5:  # a plan's estimate for a tiny run: not "0s", which reads as nothing to do
    return "<1s"
  s = int(round(s))
  if s < 60:
    return f"{s}s"
  d, s = divmod(s, 86400)
  h, s = divmod(s, 3600)
  m, s = divmod(s, 60)
  hms = f"{h}:{m:02d}:{s:02d}" if h or d else f"{m}:{s:02d}"
  return f"{d}d {hms}" if d else hms


class Bar:
  """The steps of one run (or of K packed runs): tqdm on a terminal; otherwise a line at the start and
  one every `every_s()` seconds with step, loss, tokens/s, MFU and the ETA (measured from the first
  report on, so compile time does not count)."""

  def __init__(self, total: int, initial: int, desc: str, enabled: bool):
    self.total, self.desc, self.enabled = total, desc, enabled
    self.tty = interactive()
    self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True) if enabled and self.tty else None
    self._first: tuple[float, int] | None = None  # (time, step) of the first report
    self._printed = -math.inf
    if enabled and not self.tty:
      line(f"{desc}: start at step {initial}/{total}")

  def update(self, n: int = 1) -> None:
    if self.bar is not None:
      self.bar.update(n)

  def eta_s(self, step: int, now: float) -> float | None:
    if self._first is None or step <= self._first[1]:
      return None
    t0, s0 = self._first
    return (self.total - step) * (now - t0) / (step - s0)

  def report(self, step: int, loss: str, tokens_per_s: float, mfu: float) -> None:
    """After logged step `step`: `loss` already formatted (packed runs show one per member)."""
    now = time.monotonic()
    if self._first is None:
      self._first = (now, step)
    if self.bar is not None:
      self.bar.set_postfix(loss=loss, tok_s=f"{tokens_per_s:,.0f}", mfu=f"{mfu:.0%}")
    elif self.enabled and now - self._printed >= every_s():
      self._printed = now
      line(f"{self.desc}: step {step}/{self.total} loss {loss} {tokens_per_s:,.0f} tok/s "
           f"mfu {mfu:.0%} ETA {duration(self.eta_s(step, now))}")

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
