"""Progress on stderr, the one way every long computation reports it.

On a terminal, a rich progress bar (or a spinner, for work without steps). Elsewhere (a
log file, nohup, a batch system), where a bar would print nothing until the end, plain
flushed lines::

    perceptron gd, 8 runs: step 0/20000 (0 %), started
    perceptron gd, 8 runs: step 2000/20000 (10 %), 31 s elapsed, ~279 s left
    ...
    perceptron gd, 8 runs: step 20000/20000 (100 %), 305 s elapsed, done
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

__all__ = ["Progress", "track", "status"]


class Progress:
    """Progress of a computation of ``total`` units, as a context manager.

    Plain lines: one when it starts, then one whenever both :attr:`EVERY_S` seconds and
    :attr:`EVERY_FRACTION` of the total have passed since the last (whichever is rarer: at
    most ten lines, none more often than every 30 s), one for every unit that comes with an
    ``event`` to report (a sweep's finished or failed job), and one when the total is
    reached. ``quiet`` prints nothing.

    Parameters
    ----------
    title : str
        What is running (``perceptron``).
    description : str
        Details after the title (``gd, 8 runs``); may be empty.
    total : int
        Units of work.
    unit : str
        Singular name of a unit (``step``, ``point``, ``job``).
    quiet : bool
    stream : file or callable, optional
        Where to write: a file (default ``sys.stderr``, looked up on entry), or a function
        that takes one line (plain lines only).
    clock : callable
        Seconds, monotonic (for tests).
    transient : bool
        Remove the bar from the terminal when done.
    """

    EVERY_S = 30.0
    EVERY_FRACTION = 0.1

    def __init__(self, title, description, total, unit, *, quiet=False, stream=None,
                 clock=time.monotonic, transient=False):
        self.title, self.description, self.total, self.unit = title, description, total, unit
        self.quiet, self.stream, self.clock, self.transient = quiet, stream, clock, transient
        self.bar = self.task = None
        self.done = 0

    @property
    def label(self):
        return f"{self.title} {self.description}" if self.description else self.title

    def __enter__(self):
        if self.quiet:
            return self
        self.stream = sys.stderr if self.stream is None else self.stream
        if callable(self.stream):
            self.emit = self.stream
        else:
            self.emit = lambda line: print(line, file=self.stream, flush=True)
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn(f"[bold]{self.title}[/] {{task.description}}"), BarColumn(),
                TextColumn(f"{{task.completed}}/{{task.total}} {self.unit}s"),
                TimeRemainingColumn(), console=Console(file=self.stream),
                transient=self.transient)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.description, total=self.total)
            return self
        self.start = self.last_time = self.clock()
        self.last_done, self.finished = 0, False
        self._line("started")
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            return self.bar.__exit__(*exc)
        return False

    def update(self, done, *, event: str | None = None):
        """``done`` units of the total are done; ``event`` is always reported."""
        self.done = done
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=done)
            if event:
                self.bar.console.print(f"{self.title}: {event}")
            return
        if self.finished:
            return
        now = self.clock()
        elapsed = now - self.start
        left = elapsed / done * (self.total - done) if done else float("nan")
        timing = f"{elapsed:.0f} s elapsed, " + ("done" if done >= self.total
                                                  else f"~{left:.0f} s left")
        if event:
            self.last_time, self.last_done = now, done
            self._line(f"{event}; {timing}")
            self.finished = done >= self.total
        elif done >= self.total:
            self.finished = True
            self._line(timing)
        elif (now - self.last_time >= self.EVERY_S
              and done - self.last_done >= self.EVERY_FRACTION * self.total):
            self.last_time, self.last_done = now, done
            self._line(timing)

    def advance(self, units=1, *, event: str | None = None):
        self.update(self.done + units, event=event)

    def note(self, text):
        """Say what the computation is doing now (a new phase)."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, description=text)
        else:
            self.emit(f"{self.title}: {text}")

    def _line(self, status):
        percent = 100.0 * self.done / self.total if self.total else 100.0
        self.emit(f"{self.label}: {self.unit} {self.done}/{self.total} ({percent:.0f} %), "
                  f"{status}")


def track(items, title: str, *, show: bool = True, unit: str = "item"):
    """Iterate over ``items`` while a :class:`Progress` counts them (nothing if not ``show``)."""
    items = list(items)
    if not show:
        yield from items
        return
    with Progress(title, "", len(items), unit, transient=True) as progress:
        for item in items:
            yield item
            progress.advance()


@contextmanager
def status(show: bool, message: str):
    """A spinner on stderr while something without steps of its own runs."""
    if not show:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
