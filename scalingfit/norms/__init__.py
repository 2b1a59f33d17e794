"""Norms of a network's weights along training, for your own loops and the reference runs.

:func:`log_norms` measures five norm-based complexities of a PyTorch model as natural logs
(:mod:`scalingfit.norms.measure` says exactly which matrices and how);
:class:`NormLogger` computes and writes them at chosen steps to CSV, TensorBoard or W&B in
the names ``scalingfit ingest`` reads with no mapping (:mod:`scalingfit.norms.loggers`).
For the trainers most people use, one callback does it through the trainer's own loggers:
:class:`TransformersNormCallback` (Hugging Face ``Trainer``,
:mod:`scalingfit.norms.transformers_callback`) and :class:`LightningNormCallback`
(PyTorch Lightning, :mod:`scalingfit.norms.lightning_callback`).
torch, transformers and lightning are imported only when used, so ``import scalingfit.norms``
works without them.

>>> from scalingfit.norms import log_norms
>>> log_norms(model)                         # doctest: +SKIP
{'spectral_complexity': 41.7, 'spectral_product': 18.2, 'frobenius': 4.9, 'l1': 11.3,
 'group21': 8.1}
"""

from importlib import import_module

from .loggers import MetricWriter, NormLogger, log_spaced_steps
from .measure import CONVENTIONS, NORMS, log_norms, weight_matrices

#: Callbacks whose modules import their framework: loaded on first use.
_CALLBACKS = {"TransformersNormCallback": ".transformers_callback",
              "LightningNormCallback": ".lightning_callback"}

__all__ = ["log_norms", "weight_matrices", "NORMS", "CONVENTIONS", "NormLogger",
           "MetricWriter", "log_spaced_steps", *_CALLBACKS]


def __getattr__(name):
    if name not in _CALLBACKS:
        raise AttributeError(f"module 'scalingfit.norms' has no attribute {name!r}")
    return getattr(import_module(_CALLBACKS[name], __name__), name)
