"""Finite-N fixed-norm minimisers of the perceptron's logistic loss: the check of the theory.

The N → ∞ theory (:mod:`scalingfit.theory.perceptron`) predicts ε(λ; α) for the student
w that minimises Σ_μ log(1 + exp(−2Δ_μ)), Δ_μ = y_μ w·x_μ/√N, on the sphere ‖w‖ = λ√N.
This module computes that minimiser directly for one finite sample, independently of the
theory and of the torch simulator (NumPy, float64, its own random draws), by writing
w = λ√N u/‖u‖ and minimising the smooth, scale-invariant F(u) = mean_μ g(λ z_μ·u/‖u‖)
with L-BFGS (z_μ = y_μ x_μ). Warm-started along increasing λ.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

__all__ = ["teacher_student", "sphere_minimiser", "fixed_norm_errors", "hebb_student"]


def teacher_student(n, p, seed, inputs="binary"):
    """A teacher (‖w*‖² = n) and ``p`` inputs times their labels, z = sign(w*·x)·x.

    Returns
    -------
    (teacher, z) : (ndarray (n,), ndarray (p, n))
    """
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal(n)
    teacher *= math.sqrt(n) / np.linalg.norm(teacher)
    if inputs == "binary":
        x = rng.integers(0, 2, size=(p, n), dtype=np.int8).astype(float) * 2.0 - 1.0
    else:
        x = rng.standard_normal((p, n))
    labels = np.sign(x @ teacher)
    labels[labels == 0] = 1.0
    return teacher, x * labels[:, None]


def _loss_and_gradient(u, z, lam):
    """F(u) = mean g(λ s), s = z·u/‖u‖, and its gradient (tangent to the sphere)."""
    norm = np.linalg.norm(u)
    s = z @ u / norm
    margins = lam * s
    loss = np.mean(np.logaddexp(0.0, -2.0 * margins))
    slope = -2.0 * special.expit(-2.0 * margins)            # g'(λ s)
    gradient = lam / (len(s) * norm) * (z.T @ slope - (slope @ s) * u / norm)
    return loss, gradient


def sphere_minimiser(z, lam, start=None, *, gtol=1e-12, max_iter=50000):
    """Unit vector u minimising mean_μ g(λ z_μ·u) on the sphere (L-BFGS on F(u)).

    Parameters
    ----------
    z : ndarray (p, n)
        Inputs times labels.
    lam : float
        λ = ‖w‖/√N.
    start : ndarray (n,), optional
        Warm start; default the Hebb vector Σ z_μ (the λ → 0 solution).
    gtol : float
        Stop when every component of the (projected) gradient is below this, relative to
        the gradient at the start.

    Returns
    -------
    ndarray (n,)
        The minimiser, of unit norm.
    """
    u = z.sum(0) if start is None else np.array(start, float)
    u /= np.linalg.norm(u)
    scale = np.abs(_loss_and_gradient(u, z, lam)[1]).max() or 1.0
    result = optimize.minimize(
        lambda v: tuple(part / scale for part in _loss_and_gradient(v, z, lam)), u,
        jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "maxcor": 30, "gtol": gtol, "ftol": 0.0})
    return result.x / np.linalg.norm(result.x)


def hebb_student(z):
    """The Hebb rule's direction Σ_μ z_μ, of unit norm: the λ → 0 fixed-norm minimiser."""
    u = z.sum(0)
    return u / np.linalg.norm(u)


def fixed_norm_errors(n, alpha, lams, seed, *, inputs="binary"):
    """ε of the finite-N fixed-norm minimiser at each λ, and of the Hebb student.

    Returns
    -------
    (eps, eps_hebb) : (ndarray like ``lams``, float)
    """
    teacher, z = teacher_student(n, round(alpha * n), seed, inputs)
    direction = teacher / np.linalg.norm(teacher)

    def error(u):
        return float(np.arccos(np.clip(u @ direction, -1.0, 1.0)) / np.pi)

    lams = np.asarray(lams, float)
    eps = np.empty_like(lams)
    u = None
    for i in np.argsort(lams):
        u = sphere_minimiser(z, lams[i], u)
        eps[i] = error(u)
    return eps, error(hebb_student(z))
