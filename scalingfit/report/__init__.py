"""The report: renders only from a :class:`~scalingfit.fitting.result.FitResult` (and, if
given, the content of a check's ``check.json``).

``render(result, out)`` (:mod:`.writer`) writes ``report.html`` (self-contained: figures
embedded as base64 PNG, no external resource), ``report.md``, and every figure as
``<name>.png`` and ``<name>.svg`` beside them. The figures are in :mod:`.figures`, the
pages in :mod:`.page`, and the plain-text tables every command prints in :mod:`.text`,
which imports nothing else: the commands that only print load no plotting.
"""

from importlib import import_module

_LAZY = {"render": ".writer", "make_figures": ".writer", "FIGURES": ".figures"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'scalingfit.report' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
