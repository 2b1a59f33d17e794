r"""Stage 2: the hierarchical model of both laws, on the per-run estimates of stage 1.

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

Priors are weak and data-scaled (centred on least-squares values of the estimates, so they
mean the same whatever the units): population means ``N(mean of the groups' estimates,
1.5)`` for ``log γ1, log γ2`` and ``N(·, 1)`` for ``γ_conv`` (integrated out); spreads
log-normal with medians 0.5 (log scale) and 0.25; intercepts ``N(least squares, 2)``;
run-level sds ``HalfNormal`` at 0.5 × the median ``|γ̂|`` over all runs of all groups
(standardised units) for ``τ``, and 0.5 for ``σx`` (standardised log norm) and ``σy`` (log
error); P-level sds ``HalfNormal`` at twice the within-P scatter of the estimates
(:func:`~scalingfit.fitting.likelihood.within_level_sd`) — a scale taken from the same data,
which assumes that whole sizes depart from the power laws by about as much as seeds scatter;
sizes retuned individually (their own learning rate or schedule) can break that, and this
regime is not covered by the calibration benchmarks (their sizes lie exactly on the laws);
shape errors ``N(0, 1)``. All prior centres and scales are set from the estimates themselves
(empirical Bayes), so a simulation-based calibration in the strict sense does not apply;
`benchmarks/calibration.py` checks coverage instead.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .likelihood import RunEstimates, least_squares, level_loglik, within_level_sd

__all__ = ["build_model", "exponents"]


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


def build_model(data: RunEstimates, *, at_end: str = "bound",
                tie_convergence: bool = False) -> pm.Model:
    """The stage-2 PyMC model; see the module docstring for every choice."""
    if at_end not in ("bound", "optimum"):
        raise ValueError(f"at_end must be 'bound' or 'optimum', got {at_end!r}")
    start = least_squares(data)
    n_groups = len(data.groups)
    coords = {"group": list(data.groups)}
    gamma_scale = float(np.median(np.abs(data.z[:, 0])))

    with pm.Model(coords=coords) as model:
        gamma1, gamma2, gamma_conv = exponents(start, tie_convergence)

        # per group: intercepts (standardised units) and scatter at the run and P levels
        kappa = pm.Normal("kappa", start["kappa"], 2.0, dims="group", initval=start["kappa"])
        nu = pm.Normal("nu", start["nu"], 2.0, dims="group", initval=start["nu"])
        tau = pm.HalfNormal("tau_gamma", 0.5 * gamma_scale, dims="group")
        sigma_x = pm.HalfNormal("sigma_x", 0.5, dims="group")
        sigma_y = pm.HalfNormal("sigma_y", 0.5, dims="group")
        omega_x, omega_y = size_scatter(data, within_level_sd(data))
        # the group's error in its stage-1 curve shape, common to all its runs
        shape_error = pm.Normal("shape_error", 0, 1, shape=(n_groups, data.loading.shape[2]))

        params = dict(gamma1=gamma1, gamma2=gamma2, gamma_conv=gamma_conv, kappa=kappa, nu=nu,
                      tau_gamma=tau, sigma_x=sigma_x, sigma_y=sigma_y, omega_x=omega_x,
                      omega_y=omega_y, shape_error=shape_error)
        pm.Potential("loglik", level_loglik(data, params, at_end=at_end, xp=pt).sum())
    return model




def size_scatter(data: RunEstimates, spread, initval=None):
    """The size-level sds ``ω_x, ω_y``, recorded as the model uses them: zero in a group
    whose sizes have one run each (seed-averaged curves), where a size's deviation from the
    laws cannot be told from a run's. Their free scales are ``omega_*_scale``.
    """
    seeded = data.seeded_levels.astype(float)
    out = []
    for k, axis in enumerate(("x", "y")):
        scale = pm.HalfNormal(f"omega_{axis}_scale", 2 * spread[:, k], dims="group",
                              initval=None if initval is None else initval[:, k])
        out.append(pm.Deterministic(f"omega_{axis}", scale * seeded, dims="group"))
    return out
