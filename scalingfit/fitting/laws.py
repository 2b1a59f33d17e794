"""The laws and the learning curves they act on, as pure functions: no I/O, numpy or
PyTensor alike (pass ``xp``).

Everything is in logs: ``x = log λ`` (natural log of the norm, standardised where a fit
says so), ``y = log ε``, ``ell = log P``. A norm that spans a hundred orders of magnitude is
a log that spans a few hundred units, which is harmless; an exponentiated one is not.

The curve a fit reads a run with
--------------------------------
Stage 1 (:mod:`scalingfit.fitting.run_curves`, where each choice is explained) describes run
``r`` of a group by

.. math::

    f_r(x) = E(x) + a_r + \\frac{b_r}{s}\\operatorname{softplus}\\big(s(x - d_r)\\big),
    \\qquad \\log ε_r(x) = \\operatorname{cap}(f_r(x)),

the group's **envelope** :func:`envelope` (a smooth decreasing curve whose slope may drift
along the range: real curves are only locally power laws), the run's **offset** ``a_r``
from it, its **departure** :func:`departure`, and the chance plateau's soft **cap**
:func:`cap`. The run's optimum is the minimum of ``f_r``.

The curve the simulator draws runs from
---------------------------------------
:func:`learning_curve`: the same shape with a straight envelope (one power law), written in
terms of the run's optimum so that laws can act on it directly — a smoothly broken power law
whose minimum is exactly at ``(x*, y*)``.

The laws across runs
--------------------
They act on each run's optimum and offset (:mod:`scalingfit.fitting.model` states them with
their noise and priors):

- law 1: ``ε ≈ A·λ^(−γ1)`` along training — the envelope's slope, γ1 its mean slope over the
  stretch of log λ where the group's optima lie;
- law 2: ``log λ* = log k2 + γ2·log P``;
- combination: ``log ε* = const − γ1·γ2·log P``; beside it a free convergence exponent,
  ``log ε* = const − γ_conv·log P``. A gap ``Δ = γ_conv − γ1·γ2`` means the optima do not
  lie on one envelope shared by all P: either the envelopes of different P do not coincide
  (offsets that change with P) or the optimum's height above its envelope changes with P.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cap", "ramps", "envelope", "departure", "learning_curve", "capped_optimum",
           "uncapped_optimum"]


def cap(f, log_chance, plateau_sharpness, *, xp=np):
    """The chance plateau's soft cap: ``−log(e^{−h log c} + e^{−h f})/h``, increasing in
    ``f``, never above ``log c``, equal to ``f`` far below it."""
    h = plateau_sharpness
    return -xp.logaddexp(-h * log_chance, -h * f) / h


def ramps(x, knots, width, *, xp=np, order=0):
    """The envelope's basis ``R_j(x)`` (or its ``order``-th derivative), one per segment.

    With ``ρ(u) = w·softplus(u/w)`` (a smooth ``max(u, 0)``) and inner knots
    ``t_1 … t_{K−1}``: ``R_j = ρ(x − t_j) − ρ(x − t_{j+1})`` rises by the segment's length
    across segment ``j``; the first, ``−ρ(t_1 − x)``, and the last, ``ρ(x − t_{K−1})``, go
    on rising beyond the range, so that the slopes ``R_j'`` sum to one everywhere: equal
    ``θ_j`` give a straight line. ``knots[..., 0]`` and ``knots[..., -1]`` only set where
    the range is said to end. ``x[..., None]`` broadcasts against ``knots``.
    """
    inner = knots[..., 1:-1]
    z = (x[..., None] - inner) / width
    if order == 0:
        rho = width * xp.logaddexp(0.0, z)
        first = -width * xp.logaddexp(0.0, -z[..., :1])
        return xp.concatenate([first, rho[..., :-1] - rho[..., 1:], rho[..., -1:]], axis=-1)
    sig = 1.0 / (1.0 + xp.exp(-z))
    if order == 1:
        return xp.concatenate([1.0 - sig[..., :1], sig[..., :-1] - sig[..., 1:],
                               sig[..., -1:]], axis=-1)
    bump = sig * (1.0 - sig) / width
    return xp.concatenate([-bump[..., :1], bump[..., :-1] - bump[..., 1:], bump[..., -1:]],
                          axis=-1)


def envelope(x, log_slopes, knots, width, *, xp=np, derivative=False):
    """The envelope ``E(x) = −Σ_j e^{θ_j} R_j(x)`` (or its slope ``E'``): a smooth
    decreasing curve whose slope is about ``−e^{θ_j}`` inside segment ``j`` of ``knots`` and
    stays that of the first (last) segment before (after) them (:func:`ramps`). Its level
    is arbitrary: a run's level is its offset. ``x`` may have any leading shape."""
    basis = ramps(x, knots, width, xp=xp, order=1 if derivative else 0)
    return -(basis * xp.exp(log_slopes)).sum(axis=-1)


def departure(x, start, rise, sharpness, *, xp=np):
    """How far a run has left its envelope: ``(b/s)·softplus(s(x − d))``, zero well before
    ``d`` and growing with slope ``b`` well after it."""
    return rise / sharpness * xp.logaddexp(0.0, sharpness * (x - start))


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
    f = (y_star - gamma * (x - x_star) + departure(x, x_break, gamma + beta, sharpness, xp=xp)
         - (gamma + beta) / sharpness * xp.log(ratio))
    if log_chance is None:
        return f
    return cap(f, log_chance, plateau_sharpness, xp=xp)


def capped_optimum(y_star, log_chance, plateau_sharpness, *, xp=np):
    """The run's best log error: the curve's minimum ``y*`` under the chance plateau's cap."""
    return cap(y_star, log_chance, plateau_sharpness, xp=xp)


def uncapped_optimum(y_best, log_chance, plateau_sharpness, *, xp=np, floor=1e-3):
    """The ``y*`` whose capped minimum is ``y_best``: the inverse of :func:`capped_optimum`.

    Defined for a best error below chance; within ``floor`` (in log error) of it, or above
    it, it is evaluated at ``log_chance - floor`` so that samplers never see NaN.
    """
    h = plateau_sharpness
    gap = xp.maximum(log_chance - y_best, floor)
    return log_chance - gap - xp.log1p(-xp.exp(-h * gap)) / h
