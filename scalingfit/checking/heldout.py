"""Out of sample: do the combined laws, fitted without some sizes, predict them?

The data are refitted without the largest P of each group (or the sizes given as
``holdout``), with the combined-law model (``γ_conv = γ1·γ2``), and ε*(P) and λ*(P) are
predicted at the held-out sizes with 90 % predictive intervals
(:mod:`scalingfit.checking.prediction`: the mean of as many new runs as were held out at
that P, plus the measurement error of the observed value, below).

**Observed ε*(P)** of a held-out size is the geometric mean, over its runs (seeds), of each
run's stage-1 optimum — the minimum of the curve fitted to the run on the full data
(:mod:`scalingfit.fitting.run_curves`), the same quantity the model's ``y*`` describes, and
less biased by noise than the lowest logged error. A run still improving at its last step
contributes its fitted error there (an upper bound on its ε*); such runs are counted
(``n_censored``). Observed λ*(P) likewise: geometric mean of the runs' fitted optima (the
last point, a lower bound, for runs still improving).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ScalingfitError
from ..fitting.result import describe
from .prediction import predictive_draws

__all__ = ["observed_optima", "default_holdout", "heldout_predictions"]


def observed_optima(result) -> pd.DataFrame:
    """Each run's optimum in raw units (natural logs), as the check defines "observed".

    The stage-1 optimum for a run that reached it; its last point (fitted error, logged
    norm) for a run still improving at its last step (``censored``).
    """
    c = result.idata.constant_data
    g = c["group_index"].to_numpy()
    z = c["z"].to_numpy()
    censored = c["censored"].to_numpy().astype(bool)
    x_std = np.where(censored, c["x_last"].to_numpy(), z[:, 1])
    y = np.where(censored, c["y_last"].to_numpy(), z[:, 2])
    scale, center = c["x_scale"].to_numpy()[g], c["x_center"].to_numpy()[g]
    cov, loading = c["z_cov"].to_numpy(), c["loading"].to_numpy()
    return pd.DataFrame({
        "run_id": c["run"].to_numpy(), "group_index": g,
        "train_size": c["train_size"].to_numpy().astype(int), "censored": censored,
        "log_lam_star": center + scale * x_std, "log_eps_star": y,
        # measurement error of the stage-1 optimum: its own variance, and its loadings on
        # the group's shared-shape error (common to all runs, so not averaged away)
        "var_log_eps": np.where(censored, c["y_last_sd"].to_numpy() ** 2, cov[:, 2, 2]),
        "var_log_lam": np.where(censored, 0.0, scale**2 * cov[:, 1, 1]),
    }).assign(load_eps=list(loading[:, 2, :]), load_lam=list(scale[:, None] * loading[:, 1, :]))


def default_holdout(result) -> dict[int, list[int]]:
    """The largest P of each group (by group index)."""
    optima = observed_optima(result)
    return {g: [int(rows["train_size"].max())] for g, rows in optima.groupby("group_index")}


def _observed_mean(runs: pd.DataFrame) -> dict:
    """Geometric means over runs, and the variance of their logs' measurement error."""
    n = len(runs)
    load_eps = np.mean(np.stack(runs["load_eps"].to_list()), axis=0)
    load_lam = np.mean(np.stack(runs["load_lam"].to_list()), axis=0)
    return {"log_eps_star": float(runs["log_eps_star"].mean()),
            "log_lam_star": float(runs["log_lam_star"].mean()),
            "var_log_eps": float(runs["var_log_eps"].sum() / n**2 + load_eps @ load_eps),
            "var_log_lam": float(runs["var_log_lam"].sum() / n**2 + load_lam @ load_lam),
            "n_runs": n, "n_censored": int(runs["censored"].sum())}


def heldout_predictions(refit, full, holdout: dict[int, list[int]], *,
                        seed: int | None = None) -> list[list[dict]]:
    """Predictions of the held-out sizes by ``refit``, beside what ``full`` observed.

    Parameters
    ----------
    refit : FitResult
        Fitted without the held-out sizes (normally with ``tie_convergence=True``).
    full : FitResult
        Fitted to all the data; gives the observed optima (:func:`observed_optima`).
    holdout : dict
        Group index → held-out sizes.

    Returns
    -------
    list (per group of ``full``) of lists of dict
        ``train_size``, ``observed_eps_star``, ``pred_eps_star`` (S), ``covered``,
        ``observed_log_lam_star``, ``pred_log_lam_star`` (S, natural log), ``n_runs``,
        ``n_censored``, ``extrapolation_factor``.
    """
    optima = observed_optima(full)
    full_names, refit_names = full.group_names, refit.group_names
    rng = np.random.default_rng(refit.settings.get("seed", 0) if seed is None else seed)
    out = []
    for g, name in enumerate(full_names):
        entries = []
        if name not in refit_names:
            raise ScalingfitError(f"group {name} is missing from the refit.")
        r = refit_names.index(name)
        refit_sizes = refit.idata.constant_data["train_size"].to_numpy()[
            refit.idata.constant_data["group_index"].to_numpy() == r]
        for size in holdout.get(g, []):
            runs = optima[(optima["group_index"] == g) & (optima["train_size"] == size)]
            if runs.empty:
                continue
            obs = _observed_mean(runs)
            draws = predictive_draws(refit, size, n_runs=obs["n_runs"],
                                     seed=int(rng.integers(2**31)))
            noise = rng.standard_normal((2, len(draws["log_eps_star"])))
            log_eps = draws["log_eps_star"][:, r] + math.sqrt(obs["var_log_eps"]) * noise[0]
            log_lam = draws["log_lam_star"][:, r] + math.sqrt(obs["var_log_lam"]) * noise[1]
            pred = describe(np.exp(log_eps))
            observed = math.exp(obs["log_eps_star"])
            entries.append({
                "train_size": int(size), "observed_eps_star": observed, "pred_eps_star": pred,
                "covered": bool(pred["q05"] <= observed <= pred["q95"]),
                "observed_log_lam_star": obs["log_lam_star"],
                "pred_log_lam_star": describe(log_lam),
                "lam_covered": bool(np.quantile(log_lam, 0.05) <= obs["log_lam_star"]
                                    <= np.quantile(log_lam, 0.95)),
                "n_runs": obs["n_runs"], "n_censored": obs["n_censored"],
                "extrapolation_factor": float(size / refit_sizes.max()) if size
                > refit_sizes.max() else float(refit_sizes.min() / size) if size
                < refit_sizes.min() else 1.0})
        out.append(entries)
    return out
