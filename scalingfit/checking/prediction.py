"""Predicted best error ε*(P) and optimal norm λ*(P) at any training-set size, from a fit.

The stage-2 model (:mod:`scalingfit.fitting.model`) places the optimum of a run of group
``g`` at ``ℓ = log P − ℓ̄_g`` (``ℓ̄_g``: the group's mean log P) at

.. math::

    \\log ε^*  &= ν_g − γ_{conv,g}\\,ℓ                 + ω^y_g δ^y + σ^y_g e^y \\\\
    \\log λ^*  &= \\bar x_g + s_g κ_g + γ_{2,g}\\,ℓ    + s_g(ω^x_g δ^x + σ^x_g e^x)

(``x̄_g, s_g``: how log λ was standardised). Three predictions follow, each a posterior
(predictive) distribution:

- **the law** (``n_runs=None``): ``ν − γ_conv ℓ``, the line itself; its interval is the
  uncertainty of the exponent and intercept only;
- **one new run** (``n_runs=1``): a new P brings its own deviation from the power law
  (``δ``, sd ``ω``) and a new seed its own scatter (``e``, sd ``σ``); the deviations of
  ``log λ*`` and ``log ε*`` are correlated at each level (``ρ_size``, ``ρ_run``: a run whose
  optimum lies further along the envelope has a lower best error);
- **the mean of k new runs** at one new P (``n_runs=k``): the seed scatter shrinks as
  ``σ/√k``, the P-level deviation does not.

In a combined-law fit (``tie_convergence=True``) ``γ_conv = γ1·γ2``, so the prediction of
ε* is the one the two dynamical laws make together; in a free fit it follows the fitted
convergence exponent. Every prediction says which.

A size inside the group's range of P is an interpolation; outside, an extrapolation, with
the factor by which it lies beyond the nearest P of the data.

**Chance.** The laws describe errors below the group's chance plateau (stage 1 fits one per
group, ``log_chance`` in the fit's ``constant_data``): a run cannot do worse than guessing,
and a power law extrapolated to small P passes above it. Predictions there are not capped —
a capped number would look like a prediction — but flagged: ``above_chance`` when the law's
median ε* is at or above the chance error (the prediction is meaningless: the laws do not
hold there), ``reaches_chance`` when only the upper end of its 90 % interval is.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ScalingfitError
from ..fitting.likelihood import laws_mean
from ..fitting.result import describe

__all__ = ["predictive_draws", "predict", "data_range", "chance_errors"]

LAWS = ("alpha", "offset_slope", "kappa", "gamma2", "nu", "gamma_conv")


def predictive_draws(result, train_size: float, *, n_runs: int | None = None,
                     seed: int | None = None) -> dict:
    """Posterior draws of ``log ε*`` and ``log λ*`` (natural logs) at one training-set size.

    Parameters
    ----------
    result : FitResult
    train_size : float
        P, the same for every group.
    n_runs : int, optional
        ``None``: the law itself; ``k``: the mean of ``k`` new runs (seeds) at this P.
    seed : int, optional
        Seed of the draws of the new P's and new runs' deviations (default: the fit's seed).

    Returns
    -------
    dict
        ``{"log_eps_star": (samples, groups), "log_lam_star": (samples, groups)}``.
    """
    if not train_size > 0:
        raise ScalingfitError(f"a training-set size must be positive, got {train_size}.")
    c = result.idata.constant_data
    ell = math.log(train_size) - c["ell_center"].to_numpy()
    x_scale, x_center = c["x_scale"].to_numpy(), c["x_center"].to_numpy()
    groups = np.arange(len(x_scale))
    p = {k: result.draws(k) for k in LAWS}
    _, x_star, log_eps = laws_mean(p, x_scale, groups, ell)
    if n_runs is not None:
        if n_runs < 1:
            raise ScalingfitError(f"n_runs must be at least 1, got {n_runs}.")
        rng = np.random.default_rng(result.settings.get("seed", 0) if seed is None else seed)
        # a new P: its own deviation from the laws (ω, zero where the fit could not tell it
        # from seed scatter), and k new seeds about it (σ/√k); x* and ε* deviations are
        # correlated (ρ) at both levels
        for level, scale in (("size", 1.0), ("run", 1.0 / math.sqrt(n_runs))):
            sd_x, sd_y, rho = ((result.draws("omega_x"), result.draws("omega_y"),
                                result.draws("rho_size")) if level == "size" else
                               (result.draws("sigma_x"), result.draws("sigma_y"),
                                result.draws("rho_run")))
            e_x, e_y = rng.standard_normal((2, *log_eps.shape))
            x_star = x_star + scale * sd_x * e_x
            log_eps = log_eps + scale * sd_y * (rho * e_x + np.sqrt(1 - rho**2) * e_y)
    log_lam = x_center + x_scale * x_star
    return {"log_eps_star": log_eps, "log_lam_star": log_lam}


def data_range(result) -> list[tuple[int, int]]:
    """The smallest and largest P of each group's runs."""
    c = result.idata.constant_data
    sizes, group = c["train_size"].to_numpy(), c["group_index"].to_numpy()
    return [(int(sizes[group == g].min()), int(sizes[group == g].max()))
            for g in range(len(result.group_names))]


def _region(train_size, low, high):
    if low <= train_size <= high:
        return "interpolation", 1.0
    if train_size > high:
        return "extrapolation", train_size / high
    return "extrapolation", low / train_size


def predict(result, train_sizes, *, seed: int | None = None) -> list[dict]:
    """Predicted ε* and λ* for each group and each P, with 90 % intervals.

    Returns
    -------
    list of dict
        One per (group, P): the group's ``group_by`` values, ``architecture``, ``dataset``,
        ``name``, ``train_size``, ``region``
        (``interpolation``/``extrapolation``), ``factor`` (how far beyond the nearest P of
        the data; 1 inside), ``law`` (which convergence exponent), and the summaries
        ``{"mean", "median", "sd", "q05", "q95"}`` of ``eps_star`` (the law) and
        ``eps_star_run`` (one new run), and of ``log_lam_star`` and ``log_lam_star_run``
        (natural log of the norm: norms may exceed the float range); ``chance_error`` (the
        group's fitted chance plateau), ``above_chance`` (the law's median ε* is at or above
        it: meaningless, the laws do not hold there) and ``reaches_chance`` (the upper end
        of its 90 % interval is).
    """
    law = ("combined: gamma_conv = gamma1*gamma2" if result.settings.get("tie_convergence")
           else "fitted convergence exponent gamma_conv")
    ranges = data_range(result)
    chance = chance_errors(result)
    rows = []
    for size in train_sizes:
        line = predictive_draws(result, float(size))
        run = predictive_draws(result, float(size), n_runs=1, seed=seed)
        for g, (info, name) in enumerate(zip(result.groups, result.group_names)):
            region, factor = _region(float(size), *ranges[g])
            rows.append({
                **info, "name": name,
                "train_size": int(size), "region": region, "factor": float(factor),
                "data_train_sizes": list(ranges[g]), "law": law,
                "eps_star": describe(np.exp(line["log_eps_star"][:, g])),
                "eps_star_run": describe(np.exp(run["log_eps_star"][:, g])),
                "log_lam_star": describe(line["log_lam_star"][:, g]),
                "log_lam_star_run": describe(run["log_lam_star"][:, g]),
            })
            rows[-1].update(_chance_flags(rows[-1]["eps_star"], chance[g]))
    return rows


def chance_errors(result) -> list[float]:
    """Each group's fitted chance-plateau error."""
    return [float(math.exp(v)) for v in result.idata.constant_data["log_chance"].to_numpy()]


def _chance_flags(eps: dict, chance: float) -> dict:
    """``chance_error``, ``above_chance`` (median at or above it), ``reaches_chance`` (the
    90 % interval's upper end at or above it)."""
    return {"chance_error": chance, "above_chance": bool(eps["median"] >= chance),
            "reaches_chance": bool(eps["q95"] >= chance)}
