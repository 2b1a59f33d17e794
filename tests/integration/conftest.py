"""One small check, computed once per test session and shared by the check and report tests.

Fitting is the slow part (a few tens of seconds per fit), so the three fits a check makes
are done once, saved, and read back by every test that needs them — which also exercises
``CheckResult.save`` and ``FitResult.load``. Under pytest-xdist the workers share the
result through a lock file in the session's common temporary directory.
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import contextmanager

import pytest

from scalingfit.errors import ScalingfitWarning
from tests.support.small_check import SMALL, small_table


@contextmanager
def _exclusive(lock, timeout=900):
    start = time.monotonic()
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL)
            break
        except FileExistsError:
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{lock} held for over {timeout} s") from None
            time.sleep(0.5)
    try:
        yield
    finally:
        os.close(fd)
        os.unlink(lock)


@pytest.fixture(scope="session")
def small_check_dir(tmp_path_factory):
    """Directory of a saved check (check.json, fit-free/, fit-combined/, fit-heldout/)."""
    from scalingfit.checking.pipeline import check

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "small-check"
    with _exclusive(str(shared / "small-check.lock")):
        if not (out / "check.json").exists():
            with warnings.catch_warnings():
                # small draws fail the strict default diagnostics; the tests do not need them
                warnings.simplefilter("ignore", ScalingfitWarning)
                check(small_table(), progress=False, **SMALL).save(out)
    return out
