r"""Stage 1: a group's shared envelope and each run's departure from it, fitted to every
logged point; each run reduced to its offset from the envelope and its optimum.

Real learning curves are only locally power laws (docs/design.md §2b): the slope
d log ε / d log λ drifts along the whole logged range, many runs end before they rise, and
large-P runs may start far below chance. So the curve of run ``r`` of a group is, in
log–log coordinates (``x`` the standardised log norm, ``y = log ε``),

.. math::

    f_r(x) = E(x) + a_r + \frac{b_r}{s}\,\operatorname{softplus}\big(s\,(x - d_r)\big),
    \qquad \log\hat ε_r(x) = -\tfrac1h \log\big(e^{-h\log c} + e^{-h f_r(x)}\big)

- **the envelope** ``E``, shared by the group's runs: a smooth decreasing curve whose slope
  is free to drift along the range — ``−E'(x) ≈ e^{θ_j}`` on the ``j``-th of :data:`SEGMENTS`
  equal segments of the group's log-norm range, joined smoothly
  (:func:`~scalingfit.fitting.laws.envelope`) — with a random-walk penalty of sd
  :data:`SLOPE_DRIFT_SD` on ``θ`` from one segment to the next: the slope drifts where the
  points say so and stays put where they say nothing (beyond the last run still on the
  envelope, where a free slope would trade itself against the departures' onset). Law 1 is
  read off this curve (:mod:`scalingfit.fitting.model`: γ1 is its mean slope over the
  stretch where the optima lie), never off a hand window;
- **the offset** ``a_r``: runs whose curves do not coincide (stacked by P) sit above or
  below the envelope by ``a_r``; pulled towards the group's mean offset with sd
  :data:`OFFSET_SD`, which only matters for runs with few points before they depart;
- **the departure**: from about ``d_r`` on, the run's slope is raised by up to ``b_r``
  (``s``, how sharply, is the group's). Where the raised slope overtakes the envelope's,
  the curve has its minimum — the run's **optimum** ``(x*, y*)``, searched in its logged
  range; a curve still falling at the last point has **no optimum in range**. How runs
  depart is a property of the task that may drift with P (less overfitting with more data):
  ``log b_r ~ N(μ_b + β_b ℓ_r, `` :data:`DEPARTURE_SD` ``)`` with ``ℓ_r`` the run's centred
  log P (a trend in the sharpness ``s`` as well was tried: it trades against the
  envelope's slope, and γ1 strayed by up to 35 % on curves of one power law). Runs that
  depart early, where larger runs still show the envelope, so teach the fit how the others
  leave it: without this the envelope near the largest P's optima, where no run is on it
  any more, would trade its slope against the departure's onset;
- **the chance plateau** ``c`` caps every curve softly (sharpness ``h``): a run cannot do
  worse than guessing.

Every group is fitted at once by weighted least squares with an analytic sparse Jacobian.
Noise, in ``log ε``: the binomial variance of a test error measured on ``n_test``
examples, ``(1 − ε)/(n ε)`` (delta method, at the fitted curve), plus an extra variance
``σ0²`` per group, estimated so that the weighted residuals have unit variance; the fit is
repeated with these weights (iteratively re-weighted). Points along one run are
correlated; the covariances here ignore that, which stage 2 corrects by fitting the
run-to-run scatter of the estimates itself.

What each run gives stage 2: ``(a_r, x*_r, y*_r)`` with their covariance (given the
group's shared parameters) and their loadings on a standard-normal error in those shared
parameters (the envelope, plateau and departure sharpness move every run together; the
Gaussian approximation of the least-squares posterior, split by the Schur complement).
``y*`` is the capped curve's minimum: the run's best error. A run without an optimum in
range is ``censored``: its last point ``(x_last, y_last)`` is where it got to.

Each run's shape is classified (:data:`SHAPES`): an optimum in range, none (still
improving), ``plateau_only`` (it never left the chance plateau: not fitted, and left out of
the laws), ``two_minima`` (its smoothed points dip twice; the deeper minimum is its
optimum); and, apart, ``starts_below_chance``. And every run's points are checked against
the fitted curve (:func:`point_check`): the share of its points inside their 90 %
predictive interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse
from scipy.signal import find_peaks
from scipy.special import expit

from .laws import cap, departure, envelope, ramps

__all__ = ["GroupCurves", "RunCurves", "fit_run_curves", "noise_variance", "point_check",
           "SHAPES", "SEGMENTS"]

#: Segments of the group's log-norm range on which the envelope's slope may differ.
SEGMENTS = 8
#: sd of the change of the envelope's log slope from one segment to the next. Measured on
#: stage 1 alone, curves drawn from one power law (the example's 4 groups, 48 runs each, 4
#: seeds; `python benchmarks/envelope_drift.py`): a penalty on second differences (sd 0.5)
#: let the slope bend where no run is on the envelope any more, γ1's plug-in value off by up
#: to 44 %; this random walk with sd 0.2 by up to 13 %, 0.1 by up to 10 %, 0.05 by up to 7 %
#: (mostly under 3 %). A real envelope still bends: over 8 segments a slope halving costs as
#: much as 28 points one sd off, which thousands of points outweigh.
SLOPE_DRIFT_SD = 0.05
#: sd of a run's offset from the group's mean offset (log error).
OFFSET_SD = 1.0
#: sd of a run's log departure slope about the group's trend in log P.
DEPARTURE_SD = 0.25
#: A run whose points all lie within this (in log error) of the chance plateau never left it.
PLATEAU_MARGIN = 0.05
#: Run shapes, in the order they are decided.
SHAPES = ("plateau_only", "two_minima", "no_optimum", "optimum")
#: A second minimum counts when the run's points, smoothed over an eighth of them, rise by
#: this much (log error, and by four sds of the smoothed noise) on both sides of it.
DIP_DEPTH = 0.1
#: A run still follows the envelope until this many departure lengths ``1/s`` before its
#: departure's centre ``d``; beyond the last such point the envelope goes on straight.
ON_ENVELOPE = 1.0
#: A run with fewer of its points than this inside their 90 % predictive interval is one its
#: fitted curve does not describe: flagged ``misfit``.
RUN_COVERAGE_MIN = 0.7
#: A run whose first point is below this fraction of chance starts below chance.
BELOW_CHANCE = 0.5

_PER_RUN = 3                       # a, d, log b
_SHARED_EXTRA = 6                  # log s, log c, log h, μ_b, β_b, mean a
_LOG_SLOPE = (np.log(1e-4), np.log(50.0))
_LOG_B = (np.log(1e-3), np.log(50.0))
_LOG_SHARPNESS = (np.log(2.0), np.log(60.0))  # a softer departure would tilt a whole run
_LOG_PLATEAU_SHARPNESS = (np.log(1.0), np.log(60.0))
_BEYOND = 2.0                      # how far past its last point a departure may be placed
_GRID = 256                        # points per run in the search for its optimum
_END = 2                           # a smoothed minimum this near the last point: improving
_EDGE = 0.002                      # a minimum this close to the last point is no optimum
_Z90 = 1.6448536269514722


@dataclass
class GroupCurves:
    """One group's rows, in the units the curves are fitted in."""

    x: np.ndarray          # standardised log norm
    y: np.ndarray          # log test error (a zero error is replaced by (k+1/2)/(n+1))
    run: np.ndarray        # run index per row, 0..n_runs-1, rows sorted by run then step
    n_test: np.ndarray | None  # per row, or None when unknown
    n_runs: int
    ell: np.ndarray        # per run: log P minus the group's mean


@dataclass
class RunCurves:
    """Stage 1's fit of one group: each run's estimates and the group's shared curve
    (standardised log-norm units)."""

    offset: np.ndarray         # a_r
    departure: np.ndarray      # d_r: where the run starts to leave the envelope
    run_sharpness: np.ndarray  # s_r: how sharply it leaves it
    x_star: np.ndarray         # optimum, or the last point for a run without one
    y_star: np.ndarray         # best log error: the capped curve's minimum
    cov: np.ndarray            # (runs, 3, 3) covariance of (a, x*, y*) given the shared part
    shared_loading: np.ndarray  # (runs, 3, k): response to a standard-normal shared error
    shape: np.ndarray          # per run, one of SHAPES
    starts_below_chance: np.ndarray
    censored: np.ndarray       # no optimum in the logged range
    fitted_runs: np.ndarray    # runs fitted (not plateau_only): the ones stage 2 reads
    x_first: np.ndarray
    x_last: np.ndarray
    y_last: np.ndarray         # fitted log error at the last point
    y_last_sd: np.ndarray
    n_points: np.ndarray
    point_coverage: np.ndarray  # per run: share of its points in their 90 % interval
    log_slopes: np.ndarray     # θ: the envelope's log slope per segment
    slope_loading: np.ndarray  # (SEGMENTS, k): θ's response to the shared error
    knots: np.ndarray          # segment edges (SEGMENTS + 1)
    width: float               # how smoothly segments join
    sharpness: float
    log_chance: float
    plateau_sharpness: float
    sigma0: float              # extra noise sd in log error, beyond the binomial
    fitted: np.ndarray = field(repr=False)     # fitted log error per row (NaN: not fitted)
    predictive_sd: np.ndarray = field(repr=False)  # per row

    @property
    def point_coverage_group(self) -> float:
        """The share of the group's fitted points inside their 90 % predictive interval."""
        fitted = self.fitted_runs
        return float(np.average(self.point_coverage[fitted], weights=self.n_points[fitted]))

    @property
    def envelope_support(self) -> float:
        """The share of the optima's stretch of log λ shown by points of runs still on the
        envelope there: before their departure begins (``d − 1/s``) and their optimum.
        Near 1, γ1 (the envelope's mean slope over that stretch) is a slope the points show;
        near 0, it rests on the envelope's shape between them."""
        fitted = self.fitted_runs
        lo, hi = np.min(self.x_star[fitted]), np.max(self.x_star[fitted])
        if not hi > lo:
            return 1.0
        ends = np.minimum.reduce([self.departure[fitted] - ON_ENVELOPE / self.run_sharpness[fitted],
                                  self.x_star[fitted], self.x_last[fitted]])
        covered, reach = 0.0, lo
        for start, end in sorted(zip(self.x_first[fitted], ends)):
            start, end = max(start, reach), min(end, hi)
            if end > start:
                covered, reach = covered + end - start, end
        return float(covered / (hi - lo))


def noise_variance(fitted, data, sigma0):
    """Variance of each row's log error: binomial (given ``n_test``) plus ``sigma0²``."""
    if data.n_test is None:
        return np.full_like(fitted, sigma0**2)
    eps = np.clip(np.exp(fitted), 1e-9, 1 - 1e-9)
    return (1 - eps) / (data.n_test * eps) + sigma0**2


class _Model:
    """The curves of one group as a function of the parameter vector, with the Jacobian."""

    def __init__(self, data: GroupCurves, keep: np.ndarray, top: float | None = None):
        self.data = data
        self.rows = np.flatnonzero(keep[data.run])
        self.x, self.y = data.x[self.rows], data.y[self.rows]
        self.runs = np.flatnonzero(keep)          # fitted runs, in order
        index = np.full(data.n_runs, -1)
        index[self.runs] = np.arange(len(self.runs))
        self.run = index[data.run[self.rows]]     # 0..n_fitted-1 per row
        self.n = len(self.runs)
        self.ell = data.ell[self.runs]
        top = float(self.x.max()) if top is None else top
        self.knots = np.linspace(float(self.x.min()), top, SEGMENTS + 1)
        self.width = 0.5 * (self.knots[1] - self.knots[0])
        self.shared = slice(self.n * _PER_RUN, self.n * _PER_RUN + SEGMENTS + _SHARED_EXTRA)
        self.n_params = self.n * _PER_RUN + SEGMENTS + _SHARED_EXTRA
        self.ramps = ramps(self.x, self.knots, self.width)  # R_j(x) per row: fixed for the fit

    def unpack(self, p):
        theta = p[: self.n * _PER_RUN].reshape(self.n, _PER_RUN)
        shared = p[self.shared]
        return theta, shared[:SEGMENTS], shared[SEGMENTS:]

    def sharpness(self, p):
        """Each fitted run's departure sharpness (the group's)."""
        _, _, (log_s, *_) = self.unpack(p)
        return np.full(self.n, np.exp(log_s))

    def curve(self, p, *, jacobian=False):
        """Capped log error per row (and the dense per-row derivatives)."""
        theta, log_slopes, (log_s, log_c, log_h, *_) = self.unpack(p)
        a, d, b = theta[self.run, 0], theta[self.run, 1], np.exp(theta[self.run, 2])
        s, h = self.sharpness(p)[self.run], np.exp(log_h)
        slopes = np.exp(log_slopes)
        u = s * (self.x - d)
        soft = np.logaddexp(0.0, u)
        depart = b / s * soft
        f = -self.ramps @ slopes + a + depart
        capped = cap(f, log_c, h)
        if not jacobian:
            return capped
        w = expit(h * (log_c - f))             # d capped / d f
        sig = expit(u)
        own = np.column_stack([w, -w * b * sig, w * depart])           # a, d, log b
        slope_part = -w[:, None] * self.ramps * slopes                 # θ_j
        extra = np.column_stack([w * (b * sig * (self.x - d) - depart),  # log s
                                 1 - w,                                  # log c
                                 -capped + (1 - w) * log_c + w * f])     # log h
        return capped, own, slope_part, extra

    def jacobian_pattern(self):
        rows = np.arange(len(self.x))
        own_cols = self.run[:, None] * _PER_RUN + np.arange(_PER_RUN)
        shared0 = self.n * _PER_RUN
        return rows, own_cols, shared0

    def residuals(self, p, weight):
        theta, log_slopes, (_, _, _, mu_b, beta_b, mean_a) = self.unpack(p)
        return np.concatenate([
            (self.y - self.curve(p)) * weight,
            (theta[:, 2] - mu_b - beta_b * self.ell) / DEPARTURE_SD,
            (theta[:, 0] - mean_a) / OFFSET_SD,
            np.diff(log_slopes) / SLOPE_DRIFT_SD])

    def jac(self, p, weight):
        _, own, slope_part, extra = self.curve(p, jacobian=True)
        n_rows, n = len(self.x), self.n
        rows, own_cols, s0 = self.jacobian_pattern()
        blocks = [
            (np.repeat(rows, _PER_RUN), own_cols.ravel(), -(own * weight[:, None]).ravel()),
            (np.repeat(rows, SEGMENTS), np.tile(s0 + np.arange(SEGMENTS), n_rows),
             -(slope_part * weight[:, None]).ravel()),
            (np.repeat(rows, 3), np.tile(s0 + SEGMENTS + np.arange(3), n_rows),
             -(extra * weight[:, None]).ravel()),
        ]
        prior = n_rows + np.arange(n)                       # (log b_r − μ_b − β_b ℓ_r) / sd
        blocks.append((prior, np.arange(n) * _PER_RUN + 2, np.full(n, 1 / DEPARTURE_SD)))
        blocks.append((prior, np.full(n, s0 + SEGMENTS + 3), np.full(n, -1 / DEPARTURE_SD)))
        blocks.append((prior, np.full(n, s0 + SEGMENTS + 4), -self.ell / DEPARTURE_SD))
        prior = n_rows + n + np.arange(n)                   # (a_r − mean a) / sd
        blocks.append((prior, np.arange(n) * _PER_RUN, np.full(n, 1 / OFFSET_SD)))
        blocks.append((prior, np.full(n, s0 + SEGMENTS + 5), np.full(n, -1 / OFFSET_SD)))
        smooth = n_rows + 2 * n + np.arange(SEGMENTS - 1)   # differences of θ
        for k, c in enumerate((-1.0, 1.0)):
            blocks.append((smooth, s0 + np.arange(SEGMENTS - 1) + k,
                           np.full(SEGMENTS - 1, c / SLOPE_DRIFT_SD)))
        r, c, v = (np.concatenate(part) for part in zip(*blocks))
        shape = (n_rows + 2 * n + SEGMENTS - 1, self.n_params)
        return sparse.csr_matrix((v, (r, c)), shape=shape)


def _still_improving(model: _Model) -> np.ndarray:
    """Per fitted run: its smoothed points are lowest at (or next to) its last one."""
    out = np.empty(model.n, bool)
    for r in range(model.n):
        yr = model.y[model.run == r]
        out[r] = int(np.argmin(_smooth(yr, max(1, len(yr) // 15)))) >= len(yr) - _END
    return out


def _smooth(y, window):
    """A centred running mean (edges: shorter windows)."""
    if window <= 1:
        return y
    kernel = np.ones(window)
    sums = np.convolve(y, kernel, mode="same")
    counts = np.convolve(np.ones_like(y), kernel, mode="same")
    return sums / counts


def _dips(y, depth) -> int:
    """How many minima ``y`` has with a rise of at least ``depth`` on both sides (an end
    counts as a rise: a curve that dips, recovers and falls again to its end dips twice)."""
    top = np.max(y) + depth
    peaks, _ = find_peaks(-np.concatenate([[top], y, [top]]), prominence=depth)
    return len(peaks)


def _initial_guess(model: _Model, log_c):
    """Rough values from the data themselves, so the optimiser starts close."""
    x, y, run = model.x, model.y, model.run
    below = y < log_c - 0.1
    # envelope: a low quantile of the points below the plateau per segment, made monotone
    centres = 0.5 * (model.knots[:-1] + model.knots[1:])
    levels = np.full(SEGMENTS, np.nan)
    segment = np.clip(np.searchsorted(model.knots, x) - 1, 0, SEGMENTS - 1)
    for j in range(SEGMENTS):
        mine = below & (segment == j)
        if mine.sum() >= 3:
            levels[j] = np.quantile(y[mine], 0.25)
    known = np.isfinite(levels)
    if known.sum() >= 2:
        levels = np.interp(centres, centres[known], levels[known])
        levels = np.minimum.accumulate(levels)
        slopes = -np.diff(levels) / np.diff(centres)
        slopes = np.concatenate([slopes[:1], slopes])
    else:
        slopes = np.full(SEGMENTS, 0.5)
    log_slopes = np.log(np.clip(slopes, 0.05, 20.0))
    base = -model.ramps @ np.exp(log_slopes)
    theta = np.empty((model.n, _PER_RUN))
    for r in range(model.n):
        mine = run == r
        xr, yr = x[mine], y[mine]
        smooth = _smooth(yr, max(1, len(yr) // 15))
        i = int(np.argmin(smooth))
        before = np.arange(len(xr)) <= i
        offset = float(np.median(yr[before] - base[mine][before]))
        local = float(np.exp(log_slopes[np.clip(np.searchsorted(model.knots, xr[i]) - 1,
                                                0, SEGMENTS - 1)]))
        if i >= len(xr) - _END:  # still falling at the end: the departure lies beyond
            theta[r] = (offset, xr[-1] + 0.5, np.log(max(local, 0.05)))
        else:
            span = xr[-1] - xr[i]
            rise = (smooth[-1] - smooth[i]) / span if span > 1e-6 else 0.3
            theta[r] = (offset, xr[i] - 0.3, np.log(np.clip(local + max(rise, 0.05), 0.05,
                                                            20.0)))
    extra = np.array([np.log(3.0), log_c, np.log(8.0), np.median(theta[:, 2]), 0.0,
                      np.median(theta[:, 0])])
    return np.concatenate([theta.ravel(), log_slopes, extra])


def _bounds(model: _Model, log_c_low):
    lower, upper = [], []
    y_low = float(model.y.min()) - 5.0
    improving = _still_improving(model)
    for r in range(model.n):
        xr = model.x[model.run == r]
        # a run whose points fall to the end shows no departure: where it bends, the
        # envelope bends (a departure that never turns up would explain any bend)
        lower += [y_low, xr[-1] if improving[r] else xr[0] - 1.0, _LOG_B[0]]
        upper += [5.0, xr[-1] + _BEYOND, _LOG_B[1]]
    lower += [_LOG_SLOPE[0]] * SEGMENTS + [_LOG_SHARPNESS[0], log_c_low,
                                            _LOG_PLATEAU_SHARPNESS[0], _LOG_B[0], -10.0, y_low]
    upper += [_LOG_SLOPE[1]] * SEGMENTS + [_LOG_SHARPNESS[1], 0.0,
                                            _LOG_PLATEAU_SHARPNESS[1], _LOG_B[1], 10.0, 5.0]
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


def _plateau_only(data: GroupCurves, log_c) -> np.ndarray:
    """Runs whose points all stay within :data:`PLATEAU_MARGIN` of the chance plateau."""
    best = np.full(data.n_runs, np.inf)
    for r in range(data.n_runs):
        yr = data.y[data.run == r]
        best[r] = _smooth(yr, max(1, len(yr) // 15)).min()
    return best > log_c - PLATEAU_MARGIN


def fit_run_curves(data: GroupCurves, *, passes: int = 3) -> RunCurves:
    """Fit one group's envelope and runs; reduce each run to ``(a, x*, y*)`` with covariance.

    The fit is repeated ``passes`` times, re-weighting with the binomial variance at the
    fitted curve and the re-estimated extra noise ``σ0`` (iteratively re-weighted least
    squares).
    """
    log_c0 = float(np.log(min(np.quantile(np.exp(data.y), 0.98) * 1.02, 0.999)))
    stuck = _plateau_only(data, log_c0)
    keep = ~stuck
    if keep.sum() < 2:
        keep = np.ones(data.n_runs, bool)  # nothing left to fit: fit them all, say so below
        stuck[:] = False
    # first over the whole range, to see where the runs leave the envelope
    model = _Model(data, keep)
    params = _initial_guess(model, log_c0)
    log_c_low = min(float(model.y.max()) - 1.0, log_c0 - 0.5)
    params, *_ = _reweighted_fit(model, params, log_c_low, passes=1)
    # then with the envelope free only where runs still on it show it, straight beyond
    top = _last_shown(model, params)
    if top < model.knots[-1] - 1e-6:
        previous, model = model, _Model(data, keep, top)
        params = params.copy()
        params[model.shared][:SEGMENTS] = _resample_slopes(previous, params, model.knots)
    params, solution, fitted, variance, sigma0 = _reweighted_fit(model, params, log_c_low,
                                                                 passes=passes)
    return _run_curves(model, params, solution.jac, fitted, variance, sigma0, stuck)


def _reweighted_fit(model: _Model, params, log_c_low, *, passes):
    """Weighted least squares, re-weighted ``passes`` times with the binomial variance at
    the fitted curve and the re-estimated extra noise ``σ0``."""
    data = model.data
    lower, upper = _bounds(model, log_c_low)
    params = np.clip(params, lower + 1e-9, upper - 1e-9)
    rows_data = GroupCurves(model.x, model.y, model.run, None if data.n_test is None
                            else data.n_test[model.rows], model.n, model.ell)
    sigma0 = 0.05 if data.n_test is None else 0.0
    variance = noise_variance(model.y, rows_data, max(sigma0, 0.05))
    for _ in range(passes):
        weight = 1.0 / np.sqrt(variance)
        solution = optimize.least_squares(
            model.residuals, params, jac=model.jac, bounds=(lower, upper), x_scale="jac",
            method="trf", xtol=1e-10, ftol=1e-10, max_nfev=500, args=(weight,))
        params = solution.x
        fitted = model.curve(params)
        binomial = noise_variance(fitted, rows_data, 0.0) if data.n_test is not None else 0.0
        sigma0 = _solve_sigma0((model.y - fitted) ** 2, binomial,
                               len(model.y) - model.n_params)
        variance = noise_variance(fitted, rows_data, max(sigma0, 1e-6))
    return params, solution, fitted, variance, sigma0


def _on_envelope_until(model: _Model, params, x_star):
    """Per fitted run, how far along log λ its points still follow the envelope: until its
    departure begins (``d − 1/s``), its optimum, or its last point."""
    theta, *_ = model.unpack(params)
    last = np.array([model.x[model.run == r][-1] for r in range(model.n)])
    return np.minimum.reduce([theta[:, 1] - ON_ENVELOPE / model.sharpness(params), x_star, last])


def _last_shown(model: _Model, params) -> float:
    """The largest log λ at which some run still follows the envelope (at least a third of
    the way along the group's range)."""
    x_star, _, _ = _optima(model, params)
    low, high = model.knots[0], model.knots[-1]
    return float(np.clip(np.max(_on_envelope_until(model, params, x_star)),
                         low + (high - low) / 3, high))


def _resample_slopes(previous: _Model, params, knots):
    """The log slopes on new segments that reproduce a fitted envelope's slope."""
    _, log_slopes, _ = previous.unpack(params)
    centres = 0.5 * (knots[:-1] + knots[1:])
    slope = -envelope(centres, log_slopes, previous.knots, previous.width, derivative=True)
    return np.log(np.maximum(slope, 1e-4))


def _optima(model: _Model, params):
    """Each fitted run's optimum ``(x*, capped y*)`` in its logged range, and whether the
    curve still falls at its last point (no optimum in range)."""
    theta, log_slopes, (_, log_c, log_h, *_) = model.unpack(params)
    s, h = model.sharpness(params)[:, None], np.exp(log_h)
    first = np.array([model.x[model.run == r][0] for r in range(model.n)])
    last = np.array([model.x[model.run == r][-1] for r in range(model.n)])
    grid = first[:, None] + (last - first)[:, None] * np.linspace(0, 1, _GRID)

    def raw(x):
        return (envelope(x, log_slopes, model.knots, model.width) + theta[:, 0:1]
                + departure(x, theta[:, 1:2], np.exp(theta[:, 2:3]), s))

    i = np.argmin(raw(grid), axis=1)
    step = (last - first) / (_GRID - 1)
    x_star = grid[np.arange(model.n), i]
    for _ in range(3):  # parabolic refinement around the grid minimum
        xs = np.stack([x_star - step, x_star, x_star + step], axis=1)
        f = raw(xs)
        curvature = f[:, 0] - 2 * f[:, 1] + f[:, 2]
        shift = np.where(curvature > 0, 0.5 * step * (f[:, 0] - f[:, 2])
                         / np.where(curvature > 0, curvature, 1), 0.0)
        x_star = np.clip(x_star + np.clip(shift, -step, step), first, last)
        step = step / 4
    censored = x_star >= last - _EDGE * np.maximum(last - first, 1e-9)
    x_star = np.where(censored, last, x_star)
    y_star = cap(raw(x_star[:, None])[:, 0], log_c, h)
    return x_star, y_star, censored


def _summary_jacobian(model: _Model, params, x_star, censored):
    """How each fitted run's ``(a, x*, y*)`` move with its own parameters ``(a, d, log b)``
    and with the shared ones (θ, log s, log c, log h, mean log b, mean a).

    At an optimum inside the range, ``x*`` solves ``f'(x*) = 0``, so it moves by
    ``−(∂f'/∂p)/(∂f'/∂x)`` (implicit function theorem) and ``y*`` by ``∂ŷ/∂p`` alone
    (the envelope theorem); at the last point ``x*`` does not move.
    """
    theta, log_slopes, (log_s, log_c, log_h, *_) = model.unpack(params)
    a, d, b = theta[:, 0], theta[:, 1], np.exp(theta[:, 2])
    s, h = model.sharpness(params), np.exp(log_h)
    slopes = np.exp(log_slopes)
    ramp, d_ramp, dd_ramp = (ramps(x_star, model.knots, model.width, order=k)
                             for k in range(3))                # R_j, R_j', R_j'' at x*
    u = s * (x_star - d)
    sig, soft = expit(u), np.logaddexp(0.0, u)
    depart = b / s * soft
    f = -(ramp @ slopes) + a + depart
    y_hat = cap(f, log_c, h)
    w = expit(h * (log_c - f))
    # ŷ's derivatives at fixed x (own: a, d, log b; shared: θ..., log s, log c, log h, ...)
    n_shared = SEGMENTS + _SHARED_EXTRA
    dy_own = np.column_stack([w, -w * b * sig, w * depart])
    dy_shared = np.zeros((model.n, n_shared))
    dy_shared[:, :SEGMENTS] = -w[:, None] * ramp * slopes
    dy_shared[:, SEGMENTS] = w * (b * sig * (x_star - d) - depart)
    dy_shared[:, SEGMENTS + 1] = 1 - w
    dy_shared[:, SEGMENTS + 2] = -y_hat + (1 - w) * log_c + w * f
    # f'(x) = E'(x) + b σ(u); its derivatives
    fxx = -(dd_ramp @ slopes) + b * s * sig * (1 - sig)
    fx_own = np.column_stack([np.zeros(model.n), -b * s * sig * (1 - sig), b * sig])
    fx_shared = np.zeros((model.n, n_shared))
    fx_shared[:, :SEGMENTS] = -d_ramp * slopes
    fx_shared[:, SEGMENTS] = b * sig * (1 - sig) * s * (x_star - d)
    moves = (~censored & (fxx > 1e-12)) / np.where(fxx > 1e-12, fxx, 1.0)
    own = np.zeros((model.n, 3, _PER_RUN))
    own[:, 0, 0] = 1.0
    own[:, 1, :] = -fx_own * moves[:, None]
    own[:, 2, :] = dy_own
    shared = np.zeros((model.n, 3, n_shared))
    shared[:, 1, :] = -fx_shared * moves[:, None]
    shared[:, 2, :] = dy_shared
    return own, shared


def _inverse_factor(information, rcond=1e-8):
    """``F`` with ``F·Fᵀ`` the pseudo-inverse of a symmetric information matrix.

    Directions the data do not inform (eigenvalue below ``rcond`` × the largest: e.g. the
    chance plateau of runs that start far below it) get no variance rather than a huge one:
    the curves do not depend on them, so neither do the runs' estimates.
    """
    w, v = np.linalg.eigh((information + information.T) / 2)
    keep = w > rcond * max(w.max(), 0.0)
    return v * np.where(keep, 1 / np.sqrt(np.where(keep, w, 1.0)), 0.0)


def point_check(y, fitted, predictive_sd, run, n_runs) -> np.ndarray:
    """Per run, the share of its points inside their 90 % predictive interval."""
    inside = np.abs(y - fitted) <= _Z90 * predictive_sd
    counts = np.bincount(run, minlength=n_runs)
    return np.bincount(run, weights=inside, minlength=n_runs) / np.maximum(counts, 1)


def _run_curves(model, params, jac, fitted, variance, sigma0, stuck):
    data, n = model.data, model.n
    theta, log_slopes, (log_s, log_c, log_h, *_) = model.unpack(params)
    jac = jac.toarray() if sparse.issparse(jac) else jac
    information = jac.T @ jac
    shared = model.shared
    schur = information[shared, shared].copy()
    blocks = []
    for r in range(n):
        mine = slice(r * _PER_RUN, (r + 1) * _PER_RUN)
        inverse = np.linalg.pinv(information[mine, mine])
        coupling = information[mine, shared]
        schur -= coupling.T @ inverse @ coupling
        blocks.append((inverse, -inverse @ coupling))
    factor = _inverse_factor(schur)

    x_star, y_star, censored = _optima(model, params)
    own, direct = _summary_jacobian(model, params, x_star, censored)
    cov = np.empty((n, 3, 3))
    loading = np.empty((n, 3, factor.shape[1]))
    for r, (inverse, sensitivity) in enumerate(blocks):
        cov[r] = own[r] @ inverse @ own[r].T
        loading[r] = (own[r] @ sensitivity + direct[r]) @ factor
    # the last point of each run: its fitted error and that error's sd
    x_last = np.array([model.x[model.run == r][-1] for r in range(n)])
    last_rows = np.array([np.flatnonzero(model.run == r)[-1] for r in range(n)])
    _, own_rows, _, _ = model.curve(params, jacobian=True)
    y_last = fitted[last_rows]
    y_last_sd = np.sqrt(np.maximum(np.einsum("ri,rij,rj->r", own_rows[last_rows],
                                             np.stack([b[0] for b in blocks]),
                                             own_rows[last_rows]), 0.0))
    # each row's predictive sd: noise and its run's own parameters
    per_row = np.einsum("ri,rij,rj->r", own_rows, np.stack([b[0] for b in blocks])[model.run],
                        own_rows)
    predictive = np.sqrt(variance + np.maximum(per_row, 0.0))

    # back to every run of the group (plateau-only runs were not fitted)
    fitted_all = np.full(len(data.y), np.nan)
    fitted_all[model.rows] = fitted
    sd_all = np.full(len(data.y), np.nan)
    sd_all[model.rows] = predictive
    runs = model.runs

    def spread(values, fill=np.nan):
        out = np.full((data.n_runs, *np.shape(values)[1:]), fill, dtype=float)
        out[runs] = values
        return out

    coverage = spread(point_check(model.y, fitted, predictive, model.run, n))
    x_first = np.array([data.x[data.run == r][0] for r in range(data.n_runs)])
    first_y = np.array([data.y[data.run == r][0] for r in range(data.n_runs)])
    n_points = np.bincount(data.run, minlength=data.n_runs)
    shapes = np.array(["plateau_only"] * data.n_runs, dtype=object)
    censored_all = np.zeros(data.n_runs, bool)
    censored_all[runs] = censored
    for k, r in enumerate(runs):
        yr = data.y[data.run == r]
        noise = float(np.sqrt(np.median(variance[model.run == k])))
        window = max(3, len(yr) // 8)
        if _dips(_smooth(yr, window), max(DIP_DEPTH, 4 * noise / np.sqrt(window))) >= 2:
            shapes[r] = "two_minima"
        else:
            shapes[r] = "no_optimum" if censored[k] else "optimum"
    return RunCurves(
        offset=spread(theta[:, 0]), departure=spread(theta[:, 1]),
        run_sharpness=spread(model.sharpness(params)), x_star=spread(x_star), y_star=spread(y_star),
        cov=spread(cov), shared_loading=spread(loading), shape=shapes.astype(str),
        starts_below_chance=first_y < log_c + np.log(BELOW_CHANCE), censored=censored_all,
        fitted_runs=~stuck, x_first=x_first, x_last=spread(x_last), y_last=spread(y_last),
        y_last_sd=spread(y_last_sd), n_points=n_points, point_coverage=coverage,
        log_slopes=log_slopes.copy(), slope_loading=factor[:SEGMENTS],
        knots=model.knots, width=float(model.width), sharpness=float(np.exp(log_s)),
        log_chance=float(log_c), plateau_sharpness=float(np.exp(log_h)), sigma0=float(sigma0),
        fitted=fitted_all, predictive_sd=sd_all)
