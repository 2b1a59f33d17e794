"""Validated defaults: chains, draws, tuning steps, seed, sampler, diagnostic limits.

Intervals are always 90 % (q05 and q95, the keys of summary.json).

``None`` in a function signature means "use rc". Change defaults for a block of code with
:func:`rc_context`::

    with scalingfit.rc_context({"sample.draws": 2000}):
        result = scalingfit.fit(table)
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["rc", "rc_context"]


def _positive_int(value):
    if int(value) != value or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def _probability(value):
    if not 0 < value < 1:
        raise ValueError(f"expected a probability in (0, 1), got {value!r}")
    return float(value)


def _choice(*options):
    def check(value):
        if value not in options:
            raise ValueError(f"expected one of {options}, got {value!r}")
        return value
    return check


_VALIDATORS = {
    "sample.draws": _positive_int,
    "sample.tune": _positive_int,
    "sample.chains": _positive_int,
    "sample.cores": lambda v: None if v is None else _positive_int(v),  # None: one per CPU
    "sample.seed": int,
    "sample.sampler": _choice("auto", "pymc", "nutpie"),
    "sample.target_accept": _probability,
    "diagnostics.rhat_max": float,          # a fit above this fails its diagnostics
    "diagnostics.ess_min": float,           # ... or below this bulk/tail ESS
}
_DEFAULTS = {
    "sample.draws": 1000,
    "sample.tune": 1000,
    "sample.chains": 4,
    "sample.cores": None,
    "sample.seed": 0,
    "sample.sampler": "auto",
    "sample.target_accept": 0.95,
    "diagnostics.rhat_max": 1.01,
    "diagnostics.ess_min": 400.0,
}


class RcParams(dict):
    """A dict of defaults whose keys and values are validated on assignment."""

    def __setitem__(self, key, value):
        if key not in _VALIDATORS:
            raise KeyError(f"{key!r} is not a scalingfit rc key; keys: {sorted(_VALIDATORS)}")
        super().__setitem__(key, _VALIDATORS[key](value))

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value


rc = RcParams()
rc.update(_DEFAULTS)


@contextmanager
def rc_context(settings: dict):
    """Temporarily change rc defaults; restored on exit, even after an error."""
    saved = dict(rc)
    try:
        rc.update(settings)
        yield rc
    finally:
        dict.clear(rc)
        dict.update(rc, saved)
