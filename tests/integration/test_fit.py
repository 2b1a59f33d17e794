"""The fit end to end: parameter recovery, determinism, odd groups, censored runs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import scalingfit as sf
from scalingfit.errors import DataError, ScalingfitWarning
from scalingfit.fitting.simulation import EXAMPLE_GROUPS, SimGroup, simulate
from tests.support.independent_generator import generate

# few draws keep the suite fast; their diagnostics may fail, which the fit warns about
pytestmark = pytest.mark.filterwarnings("ignore::scalingfit.errors.ScalingfitWarning")
QUICK = dict(draws=300, tune=400, chains=2, progress=False)


@pytest.mark.statistical
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
def test_each_sampler_fits_and_the_same_seed_gives_the_same_numbers(sampler):
    table = simulate(EXAMPLE_GROUPS[:2], train_sizes=(4000, 8000, 16000),
                     n_seeds=2, n_steps=25, seed=1)
    first = sf.fit(table, sampler=sampler, seed=7, **QUICK)
    assert set(first.summary()["groups"][0]["params"]) == {"gamma1", "gamma2", "gamma_pred",
                                                           "gamma_conv"}
    assert first.idata.posterior.sizes["chain"] == 2
    second = sf.fit(table, sampler=sampler, seed=7, **QUICK)
    assert first.summary()["groups"] == second.summary()["groups"]
    if sampler == "pymc":  # (each nutpie fit compiles anew: one pair is enough)
        third = sf.fit(table, sampler=sampler, seed=8, **QUICK)
        assert third.summary()["groups"] != first.summary()["groups"]


def test_one_run_per_p_fits_with_a_warning():
    group = SimGroup("cnn", "mnist", gamma1=1.2, gamma2=0.5, eps_star_ref=0.05)
    table = simulate([group], train_sizes=(2000, 4000, 8000, 16000, 32000, 64000), n_seeds=1,
                     seed=2)
    with pytest.warns(ScalingfitWarning, match="one run per P"):
        result = sf.fit(table, seed=1, **QUICK)
    assert result.summary()["groups"][0]["n_runs"] == 6


@pytest.mark.statistical
@pytest.mark.parametrize("stop_early", [0.0, 0.15])
def test_realistic_departures_keep_the_exponents_and_the_verdict(stop_early):
    """Issue 12's bar on simulated data whose envelope is shared but whose departures are
    realistic: whole sizes off the laws, overfitting that weakens with P, evenly spaced
    evaluations, a run stuck at chance, and (second case) the largest P stopped before its
    optimum — which, taken as the optimum (the default), reads γ2 low: said, not hidden.
    (With the rise weakening faster, P^-0.3, γ1 reads 5–13 % low: benchmarks/envelope_drift.py
    --realistic; issue 12 keeps that open.)"""
    from dataclasses import replace

    from scalingfit.checking.verdict import consistency

    realistic = dict(size_scatter=0.03, rise_decay=0.1, stop_early=stop_early,
                     even_steps=True, stuck_runs=1)
    groups = [replace(g, **realistic) for g in EXAMPLE_GROUPS[:2]]
    table, truth = simulate(groups, n_seeds=6, n_steps=40, seed=4, return_truth=True)
    result = sf.fit(table, seed=2, draws=500, tune=500, chains=2, progress=False)
    summary = result.summary()
    for group, check in zip(summary["groups"], consistency(result), strict=True):
        true = truth[(group["architecture"], group["dataset"])]
        gamma1, gamma2 = (group["params"][k]["median"] for k in ("gamma1", "gamma2"))
        assert abs(gamma1 / true["gamma1"] - 1) < 0.07, group
        assert group["shapes"]["plateau_only"] == 1
        if stop_early:  # γ2 reads low, γ1·γ2 with it: Δ may be unresolved, never refuted
            assert gamma2 < true["gamma2"]
            assert check["verdict"] != "inconsistent", check
        else:
            assert abs(gamma2 / true["gamma2"] - 1) < 0.07, group
            assert check["verdict"] == "consistent", check
    assert any("no run of the largest P" in note for note in summary["notes"]) == bool(
        stop_early)


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
    group = SimGroup("cnn", "mnist", gamma1=1.2, gamma2=0.6, eps_star_ref=0.05,
                     stop_early=0.25)
    table = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=3, seed=5)
    with pytest.warns(ScalingfitWarning, match="of 12 runs have no optimum"):
        last = sf.fit(table, seed=1, **QUICK)
    with pytest.warns(ScalingfitWarning, match="a lower bound on λ"):
        bound = sf.fit(table, seed=1, at_end="bound", **QUICK)
    summary = last.summary()
    stopped = [r["shape"] for r in summary["runs"] if r["train_size"] == 32000]
    assert stopped == ["no_optimum"] * 3
    n = summary["groups"][0]["n_censored"]
    assert n == summary["groups"][0]["shapes"]["no_optimum"] >= 3
    assert any(f"{n} of 12 runs" in note for note in summary["notes"])  # kept, not only said
    assert any("no run of the largest P" in note for note in summary["notes"])
    # taking the last point as the optimum drags law 2 down; the bound holds the truth
    g2_bound = bound.summary()["groups"][0]["params"]["gamma2"]
    g2_last = summary["groups"][0]["params"]["gamma2"]
    assert g2_last["median"] < g2_bound["median"]
    assert g2_bound["q05"] <= 0.6 <= g2_bound["q95"]
