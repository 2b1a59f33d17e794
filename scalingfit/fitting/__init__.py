"""Fitting both laws: canonical table → stage 1 (each run's curve) → stage 2 (the laws) →
:class:`~scalingfit.fitting.result.FitResult`.

In the order data flows: :mod:`.groups` (the table in fitting units), :mod:`.run_curves`
(stage 1), :mod:`.likelihood` (stage 2's likelihood, numpy or PyTensor), :mod:`.model`
(stage 2 in PyMC), :mod:`.sampling`, :mod:`.result`, and :mod:`.pipeline`
(:func:`scalingfit.fit`, which runs them all).
:mod:`.laws` holds the curve as pure functions; :mod:`.simulation` draws tables from it.
Only :mod:`.model` and :mod:`.sampling` import PyMC.
"""
