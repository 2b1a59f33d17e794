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

from .errors import ScalingfitError
from .result import stat_summary

__all__ = ["predictive_draws", "predict", "data_range", "chance_errors", "format_log",
           "interval_text", "log_interval_text", "region_text", "prediction_table"]


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
            rows[-1].update(_chance_flags(rows[-1]["eps_star"], chance[g]))
    return rows


def chance_errors(result) -> list[float | None]:
    """Each group's fitted chance-plateau error (None for a fit that did not record it)."""
    c = result.idata.constant_data
    if "log_chance" not in c:
        return [None] * len(result.groups)
    return [float(math.exp(v)) for v in c["log_chance"].to_numpy()]


def _chance_flags(eps: dict, chance: float | None) -> dict:
    """``chance_error``, ``above_chance`` (median at or above it), ``reaches_chance`` (the
    90 % interval's upper end at or above it)."""
    if chance is None:
        return {"chance_error": None, "above_chance": False, "reaches_chance": False}
    return {"chance_error": chance, "above_chance": bool(eps["median"] >= chance),
            "reaches_chance": bool(eps["q95"] >= chance)}


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


def region_text(row: dict) -> str:
    """``interpolation`` or ``extrapolation x2``, ``extrapolation x3.1e+04``."""
    if row["region"] == "interpolation":
        return "interpolation"
    factor = row["factor"]
    return f"extrapolation x{factor:.3g}" if factor < 1e4 else f"extrapolation x{factor:.2g}"


def _columns(header: list[str], rows: list[list[str]], left=(0,)) -> list[str]:
    """Aligned text columns, two spaces apart: those in ``left`` aligned to the left, the
    rest to the right; every column as wide as its widest cell, so none runs into the next."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header)]
    out.append("-" * len(out[0]))
    return out + [line(r) for r in rows]


def prediction_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`predict`'s rows: medians and 90 % intervals; rows at or
    near the group's chance error are marked, and a note says what that means."""
    header = ["group", "P", "where", "eps* (law)", "eps* (one run)", "lambda* (law)", "chance"]
    cells = []
    for r in rows:
        mark = ("ABOVE CHANCE" if r.get("above_chance")
                else "reaches it" if r.get("reaches_chance") else "")
        chance = "n/a" if r.get("chance_error") is None else f"{r['chance_error']:.3g}"
        cells.append([f"{r['architecture']} / {r['dataset']}", str(r["train_size"]),
                      region_text(r), interval_text(r["eps_star"]),
                      interval_text(r["eps_star_run"]), log_interval_text(r["log_lam_star"]),
                      f"{chance} {mark}".rstrip()])
    lines = _columns(header, cells, left=(0, 2, 6))
    if rows:
        lines.append(f"eps* law: {rows[0]['law']}; intervals: 90 %.")
    if any(r.get("above_chance") for r in rows):
        lines.append("ABOVE CHANCE: the law's median eps* is at or above the group's fitted "
                     "chance error (its plateau): the power laws do not hold there, so that "
                     "prediction is meaningless; expect about the chance error.")
    if any(r.get("reaches_chance") and not r.get("above_chance") for r in rows):
        lines.append("reaches it: the upper end of the 90 % interval is at or above the chance "
                     "error, where the laws stop holding.")
    return "\n".join(lines)
