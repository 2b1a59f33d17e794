"""Run NUTS (nutpie or PyMC) on a model and compute the convergence diagnostics."""

from __future__ import annotations

import logging
import os

import arviz as az
import numpy as np
import pymc as pm

from ..errors import MissingDependencyError
from ..progress import status
from ..settings import rc

__all__ = ["sample", "diagnostics", "resolve_sampler"]


def resolve_sampler(sampler: str | None) -> str:
    """``auto`` means nutpie when the ``fast`` extra is installed, else PyMC's own NUTS."""
    sampler = sampler or rc["sample.sampler"]
    if sampler not in ("auto", "pymc", "nutpie"):
        raise ValueError(f"sampler must be 'auto', 'pymc' or 'nutpie', got {sampler!r}")
    if sampler == "pymc":
        return sampler
    try:
        import nutpie  # noqa: F401
    except ImportError as err:
        if sampler == "nutpie":
            raise MissingDependencyError(
                "the nutpie sampler is not installed. Install it with: "
                "pip install 'scalingfit[fast]', or use --sampler pymc") from err
        return "pymc"
    return "nutpie"


def sample(model: pm.Model, *, sampler=None, draws=None, tune=None, chains=None, seed=None,
           target_accept=None, progress: bool = True):
    """Draw from the posterior of ``model``; the same seed gives the same draws.

    Returns
    -------
    arviz.InferenceData
        With ``posterior`` (deterministics included) and ``sample_stats``.
    """
    sampler = resolve_sampler(sampler)
    draws = draws or rc["sample.draws"]
    tune = tune or rc["sample.tune"]
    chains = chains or rc["sample.chains"]
    seed = rc["sample.seed"] if seed is None else seed
    target_accept = target_accept or rc["sample.target_accept"]
    cores = rc["sample.cores"] or max(1, min(chains, os.cpu_count() or 1))
    if sampler == "nutpie":
        import nutpie
        import pytensor

        # without fastmath, LLVM may not reorder floating-point sums, so the same seed gives
        # the same draws whether the log density was just compiled (and inlined) or loaded
        # from numba's cache (with it, they differed in the 4th digit); the sampling time
        # is the same
        with status(progress, "compiling the model for nutpie (numba; 20-90 s)"), \
                pytensor.config.change_flags(numba__fastmath=False):
            compiled = nutpie.compile_pymc_model(model)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores,
                              seed=seed, progress_bar=progress, target_accept=target_accept,
                              save_warmup=False)
    else:
        logger = logging.getLogger("pymc")  # its "Initializing NUTS ..." lines are progress
        level = logger.level
        if not progress:
            logger.setLevel(logging.WARNING)
        try:
            with model:
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                                  random_seed=seed, progressbar=progress,
                                  target_accept=target_accept, compute_convergence_checks=False)
        finally:
            logger.setLevel(level)
    return idata


def diagnostics(idata, var_names=None) -> dict:
    """Max R-hat, min bulk and tail ESS, divergences, and whether they pass rc's limits."""
    posterior = idata.posterior
    if var_names is not None:
        posterior = posterior[list(var_names)]
    with np.errstate(invalid="ignore", divide="ignore"):
        # a quantity fixed by construction (the size scatter of a group with one run per
        # size) has no R-hat or ESS: NaN, left out below
        rhat = az.rhat(posterior)
        ess_bulk = az.ess(posterior, method="bulk")
        ess_tail = az.ess(posterior, method="tail")

    def extreme(dataset, fn):
        values = np.concatenate([np.ravel(v) for v in dataset.data_vars.values()])
        values = values[np.isfinite(values)]
        return float(fn(values)) if values.size else float("nan")

    diverging = idata.sample_stats.get("diverging")
    result = {
        "rhat_max": extreme(rhat, np.nanmax),
        "ess_bulk_min": extreme(ess_bulk, np.nanmin),
        "ess_tail_min": extreme(ess_tail, np.nanmin),
        "divergences": int(diverging.sum()) if diverging is not None else 0,
        "draws": int(posterior.sizes["draw"]),
        "chains": int(posterior.sizes["chain"]),
    }
    result["passed"] = bool(result["rhat_max"] <= rc["diagnostics.rhat_max"]
                            and result["ess_bulk_min"] >= rc["diagnostics.ess_min"]
                            and result["ess_tail_min"] >= rc["diagnostics.ess_min"]
                            and result["divergences"] == 0)
    return result
