r"""Stage 2: the hierarchical model of both laws, on the per-run summaries of stage 1.

Per run ``r`` of group ``g``, stage 1 measured ``z_r = (γ̂_r, x̂*_r, ŷ*_r)`` with covariance
``Σ_r`` (standardised log norm ``x``, log error ``y``; ``ŷ*`` is the run's best error, the
fitted minimum under the plateau) and loadings ``B_r`` on the group's shape error ``u_g``.
The model explains them as

.. math::

    γ_r   &= γ_{1,g}                                             + τ_g\,e_{1r} \\
    x^*_r &= κ_g + γ_{2,g}\,\ell_r + ω^x_g\,δ^x_{g,p(r)}         + σ^x_g\,e_{2r} \\
    y^*_r &= ν_g − γ_{conv,g}\,\ell_r + ω^y_g\,δ^y_{g,p(r)}      + σ^y_g\,e_{3r} \\
    z_r   &\sim \mathcal N\big((γ_r, x^*_r, y^*_r) + B_r u_g,\ Σ_r\big)

with ``ℓ_r = log P_r − mean`` and ``e, δ, u ~ N(0, 1)``; the run effects ``e`` and the P-level
effects ``δ`` are integrated out analytically, ``u`` is sampled.

Why each piece:

- **Run level** (``τ, σx, σy``): runs (seeds) differ, and the stage-1 covariance ignores
  the correlation of points along a run. Fitting the scatter of the runs themselves makes
  a group's uncertainty come from how much its runs disagree — 48 runs are 48
  observations, not 1,920.
- **P level** (``ω δ``): the seeds of one P share its deviation from a pure power law, so
  eight values of P carry the information on γ2 and γ_conv, not 48 runs. Dropped, with a
  warning, in a group with one run per P (seed-averaged curves), where it cannot be told
  apart from the run level.
- **Shape error** (``B u``): stage 1 estimates the plateau and the departure's shape once
  per group; an error there shifts every run's summaries together, which many runs do not
  average away.
- **Across groups**: ``log γ1`` and ``log γ2`` are partially pooled (the exponents of these
  laws are positive, and the log makes the pooling indifferent to the norm's power,
  λ → λ^c); ``γ_conv`` is pooled on its own scale. See :func:`_pooled`.
- **Units**: exponents are sampled in the units of the table (raw log norm) and converted
  to standardised units for the likelihood, so priors and pooling mean the same for a
  norm near 1 and a norm near 1e130.
- **Censoring**: a run whose error was still falling at its last step tells us
  ``x* ≥ x_last`` and ``y* ≤ y_last``: with ``at_end="bound"`` those enter as censored
  likelihood terms; with ``at_end="optimum"`` (the paper's convention) the last point is
  taken as the optimum. An approximation: each censored run's two bounds enter as
  independent one-sided terms whose sds include its size's scatter ``ω``, so the P-level
  deviation a censored run shares with the other runs of its size (censored or not) is
  not shared in the likelihood; where several runs of one size are censored, their common
  deviation is counted once per run, which can narrow γ2 and γ_conv. Exact would be a 1-D
  integral over ``δ`` per such size. Not yet validated on simulated censored runs (neither
  generator makes them).
- **Combined law**: with ``tie_convergence=True`` the y* law's slope is ``γ1·γ2`` itself —
  the model in which the two dynamical laws predict the end-of-training law.

Priors are weak and data-scaled (centred on least-squares values of the summaries, so they
mean the same whatever the units): population means ``N(mean of the groups' estimates,
1.5)`` for ``log γ1, log γ2`` and ``N(·, 1)`` for ``γ_conv`` (integrated out); spreads
log-normal with medians 0.5 (log scale) and 0.25; intercepts ``N(least squares, 2)``;
run-level sds ``HalfNormal`` at 0.5 × the median ``|γ̂|`` over all runs of all groups
(standardised units) for ``τ``, and 0.5 for ``σx`` (standardised log norm) and ``σy`` (log
error); P-level sds ``HalfNormal`` at twice the within-P scatter of the summaries
(:func:`_within_level_sd`) — a scale taken from the same data, which assumes that whole
sizes depart from the power laws by about as much as seeds scatter; sizes retuned
individually (their own learning rate or schedule) can break that, and this regime is
not covered by the calibration benchmarks (their sizes lie exactly on the laws); shape
errors ``N(0, 1)``. All prior centres and scales are set from the summaries themselves
(empirical Bayes), so a simulation-based calibration in the strict sense does not apply;
`benchmarks/calibration.py` checks coverage instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.dist_math import normal_lcdf
from scipy.special import log_ndtr

__all__ = ["SummaryData", "build_model"]

PARAMS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")


@dataclass
class SummaryData:
    """Stage-1 summaries of every run, with the group structure (see :mod:`scalingfit.fitting`)."""

    groups: list            # group labels (tuples of the group-by values)
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

    @property
    def level_group(self) -> np.ndarray:
        out = np.empty(self.level.max() + 1, int)
        out[self.level] = self.group
        return out


def _least_squares(data: SummaryData):
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


def _within_level_sd(data: SummaryData) -> np.ndarray:
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


def _pooled(name, estimates, *, prior_sd, spread_sd):
    """Group values partially pooled: Normal(mu, tau) per group, mu ~ Normal(m0, prior_sd).

    The population mean ``mu`` is integrated out, leaving the groups jointly normal with
    covariance ``tau²·I + prior_sd²·J``: each group's runs usually pin its value far better
    than the population does, and a sampled ``mu`` would then form a funnel with ``tau``
    (``mu``'s width scales with ``tau``) in the centred form, or a ridge in the non-centred
    one. ``tau`` is log-normal, zero-avoiding: a handful of groups cannot rule out
    ``tau → 0``, and each group is pooled in proportion to how weakly its own data
    determine it (Chung et al. 2013). One group: a weak prior around its estimate.
    """
    n = len(estimates)
    if n == 1:
        return pm.Normal(name, estimates, prior_sd, dims="group", initval=estimates)
    tau = pm.LogNormal(f"tau_{name}", np.log(spread_sd), 0.75)
    values = pm.Flat(name, dims="group", initval=estimates)
    pm.Potential(f"{name}_pooling",
                 _compound_normal_logp(values - estimates.mean(), tau**2, prior_sd**2))
    return values


def _compound_normal_logp(d, a, b):
    """log N(d; 0, a·I + b·J) in closed form (Sherman–Morrison), for n = len(d) groups.

    PyTensor's Cholesky runs in Python; this is a handful of vector operations.
    """
    n = d.shape[0]
    total = a + n * b
    quad = ((d**2).sum() - b * d.sum() ** 2 / total) / a
    return -0.5 * (quad + (n - 1) * pt.log(a) + pt.log(total) + n * np.log(2 * np.pi))


def exponents(start: dict, tie_convergence: bool):
    """The exponents' priors, inside a model: γ1 and γ2 partially pooled across groups on
    the log scale (they are positive; a factor 4.5 per prior sd around the least-squares
    values), γ_conv on its own scale (the data may say error does not fall with P), or
    tied to γ1·γ2. Returns (gamma1, gamma2, gamma_conv); γ_pred = γ1·γ2 is recorded."""
    floor = 1e-3 * np.abs(start["gamma1"]).max()
    g1_hat, g2_hat = (np.maximum(np.abs(start[k]), floor) for k in ("gamma1", "gamma2"))
    log_g1 = _pooled("log_gamma1", np.log(g1_hat), prior_sd=1.5, spread_sd=0.5)
    log_g2 = _pooled("log_gamma2", np.log(g2_hat), prior_sd=1.5, spread_sd=0.5)
    gamma1 = pm.Deterministic("gamma1", pt.exp(log_g1), dims="group")
    gamma2 = pm.Deterministic("gamma2", pt.exp(log_g2), dims="group")
    gamma_pred = pm.Deterministic("gamma_pred", gamma1 * gamma2, dims="group")
    if tie_convergence:
        return gamma1, gamma2, pm.Deterministic("gamma_conv", gamma_pred, dims="group")
    return gamma1, gamma2, _pooled("gamma_conv", start["gamma_conv"], prior_sd=1.0,
                                   spread_sd=0.25)


def build_model(data: SummaryData, *, at_end: str = "bound",
                tie_convergence: bool = False) -> pm.Model:
    """The stage-2 PyMC model; see the module docstring for every choice."""
    if at_end not in ("bound", "optimum"):
        raise ValueError(f"at_end must be 'bound' or 'optimum', got {at_end!r}")
    start = _least_squares(data)
    n_groups = len(data.groups)
    coords = {"group": [" / ".join(map(str, g)) for g in data.groups]}
    gamma_scale = float(np.median(np.abs(data.z[:, 0])))

    with pm.Model(coords=coords) as model:
        gamma1, gamma2, gamma_conv = exponents(start, tie_convergence)

        # per group: intercepts (standardised units) and scatter at the run and P levels
        kappa = pm.Normal("kappa", start["kappa"], 2.0, dims="group", initval=start["kappa"])
        nu = pm.Normal("nu", start["nu"], 2.0, dims="group", initval=start["nu"])
        tau = pm.HalfNormal("tau_gamma", 0.5 * gamma_scale, dims="group")
        sigma_x = pm.HalfNormal("sigma_x", 0.5, dims="group")
        sigma_y = pm.HalfNormal("sigma_y", 0.5, dims="group")
        seeded = data.seeded_levels.astype(float)
        spread = _within_level_sd(data)
        omega_x = pm.HalfNormal("omega_x", 2 * spread[:, 0], dims="group") * seeded
        omega_y = pm.HalfNormal("omega_y", 2 * spread[:, 1], dims="group") * seeded
        # the group's error in its stage-1 curve shape, common to all its runs
        shape_error = pm.Normal("shape_error", 0, 1, shape=(n_groups, data.loading.shape[2]))

        params = dict(gamma1=gamma1, gamma2=gamma2, gamma_conv=gamma_conv, kappa=kappa, nu=nu,
                      tau_gamma=tau, sigma_x=sigma_x, sigma_y=sigma_y, omega_x=omega_x,
                      omega_y=omega_y, shape_error=shape_error)
        pm.Potential("summaries_loglik",
                     summaries_loglik(data, params, at_end=at_end, xp=pt).sum())
    return model


def summaries_loglik(data: SummaryData, p: dict, *, at_end: str = "bound", xp=np):
    """Log likelihood of the stage-1 summaries, one term per (group, P) level.

    The P-level effects are integrated out exactly (the runs of one level share a
    2-dimensional Gaussian shift of ``(x*, y*)``; Woodbury's identity reduces it to a 2×2
    solve per level), which removes the funnel such effects create in a sampler. Works on
    numpy arrays of one posterior draw (``xp=numpy``) or on PyMC variables
    (``xp=pytensor.tensor``), so LOO and the model share one formula. Censored runs enter
    through their slope and two one-sided terms whose sds include the level scatter.
    """
    g = data.group
    x_scale = xp.as_tensor(data.x_scale) if xp is pt else data.x_scale
    common = (data.loading * p["shape_error"][g][:, None, :]).sum(axis=2)
    mean = xp.stack([
        (p["gamma1"] * x_scale)[g] + common[:, 0],
        p["kappa"][g] + (p["gamma2"] / x_scale)[g] * data.ell + common[:, 1],
        p["nu"][g] - p["gamma_conv"][g] * data.ell + common[:, 2],
    ], axis=1)
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
    if xp is pt:
        return normal_lcdf(mu, sd, x)
    return log_ndtr((x - mu) / sd)


def _normal_logsf(x, mu, sd, xp):
    return _normal_logcdf(-x, -mu, sd, xp)
