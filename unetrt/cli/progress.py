"""Progress of long work: a live rich bar on a terminal, plain time-stamped lines in logs and CI.

One callable serves the three shapes of progress the library reports:

- export steps: ``report("tracing with torch.export")``; a message with ``": "`` in it
  (``"fp16: 3 extra nodes FP32 -> pass"``, ``"building fp16 engine (...): phase 2/5"``) is a
  sub-step of the current step;
- counted work: ``report("photo.png", done=3, total=10)`` (predict over many images, bench grid);
- tiles of one image: ``report.counter("tiles")`` returns a ``progress(done, total)`` callback.

On a terminal each finished step is printed with its time (``✓ tracing with torch.export  3.1s``)
above a spinner for the current one. Elsewhere every step is one line ``[  3.1s] message``; sub-step
lines of one step (``fp16: ...``, the engine builder's phases) are printed at most every ``interval``
seconds, so a log gets a heartbeat, not every tick of TensorRT's progress monitor.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from rich.console import Console

__all__ = ["Reporter"]

_DIGITS = re.compile(r"\d+(\.\d+)?")


def _count_column():
    """``done/total`` for counted work; nothing for a step (rich's MofN column would show ``0/?``)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task):
            return Text(f"{int(task.completed)}/{int(task.total)}" if task.total else "")

    return Count()


class Reporter:
    """Context manager and callable: ``with Reporter(console) as report: report("step")``.

    Args:
        console: Where to draw (normally stderr, so ``--json`` on stdout stays clean).
        interval: Seconds between two plain lines of the same kind (logs only).
        steps: Print each finished step with its duration (export); off for counted work.
        enabled: ``False`` draws nothing (e.g. a single image).
        clock: Seconds counter (``time.perf_counter``).
    """

    def __init__(self, console: Console, *, interval: float = 5.0, steps: bool = True, enabled: bool = True,
                 clock: Callable[[], float] = time.perf_counter):
        self.console, self.interval, self.steps, self.enabled, self._clock = console, interval, steps, enabled, clock
        self.live = enabled and console.is_terminal and not console.is_dumb_terminal
        self._bar = self._task = None
        self._t0 = self._step_t0 = clock()
        self._step: str | None = None
        self._last_kind, self._last_time = None, 0.0

    def __enter__(self) -> "Reporter":
        self._t0 = self._step_t0 = self._clock()
        if self.live:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _count_column(),
                                 TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("starting", total=None)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self._finish_step()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _finish_step(self) -> None:
        if self.live and self.steps and self._step is not None:
            self.console.print(f"[green]✓[/] {self._step}  [dim]{self._clock() - self._step_t0:.1f}s[/]")

    def __call__(self, message: str, done: int | None = None, total: int | None = None) -> None:
        if not self.enabled:
            return
        sub = ": " in message and done is None
        if not sub and message != self._step:
            self._finish_step()
            self._step, self._step_t0 = message, self._clock()
        if self.live:
            text = message if not sub or not self._step or message.startswith(self._step) else \
                f"{self._step} — {message}"
            self._bar.update(self._task, description=text, completed=done or 0, total=total)
            return
        self._plain(message, done, total, sub)

    def _plain(self, message: str, done: int | None, total: int | None, sub: bool) -> None:
        now = self._clock()
        kind = _DIGITS.sub("#", message.split(": ", 1)[0]) + ": …" if sub else message
        last = done is not None and total is not None and done >= total
        if kind == self._last_kind and now - self._last_time < self.interval and not last and (sub or done):
            return
        self._last_kind, self._last_time = kind, now
        count = f"{done}/{total} " if done is not None and total else ""
        self.console.print(f"[{now - self._t0:7.1f}s] {count}{message}", markup=False, highlight=False)

    def counter(self, label: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for tiles and the like, reported as ``label``."""
        def progress(done: int, total: int) -> None:
            self(label, done, total)
        return progress
