"""PSIS-LOO comparison of the combined-law model with the free convergence exponent.

What is left out is one training-set size at a time (one ``(group, P)`` level: all the
runs, every seed, at that P). That is the unit the laws extrapolate over — a law in P is
judged by how well it predicts a P it has not seen — and the unit the model's likelihood
factorises over once the P-level deviations are integrated out
(:func:`scalingfit.fitting.likelihood.level_loglik`, the very formula the sampler used).

Both models are fitted to the same stage-1 estimates, so their ELPDs are comparable. The
difference ``elpd(combined) − elpd(free)`` is positive when tying ``γ_conv`` to ``γ1·γ2``
predicts unseen sizes better; its standard error is ``√n · sd`` of the pointwise
differences (as :func:`arviz.compare` computes it). With a handful of levels per group the
per-group standard errors are rough, and Pareto ``k`` above 0.7 marks levels whose
leave-one-out estimate is unreliable: both are reported, not hidden.

``refit=True`` replaces those estimates by exact ones (:func:`exact_level_elpd`): stage 2 is
refitted without the level's runs and the level's likelihood averaged over the new draws.
Stage 1 is not redone, so the group's shared curve shape (plateau, departure sharpness) is
still the one fitted with that level's runs: a small leak, for parameters that the
exponents depend on only through the shape error that stage 2 samples.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from ..fitting.likelihood import PARAMS, level_loglik

__all__ = ["level_labels", "level_log_likelihood", "loo", "exact_level_elpd", "compare"]

K_GOOD = 0.7  # Pareto k above this: that level's PSIS estimate is unreliable


def level_labels(result) -> list[str]:
    """``"group / P=size"`` for each (group, P) level, in the model's level order."""
    c = result.idata.constant_data
    level, group = c["level_index"].to_numpy(), c["group_index"].to_numpy()
    size, names = c["train_size"].to_numpy(), result.group_names
    labels = [""] * (level.max() + 1)
    for lv, g, p in zip(level, group, size, strict=True):
        labels[lv] = f"{names[g]} / P={int(p)}"
    return labels


def level_log_likelihood(result) -> xr.DataArray:
    """Log likelihood of each (group, P) level at every posterior draw: (chain, draw, level)."""
    posterior = result.idata.posterior
    out = _draws_loglik(result.run_estimates(), posterior,
                        result.settings["at_end"])
    return xr.DataArray(out, dims=("chain", "draw", "level"),
                        coords={"chain": posterior["chain"], "draw": posterior["draw"],
                                "level": level_labels(result)}, name="summaries")


def _draws_loglik(data, posterior, at_end) -> np.ndarray:
    """(chain, draw, level) log likelihood of ``data``'s levels under ``posterior``'s draws."""
    values = {k: posterior[k].to_numpy() for k in PARAMS}
    n_chains, n_draws = values["gamma2"].shape[:2]
    out = np.empty((n_chains, n_draws, data.n_levels))
    for chain in range(n_chains):
        for draw in range(n_draws):
            p = {k: v[chain, draw] for k, v in values.items()}
            out[chain, draw] = level_loglik(data, p, at_end=at_end)
    return out


def exact_level_elpd(result, level: int, *, progress: bool = False) -> float:
    """The exact leave-one-level-out ELPD of ``level``: stage 2 refitted without its runs
    (same model, sampler, seed, chains and draws), the level's likelihood averaged over the
    refit's draws, ``log mean exp``."""
    from ..fitting.model import build_model
    from ..fitting.sampling import sample

    data = result.run_estimates()
    rest = data.without_level(level)
    settings = result.settings
    posterior = result.idata.posterior
    model = build_model(rest, at_end=settings["at_end"],
                        tie_convergence=bool(settings.get("tie_convergence")))
    refit = sample(model, sampler=settings.get("sampler"), seed=settings.get("seed"),
                   chains=posterior.sizes["chain"], draws=posterior.sizes["draw"],
                   progress=progress).posterior
    loglik = _draws_loglik(data, refit, settings["at_end"])[..., level].ravel()
    return float(logsumexp(loglik) - np.log(loglik.size))


def loo(result):
    """PSIS-LOO over (group, P) levels; returns arviz's ELPDData and its warnings."""
    idata = az.InferenceData(posterior=result.idata.posterior[["gamma1"]],
                             log_likelihood=xr.Dataset({"summaries":
                                                        level_log_likelihood(result)}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        elpd = az.loo(idata, pointwise=True)
    return elpd, sorted({str(w.message).split("\n")[0] for w in caught})


def compare(combined, free, *, refit: bool = False, k_limit: float = K_GOOD,
            progress: bool = False) -> dict:
    """ELPD of both models and their difference, overall and per group.

    Parameters
    ----------
    combined, free : FitResult
        The same data fitted with ``tie_convergence=True`` and ``False``.
    refit : bool
        Replace the PSIS estimate of every level whose Pareto k exceeds ``k_limit`` by the
        exact one (:func:`exact_level_elpd`: one stage-2 refit per such level and model).

    Returns
    -------
    dict
        ``{"unit", "combined": {...}, "free": {...}, "elpd_diff", "se_diff", "favours",
        "groups": {group: {"elpd_diff", "se_diff", "n_levels", "favours"}},
        "warnings"}``; ``elpd_diff = elpd(combined) − elpd(free)``. Per model,
        ``n_pareto_k_above_0.7`` counts the unreliable PSIS estimates and ``refitted`` lists
        the levels whose estimate is exact instead (with ``refit``).
    """
    fits, notes, pointwise, refitted = {}, [], {}, {}
    for name, result in (("combined", combined), ("free", free)):
        elpd, caught = loo(result)
        fits[name] = elpd
        notes += [f"{name}: {message}" for message in caught]
        pointwise[name] = elpd.loo_i.to_numpy().copy()
        refitted[name] = []
        if refit:
            for level in np.flatnonzero(elpd.pareto_k.to_numpy() > k_limit):
                pointwise[name][level] = exact_level_elpd(result, int(level), progress=progress)
                refitted[name].append(level_labels(result)[level])
    diff = pointwise["combined"] - pointwise["free"]
    labels = level_labels(free)
    if labels != level_labels(combined):
        raise ValueError("the two fits have different (group, P) levels; fit the same table.")
    groups = {}
    for name in free.group_names:
        mine = np.array([label.startswith(f"{name} / P=") for label in labels])
        groups[str(name)] = _difference(diff[mine])
    out = {"unit": "leave one (group, P) level out: all runs at one training-set size",
           **{name: {"elpd_loo": float(pointwise[name].sum()),
                     "se": float(np.sqrt(len(pointwise[name]) * pointwise[name].var())),
                     "p_loo": float(e.p_loo), "n_levels": int(e.n_data_points),
                     "pareto_k_max": float(np.max(e.pareto_k.to_numpy())),
                     "n_pareto_k_above_0.7": int(np.sum(e.pareto_k.to_numpy() > K_GOOD)),
                     "refitted": refitted[name]}
              for name, e in fits.items()},
           **_difference(diff), "groups": groups, "warnings": notes}
    return out


def _difference(diff: np.ndarray) -> dict:
    total = float(diff.sum())
    se = float(np.sqrt(len(diff) * diff.var(ddof=1))) if len(diff) > 1 else float("nan")
    if not np.isfinite(se) or abs(total) < 2 * se:
        favours = "neither (|difference| < 2 SE)"
    else:
        favours = "combined" if total > 0 else "free"
    return {"elpd_diff": total, "se_diff": se, "n_levels": int(len(diff)), "favours": favours}
