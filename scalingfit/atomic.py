"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output.

And the checks that make a bad output path an error *before* any work is done
(:func:`check_output_dir`, :func:`check_output_file`): a fit of several minutes must not be
lost because ``--out`` names a file, or a place nobody can write to.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import ScalingfitError

__all__ = ["atomic_path", "check_output_dir", "check_output_file", "make_dir",
           "OutputPathError"]


class OutputPathError(ScalingfitError, OSError):
    """An output path that cannot be written: a file where a directory is needed, a
    directory where a file is needed, or a place without write permission."""


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the current directory at worst)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(directory: Path, path, what: str) -> None:
    """Create and remove a temporary file in ``directory``: the only sure test of writing
    (permission bits say nothing for root, or on /proc, or on a read-only mount)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".scalingfit-probe.", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise OutputPathError(f"{what} {path}: cannot write in {directory} ({_reason(err)}). "
                              f"Fix: choose a writable place for {what}.") from err


def check_output_dir(path, what: str = "--out") -> Path:
    """Fail now, with one line, if ``path`` cannot become an output directory.

    Creates nothing (bad input found later must leave no empty directory behind): the path
    must be a directory or not exist yet, and the nearest existing ancestor must be a
    directory that can be written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path}: it is a file, not a directory. Fix: choose a "
                              "directory name (it is created if missing).")
    _check_can_create(path, path, what)
    return path


def check_output_file(path, what: str = "--out") -> Path:
    """Fail now, with one line, if the file ``path`` cannot be written (atomically)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: it is a directory, not a file. Fix: give a "
                              "file name.")
    _check_can_create(path.parent, path, what)
    return path


def _check_can_create(directory: Path, path, what: str) -> None:
    base = _nearest_existing(directory)
    if not base.is_dir():
        raise OutputPathError(f"{what} {path}: {base} is a file, so {directory} cannot be "
                              "made. Fix: choose another output path.")
    _probe(base, path, what)


def make_dir(path, what: str = "output directory") -> Path:
    """``mkdir -p``, with an OSError turned into one line naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        problem = ("a file is in the way" if isinstance(err, FileExistsError | NotADirectoryError)
                   else _reason(err))
        raise OutputPathError(f"{what} {path}: cannot create it ({problem}). Fix: choose "
                              "another output path.") from err
    return path


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    make_dir(path.parent, "directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as err:
        raise OutputPathError(f"{path}: cannot write there ({_reason(err)}). Fix: choose a "
                              "writable output path.") from err
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from the group
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
