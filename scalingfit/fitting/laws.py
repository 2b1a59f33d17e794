"""The laws as pure functions: no I/O, numpy or PyTensor alike (pass ``xp``).

Everything is in logs: ``x = log λ`` (natural log of the norm), ``y = log ε``,
``ell = log P``. A norm that spans a hundred orders of magnitude is a log that spans a few
hundred units, which is harmless; an exponentiated one is not.

The learning curve of one run
-----------------------------
Along training a run traces, in log–log coordinates,

.. math::

    f(x) = y^* - \\gamma (x - x^*)
           + \\frac{\\gamma + \\beta}{s}\\Big[\\operatorname{softplus}\\big(s(x - x_d)\\big)
           - \\log\\frac{\\gamma+\\beta}{\\beta}\\Big],
    \\qquad x_d = x^* - \\frac{1}{s}\\log\\frac{\\gamma}{\\beta},

a smoothly broken power law: slope ``-γ`` (law 1's envelope, ``ε ∝ λ^-γ``) well before the
break, slope ``+β`` (the rise of overfitting) well after it, and its minimum exactly at
``(x*, y*)`` — the optimum of law 2. ``s`` sets how sharp the departure is. It is written
in terms of the optimum so that both laws act directly on curve parameters. The chance
plateau caps it from above with a soft minimum of sharpness ``h``:

.. math:: \\log ε(x) = -\\tfrac{1}{h}\\log\\big(e^{-h \\log c} + e^{-h f(x)}\\big).

The cap is increasing in ``f``, so the capped curve has its minimum at the same ``x*``, but
below ``y*`` by ``log(1 + e^{-h(log c - y*)})/h``: much when the optimum lies near chance
(a perceptron at small α, a hard dataset) and a soft cap is fitted. The laws act on the
run's *best error*, the capped minimum (:func:`capped_optimum`); :func:`uncapped_optimum`
gives back the ``y*`` that draws it.

The laws across runs
--------------------
These act on the curve parameters of the runs (:mod:`scalingfit.fitting.model` states them
with their noise and priors):

- law 1: ``ε ≈ A·λ^(−γ1)`` along training — the slope ``γ`` of each run's curve, whose
  mean over a group's runs is ``γ1``;
- law 2: ``log λ* = log k2 + γ2·log P``;
- combination: ``log ε* = const − γ1·γ2·log P``; beside it a free convergence exponent,
  ``log ε* = const − γ_conv·log P``. A gap ``Δ = γ_conv − γ1·γ2`` means the optima do not
  lie on one envelope shared by all P.
"""

from __future__ import annotations

import numpy as np

__all__ = ["learning_curve", "envelope_offset", "capped_optimum", "uncapped_optimum"]


def _softplus(z, xp):
    return xp.logaddexp(0.0, z)


def learning_curve(
    x, x_star, y_star, gamma, beta, sharpness, log_chance=None, plateau_sharpness=None, *, xp=np
):
    """Log test error along a run: a smoothly broken power law with a chance plateau.

    Parameters
    ----------
    x : array_like
        Log norm along the run.
    x_star, y_star : array_like
        Log norm and log error at the run's optimum (the curve's minimum).
    gamma, beta : array_like
        Slope magnitudes before (envelope, ``> 0``) and after (rise, ``> 0``) the optimum.
    sharpness : array_like
        ``s``: how abruptly the run leaves the envelope (in units of 1/x).
    log_chance, plateau_sharpness : array_like, optional
        Log of the plateau (chance) error and the softness ``h`` of the cap; no cap if None.
    xp : module
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    array_like
        ``log ε`` at ``x``.
    """
    ratio = (gamma + beta) / beta
    x_break = x_star - xp.log(gamma / beta) / sharpness
    f = (
        y_star
        - gamma * (x - x_star)
        + (gamma + beta) / sharpness * (_softplus(sharpness * (x - x_break), xp) - xp.log(ratio))
    )
    if log_chance is None:
        return f
    h = plateau_sharpness
    return -xp.logaddexp(-h * log_chance, -h * f) / h


def envelope_offset(gamma, beta, sharpness, *, xp=np):
    """How far the optimum sits above the extrapolated envelope, in log error.

    ``y* − (a − γ x*)`` where ``a − γ x`` is the curve's asymptote before the break: the
    constant that makes ``ε* = A·e^offset·λ*^(−γ)``.
    """
    return (gamma + beta) / sharpness * xp.log((gamma + beta) / beta)


def capped_optimum(y_star, log_chance, plateau_sharpness, *, xp=np):
    """The run's best log error: the curve's minimum ``y*`` under the chance plateau's cap."""
    h = plateau_sharpness
    return -xp.logaddexp(-h * log_chance, -h * y_star) / h


def uncapped_optimum(y_best, log_chance, plateau_sharpness, *, xp=np, floor=1e-3):
    """The ``y*`` whose capped minimum is ``y_best``: the inverse of :func:`capped_optimum`.

    Defined for a best error below chance; within ``floor`` (in log error) of it, or above
    it, it is evaluated at ``log_chance - floor`` so that samplers never see NaN.
    """
    h = plateau_sharpness
    gap = xp.maximum(log_chance - y_best, floor)
    return log_chance - gap - xp.log1p(-xp.exp(-h * gap)) / h
