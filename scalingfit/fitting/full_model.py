"""The full model: every logged point in one posterior — the reference for the fast path.

Same laws, same exponent priors and hierarchy as :mod:`scalingfit.fitting.model`, but each run's
curve parameters are latent and every row of the table enters the likelihood:

.. math::

    \\log ε_i \\sim \\mathcal N\\big(f(x_i;\\ γ_r, x^*_r, y^*_r, β_r, s_g, c_g, h_g),\\
                 \\sqrt{v_i + σ_{0,g}^2}\\big)

with ``f`` = :func:`scalingfit.fitting.laws.learning_curve`, ``v_i`` the binomial variance at the
stage-1 curve, and the run parameters drawn from the laws exactly as stage 2 models the
summaries (run and P-level effects explicit and non-centred). A run that stops before its
optimum needs no special case here: its ``x*`` is simply extrapolated (so ``at_end`` does
not apply).

Not independent of stage 1: the group's curve shape gets priors centred on stage 1's
estimates from the same data (chance plateau ``N(·, 0.1)``, departure sharpness
log-normal with sd 0.5, ``σ0`` half-normal at twice stage 1's), the binomial variance is
evaluated at the stage-1 curve, and the chains start at the stage-1 solution without
jitter (jittered starts fell into distant modes: R-hat 1.61 and 883 divergences on the
validation data).

It is slow — minutes where the two-stage fit takes seconds — and exists to validate the
two-stage fit (``benchmarks/validate_two_stage.py``); ``fit(..., method="full")`` runs it.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .laws import learning_curve, uncapped_optimum
from .likelihood import RunEstimates, laws_mean, least_squares, within_level_sd
from .model import exponents, size_scatter
from .run_curves import noise_variance

__all__ = ["build_full_model"]


def build_full_model(data: RunEstimates, groups, curves, *,
                     tie_convergence: bool = False) -> pm.Model:
    """The point-level model; ``groups``/``curves`` are stage 1's inputs and outputs
    (used for the rows, and to start the sampler and scale the shape priors)."""
    start = least_squares(data)
    gamma_scale = float(np.median(np.abs(data.z[:, 0])))
    x, y, run, variance_binomial = [], [], [], []
    offset = 0
    for group, fitted in zip(groups, curves):
        rows = group.curves
        x.append(rows.x)
        y.append(rows.y)
        run.append(rows.run + offset)
        variance_binomial.append(noise_variance(fitted.fitted, rows, 0.0))
        offset += rows.n_runs
    x, y, run = np.concatenate(x), np.concatenate(y), np.concatenate(run)
    variance_binomial = np.concatenate(variance_binomial)
    g = data.group
    shape = {k: np.array([getattr(c, k) for c in curves])
             for k in ("sharpness", "log_chance", "plateau_sharpness", "sigma0")}
    log_beta_hat = np.log([np.median(c.beta) for c in curves])

    coords = {"group": list(data.groups),
              "run": list(data.run_ids), "level": np.arange(data.level.max() + 1)}
    with pm.Model(coords=coords) as model:
        gamma1, gamma2, gamma_conv = exponents(start, tie_convergence)
        kappa = pm.Normal("kappa", start["kappa"], 2.0, dims="group", initval=start["kappa"])
        nu = pm.Normal("nu", start["nu"], 2.0, dims="group", initval=start["nu"])
        tau = pm.HalfNormal("tau_gamma", 0.5 * gamma_scale, dims="group")
        # scales start at the runs' scatter within a size (the sampler starts unjittered;
        # at their prior's support point their gradient would be exactly zero)
        spread = within_level_sd(data)
        sigma_x = pm.HalfNormal("sigma_x", 0.5, dims="group", initval=spread[:, 0])
        sigma_y = pm.HalfNormal("sigma_y", 0.5, dims="group", initval=spread[:, 1])
        omega_x, omega_y = size_scatter(data, spread, initval=spread)
        level = data.level
        delta = pm.Normal("level_effect", 0, 1, shape=(2, level.max() + 1))
        e = pm.Normal("run_effect", 0, 1, shape=(3, len(g)))

        laws = dict(gamma1=gamma1, gamma2=gamma2, gamma_conv=gamma_conv, kappa=kappa, nu=nu)
        mean_gamma, mean_x, mean_y = laws_mean(laws, data.x_scale, g, data.ell, xp=pt)
        gamma_run = mean_gamma + tau[g] * e[0]
        x_star = mean_x + omega_x[g] * delta[0, level] + sigma_x[g] * e[1]
        y_star = mean_y + omega_y[g] * delta[1, level] + sigma_y[g] * e[2]
        # per group: the curve's shape, weakly around its stage-1 value
        mu_log_beta = pm.Normal("mu_log_beta", log_beta_hat, 1.0, dims="group")
        log_beta = pm.Normal("log_beta", mu_log_beta[g], 1.0, dims="run",
                             initval=np.log(np.concatenate([c.beta for c in curves])))
        sharpness = pm.LogNormal("sharpness", np.log(shape["sharpness"]), 0.5, dims="group")
        log_chance = pm.Normal("log_chance", shape["log_chance"], 0.1, dims="group")
        plateau = pm.LogNormal("plateau_sharpness", np.log(shape["plateau_sharpness"]), 0.5,
                               dims="group")
        sigma0 = pm.HalfNormal("sigma0", 2 * shape["sigma0"] + 0.02, dims="group")

        rg = g[run]
        # the laws act on each run's best error; the curve is drawn from its uncapped minimum
        y_min = uncapped_optimum(y_star[run], log_chance[rg], plateau[rg], xp=pt)
        curve = learning_curve(x, x_star[run], y_min, pt.maximum(gamma_run[run], 1e-6),
                               pt.exp(log_beta[run]), sharpness[rg], log_chance[rg],
                               plateau[rg], xp=pt)
        pm.Normal("log_error", curve, pt.sqrt(variance_binomial + sigma0[rg] ** 2),
                  observed=y)
    return model
