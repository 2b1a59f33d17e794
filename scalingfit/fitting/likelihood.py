r"""Stage 2's likelihood and what reads it: numpy or PyTensor alike (pass ``xp``).

The model (:mod:`scalingfit.fitting.model`, where every statistical choice is stated) samples
it; the LOO comparison, the predictions and the posterior predictive checks evaluate it
draw by draw with numpy. Everything here is written once for both: the data stage 2 reads
(:class:`RunEstimates`), the names of its parameters, the laws' mean (:func:`laws_mean`),
law 1's slope read off the envelope (:func:`envelope_slope`) and the likelihood itself
(:func:`level_loglik`). No PyMC import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from scipy.special import log_ndtr, roots_legendre

from .laws import envelope

__all__ = ["RunEstimates", "EXPONENTS", "PARAMS", "laws_mean", "envelope_slope",
           "drift_factor", "level_loglik", "least_squares", "within_level_sd"]

#: The exponents every summary reports (``gamma_pred = gamma1 * gamma2`` per draw).
EXPONENTS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")
#: Stage 2's parameters the likelihood reads, as the posterior holds them (``omega_*`` are
#: zero for a group whose sizes have one run each, where the size level cannot be told
#: from the run level).
PARAMS = ("gamma2", "gamma_conv", "kappa", "nu", "alpha", "offset_slope", "tau_offset",
          "sigma_x", "sigma_y", "rho_run", "omega_offset", "omega_x", "omega_y", "rho_size",
          "shape_error")
#: Gauss–Legendre nodes for the envelope's mean slope between two norms.
_NODES, _WEIGHTS = roots_legendre(8)


@dataclass
class RunEstimates:
    """Stage 1's estimates of every run, stacked with the group structure: what stage 2
    reads. ``z`` per run is ``(a, x*, y*)``: offset from the envelope, optimum's standardised
    log norm and best log error."""

    groups: list            # group names (scalingfit.fitting.groups.group_name)
    run_ids: np.ndarray
    group: np.ndarray       # group index per run
    level: np.ndarray       # (group, P) level index per run
    ell: np.ndarray         # log P minus the group's mean log P
    z: np.ndarray           # (runs, 3): a, x*, y* (standardised x)
    cov: np.ndarray         # (runs, 3, 3), given the group's shared curve shape
    loading: np.ndarray     # (runs, 3, k): response to the shape's standard-normal error
    censored: np.ndarray    # bool per run: no optimum in its logged range
    x_last: np.ndarray
    y_last: np.ndarray
    y_last_sd: np.ndarray
    x_scale: np.ndarray     # per group: sd of log λ (x = (log λ − x_center)/x_scale)
    x_center: np.ndarray
    ell_center: np.ndarray  # per group: mean log P
    ell_range: np.ndarray   # per group: smallest and largest centred log P
    seeded_levels: np.ndarray  # per group: True if some P has several runs
    log_slopes: np.ndarray  # (groups, segments): the envelope's log slope per segment
    slope_loading: np.ndarray  # (groups, segments, k): its response to the shape error
    knots: np.ndarray       # (groups, segments + 1)
    width: np.ndarray       # (groups,)
    n_levels: int | None = None  # (group, P) levels; counted from ``level`` if not given

    #: The fields with one entry per run (the others are per group).
    PER_RUN: ClassVar[tuple] = ("run_ids", "group", "level", "ell", "z", "cov", "loading",
                                "censored", "x_last", "y_last", "y_last_sd")

    def __post_init__(self):
        if self.n_levels is None:
            self.n_levels = int(self.level.max()) + 1

    def without_level(self, level: int) -> RunEstimates:
        """The same data without the runs of one (group, P) level (levels renumbered)."""
        keep = self.level != level
        rest = replace(self, n_levels=self.n_levels - 1,
                       **{k: getattr(self, k)[keep] for k in self.PER_RUN})
        rest.level = np.where(rest.level > level, rest.level - 1, rest.level)
        return rest

    @property
    def level_group(self) -> np.ndarray:
        out = np.empty(self.n_levels, int)
        out[self.level] = self.group
        return out


def laws_mean(p: dict, x_scale, group, ell, *, xp=np):
    """Where the laws put a run's ``(a, x*, y*)`` (standardised units) before any scatter.

    ``p`` holds per-group values (``alpha, offset_slope, kappa, gamma2, nu, gamma_conv``;
    one draw, or draws along a leading axis); ``group`` and ``ell`` (centred log P) are per
    run. Returns the three means, each per run.
    """
    x_scale = (np.asarray(x_scale) if xp is np else x_scale)[group]
    return (p["alpha"][..., group] + p["offset_slope"][..., group] * ell,
            p["kappa"][..., group] + p["gamma2"][..., group] / x_scale * ell,
            p["nu"][..., group] - p["gamma_conv"][..., group] * ell)


def envelope_slope(data: RunEstimates, kappa, gamma2, shape_error, drift=None, *, xp=np,
                   at=None):
    """Law 1's exponent γ1 per group: the envelope's mean slope (per unit log λ) between the
    law-2 optima of the group's smallest and largest P — or, with ``at`` (0: the smallest P,
    1: the largest), its local slope there.

    That is the slope that carries the optima's norm into their error: if the runs of every
    P follow one envelope ``E`` until they depart, ``ε*(P) ≈ E(λ*(P))``, and the exponent of
    ``ε*`` in P is this mean slope times γ2 (docs/design.md §2b). The envelope is stage 1's,
    corrected for the group's shape error. ``kappa, gamma2`` per group, ``shape_error`` (groups,
    k), with any leading (draw) axes; returns one value per group.

    Beyond the last run still on it (the last knot) no point shows the envelope: stage 1
    continues it straight, and ``drift`` (per group, in log slope per segment length; prior
    the same random walk as stage 1's, :data:`SLOPE_DRIFT_SD`) lets its slope drift there,
    so that γ1's interval carries how the envelope may bend where only the optima are.
    """
    x_scale = xp.as_tensor(data.x_scale) if xp is not np else data.x_scale
    lo = kappa + gamma2 / x_scale * data.ell_range[:, 0]
    hi = kappa + gamma2 / x_scale * data.ell_range[:, 1]
    nodes, weights = (_NODES, 0.5 * _WEIGHTS) if at is None else (np.array([2.0 * at - 1]),
                                                                   np.ones(1))
    x = 0.5 * (lo + hi)[..., None] + 0.5 * (hi - lo)[..., None] * nodes   # (..., groups, q)
    # the shape error u is stage 1's error: the estimates sit at truth + B u, so the true
    # envelope is the estimated one moved back, θ̂ − S u
    log_slopes = data.log_slopes - (data.slope_loading * shape_error[..., None, :]).sum(-1)
    slope = envelope(x, log_slopes[..., None, :], data.knots[:, None, :],
                     data.width[:, None, None], xp=xp, derivative=True)
    if drift is not None:
        slope = slope * drift_factor(x, data.knots[:, None, :], data.width[:, None],
                                     drift[..., None], xp=xp)
    return -(slope * weights).sum(-1) / x_scale


def drift_factor(x, knots, width, drift, *, xp=np):
    """How far the envelope's slope has drifted at ``x`` beyond its last knot:
    ``exp(η·b(x)/L)``, with ``η`` the drift (log slope per segment length ``L``) and
    ``b(x) = w·softplus((x − t_K)/w) ≈ max(x − t_K, 0)``. ``knots`` along the last axis."""
    beyond = width * xp.logaddexp(0.0, (x - knots[..., -1]) / width)
    return xp.exp(drift * beyond / (knots[..., 1] - knots[..., 0]))


def least_squares(data: RunEstimates):
    """Per-group starting values and prior centres, from plain regressions on the estimates
    (exponents in raw units, intercepts in standardised ones)."""
    n_groups = len(data.groups)
    names = ("alpha", "offset_slope", "kappa", "gamma2", "nu", "gamma_conv")
    out = {k: np.empty(n_groups) for k in names}
    for g in range(n_groups):
        mine = data.group == g
        ell, z, scale = data.ell[mine], data.z[mine], data.x_scale[g]
        out["offset_slope"][g], out["alpha"][g] = np.polyfit(ell, z[:, 0], 1)
        slope, out["kappa"][g] = np.polyfit(ell, z[:, 1], 1)
        out["gamma2"][g] = slope * scale
        slope, out["nu"][g] = np.polyfit(ell, z[:, 2], 1)
        out["gamma_conv"][g] = -slope
    return out


def within_level_sd(data: RunEstimates) -> np.ndarray:
    """Per group, a robust scatter of ``(a, x*, y*)`` among the runs of one P.

    The prior scale of the size-level effects: a size's departure from the laws is expected
    to be of the order of the seed-to-seed scatter, not of the whole range of the data.
    Robust (1.4826 × the median absolute deviation from each size's median, pooled over
    sizes), so that one run stuck far from its seeds cannot widen it tens of times.
    """
    out = np.full((len(data.groups), 3), 0.05)
    for g in range(len(data.groups)):
        mine = (data.group == g) & ~data.censored
        levels, counts = np.unique(data.level[mine], return_counts=True)
        deviations = []
        for lv in levels[counts > 1]:
            z = data.z[mine][data.level[mine] == lv]
            deviations.append(np.abs(z - np.median(z, axis=0)))
        if deviations:
            out[g] = np.maximum(1.4826 * np.median(np.concatenate(deviations), axis=0), 1e-3)
    return out


def level_loglik(data: RunEstimates, p: dict, *, at_end: str = "optimum", xp=np):
    """Log likelihood of the stage-1 estimates, one term per (group, P) level.

    Per run, ``z_r ~ N(m_r + B_r u + A δ_level, C_r + S)``: the laws' mean ``m_r``, the
    shape error ``u``, stage 1's covariance ``C_r`` and the run-level covariance ``S``
    (sds ``τ_a, σ_x, σ_y``; ``x*`` and ``y*`` correlated by ``ρ_run``). The size level's
    deviation ``A δ`` (sds ``ω_a, ω_x, ω_y``, ``x*`` and ``y*`` correlated by ``ρ_size``) is
    shared by the runs of one P and integrated out exactly (Woodbury: a 3×3 solve per
    level), which removes the funnel such effects create in a sampler. With
    ``at_end="bound"``, a run without an optimum in range enters through its offset and
    two one-sided terms, ``x* ≥ x_last`` and ``y* ≤ y_last``, whose sds include the size
    scatter (an approximation: see the model's docstring).
    """
    g = data.group
    common = (data.loading * p["shape_error"][g][:, None, :]).sum(axis=2)
    mean = xp.stack([law + common[:, k] for k, law in
                     enumerate(laws_mean(p, data.x_scale, g, data.ell, xp=xp))], axis=1)
    sd = [p["tau_offset"][g], p["sigma_x"][g], p["sigma_y"][g]]
    rho = p["rho_run"][g]
    omega_a, omega_x, omega_y = p["omega_offset"][g], p["omega_x"][g], p["omega_y"][g]
    rho_size = p["rho_size"][g]

    censored = data.censored if at_end == "bound" else np.zeros_like(data.censored)
    n_levels = data.n_levels

    def per_level(values):  # over the runs with an optimum (all, at_end="optimum")
        if censored.any():
            values = values * (~censored)
        return _level_sum(values, data.level, n_levels, xp)

    d = data.z - mean
    cov = data.cov
    c = [[cov[:, i, j] + (sd[i] ** 2 if i == j else 0.0) for j in range(3)] for i in range(3)]
    c[1][2] = c[1][2] + rho * sd[1] * sd[2]
    c[2][1] = c[2][1] + rho * sd[1] * sd[2]
    w, det = _inverse3(c)
    wd = [sum(w[i][j] * d[:, j] for j in range(3)) for i in range(3)]
    quad = sum(d[:, i] * wd[i] for i in range(3))
    per_run = -0.5 * quad - 0.5 * xp.log(det) - 1.5 * np.log(2 * np.pi)
    # Woodbury with the size level's loadings A = [c1 c2 c3]:
    # c1 = (ω_a, 0, 0), c2 = (0, ω_x, ρ ω_y), c3 = (0, 0, ω_y √(1 − ρ²))
    a32, a33 = rho_size * omega_y, omega_y * xp.sqrt(1 - rho_size**2)
    m = [[1 + per_level(omega_a**2 * w[0][0]),
          per_level(omega_a * (omega_x * w[0][1] + a32 * w[0][2])),
          per_level(omega_a * a33 * w[0][2])],
         [None,
          1 + per_level(omega_x**2 * w[1][1] + 2 * omega_x * a32 * w[1][2]
                        + a32**2 * w[2][2]),
          per_level(a33 * (omega_x * w[1][2] + a32 * w[2][2]))],
         [None, None, 1 + per_level(a33**2 * w[2][2])]]
    m[1][0], m[2][0], m[2][1] = m[0][1], m[0][2], m[1][2]
    b = [per_level(omega_a * wd[0]),
         per_level(omega_x * wd[1] + a32 * wd[2]),
         per_level(a33 * wd[2])]
    m_inv, det_m = _inverse3(m)
    level = (per_level(per_run)
             + 0.5 * sum(b[i] * m_inv[i][j] * b[j] for i in range(3) for j in range(3))
             - 0.5 * xp.log(det_m))

    if censored.any():
        k = np.flatnonzero(censored)
        offset_sd = xp.sqrt(cov[k, 0, 0] + sd[0][k] ** 2 + omega_a[k] ** 2)
        x_sd = xp.sqrt(sd[1][k] ** 2 + omega_x[k] ** 2 + 1e-4)
        y_sd = xp.sqrt(sd[2][k] ** 2 + omega_y[k] ** 2 + data.y_last_sd[k] ** 2)
        term = (_normal_logpdf(data.z[k, 0], mean[k, 0], offset_sd, xp)
                + _normal_logsf(data.x_last[k], mean[k, 1], x_sd, xp)      # x* ≥ x_last
                + _normal_logcdf(data.y_last[k], mean[k, 2], y_sd, xp))    # y* ≤ y_last
        level = level + _level_sum(term, data.level[k], n_levels, xp)
    return level


def _level_sum(values, level, n_levels, xp):
    """Per (group, P) level, the sum of its runs' values: a scatter-add, whose gradient is a
    gather. (Products with a dense level-by-run indicator matrix made the gradient of the
    768-run speed benchmark 2.6 times slower.)"""
    if xp is np:
        return np.bincount(level, weights=values, minlength=n_levels)
    return xp.inc_subtensor(xp.zeros(n_levels)[level], values)


def _inverse3(c):
    """Inverse and determinant of batched symmetric 3×3 matrices given as nested lists."""
    a, b, d = c[0][0], c[0][1], c[0][2]
    e, f, i = c[1][1], c[1][2], c[2][2]
    A, B, C = e * i - f * f, d * f - b * i, b * f - d * e
    det = a * A + b * B + d * C
    E, F, I_ = a * i - d * d, b * d - a * f, a * e - b * b
    inv = [[A / det, B / det, C / det], [B / det, E / det, F / det], [C / det, F / det, I_ / det]]
    return inv, det


def _normal_logpdf(x, mu, sd, xp):
    return -0.5 * ((x - mu) / sd) ** 2 - xp.log(sd) - 0.5 * np.log(2 * np.pi)


def _normal_logcdf(x, mu, sd, xp):
    if xp is np:
        return log_ndtr((x - mu) / sd)
    from pymc.distributions.dist_math import normal_lcdf

    return normal_lcdf(mu, sd, x)


def _normal_logsf(x, mu, sd, xp):
    return _normal_logcdf(-x, -mu, sd, xp)
