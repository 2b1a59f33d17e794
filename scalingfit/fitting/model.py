r"""Stage 2: the hierarchical model of both laws, on the per-run estimates of stage 1.

Per run ``r`` of group ``g``, stage 1 (:mod:`scalingfit.fitting.run_curves`) measured
``z_r = (â_r, x̂*_r, ŷ*_r)`` — the run's offset from the group's envelope, its optimum's
standardised log norm and its best log error — with covariance ``Σ_r`` and loadings ``B_r``
on the group's shape error ``u_g`` (an error in the envelope, plateau or departure shape
moves every run of the group together). The model explains them as

.. math::

    a_r   &= α_g + s_g\,\ell_r                       + \text{size} + \text{run} \\
    x^*_r &= κ_g + γ_{2,g}\,\ell_r                    + \text{size} + \text{run} \\
    y^*_r &= ν_g − γ_{conv,g}\,\ell_r                + \text{size} + \text{run} \\
    z_r   &\sim \mathcal N\big((a_r, x^*_r, y^*_r) + B_r u_g,\ Σ_r\big)

with ``ℓ_r = log P_r − mean``, and law 1's exponent read off the envelope:

.. math:: γ_{1,g} = -\frac{E_g(x_{hi}) - E_g(x_{lo})}{x_{hi} - x_{lo}}, \qquad
          x_{lo,hi} = κ_g + γ_{2,g}\,\ell_{min,max}

— the envelope's mean slope over the stretch of log λ where the group's optima lie
(:func:`~scalingfit.fitting.likelihood.envelope_slope`; ``E_g`` is stage 1's envelope corrected
for ``u_g``; beyond the last run still on it, where stage 1 continues it straight, its log
slope may drift by ``η_g ~ N(0, SLOPE_DRIFT_SD)`` per segment length — prior only: no point
says more there). Why each piece:

- **γ1 as a slope the data show.** Real envelopes bend (docs/design.md §2b); the exponent
  that carries λ*(P) into ε*(P) is the envelope's slope where the optima are, and its
  posterior carries how well the envelope there is known. It is not pooled across groups:
  each group's envelope is fitted to all its points.
- **Offsets** (``a``, slope ``s``): if the envelopes of different P do not coincide, the runs'
  offsets change with P, and ``Δ = γ_conv − γ1·γ2`` has a part ``δ_envelope = −s``; the rest,
  ``δ_shape = Δ − δ_envelope``, is how the optimum's height above its own envelope changes
  with P (less overfitting with more data), with the envelope's curvature between the optima
  (zero where it is straight there).
- **Run level** (sds ``τ_a, σ_x, σ_y``; ``x*`` and ``y*`` correlated by ``ρ_run``): runs
  (seeds) differ, and a run whose optimum lies further along the envelope has a lower best
  error (law 1: by about γ1 times as much), so their deviations are correlated. Fitting
  the scatter of the runs themselves makes a group's uncertainty come from how much its runs
  disagree — 48 runs are 48 observations, not 1,920 points.
- **Size level** (sds ``ω_a, ω_x, ω_y``, correlation ``ρ_size``): the seeds of one P share
  its deviation from a pure power law, so the sizes carry the information on γ2 and
  γ_conv, not the runs. Integrated out exactly
  (:func:`~scalingfit.fitting.likelihood.level_loglik`). Dropped, with a warning, in a group
  with one run per P (seed-averaged curves), where it cannot be told from the run level.
- **Shape error** (``B u``): stage 1 estimates the envelope and the plateau once per group;
  an error there shifts every run's estimates together, which many runs do not average away
  — its optimum and best error, and the envelope's slopes γ1 is read from. The offsets,
  read off the same envelope, move with it too; their own law (``α``, ``s``, ``τ_a``) takes
  that variation, since letting ``u`` move them as well made ridges NUTS could not cross
  (R-hat 1.05 and 48 divergences on the corpus' ResNet set; with it: 1.005, none).
- **Across groups**: ``log γ2`` is partially pooled (positive; the log makes the pooling
  indifferent to the norm's power, λ → λ^c), ``γ_conv`` on its own scale. See
  :func:`_pooled`.
- **Units**: exponents are sampled in the units of the table (raw log norm) and converted
  to standardised units for the likelihood, so priors mean the same for a norm near 1 and a
  norm near 1e130.
- **Runs without an optimum in range**: with ``at_end="optimum"`` (the default, the paper's
  convention) the last point is taken as the optimum — the run is still on its envelope
  there, which is what the combined law is about; with ``at_end="bound"`` the run says
  ``x* ≥ x_last`` and ``y* ≤ y_last``, as two independent one-sided terms whose sds include
  the size's scatter ``ω`` (an approximation: the size deviation a bounded run shares with
  its seeds, and its correlations, are not shared in the likelihood). Runs that never left
  the chance plateau are not in stage 2 at all.
- **Combined law**: with ``tie_convergence=True`` the y* law's slope is ``γ1·γ2`` itself —
  the model in which the two dynamical laws predict the end-of-training law.

Priors are weak and data-scaled (centred on least-squares values of the estimates, so they
mean the same whatever the units): population means ``N(mean of the groups' estimates,
1.5)`` for ``log γ2`` and ``N(·, 1)`` for ``γ_conv`` (integrated out); spreads log-normal
with medians 0.5 (log scale) and 0.25; intercepts ``N(least squares, 2)``; the offsets'
slope ``N(0, 1)``; run-level sds ``HalfNormal(0.5)`` (offset and ``y*`` in log error, ``x*`` in
standardised log norm); correlations ``2·Beta(2, 2) − 1``; size-level sds ``HalfNormal`` at
twice the within-size scatter of the estimates, measured robustly
(:func:`~scalingfit.fitting.likelihood.within_level_sd`: a run stuck far from its seeds does
not widen it) — a scale taken from the same data, which assumes that whole sizes depart
from the laws by about as much as seeds scatter; shape errors ``N(0, 1)``. All prior centres
and scales are set from the estimates themselves (empirical Bayes), so a simulation-based
calibration in the strict sense does not apply; ``scalingfit calibrate`` checks coverage.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from .likelihood import RunEstimates, envelope_slope, least_squares, level_loglik, within_level_sd
from .run_curves import SLOPE_DRIFT_SD

__all__ = ["build_model"]


#: The fields of RunEstimates the likelihood reads as arrays (``censored`` stays numpy: it
#: decides the graph's structure).
_DATA_FIELDS = ("group", "level", "ell", "z", "cov", "loading", "x_last", "y_last",
                "y_last_sd", "x_scale", "ell_range", "log_slopes", "slope_loading", "knots",
                "width")


def _data(name, value):
    """A data array as a PyTensor shared variable of fixed shape, not a constant.

    Inputs rather than constants, the data leave the compiled log density independent of
    their values, so numba caches it on disk (``~/.pytensor/numba``) and a later fit of a
    table with the same structure loads it instead of compiling anew (the compile takes
    about half the time of the 7,680-row speed benchmark). A fixed shape keeps run-time
    shape checks out of the graph: their order changes from one process to the next, and
    with it the cache's key.
    """
    value = np.ascontiguousarray(value)
    return pytensor.shared(value, name=f"data_{name}", shape=value.shape)


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
        return pm.Normal(name, _data(f"{name}_start", estimates), prior_sd, dims="group",
                         initval=estimates)
    tau = pm.LogNormal(f"tau_{name}", np.log(spread_sd), 0.75)
    values = pm.Flat(name, dims="group", initval=estimates)
    pm.Potential(f"{name}_pooling", _compound_normal_logp(
        values - _data(f"{name}_centre", estimates.mean()), tau**2, prior_sd**2))
    return values


def _compound_normal_logp(d, a, b):
    """log N(d; 0, a·I + b·J) in closed form (Sherman–Morrison), for n = len(d) groups.

    PyTensor's Cholesky runs in Python; this is a handful of vector operations.
    """
    n = d.shape[0]
    total = a + n * b
    quad = ((d**2).sum() - b * d.sum() ** 2 / total) / a
    return -0.5 * (quad + (n - 1) * pt.log(a) + pt.log(total) + n * np.log(2 * np.pi))


def _correlation(name):
    """A correlation with a ``2·Beta(2, 2) − 1`` prior: any sign, kept off ±1."""
    return pm.Deterministic(name, 2 * pm.Beta(f"{name}_beta", 2.0, 2.0, dims="group") - 1,
                            dims="group")


def _size_scatter(data: RunEstimates, spread):
    """The size-level sds ``ω_a, ω_x, ω_y``, recorded as the likelihood uses them: zero in a
    group whose sizes have one run each (seed-averaged curves), where a size's deviation from
    the laws cannot be told from a run's. Their free scales are ``omega_*_scale``."""
    seeded = _data("seeded_levels", data.seeded_levels.astype(float))
    return [pm.Deterministic(name, pm.HalfNormal(f"{name}_scale", _data(f"{name}_scale",
                                                                       2 * spread[:, k]),
                                                 dims="group") * seeded, dims="group")
            for k, name in enumerate(("omega_offset", "omega_x", "omega_y"))]


def build_model(data: RunEstimates, *, at_end: str = "optimum",
                tie_convergence: bool = False) -> pm.Model:
    """The stage-2 PyMC model; see the module docstring for every choice."""
    if at_end not in ("bound", "optimum"):
        raise ValueError(f"at_end must be 'bound' or 'optimum', got {at_end!r}")
    start = least_squares(data)
    spread = within_level_sd(data)
    coords = {"group": list(data.groups), "shape": np.arange(data.loading.shape[2])}
    floor = 1e-3 * np.abs(start["gamma2"]).max()
    prior = {k: _data(f"{k}_start", start[k]) for k in ("kappa", "nu", "alpha")}
    data = replace(data, **{k: _data(k, getattr(data, k)) for k in _DATA_FIELDS})

    with pm.Model(coords=coords) as model:
        log_g2 = _pooled("log_gamma2", np.log(np.maximum(np.abs(start["gamma2"]), floor)),
                         prior_sd=1.5, spread_sd=0.5)
        gamma2 = pm.Deterministic("gamma2", pt.exp(log_g2), dims="group")
        kappa = pm.Normal("kappa", prior["kappa"], 2.0, dims="group", initval=start["kappa"])
        # the group's error in its stage-1 curve shape, common to all its runs
        shape_error = pm.Normal("shape_error", 0, 1, dims=("group", "shape"))
        # where no run shows the envelope any more, its slope may drift (prior only)
        drift = pm.Normal("envelope_drift", 0.0, SLOPE_DRIFT_SD, dims="group")
        gamma1 = pm.Deterministic("gamma1", envelope_slope(data, kappa, gamma2, shape_error,
                                                           drift, xp=pt), dims="group")
        for end, at in (("smallest_P", 0.0), ("largest_P", 1.0)):  # how much it drifts
            pm.Deterministic(f"gamma1_at_{end}", envelope_slope(
                data, kappa, gamma2, shape_error, drift, xp=pt, at=at), dims="group")
        gamma_pred = pm.Deterministic("gamma_pred", gamma1 * gamma2, dims="group")
        if tie_convergence:
            gamma_conv = pm.Deterministic("gamma_conv", gamma_pred, dims="group")
        else:
            gamma_conv = _pooled("gamma_conv", start["gamma_conv"], prior_sd=1.0,
                                 spread_sd=0.25)
        nu = pm.Normal("nu", prior["nu"], 2.0, dims="group", initval=start["nu"])
        alpha = pm.Normal("alpha", prior["alpha"], 2.0, dims="group", initval=start["alpha"])
        offset_slope = pm.Normal("offset_slope", 0.0, 1.0, dims="group",
                                 initval=start["offset_slope"])
        tau_offset = pm.HalfNormal("tau_offset", 0.5, dims="group")
        sigma_x = pm.HalfNormal("sigma_x", 0.5, dims="group")
        sigma_y = pm.HalfNormal("sigma_y", 0.5, dims="group")
        rho_run = _correlation("rho_run")
        omega_offset, omega_x, omega_y = _size_scatter(data, spread)
        rho_size = _correlation("rho_size")

        params = dict(gamma2=gamma2, gamma_conv=gamma_conv, kappa=kappa, nu=nu, alpha=alpha,
                      offset_slope=offset_slope, tau_offset=tau_offset, sigma_x=sigma_x,
                      sigma_y=sigma_y, rho_run=rho_run, omega_offset=omega_offset,
                      omega_x=omega_x, omega_y=omega_y, rho_size=rho_size,
                      shape_error=shape_error)
        pm.Potential("loglik", level_loglik(data, params, at_end=at_end, xp=pt).sum())
    return model
