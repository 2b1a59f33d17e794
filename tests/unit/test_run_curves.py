"""Stage 1: each group's envelope and each run's optimum, offset and shape, recovered from
its points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from scalingfit.fitting import run_curves
from scalingfit.fitting.groups import prepare
from scalingfit.fitting.laws import cap, departure, envelope
from scalingfit.fitting.run_curves import _inverse_factor, _Model, _summary_jacobian, fit_run_curves
from scalingfit.fitting.simulation import SimGroup, simulate
from scalingfit.ingest.table import validate

GROUP = SimGroup("cnn", "mnist", gamma1=1.4, gamma2=0.5, log_k2=-1.0, eps_star_ref=0.05)


def fit_one(table):
    (group,), _ = prepare(validate(table), norm="spectral_complexity",
                          group_by=("architecture", "dataset"))
    return fit_run_curves(group.curves), group


def raw_gamma1(curves, group):
    """The envelope's mean slope between the smallest and the largest optimum, raw units."""
    fitted = curves.fitted_runs
    lo, hi = np.min(curves.x_star[fitted]), np.max(curves.x_star[fitted])
    ends = envelope(np.array([lo, hi]), curves.log_slopes, curves.knots, curves.width)
    return -(ends[1] - ends[0]) / (hi - lo) / group.x_scale


def test_noiseless_curves_of_the_model_give_back_their_optima_and_envelope_slope():
    exact = replace(GROUP, scatter_gamma=0.0)  # every run on one straight envelope
    table, truth = simulate([exact], train_sizes=(4000, 8000, 16000), n_seeds=2, n_steps=40,
                            n_test=None, seed=1, return_truth=True)
    c, group = fit_one(table)
    true = truth["runs"].set_index("run_id").loc[group.runs.index]
    x_star = c.x_star * group.x_scale + group.x_center
    np.testing.assert_allclose(x_star, true["log_lam_star"], atol=1e-3)
    np.testing.assert_allclose(c.y_star, true["log_eps_star"], atol=1e-3)
    assert raw_gamma1(c, group) == pytest.approx(GROUP.gamma1, rel=1e-3)
    assert not c.censored.any() and (c.shape == "optimum").all()
    assert c.point_coverage_group > 0.95


@pytest.mark.parametrize("seed", [0, 1])
def test_the_envelope_slope_is_recovered_from_noisy_curves(seed):
    """48 runs with binomial noise, as the recovery benchmarks have them."""
    table = simulate([GROUP], train_sizes=(4000, 6000, 8000, 12000, 16000, 24000, 32000,
                                           48000), n_seeds=6, seed=seed)
    c, group = fit_one(table)
    assert raw_gamma1(c, group) == pytest.approx(GROUP.gamma1, rel=0.06)
    assert 0.85 < c.point_coverage_group < 0.97


def test_a_bending_envelope_is_followed_where_the_points_show_it():
    """Curves on an envelope whose slope halves along the range: the fitted envelope's
    local slope follows it, and every run's points stay inside their intervals."""
    knots, width = np.linspace(-3, 3, 5), 0.4
    true_log_slopes = np.log([2.0, 1.6, 1.2, 1.0])  # per unit x
    rng = np.random.default_rng(2)
    frames = []
    for k, size in enumerate((1000, 2000, 4000, 8000, 16000)):
        for seed in range(3):
            x_dep = -1.6 + 0.7 * k + rng.normal(0, 0.03)
            x = np.linspace(-3.2, x_dep + 1.2, 50)
            f = (envelope(x, true_log_slopes, knots, width) - 2.0
                 + departure(x, x_dep, 2.5, 3.0))
            eps = np.exp(cap(f, np.log(0.9), 10.0))
            frames.append(pd.DataFrame({
                "run_id": f"P{size}-s{seed}", "train_size": size, "step": np.arange(50),
                "n_test": 20000, "test_error": rng.binomial(20000, eps) / 20000,
                "norm_spectral_complexity": np.exp(3.0 * x)}))
    c, group = fit_one(pd.concat(frames, ignore_index=True))
    at = np.array([-2.0, 0.5])  # below the plateau, where runs still on the envelope are
    x_std = (at * 3.0 - group.x_center) / group.x_scale
    local = -envelope(x_std, c.log_slopes, c.knots, c.width, derivative=True) / group.x_scale
    true = -envelope(at, true_log_slopes, knots, width, derivative=True) / 3.0
    np.testing.assert_allclose(local, true, rtol=0.15)
    assert local[0] > 1.3 * local[1]  # the drift is seen, not averaged away
    assert np.all(c.point_coverage > 0.7)


def test_binomial_noise_gives_covariances_that_match_the_scatter():
    table, truth = simulate([GROUP], train_sizes=(4000, 8000, 16000, 32000), n_seeds=6,
                            seed=3, return_truth=True)
    c, group = fit_one(table)
    true = truth["runs"].set_index("run_id").loc[group.runs.index]
    error = c.x_star * group.x_scale + group.x_center - true["log_lam_star"]
    pull = error / (np.sqrt(c.cov[:, 1, 1]) * group.x_scale)
    assert 0.5 < np.std(pull) < 2.0, "stage-1 errors should be of the size of the scatter"
    assert np.all(np.linalg.eigvalsh(c.cov) > -1e-12)


def test_runs_stopped_before_their_optimum_have_none_in_range():
    table = simulate([replace(GROUP, stop_early=0.5)], train_sizes=(4000, 16000), n_seeds=3,
                     seed=4)
    c, group = fit_one(table)
    stopped = group.runs["train_size"].to_numpy() == 16000
    assert c.censored[stopped].all() and not c.censored[~stopped].any()
    assert (c.shape[stopped] == "no_optimum").all()
    np.testing.assert_allclose(c.x_star[stopped], c.x_last[stopped])


def test_a_run_stuck_at_chance_is_left_out_and_does_not_move_the_others():
    stuck = replace(GROUP, stuck_runs=1)
    table = simulate([stuck], train_sizes=(4000, 8000, 16000), n_seeds=3, seed=5)
    clean = table[table["run_id"] != "cnn-mnist-P4000-s0"]
    c, group = fit_one(table)
    c_clean, group_clean = fit_one(clean)
    assert list(group.runs.index[~c.fitted_runs]) == ["cnn-mnist-P4000-s0"]
    assert c.shape[~c.fitted_runs][0] == "plateau_only"
    raw = c.x_star[c.fitted_runs] * group.x_scale + group.x_center
    raw_clean = c_clean.x_star * group_clean.x_scale + group_clean.x_center
    np.testing.assert_allclose(raw, raw_clean, atol=0.01)


def test_a_curve_that_dips_twice_is_classified():
    x = np.linspace(-3, 3, 80)
    rng = np.random.default_rng(0)
    frames = []
    for k, size in enumerate((1000, 4000, 16000)):
        for seed in range(2):
            f = -0.8 * x - 2 + departure(x, 0.5 + 0.8 * k, 1.2, 4.0)
            if k == 2:  # a bump in the descent: two dips
                f = f + 1.5 * np.exp(-((x - 1.0) ** 2) / 0.5)
            eps = np.exp(cap(f, np.log(0.9), 10.0))
            frames.append(pd.DataFrame({
                "run_id": f"P{size}-s{seed}", "train_size": size, "step": np.arange(80),
                "n_test": 50000, "test_error": rng.binomial(50000, eps) / 50000,
                "norm_spectral_complexity": np.exp(x)}))
    c, group = fit_one(pd.concat(frames, ignore_index=True))
    assert (c.shape[group.runs["train_size"].to_numpy() == 16000] == "two_minima").all()
    assert not (c.shape[group.runs["train_size"].to_numpy() < 16000] == "two_minima").any()


def test_runs_starting_far_below_chance_are_flagged():
    table = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=2, seed=6)
    first = table.groupby("run_id").head(8).index  # large-P runs: drop their plateau
    late = table["train_size"] == 16000
    c, group = fit_one(table.drop(index=first[late.loc[first].to_numpy()]))
    big = group.runs["train_size"].to_numpy() == 16000
    assert c.starts_below_chance[big].all() and not c.starts_below_chance[~big].any()


@pytest.mark.parametrize("n_test", [10_000, None])
def test_the_extra_noise_is_estimated(n_test):
    table = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=3, n_test=n_test, seed=5)
    if n_test is None:  # multiplicative noise of 5 % that no n_test explains
        rng = np.random.default_rng(0)
        table["test_error"] *= np.exp(rng.normal(0, 0.05, len(table)))
    c, _ = fit_one(table)
    assert c.sigma0 == pytest.approx(0.05, abs=0.015) if n_test is None else c.sigma0 < 0.02


def test_the_shared_factor_drops_directions_without_information():
    # a rounding-level negative eigenvalue, as a Schur complement of 64 runs can have
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    information = rotation @ np.diag([20.0, 0.5, 1e-13, -1e-15]) @ rotation.T
    factor = _inverse_factor(information)
    expected = rotation[:, :2] @ np.diag([1 / 20.0, 1 / 0.5]) @ rotation[:, :2].T
    np.testing.assert_allclose(factor @ factor.T, expected, atol=1e-12)


def test_the_jacobians_match_finite_differences():
    """The curve's Jacobian (least squares) and the estimates' (x*, y* by the implicit
    function and envelope theorems), against central differences."""
    table = simulate([GROUP], train_sizes=(4000, 16000), n_seeds=2, seed=7)
    (group,), _ = prepare(validate(table), norm="spectral_complexity",
                          group_by=("architecture", "dataset"))
    model = _Model(group.curves, np.ones(group.curves.n_runs, bool))
    params = run_curves._initial_guess(model, np.log(0.9))
    weight = np.ones(len(model.x))
    jac = model.jac(params, weight).toarray()
    step = 1e-6
    numeric = np.column_stack([
        (model.residuals(params + step * e, weight) - model.residuals(params - step * e,
                                                                       weight)) / (2 * step)
        for e in np.eye(len(params))])
    np.testing.assert_allclose(jac, numeric, atol=1e-5)

    x_star, y_star, censored = run_curves._optima(model, params)
    own, shared = _summary_jacobian(model, params, x_star, censored)
    r = int(np.flatnonzero(~censored)[0])
    for k in range(len(params)):
        e = np.zeros(len(params))
        e[k] = 1e-5
        xp, yp, _ = run_curves._optima(model, params + e)
        xm, ym, _ = run_curves._optima(model, params - e)
        own_k = k - r * run_curves._PER_RUN
        shared_k = k - model.shared.start
        expected = (own[r, 1:, own_k] if 0 <= own_k < run_curves._PER_RUN else
                    shared[r, 1:, shared_k] if shared_k >= 0 else np.zeros(2))
        np.testing.assert_allclose([(xp[r] - xm[r]) / 2e-5, (yp[r] - ym[r]) / 2e-5],
                                   expected, atol=2e-3)
