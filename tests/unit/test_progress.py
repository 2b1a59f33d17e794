"""Progress on stderr: rate-limited plain lines off a terminal, a bar on one, events always."""

import io

from scalingfit.progress import Progress


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _report(total, seconds_per_unit):
    """The plain lines of a run of ``total`` units taking ``seconds_per_unit`` each."""
    stream, clock = io.StringIO(), _Clock()
    with Progress("job", "", total, "step", stream=stream, clock=clock) as progress:
        for done in range(1, total + 1):
            clock.now = done * seconds_per_unit
            progress.update(done)
    return stream.getvalue().splitlines()


def test_plain_progress_is_rate_limited_by_the_rarer_of_30_s_and_10_percent():
    # 10 s in all: only the start and the end.
    lines = _report(1000, 0.01)
    assert lines == ["job: step 0/1000 (0 %), started",
                     "job: step 1000/1000 (100 %), 10 s elapsed, done"]
    # 100 s: 10 % is 10 s, so 30 s wins: a line at 30, 60, 90 s.
    lines = _report(1000, 0.1)
    assert [line.split(":")[1].split()[1] for line in lines[1:-1]] == [
        "300/1000", "600/1000", "900/1000"]
    assert lines[1] == "job: step 300/1000 (30 %), 30 s elapsed, ~70 s left"
    # 1000 s: 30 s is 3 %, so 10 % wins: at most ten lines over the run.
    lines = _report(100, 10.0)
    assert len(lines) == 11 and lines[1].startswith("job: step 10/100 (10 %), 100 s")
    assert lines[-1] == "job: step 100/100 (100 %), 1000 s elapsed, done"


def test_the_end_is_reported_once_and_quiet_prints_nothing():
    stream = io.StringIO()
    with Progress("job", "x", 10, "step", stream=stream) as progress:
        progress.update(10)
        progress.update(10)       # the simulator reports its last step twice
    assert stream.getvalue().count("done") == 1
    quiet = io.StringIO()
    with Progress("job", "x", 10, "step", quiet=True, stream=quiet) as progress:
        progress.update(10)
        progress.note("phase")
    assert quiet.getvalue() == ""


def test_a_terminal_gets_the_bar_not_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with Progress("job", "x", 10, "step", stream=stream) as progress:
        progress.update(10)
    assert "started" not in stream.getvalue() and "10/10 steps" in stream.getvalue()


def test_events_are_always_reported_with_the_time_left():
    lines, clock = [], _Clock()
    with Progress("sweep", "", 3, "job", stream=lines.append, clock=clock) as progress:
        clock.now = 1.0
        progress.advance(event="a done")
        clock.now = 2.0
        progress.advance(event="b FAILED (out of memory)")
        clock.now = 3.0
        progress.advance(event="c done")
    assert lines == ["sweep: job 0/3 (0 %), started",
                     "sweep: job 1/3 (33 %), a done; 1 s elapsed, ~2 s left",
                     "sweep: job 2/3 (67 %), b FAILED (out of memory); 2 s elapsed, ~1 s left",
                     "sweep: job 3/3 (100 %), c done; 3 s elapsed, done"]
