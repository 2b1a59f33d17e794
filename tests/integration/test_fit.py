"""The fit end to end: parameter recovery, determinism, odd groups, censored runs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import scalingfit as sf
from scalingfit.errors import DataError, ScalingfitWarning
from scalingfit.fitting.simulation import EXAMPLE_GROUPS, SimGroup, example_table, simulate
from tests.support.independent_generator import generate

# few draws keep the suite fast; their diagnostics may fail, which the fit warns about
pytestmark = pytest.mark.filterwarnings("ignore::scalingfit.errors.ScalingfitWarning")
QUICK = dict(draws=300, tune=400, chains=2, progress=False)


@pytest.mark.slow
def test_recovers_the_exponents_of_a_generator_it_was_not_written_with():
    """Issue 2's bar: 4 groups (one with norms near 1e130), 8 P, 6 seeds, 40 epochs."""
    table, truth = generate(seed=11)
    assert np.log10(table["norm_spectral_complexity"].max()) > 129
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        result = sf.fit(table, progress=False, seed=3, sampler="nutpie")
    summary = result.summary()
    d = summary["diagnostics"]
    assert d["rhat_max"] <= 1.01 and d["divergences"] == 0
    inside = []
    for group in summary["groups"]:
        true = truth[(group["architecture"], group["dataset"])]
        for name in ("gamma1", "gamma2", "gamma_pred"):
            s = group["params"][name]
            if name == "gamma_pred":
                assert abs(s["median"] - true[name]) < 0.03, (group["architecture"], s)
            else:
                assert abs(s["median"] / true[name] - 1) < 0.07, (group["architecture"], name)
            assert abs(s["median"] - true[name]) < 3 * s["sd"], (group["architecture"], name)
            inside.append(s["q05"] <= true[name] <= s["q95"])
    assert sum(inside) >= 9, inside


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_the_same_seed_gives_the_same_numbers(sampler):
    table = example_table()
    first = sf.fit(table, seed=7, sampler=sampler, **QUICK).summary()
    second = sf.fit(table, seed=7, sampler=sampler, **QUICK).summary()
    assert first["groups"] == second["groups"]
    if sampler == "pymc":  # (each nutpie fit compiles anew: one pair is enough)
        third = sf.fit(table, seed=8, sampler=sampler, **QUICK).summary()
        assert third["groups"] != first["groups"]


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_both_samplers_fit(sampler):
    table = simulate(EXAMPLE_GROUPS[:2], train_sizes=(4000, 8000, 16000),
                     n_seeds=2, n_steps=25, seed=1)
    result = sf.fit(table, sampler=sampler, seed=1, **QUICK)
    assert set(result.summary()["groups"][0]["params"]) == {"gamma1", "gamma2", "gamma_pred",
                                                            "gamma_conv"}
    assert result.idata.posterior.sizes["chain"] == 2


def test_one_run_per_p_fits_with_a_warning():
    group = SimGroup("cnn", "mnist", gamma1=1.2, gamma2=0.5, eps_star_ref=0.05)
    table = simulate([group], train_sizes=(2000, 4000, 8000, 16000, 32000, 64000), n_seeds=1,
                     seed=2)
    with pytest.warns(ScalingfitWarning, match="one run per P"):
        result = sf.fit(table, seed=1, **QUICK)
    assert result.summary()["groups"][0]["n_runs"] == 6


def test_curves_without_a_straight_stretch_are_flagged():
    group = SimGroup("cnn", "mnist", gamma1=1.0, gamma2=0.5, sharpness=0.1)
    table = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=2, seed=1)
    with pytest.warns(ScalingfitWarning, match="never fall as steeply"):
        result = sf.fit(table, seed=1, **QUICK)
    assert result.summary()["groups"][0]["envelope_reach"] < 0.5


def test_accuracy_given_as_error_is_caught_before_fitting():
    table = simulate(EXAMPLE_GROUPS[:1], train_sizes=(4000, 8000), n_seeds=2,
                     seed=1)
    with pytest.raises(DataError, match="ends above where it starts in 4 of 4 runs.*accuracy"):
        sf.fit(table.assign(test_error=1 - table["test_error"]), **QUICK)


def test_a_group_with_a_single_p_is_an_error():
    table = simulate(EXAMPLE_GROUPS[:1], train_sizes=(4000,), n_seeds=2, seed=1)
    with pytest.raises(DataError, match="single train_size"):
        sf.fit(table, **QUICK)


def test_runs_that_stop_before_their_optimum_are_counted_and_bounded():
    group = SimGroup("cnn", "mnist", gamma1=1.2, gamma2=0.6, eps_star_ref=0.05)
    table, truth = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=3,
                            seed=5, return_truth=True)
    runs = truth["runs"].set_index("run_id")
    stopped = runs.index[runs["train_size"] == 32000]
    lam_star = np.exp(runs.loc[table["run_id"], "log_lam_star"].to_numpy())
    keep = ~table["run_id"].isin(stopped) | (table["norm_spectral_complexity"] < 0.7 * lam_star)
    table = table[keep.to_numpy()]
    with pytest.warns(ScalingfitWarning, match="3 of 12 runs"):
        bound = sf.fit(table, seed=1, **QUICK)
    with pytest.warns(ScalingfitWarning, match="the last point"):
        last = sf.fit(table, seed=1, at_end="optimum", **QUICK)
    assert bound.summary()["groups"][0]["n_censored"] == 3
    assert any("3 of 12 runs" in note for note in bound.summary()["notes"])  # kept, not only said
    # taking the last point as the optimum drags law 2 down; the bound does not
    g2_bound = bound.summary()["groups"][0]["params"]["gamma2"]["median"]
    g2_last = last.summary()["groups"][0]["params"]["gamma2"]["median"]
    assert g2_last < g2_bound
    assert abs(g2_bound - 0.6) < abs(g2_last - 0.6)


@pytest.mark.slow
def test_the_full_model_agrees_with_the_two_stage_fit():
    """The reference the fast path was validated against samples, and agrees with it (the
    full-size comparison is benchmarks/validate_two_stage.py)."""
    group = SimGroup("cnn", "cifar10", gamma1=0.9, gamma2=0.6, log_k2=-2.0, eps_star_ref=0.2)
    table = simulate([group], train_sizes=(4000, 8000, 16000), n_seeds=2, n_steps=16, seed=2)
    fits = {method: sf.fit(table, method=method, sampler="nutpie", draws=300, tune=500,
                           chains=2, seed=1, progress=False)
            for method in ("two-stage", "full")}
    assert fits["full"].diagnostics["rhat_max"] < 1.05
    for name in ("gamma1", "gamma2", "gamma_conv"):
        fast, full = (fits[m].summary()["groups"][0]["params"][name] for m in fits)
        assert abs(fast["median"] - full["median"]) < 0.5 * full["sd"], name
        assert 0.6 < fast["sd"] / full["sd"] < 1.6, name
