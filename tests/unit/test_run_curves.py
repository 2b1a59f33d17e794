"""Stage 1: each run's optimum and slope, recovered from its curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalingfit.fitting.groups import prepare
from scalingfit.fitting.laws import capped_optimum, learning_curve
from scalingfit.fitting.run_curves import _inverse_factor, _summary_jacobians, fit_run_curves
from scalingfit.fitting.simulation import SimGroup, simulate
from scalingfit.ingest.table import validate

GROUP = SimGroup("cnn", "mnist", gamma1=1.4, gamma2=0.5, log_k2=-1.0, eps_star_ref=0.05)


def summarise(table):
    (group,), _ = prepare(validate(table), norm="spectral_complexity",
                          group_by=("architecture", "dataset"))
    return fit_run_curves(group.curves), group.runs, group.x_center, group.x_scale


def test_noiseless_curves_give_back_their_optima_and_slopes():
    table, truth = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=2, n_steps=40,
                            n_test=None, seed=1, return_truth=True)
    s, runs, center, scale = summarise(table)
    true = truth["runs"].set_index("run_id").loc[runs.index]
    np.testing.assert_allclose(s.x_star * scale + center, true["log_lam_star"], atol=2e-3)
    np.testing.assert_allclose(s.y_star, true["log_eps_star"], atol=2e-3)
    np.testing.assert_allclose(s.gamma / scale, true["gamma"], rtol=2e-3)
    assert not s.censored.any()


@pytest.mark.parametrize("sharpness, low, high", [(None, 0.95, 1.0), (0.07, 0.0, 0.45)],
                         ids=["straight-stretch", "all-bend"])
def test_reach_says_whether_a_run_shows_its_envelope_slope(sharpness, low, high):
    # a departure as sharp as the example's leaves a straight stretch at slope γ; a very
    # soft one bends from the plateau into the rise without ever falling at γ
    group = SimGroup("cnn", "mnist", gamma1=1.0, gamma2=0.5, sharpness=sharpness)
    s, *_ = summarise(simulate([group], train_sizes=(4000, 16000), n_seeds=3, n_test=None,
                               seed=1))
    assert low <= np.median(s.reach) <= high
    assert np.all(s.reach <= 1 + 1e-6)


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


def test_runs_that_never_touch_the_plateau_leave_it_without_variance():
    """Runs logged only far below chance say nothing of the plateau: no error, and its
    unidentified direction adds no uncertainty to the runs' summaries."""
    table, truth = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=3, seed=6,
                            return_truth=True)
    s, runs, center, scale = summarise(table[table["test_error"] < 0.2])
    true = truth["runs"].set_index("run_id").loc[runs.index]
    assert np.all(np.isfinite(s.shared_loading))
    np.testing.assert_allclose(s.x_star * scale + center, true["log_lam_star"], atol=0.05)


def test_the_shared_factor_drops_directions_without_information():
    # a rounding-level negative eigenvalue, as a Schur complement of 64 runs can have
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    information = rotation @ np.diag([20.0, 0.5, 1e-13, -1e-15]) @ rotation.T
    factor = _inverse_factor(information)
    expected = rotation[:, :2] @ np.diag([1 / 20.0, 1 / 0.5]) @ rotation[:, :2].T
    np.testing.assert_allclose(factor @ factor.T, expected, atol=1e-12)


def test_optima_near_a_soft_chance_plateau_are_the_best_errors():
    """With a soft cap near the optimum, the curve's minimum lies well below its uncapped
    y*: the summaries report the minimum, as the runs show it."""
    log_c, h, frames = np.log(0.5), 1.5, []
    for k, size in enumerate((500, 1000, 2000, 4000)):
        for seed in range(2):
            x_star, y_star = 0.5 * np.log(size) - 2.0 + 0.02 * seed, -0.8 - 0.4 * k
            x = np.linspace(x_star - 4, x_star + 1.5, 40)
            frames.append(pd.DataFrame({
                "run_id": f"P{size}-s{seed}", "train_size": size, "step": np.arange(40),
                "test_error": np.exp(learning_curve(x, x_star, y_star, 0.7, 0.3, 2.0, log_c, h)),
                "norm_spectral_complexity": np.exp(x)}))
    table = pd.concat(frames, ignore_index=True)
    s, runs, *_ = summarise(table)
    best = np.log(table.groupby("run_id")["test_error"].min().loc[runs.index])
    np.testing.assert_allclose(s.y_star, best, atol=0.01)


def test_the_summary_jacobians_match_finite_differences():
    theta, log_c, log_h = np.array([0.3, -0.9, 0.1, -1.0]), np.log(0.5), np.log(1.5)

    def best(t, lc, lh):
        return capped_optimum(t[1], lc, np.exp(lh))

    own, direct = _summary_jacobians(theta, best(theta, log_c, log_h), log_c, log_h)
    step = 1e-6
    numeric_own = [(best(theta + step * e, log_c, log_h) - best(theta - step * e, log_c, log_h))
                   / (2 * step) for e in np.eye(4)]
    np.testing.assert_allclose(own[2], numeric_own, atol=1e-7)
    assert own[0, 2] == pytest.approx(np.exp(theta[2])) and own[1, 0] == 1.0
    numeric_c = (best(theta, log_c + step, log_h) - best(theta, log_c - step, log_h)) / (2 * step)
    numeric_h = (best(theta, log_c, log_h + step) - best(theta, log_c, log_h - step)) / (2 * step)
    np.testing.assert_allclose(direct[2], [0.0, numeric_c, numeric_h, 0.0], atol=1e-7)
