"""Stage 1: each run's optimum and slope, recovered from its curve."""

from __future__ import annotations

import numpy as np
import pytest

from scalingfit.fitting import prepare
from scalingfit.simulation import SimGroup, simulate
from scalingfit.summaries import summarise_group
from scalingfit.table import validate

GROUP = SimGroup("cnn", "mnist", gamma1=1.4, gamma2=0.5, log_k2=-1.0, eps_star_ref=0.05)


def summarise(table):
    (group,), _ = prepare(validate(table), norm="spectral_complexity",
                          group_by=("architecture", "dataset"))
    return summarise_group(group.curves), group.runs, group.x_center, group.x_scale


def test_noiseless_curves_give_back_their_optima_and_slopes():
    table, truth = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=2, n_steps=40,
                            n_test=None, seed=1, return_truth=True)
    s, runs, center, scale = summarise(table)
    true = truth["runs"].set_index("run_id").loc[runs.index]
    np.testing.assert_allclose(s.x_star * scale + center, true["log_lam_star"], atol=2e-3)
    np.testing.assert_allclose(s.y_star, true["log_eps_star"], atol=2e-3)
    np.testing.assert_allclose(s.gamma / scale, true["gamma"], rtol=2e-3)
    assert not s.censored.any()


def test_binomial_noise_gives_covariances_that_match_the_scatter():
    table, truth = simulate([GROUP], train_sizes=(4000, 8000, 16000, 32000), n_seeds=6,
                            seed=3, return_truth=True)
    s, runs, center, scale = summarise(table)
    true = truth["runs"].set_index("run_id").loc[runs.index]
    pull = (s.x_star * scale + center - true["log_lam_star"]) / (np.sqrt(s.cov[:, 1, 1]) * scale)
    assert 0.5 < np.std(pull) < 2.0, "stage-1 errors should be of the size of the scatter"
    assert np.all(np.linalg.eigvalsh(s.cov) > 0)


def test_a_run_stopped_before_its_optimum_is_censored():
    table, truth = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=2, seed=4,
                            return_truth=True)
    stopped = table["run_id"] == table["run_id"].iloc[0]
    lam_star = np.exp(truth["runs"].set_index("run_id").loc[table["run_id"].iloc[0],
                                                              "log_lam_star"])
    cut = table[~stopped | (table["norm_spectral_complexity"] < 0.8 * lam_star)]
    s, runs, *_ = summarise(cut)
    assert s.censored[list(runs.index).index(table["run_id"].iloc[0])]
    assert s.censored.sum() == 1


@pytest.mark.parametrize("n_test", [10_000, None])
def test_the_extra_noise_is_estimated(n_test):
    table = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=3, n_test=n_test, seed=5)
    if n_test is None:  # multiplicative noise of 5 % that no n_test explains
        rng = np.random.default_rng(0)
        table["test_error"] *= np.exp(rng.normal(0, 0.05, len(table)))
    s, *_ = summarise(table)
    assert s.sigma0 == pytest.approx(0.05, abs=0.015) if n_test is None else s.sigma0 < 0.02
