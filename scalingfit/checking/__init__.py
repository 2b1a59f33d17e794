"""Checking: do the two laws, combined, predict the best error, and what do they predict?

:mod:`.pipeline` (:func:`scalingfit.check`) runs the fits a check needs and gathers
:mod:`.verdict` (Δ = γ_conv − γ1·γ2), :mod:`.heldout` (sizes left out, predicted),
:mod:`.comparison` (PSIS-LOO) and :mod:`.paper_recipe` (the paper's log-log fits);
:mod:`.prediction` (:func:`scalingfit.predict`) extrapolates a fit to new sizes.
"""
