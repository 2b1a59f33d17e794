r"""Stage 2's likelihood and what reads it: numpy or PyTensor alike (pass ``xp``).

The model (:mod:`scalingfit.fitting.model`, where every statistical choice is stated) samples
it; the LOO comparison, the predictions and the posterior predictive checks evaluate it
draw by draw with numpy. Everything here is written once for both: the data stage 2 reads
(:class:`RunEstimates`), the names of its parameters, the laws' mean
(:func:`laws_mean`) and the likelihood itself (:func:`level_loglik`). No PyMC import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from scipy.special import log_ndtr

__all__ = ["RunEstimates", "EXPONENTS", "PARAMS", "laws_mean", "level_loglik",
           "least_squares", "within_level_sd"]

#: The exponents every summary reports (``gamma_pred = gamma1 * gamma2`` per draw).
EXPONENTS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")
#: Stage 2's parameters, as the posterior holds them (``omega_*`` already zero for a group
#: whose sizes have one run each, where the size level cannot be told from the run level).
PARAMS = ("gamma1", "gamma2", "gamma_conv", "kappa", "nu", "tau_gamma", "sigma_x", "sigma_y",
          "omega_x", "omega_y", "shape_error")


def laws_mean(p: dict, x_scale, group, ell, *, xp=np):
    """Where the laws put a run's ``(γ, x*, y*)`` (standardised units) before any scatter.

    ``p`` holds per-group values (``gamma1, gamma2, gamma_conv, kappa, nu``; one draw, or
    draws along a leading axis); ``group`` and ``ell`` (centred log P) are per run.
    Returns the three means, each per run.
    """
    x_scale = np.asarray(x_scale)[group]
    return ((p["gamma1"][..., group] * x_scale),
            p["kappa"][..., group] + p["gamma2"][..., group] / x_scale * ell,
            p["nu"][..., group] - p["gamma_conv"][..., group] * ell)


@dataclass
class RunEstimates:
    """Stage 1's estimates of every run, stacked with the group structure: what stage 2 reads."""

    groups: list            # group names (scalingfit.fitting.groups.group_name)
    run_ids: np.ndarray
    group: np.ndarray       # group index per run
    level: np.ndarray       # (group, P) level index per run
    ell: np.ndarray         # log P minus the group's mean log P
    z: np.ndarray           # (runs, 3): γ̂, x̂*, ŷ* (standardised x)
    cov: np.ndarray         # (runs, 3, 3), given the group's shared curve shape
    loading: np.ndarray     # (runs, 3, k): response to the shape's standard-normal error
    censored: np.ndarray    # bool per run
    x_last: np.ndarray
    y_last: np.ndarray
    y_last_sd: np.ndarray
    x_scale: np.ndarray     # per group: sd of log λ (x = (log λ − x_center)/x_scale)
    x_center: np.ndarray
    ell_center: np.ndarray  # per group: mean log P
    seeded_levels: np.ndarray  # per group: True if some P has several runs

    #: The fields with one entry per run (the others are per group).
    PER_RUN: ClassVar[tuple] = ("run_ids", "group", "level", "ell", "z", "cov", "loading",
                                "censored", "x_last", "y_last", "y_last_sd")

    def without_level(self, level: int) -> RunEstimates:
        """The same data without the runs of one (group, P) level (levels renumbered)."""
        keep = self.level != level
        rest = replace(self, **{k: getattr(self, k)[keep] for k in self.PER_RUN})
        rest.level = np.where(rest.level > level, rest.level - 1, rest.level)
        return rest

    @property
    def level_group(self) -> np.ndarray:
        out = np.empty(self.level.max() + 1, int)
        out[self.level] = self.group
        return out


def least_squares(data: RunEstimates):
    """Per-group starting values and prior centres, from plain regressions on the
    summaries (exponents in raw units, intercepts in standardised ones)."""
    n_groups = len(data.groups)
    out = {k: np.empty(n_groups) for k in ("gamma1", "gamma2", "gamma_conv", "kappa", "nu")}
    for g in range(n_groups):
        mine = data.group == g
        ell, z, scale = data.ell[mine], data.z[mine], data.x_scale[g]
        out["gamma1"][g] = np.median(z[:, 0]) / scale
        slope, out["kappa"][g] = np.polyfit(ell, z[:, 1], 1)
        out["gamma2"][g] = slope * scale
        slope, out["nu"][g] = np.polyfit(ell, z[:, 2], 1)
        out["gamma_conv"][g] = -slope
    return out


def within_level_sd(data: RunEstimates) -> np.ndarray:
    """Per group, the sd of x̂* and ŷ* among the runs of one P (pooled over P levels).

    The prior scale of the P-level effects: a P's departure from the power law is expected
    to be of the order of the seed-to-seed scatter, not of the whole range of the data.
    With few P levels the data alone allow level effects of any size, which leaves the
    slopes almost free and the posterior a banana NUTS cannot traverse.
    """
    out = np.full((len(data.groups), 2), 0.05)
    for g in range(len(data.groups)):
        mine = (data.group == g) & ~data.censored
        levels, counts = np.unique(data.level[mine], return_counts=True)
        if (counts > 1).any():
            z = data.z[mine][:, 1:]
            means = np.array([z[data.level[mine] == lv].mean(axis=0) for lv in levels])
            resid = z - means[np.searchsorted(levels, data.level[mine])]
            dof = max(int(mine.sum()) - len(levels), 1)
            out[g] = np.maximum(np.sqrt((resid**2).sum(axis=0) / dof), 1e-3)
    return out


def level_loglik(data: RunEstimates, p: dict, *, at_end: str = "bound", xp=np):
    """Log likelihood of the stage-1 estimates, one term per (group, P) level.

    The P-level effects are integrated out exactly (the runs of one level share a
    2-dimensional Gaussian shift of ``(x*, y*)``; Woodbury's identity reduces it to a 2×2
    solve per level), which removes the funnel such effects create in a sampler. Works on
    numpy arrays of one posterior draw (``xp=numpy``) or on PyMC variables
    (``xp=pytensor.tensor``), so LOO and the model share one formula. Censored runs enter
    through their slope and two one-sided terms whose sds include the level scatter.
    """
    g = data.group
    common = (data.loading * p["shape_error"][g][:, None, :]).sum(axis=2)
    mean = xp.stack([law + common[:, k] for k, law in
                     enumerate(laws_mean(p, data.x_scale, g, data.ell, xp=xp))], axis=1)
    scatter = [p["tau_gamma"][g] ** 2, p["sigma_x"][g] ** 2, p["sigma_y"][g] ** 2]
    omega_x, omega_y = p["omega_x"][g], p["omega_y"][g]

    z, cov, censored = data.z.copy(), data.cov.copy(), data.censored.copy()
    if at_end == "optimum":  # the paper's convention: the last point is the optimum
        z[censored, 1], z[censored, 2] = data.x_last[censored], data.y_last[censored]
        cov[censored, 1:, :] = cov[censored, :, 1:] = 0.0
        cov[censored, 1, 1] = 1e-4
        cov[censored, 2, 2] = data.y_last_sd[censored] ** 2
        censored = np.zeros_like(censored)
    seen = (~censored).astype(float)
    n_levels = data.level.max() + 1
    indicator = (data.level[None, :] == np.arange(n_levels)[:, None]) * seen[None, :]

    d = z - mean
    c = [[cov[:, i, j] + (scatter[i] if i == j else 0.0) for j in range(3)] for i in range(3)]
    inv, det = _inverse3(c)
    w = [sum(inv[i][j] * d[:, j] for j in range(3)) for i in range(3)]
    quad = sum(d[:, i] * w[i] for i in range(3))
    per_run = -0.5 * quad - 0.5 * xp.log(det) - 1.5 * np.log(2 * np.pi)
    # Woodbury: M = I + Σ Aᵀ V⁻¹ A, b = Σ Aᵀ V⁻¹ d per level, A = [[0,0],[ωx,0],[0,ωy]]
    b1, b2 = xp.dot(indicator, omega_x * w[1]), xp.dot(indicator, omega_y * w[2])
    m11 = 1 + xp.dot(indicator, omega_x**2 * inv[1][1])
    m22 = 1 + xp.dot(indicator, omega_y**2 * inv[2][2])
    m12 = xp.dot(indicator, omega_x * omega_y * inv[1][2])
    det_m = m11 * m22 - m12**2
    level = (xp.dot(indicator, per_run)
             + 0.5 * (m22 * b1**2 - 2 * m12 * b1 * b2 + m11 * b2**2) / det_m
             - 0.5 * xp.log(det_m))

    if censored.any():
        k = np.flatnonzero(censored)
        slope_sd = xp.sqrt(cov[k, 0, 0] + scatter[0][k])
        x_sd = xp.sqrt(scatter[1][k] + omega_x[k] ** 2 + 1e-4)
        y_sd = xp.sqrt(scatter[2][k] + omega_y[k] ** 2 + data.y_last_sd[k] ** 2)
        term = (_normal_logpdf(z[k, 0], mean[k, 0], slope_sd, xp)
                + _normal_logsf(data.x_last[k], mean[k, 1], x_sd, xp)      # x* ≥ x_last
                + _normal_logcdf(data.y_last[k], mean[k, 2], y_sd, xp))    # y* ≤ y_last
        level = level + xp.dot((data.level[k][None, :] == np.arange(n_levels)[:, None])
                               .astype(float), term)
    return level


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
