"""Progress of a long step (data generation, detection over a folder, training) with the time left.

:class:`Progress` counts done steps of a known total and prints ``label: done/total (pct), elapsed,
about T left`` on stderr: at most every 2 seconds on a terminal, every 30 seconds in a log (so CI
logs stay short), always at the end; nothing when ``quiet``. :func:`time_left` is the estimate
alone, for lines a command prints anyway (``test_frcnn.py``'s one line per image).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_left(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the mean pace so far (None before the first step is done)."""
    if done <= 0 or total <= 0:
        return None
    return elapsed / done * max(total - done, 0)


class Progress:
    """Report ``done`` out of ``total`` steps of ``label`` (see the module docstring)."""

    def __init__(self, total: int, label: str, *, quiet: bool = False, stream: TextIO | None = None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.label, self.quiet = int(total), label, quiet
        self.stream = stream or sys.stderr
        if interval is None:
            interval = 2.0 if getattr(self.stream, "isatty", lambda: False)() else 30.0
        self.interval, self.clock = interval, clock
        self.start = clock()
        self.last_report = self.start

    def elapsed(self) -> float:
        return self.clock() - self.start

    def line(self, done: int) -> str:
        """The progress line for ``done`` steps."""
        elapsed = self.elapsed()
        text = f"{self.label}: {done}/{self.total} ({100.0 * done / max(self.total, 1):.0f}%), {format_duration(elapsed)}"
        left = time_left(elapsed, done, self.total)
        if done >= self.total:
            return text + ", done"
        return text + ("" if left is None else f", about {format_duration(left)} left")

    def update(self, done: int) -> None:
        """Record ``done`` steps; print a line when the interval has passed or the job is finished."""
        if self.quiet:
            return
        now = self.clock()
        if done >= self.total or now - self.last_report >= self.interval:
            self.last_report = now
            print(self.line(done), file=self.stream, flush=True)
