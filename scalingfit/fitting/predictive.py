"""Posterior predictive replicates of what stage 2 was fitted to: each run's estimates.

Used by the report's predictive check (:func:`scalingfit.report.figures.ppc_figure`).
"""

from __future__ import annotations

import numpy as np

from .likelihood import PARAMS, laws_mean

__all__ = ["predictive_estimates"]


def predictive_estimates(result, *, n_draws: int = 400, seed: int = 0) -> np.ndarray:
    """Posterior predictive replicates of every run's stage-1 estimates, in raw units.

    Returns an array (draws, runs, 3): offset from the envelope (log error), log λ*,
    log ε*. Each replicate keeps the fitted P levels: their deviations from the laws are
    drawn from their posterior given the draw's parameters (the Gaussian the model
    integrates out, :func:`scalingfit.fitting.likelihood.level_loglik`), then each run gets
    new run scatter and new measurement noise — the same runs, measured again.
    """
    c = result.idata.constant_data
    rng = np.random.default_rng(seed)
    g, level = c["group_index"].to_numpy(), c["level_index"].to_numpy()
    ell, loading, cov = c["ell"].to_numpy(), c["loading"].to_numpy(), c["z_cov"].to_numpy()
    x_scale, x_center = c["x_scale"].to_numpy(), c["x_center"].to_numpy()
    z = c["z"].to_numpy()
    seen = ~c["censored"].to_numpy().astype(bool) | (result.settings["at_end"] == "optimum")
    step = max(1, len(result.draws("gamma2")) // n_draws)
    draws = {k: result.draws(k)[::step] for k in PARAMS}
    n_levels = level.max() + 1
    out = np.empty((len(draws["gamma2"]), len(g), 3))
    for i in range(len(out)):
        p = {k: v[i] for k, v in draws.items()}
        mean = (np.column_stack(laws_mean(p, x_scale, g, ell))
                + np.einsum("rsk,rk->rs", loading, p["shape_error"][g]))
        sd = np.column_stack([p["tau_offset"][g], p["sigma_x"][g], p["sigma_y"][g]])
        scatter = np.einsum("ri,ij,rj->rij", sd, np.eye(3), sd)
        scatter[:, 1, 2] = scatter[:, 2, 1] = p["rho_run"][g] * sd[:, 1] * sd[:, 2]
        total = cov + scatter
        inverse = np.linalg.inv(total)
        # loadings of the size-level deviation on (a, x*, y*): A A^T is its covariance
        a = np.zeros((len(g), 3, 3))
        rho = p["rho_size"][g]
        a[:, 0, 0] = p["omega_offset"][g]
        a[:, 1, 1] = p["omega_x"][g]
        a[:, 2, 1] = rho * p["omega_y"][g]
        a[:, 2, 2] = np.sqrt(1 - rho**2) * p["omega_y"][g]
        at_inv = np.einsum("rki,rkj->rij", a, inverse) * seen[:, None, None]
        precision = np.eye(3) + np.zeros((n_levels, 3, 3))
        np.add.at(precision, level, np.einsum("rik,rkj->rij", at_inv, a))
        b = np.zeros((n_levels, 3))
        np.add.at(b, level, np.einsum("rik,rk->ri", at_inv, z - mean))
        level_cov = np.linalg.inv(precision)
        level_mean = np.einsum("lij,lj->li", level_cov, b)
        delta = level_mean + np.einsum("lij,lj->li", np.linalg.cholesky(level_cov),
                                       rng.standard_normal((n_levels, 3)))
        noise = np.einsum("rij,rj->ri", np.linalg.cholesky(total),
                          rng.standard_normal((len(g), 3)))
        out[i] = mean + np.einsum("rij,rj->ri", a, delta[level]) + noise
    out[:, :, 1] = x_center[g] + x_scale[g] * out[:, :, 1]
    return out
