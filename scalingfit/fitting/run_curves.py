"""Stage 1: each run's curve, fitted and reduced to its optimum and its envelope slope.

Where the information is (docs/design.md §2b): γ1 comes from the slope of the power-law part of
every curve; γ2 and γ_conv come from one optimum per run. So each group's runs are fitted
jointly by weighted least squares to :func:`scalingfit.fitting.laws.learning_curve`, with

- per run: the optimum ``(x*, y*)``, the envelope slope ``γ`` and the rise ``β``;
- per group: the departure sharpness ``s``, the chance plateau ``c`` and its softness ``h``
  (the plateau and the shape of the departure are properties of the task, not of a run),
  and the mean log rise, towards which each run's ``log β`` is pulled with sd 1 — runs that
  stop soon after their optimum say little about their rise.

No window is picked by hand: the plateau, the power law, the optimum and the rise are all
parts of the curve. The result per run is ``(γ, x*, y*)`` — ``y*`` reported as the run's
best log error, the fitted minimum under the plateau's cap
(:func:`scalingfit.fitting.laws.capped_optimum`) — with its 3×3 covariance, which
stage 2 (:mod:`scalingfit.fitting.model`) treats as a noisy measurement. Errors in the shared shape
parameters move every run of the group together (a misjudged plateau tilts every slope the
same way); they are not averaged away by having many runs, so they are returned apart, as
loadings on a standard-normal group-level error that stage 2 samples (the Gaussian
approximation of the joint least-squares posterior, split by the Schur complement).

Noise model, in ``log ε``: the binomial variance of a test error measured on ``n_test``
examples, ``(1 − ε)/(n ε)`` (delta method, evaluated at the fitted curve), plus an extra
variance ``σ0²`` per group, estimated so that the weighted residuals have unit variance.
Points along one run are correlated; the covariance returned here ignores that, which
stage 2 corrects by fitting the run-to-run scatter of the estimates itself: the group's
uncertainty is set by how much *runs* disagree, not by how many points each has.

A run whose fitted minimum lies at or beyond its last logged point has not been seen to
reach its optimum: it is flagged ``censored``, and carries ``x_last`` and the fitted
``y_last`` so that stage 2 can use ``x* ≥ x_last`` and ``y* ≤ y_last``.

How much of its slope a run shows: ``reach``, the steepest descent of the fitted curve over
the run's logged points as a fraction of ``γ``. Near 1, the run has a straight stretch at
its envelope slope; well below 1, the curve bends from the plateau into the departure
without one, and ``γ`` is the asymptote of that bend — as good as the smoothly broken power
law is for these curves (exact on curves drawn from it; biased on curves that bend
otherwise, such as the perceptron under gradient descent with weight decay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from .laws import capped_optimum, learning_curve

__all__ = ["GroupCurves", "RunCurves", "fit_run_curves", "noise_variance"]

# Bounds, in standardised log-norm units (x has unit sd within a group).
_LOG_GAMMA = (np.log(0.02), np.log(50.0))
_LOG_BETA = (np.log(0.005), np.log(50.0))
_LOG_SHARPNESS = (np.log(0.5), np.log(60.0))
_LOG_PLATEAU_SHARPNESS = (np.log(1.0), np.log(60.0))
_BEYOND = 2.0  # how far past its last point a run's optimum may be placed before it is moot
_PER_RUN = 4   # x*, y*, log γ, log β
_SHARED = 4    # log s, log c, log h, mean log β


@dataclass
class GroupCurves:
    """One group's rows, in the units the curves are fitted in."""

    x: np.ndarray          # standardised log norm
    y: np.ndarray          # log test error (a zero error is replaced by (k+1/2)/(n+1))
    run: np.ndarray        # run index per row, 0..n_runs-1, rows sorted by run then step
    n_test: np.ndarray | None  # per row, or None when unknown
    n_runs: int


@dataclass
class RunCurves:
    """Stage 1's fit of one group's runs: each run's estimates and the group's shared shape
    (standardised units)."""

    gamma: np.ndarray
    x_star: np.ndarray
    y_star: np.ndarray         # best log error: the curve's minimum, plateau included
    cov: np.ndarray            # (runs, 3, 3) covariance of (gamma, x_star, y_star), given
                               # the group's shared shape parameters
    shared_loading: np.ndarray  # (runs, 3, 4): how (gamma, x_star, y_star) move with a
                               # standard-normal error in the shared shape parameters
    beta: np.ndarray
    censored: np.ndarray       # optimum at or beyond the last logged point
    x_first: np.ndarray
    x_last: np.ndarray
    y_last: np.ndarray         # fitted log error at the last point
    y_last_sd: np.ndarray
    n_points: np.ndarray
    reach: np.ndarray          # steepest fitted descent over the logged points, / γ
    sharpness: float
    log_chance: float
    plateau_sharpness: float
    sigma0: float              # extra noise sd in log error, beyond the binomial
    cost: float
    fitted: np.ndarray = field(repr=False)  # fitted log error per row


def _initial_guess(data: GroupCurves):
    """Rough per-run values from the data themselves, so the optimiser starts close."""
    y, x, run = data.y, data.x, data.run
    log_c = float(np.log(min(np.quantile(np.exp(y), 0.98) * 1.02, 0.999)))
    theta = np.empty((data.n_runs, _PER_RUN))
    for r in range(data.n_runs):
        xr, yr = x[run == r], y[run == r]
        smooth = np.convolve(np.pad(yr, 1, mode="edge"), np.ones(3) / 3, mode="valid")
        i = int(np.argmin(smooth))
        below = (np.arange(len(xr)) <= i) & (yr < log_c - 0.3)
        slope = np.polyfit(xr[below], yr[below], 1)[0] if below.sum() >= 3 else -1.0
        after = np.arange(len(xr)) >= i
        rise = np.polyfit(xr[after], yr[after], 1)[0] if after.sum() >= 3 else 0.3
        theta[r] = (xr[i], smooth[i], np.log(np.clip(-slope, 0.1, 20.0)),
                    np.log(np.clip(rise, 0.02, 5.0)))
    shared = np.array([np.log(3.0), log_c, np.log(8.0), np.median(theta[:, 3])])
    return theta, shared


def _unpack(params, n_runs):
    theta = params[: n_runs * _PER_RUN].reshape(n_runs, _PER_RUN)
    return theta, params[n_runs * _PER_RUN:]


def _curve(params, data, shift=0.0):
    theta, (log_s, log_c, log_h, _) = _unpack(params, data.n_runs)
    per_row = theta[data.run]
    return learning_curve(data.x + shift, per_row[:, 0], per_row[:, 1], np.exp(per_row[:, 2]),
                          np.exp(per_row[:, 3]), np.exp(log_s), log_c, np.exp(log_h))


def _reach(params, data, gamma, step=1e-5):
    """Per run: the steepest descent of the fitted curve at its logged points, over ``γ``."""
    descent = (_curve(params, data, -step) - _curve(params, data, step)) / (2 * step)
    steepest = np.full(data.n_runs, -np.inf)
    np.maximum.at(steepest, data.run, descent)
    return steepest / gamma


def noise_variance(fitted, data, sigma0):
    """Variance of each row's log error: binomial (given ``n_test``) plus ``sigma0²``."""
    if data.n_test is None:
        return np.full_like(fitted, sigma0**2)
    eps = np.clip(np.exp(fitted), 1e-9, 1 - 1e-9)
    return (1 - eps) / (data.n_test * eps) + sigma0**2


def _sparsity(data):
    """Which parameters each residual depends on: its run's, the shared ones, the prior."""
    n_rows, n_runs = len(data.x), data.n_runs
    rows = np.repeat(np.arange(n_rows), _PER_RUN)
    cols = (data.run[:, None] * _PER_RUN + np.arange(_PER_RUN)).ravel()
    pattern = sparse.lil_matrix((n_rows + n_runs, n_runs * _PER_RUN + _SHARED), dtype=int)
    pattern[rows, cols] = 1
    pattern[:n_rows, n_runs * _PER_RUN: n_runs * _PER_RUN + 3] = 1
    prior_rows = n_rows + np.arange(n_runs)
    pattern[prior_rows, np.arange(n_runs) * _PER_RUN + 3] = 1
    pattern[prior_rows, n_runs * _PER_RUN + 3] = 1
    return pattern.tocsr()


def _bounds(data):
    lower, upper = [], []
    y_low = float(np.min(data.y)) - 3.0
    for r in range(data.n_runs):
        xr = data.x[data.run == r]
        lower += [xr[0] - 0.5, y_low, _LOG_GAMMA[0], _LOG_BETA[0]]
        upper += [xr[-1] + _BEYOND, 0.0, _LOG_GAMMA[1], _LOG_BETA[1]]
    lower += [_LOG_SHARPNESS[0], float(np.max(data.y)) - 1.0, _LOG_PLATEAU_SHARPNESS[0],
              _LOG_BETA[0]]
    upper += [_LOG_SHARPNESS[1], 0.0, _LOG_PLATEAU_SHARPNESS[1], _LOG_BETA[1]]
    return np.array(lower), np.array(upper)


def _solve_sigma0(resid2, binomial_var, n_free):
    """Extra variance that makes the weighted residuals average to one (method of moments)."""
    target = max(n_free, 1)
    if np.all(binomial_var == 0):  # no n_test: all the noise is extra
        return float(np.sqrt(np.sum(resid2) / target))

    def excess(s2):
        return np.sum(resid2 / (binomial_var + s2)) - target

    if excess(0.0) <= 0:
        return 0.0
    high = max(np.mean(resid2), 1e-12)
    while excess(high) > 0:
        high *= 4
    return float(np.sqrt(optimize.brentq(excess, 0.0, high, xtol=1e-14)))


def fit_run_curves(data: GroupCurves, *, passes: int = 3) -> RunCurves:
    """Fit every run of one group and summarise each by ``(γ, x*, y*)`` with covariance.

    The fit is repeated ``passes`` times, re-weighting with the binomial variance at the
    fitted curve and the re-estimated extra noise ``σ0`` (iteratively re-weighted least
    squares).
    """
    theta0, shared0 = _initial_guess(data)
    params = np.concatenate([theta0.ravel(), shared0])
    lower, upper = _bounds(data)
    params = np.clip(params, lower + 1e-9, upper - 1e-9)
    sparsity = _sparsity(data)
    sigma0 = 0.05 if data.n_test is None else 0.0
    variance = noise_variance(data.y, data, max(sigma0, 0.05))
    n_params = len(params)
    for _ in range(passes):
        weight = 1.0 / np.sqrt(variance)

        def residuals(p, weight=weight):
            theta, shared = _unpack(p, data.n_runs)
            return np.concatenate([(data.y - _curve(p, data)) * weight, theta[:, 3] - shared[3]])

        solution = optimize.least_squares(residuals, params, jac_sparsity=sparsity,
                                          bounds=(lower, upper), x_scale="jac", method="trf",
                                          xtol=1e-10, ftol=1e-10, max_nfev=2000)
        params = solution.x
        fitted = _curve(params, data)
        binomial = noise_variance(fitted, data, 0.0) if data.n_test is not None else 0.0
        sigma0 = _solve_sigma0((data.y - fitted) ** 2, binomial, len(data.y) - n_params)
        variance = noise_variance(fitted, data, max(sigma0, 1e-6))
    return _run_curves(params, solution, data, fitted, sigma0)


def _run_curves(params, solution, data, fitted, sigma0):
    theta, (log_s, log_c, log_h, _) = _unpack(params, data.n_runs)
    jac = solution.jac.toarray() if sparse.issparse(solution.jac) else solution.jac
    information = jac.T @ jac
    n = data.n_runs
    shared = slice(n * _PER_RUN, n * _PER_RUN + _SHARED)
    # Schur complement: the shared parameters' own uncertainty, once every run is profiled
    schur = information[shared, shared].copy()
    blocks = []
    for r in range(n):
        mine = slice(r * _PER_RUN, (r + 1) * _PER_RUN)
        inverse = np.linalg.pinv(information[mine, mine])
        coupling = information[mine, shared]
        schur -= coupling.T @ inverse @ coupling
        blocks.append((inverse, -inverse @ coupling))
    shared_factor = _inverse_factor(schur)

    cov, loading = np.empty((n, 3, 3)), np.empty((n, 3, _SHARED))
    y_last, y_last_sd = np.empty(n), np.empty(n)
    x_first, x_last, n_points = np.empty(n), np.empty(n), np.empty(n, int)
    y_best = capped_optimum(theta[:, 1], log_c, np.exp(log_h))
    for r, (inverse, sensitivity) in enumerate(blocks):
        rows = np.flatnonzero(data.run == r)
        x_first[r], x_last[r], n_points[r] = data.x[rows[0]], data.x[rows[-1]], len(rows)
        own, direct = _summary_jacobians(theta[r], y_best[r], log_c, log_h)
        cov[r] = own @ inverse @ own.T
        loading[r] = (own @ sensitivity + direct) @ shared_factor
        y_last[r] = fitted[rows[-1]]
        grad = _last_point_gradient(params, data, r, rows[-1])
        y_last_sd[r] = float(np.sqrt(max(grad @ inverse @ grad, 0.0)))
    censored = theta[:, 0] >= x_last - 1e-6
    gamma = np.exp(theta[:, 2])
    return RunCurves(
        gamma=gamma, x_star=theta[:, 0].copy(), y_star=y_best,
        cov=cov, shared_loading=loading, beta=np.exp(theta[:, 3]), censored=censored,
        x_first=x_first, x_last=x_last, y_last=y_last, y_last_sd=y_last_sd, n_points=n_points,
        reach=_reach(params, data, gamma), sharpness=float(np.exp(log_s)), log_chance=float(log_c),
        plateau_sharpness=float(np.exp(log_h)), sigma0=float(sigma0), cost=float(solution.cost),
        fitted=fitted)


def _summary_jacobians(theta, y_best, log_c, log_h):
    """How a run's summaries (γ, x*, best log error) move with its own parameters
    (x*, y*, log γ, log β) and with the shared ones (log s, log c, log h, mean log β)."""
    h = np.exp(log_h)
    weight = 1 / (1 + np.exp(h * (theta[1] - log_c)))  # d y_best / d y*
    own = np.zeros((3, _PER_RUN))
    own[0, 2] = np.exp(theta[2])  # d γ = γ d log γ
    own[1, 0] = 1.0
    own[2, 1] = weight
    direct = np.zeros((3, _SHARED))
    direct[2, 1] = 1 - weight
    direct[2, 2] = -y_best + (1 - weight) * log_c + weight * theta[1]  # h · d y_best / d h
    return own, direct


def _inverse_factor(information, rcond=1e-8):
    """``F`` with ``F·Fᵀ`` the pseudo-inverse of a symmetric information matrix.

    Directions the data do not inform (eigenvalue below ``rcond`` × the largest: e.g. the
    chance plateau of runs that start far below it) get no variance rather than a huge one:
    the curves do not depend on them, so neither do the runs' summaries.
    """
    w, v = np.linalg.eigh((information + information.T) / 2)
    keep = w > rcond * max(w.max(), 0.0)
    return v * np.where(keep, 1 / np.sqrt(np.where(keep, w, 1.0)), 0.0)


def _last_point_gradient(params, data, r, row, step=1e-6):
    theta, (log_s, log_c, log_h, _) = _unpack(params, data.n_runs)
    base = theta[r].copy()

    def value(t):
        return learning_curve(data.x[row], t[0], t[1], np.exp(t[2]), np.exp(t[3]),
                              np.exp(log_s), log_c, np.exp(log_h))

    grad = np.empty(_PER_RUN)
    for k in range(_PER_RUN):
        up, down = base.copy(), base.copy()
        up[k] += step
        down[k] -= step
        grad[k] = (value(up) - value(down)) / (2 * step)
    return grad
