"""Exceptions that callers may want to catch.

Every user-facing problem is a :class:`ScalingfitError`; the CLI prints its message on
one line and exits with status 2, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "ScalingfitError",
    "DataError",
    "MissingDependencyError",
    "ScalingfitWarning",
    "require",
    "first_line",
]


class ScalingfitError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class DataError(ScalingfitError, ValueError):
    """Bad input data, located as precisely as we can: source, row, column, and a fix.

    Parameters
    ----------
    problem : str
        What was found and what was expected.
    source : str, optional
        File (or other source) the data came from.
    row : int or str, optional
        Row in the source: a line number for text files (the header is line 1).
    column : str, optional
        Column (or metric) concerned.
    fix : str, optional
        How to fix it.
    """

    def __init__(self, problem, *, source=None, row=None, column=None, fix=None):
        self.problem, self.source, self.row, self.column, self.fix = (
            problem, source, row, column, fix)
        where = [str(source) if source is not None else None,
                 f"row {row}" if row is not None else None,
                 f"column '{column}'" if column is not None else None]
        where = ", ".join(w for w in where if w)
        message = f"{where}: {problem}" if where else problem
        if fix:
            message += f" Fix: {fix}"
        super().__init__(message)


class MissingDependencyError(ScalingfitError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str):
    """Import an optional dependency, or raise a message naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"this needs the optional package '{module.split('.')[0]}' ({err}). "
            f"Install it with: pip install 'scalingfit[{extra}]'"
        ) from err


class ScalingfitWarning(UserWarning):
    """Odd but legal input, or a fit to read with care; printed by the CLI."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): what a
    one-line error quotes of a library's multi-line complaint."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
