"""Norms of a network's weights along training, for your own loops and the reference runs.

:func:`log_norms` measures five norm-based complexities of a PyTorch model as natural logs
(:mod:`scalingfit.norms.measure` says exactly which matrices and how);
:class:`NormLogger` computes and writes them at chosen steps to CSV, TensorBoard or W&B in
the names ``scalingfit ingest`` reads with no mapping (:mod:`scalingfit.norms.loggers`).
torch is imported inside the functions, so ``import scalingfit.norms`` works without it.

>>> from scalingfit.norms import log_norms
>>> log_norms(model)                         # doctest: +SKIP
{'spectral_complexity': 41.7, 'spectral_product': 18.2, 'frobenius': 4.9, 'l1': 11.3,
 'group21': 8.1}
"""

from .loggers import MetricWriter, NormLogger, log_spaced_steps
from .measure import CONVENTIONS, NORMS, log_norms, weight_matrices

__all__ = ["log_norms", "weight_matrices", "NORMS", "CONVENTIONS", "NormLogger",
           "MetricWriter", "log_spaced_steps"]
