"""scalingfit: posterior estimates of the dynamical neural scaling laws from training logs.

Two laws (D'Amico, Bocchi & Negri, arXiv 2505.13230): along training, test error falls as
a power of a norm of the weights, ε ≈ A·λ^(−γ1); the norm at which test error is best
grows with the training-set size, λ* ≈ k2·P^γ2; together ε*(P) ∝ P^(−γ1·γ2).

>>> import scalingfit as sf
>>> table = sf.load("runs.csv")                     # canonical table (docs/design.md §3)
>>> result = sf.fit(table)                          # hierarchical Bayesian fit
>>> result.summary()                                # γ1, γ2, γ1γ2, γ_conv per group
>>> sf.check(table, result=result).table()          # do the combined laws predict ε*(P)?
>>> sf.predict(result, [100_000])                   # ε*, λ* at a size not yet trained

The package follows the pipeline: :mod:`scalingfit.ingest` (logs → canonical table),
:mod:`scalingfit.fitting` (table → posterior), :mod:`scalingfit.checking` (verdict,
held-out sizes, predictions), :mod:`scalingfit.report` (figures, pages, text tables);
beside it :mod:`scalingfit.norms` (norms from your own training loop) and
:mod:`scalingfit.theory` (the perceptron's theory). Heavy modules (PyMC, torch) are
imported on first use, so ``import scalingfit`` is quick.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "load": ("scalingfit.ingest.sources", "load"),
    "validate": ("scalingfit.ingest.table", "validate"),
    "Mapping": ("scalingfit.ingest.mapping", "Mapping"),
    "simulate": ("scalingfit.fitting.simulation", "simulate"),
    "fit": ("scalingfit.fitting.pipeline", "fit"),
    "FitResult": ("scalingfit.fitting.result", "FitResult"),
    "check": ("scalingfit.checking.pipeline", "check"),
    "predict": ("scalingfit.checking.prediction", "predict"),
    "rc": ("scalingfit.settings", "rc"),
    "rc_context": ("scalingfit.settings", "rc_context"),
    "norms": ("scalingfit.norms", None),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'scalingfit' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = import_module(module)
    return value if attribute is None else getattr(value, attribute)


def __dir__():
    return sorted(list(globals()) + __all__)
