"""Predicted best error ε*(P) and optimal norm λ*(P) at any training-set size, from a fit.

The stage-2 model (:mod:`scalingfit.model`) places the optimum of a run of group ``g`` at
``ℓ = log P − ℓ̄_g`` (``ℓ̄_g``: the group's mean log P) at

.. math::

    \\log ε^*  &= ν_g − γ_{conv,g}\\,ℓ                 + ω^y_g δ^y + σ^y_g e^y \\\\
    \\log λ^*  &= \\bar x_g + s_g κ_g + γ_{2,g}\\,ℓ    + s_g(ω^x_g δ^x + σ^x_g e^x)

(``x̄_g, s_g``: how log λ was standardised). Three predictions follow, each a posterior
(predictive) distribution:

- **the law** (``n_runs=None``): ``ν − γ_conv ℓ``, the line itself; its interval is the
  uncertainty of the exponent and intercept only;
- **one new run** (``n_runs=1``): a new P brings its own deviation from the power law
  (``δ``, sd ``ω``) and a new seed its own scatter (``e``, sd ``σ``);
- **the mean of k new runs** at one new P (``n_runs=k``): the seed scatter shrinks as
  ``σ/√k``, the P-level deviation does not.

In a combined-law fit (``tie_convergence=True``) ``γ_conv = γ1·γ2``, so the prediction of
ε* is the one the two dynamical laws make together; in a free fit it follows the fitted
convergence exponent. Every prediction says which.

A size inside the group's range of P is an interpolation; outside, an extrapolation, with
the factor by which it lies beyond the nearest P of the data.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ScalingfitError
from .result import stat_summary

__all__ = ["predictive_draws", "predict", "data_range", "format_log", "interval_text",
           "log_interval_text", "prediction_table"]


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
    log_eps = result.draws("nu") - result.draws("gamma_conv") * ell
    log_lam = x_center + x_scale * result.draws("kappa") + result.draws("gamma2") * ell
    if n_runs is not None:
        if n_runs < 1:
            raise ScalingfitError(f"n_runs must be at least 1, got {n_runs}.")
        rng = np.random.default_rng(result.settings.get("seed", 0) if seed is None else seed)
        seeded = c["seeded_levels"].to_numpy().astype(float)
        shape = log_eps.shape
        # a new P: its own deviation from the laws (ω, only where the fit could tell it
        # from seed scatter), and k new seeds about it (σ/√k)
        log_eps = (log_eps + result.draws("omega_y") * seeded * rng.standard_normal(shape)
                   + result.draws("sigma_y") / math.sqrt(n_runs) * rng.standard_normal(shape))
        log_lam = log_lam + x_scale * (
            result.draws("omega_x") * seeded * rng.standard_normal(shape)
            + result.draws("sigma_x") / math.sqrt(n_runs) * rng.standard_normal(shape))
    return {"log_eps_star": log_eps, "log_lam_star": log_lam}


def data_range(result) -> list[tuple[int, int]]:
    """The smallest and largest P of each group's runs."""
    c = result.idata.constant_data
    sizes, group = c["train_size"].to_numpy(), c["group_index"].to_numpy()
    return [(int(sizes[group == g].min()), int(sizes[group == g].max()))
            for g in range(len(result.groups))]


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
        One per (group, P): ``architecture``, ``dataset``, ``train_size``, ``region``
        (``interpolation``/``extrapolation``), ``factor`` (how far beyond the nearest P of
        the data; 1 inside), ``law`` (which convergence exponent), and the summaries
        ``{"mean", "median", "sd", "q05", "q95"}`` of ``eps_star`` (the law) and
        ``eps_star_run`` (one new run), and of ``log_lam_star`` and ``log_lam_star_run``
        (natural log of the norm: norms may exceed the float range).
    """
    law = ("combined: gamma_conv = gamma1*gamma2" if result.settings.get("tie_convergence")
           else "fitted convergence exponent gamma_conv")
    ranges = data_range(result)
    rows = []
    for size in train_sizes:
        line = predictive_draws(result, float(size))
        run = predictive_draws(result, float(size), n_runs=1, seed=seed)
        for g, info in enumerate(result.groups):
            region, factor = _region(float(size), *ranges[g])
            rows.append({
                "architecture": str(info["architecture"]), "dataset": str(info["dataset"]),
                "train_size": int(size), "region": region, "factor": float(factor),
                "data_train_sizes": list(ranges[g]), "law": law,
                "eps_star": stat_summary(np.exp(line["log_eps_star"][:, g])),
                "eps_star_run": stat_summary(np.exp(run["log_eps_star"][:, g])),
                "log_lam_star": stat_summary(line["log_lam_star"][:, g]),
                "log_lam_star_run": stat_summary(run["log_lam_star"][:, g]),
            })
    return rows


def format_log(log_value: float, digits: int = 3) -> str:
    """``e^log_value`` written as ``1.23e+130`` without computing it (it may overflow);
    plainly (``15.5``) when it lies between 1e-3 and 1e4."""
    decimal = log_value / math.log(10)
    if -3 <= decimal < 4:
        return f"{math.exp(log_value):.{max(digits, 3)}g}"
    exponent = math.floor(decimal)
    mantissa = 10 ** (decimal - exponent)
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f}e{exponent:+03d}"


def interval_text(s: dict) -> str:
    """``median [q05, q95]`` of a summary S."""
    return f"{s['median']:.4g} [{s['q05']:.4g}, {s['q95']:.4g}]"


def log_interval_text(s: dict) -> str:
    """``median [q05, q95]`` of a summary S of natural logs, written as the values."""
    return f"{format_log(s['median'])} [{format_log(s['q05'], 2)}, {format_log(s['q95'], 2)}]"


def prediction_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`predict`'s rows: medians and 90 % intervals."""
    header = (f"{'group':<26}{'P':>9}  {'where':<22}{'eps* (law)':>31}{'eps* (one run)':>31}"
              f"{'lambda* (law)':>34}")
    lines = [header, "-" * len(header)]
    for r in rows:
        where = (r["region"] if r["region"] == "interpolation"
                 else f"extrapolation x{r['factor']:.3g}")
        name = f"{r['architecture']} / {r['dataset']}"
        lines.append(f"{name:<26}{r['train_size']:>9}  {where:<22}"
                     f"{interval_text(r['eps_star']):>31}{interval_text(r['eps_star_run']):>31}"
                     f"{log_interval_text(r['log_lam_star']):>34}")
    if rows:
        lines.append(f"eps* law: {rows[0]['law']}; intervals: 90 %.")
    return "\n".join(lines)
