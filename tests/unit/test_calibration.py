"""Calibration of a fit: the simulator that draws sweeps from a fit gives back what it drew,
and the coverage, rank and rate arithmetic is right. No sampling: the fit is stage 1 of a
small simulated sweep with a posterior written by hand."""

from __future__ import annotations

import json
from dataclasses import replace

import arviz as az
import numpy as np
import pytest
from scipy.special import expit

from scalingfit.checking.calibration import (
    QUANTITIES,
    RANK_DRAWS,
    RATIO_RANGE,
    CalibrationResult,
    departure_through,
    interval_hits,
    posterior_draw,
    rank_test,
    share,
    simulate_from_fit,
    true_envelopes,
    truth_of,
    truth_rank,
    with_scenario,
)
from scalingfit.fitting.groups import prepare
from scalingfit.fitting.laws import envelope
from scalingfit.fitting.likelihood import PARAMS, envelope_slope, least_squares
from scalingfit.fitting.pipeline import _stack
from scalingfit.fitting.result import FitResult
from scalingfit.fitting.run_curves import fit_run_curves
from scalingfit.fitting.simulation import SimGroup, simulate
from scalingfit.ingest.table import validate

GROUP = SimGroup("cnn", "mnist", gamma1=1.4, gamma2=0.5, log_k2=-1.0, eps_star_ref=0.05,
                 stuck_runs=1)
SETTINGS = {"norm": "spectral_complexity", "group_by": ["architecture", "dataset"],
            "at_end": "optimum", "n_test": None, "tie_convergence": False, "sampler": "pymc",
            "seed": 0}


def stage1(table):
    groups, _ = prepare(validate(table), norm="spectral_complexity",
                        group_by=("architecture", "dataset"))
    return groups, [fit_run_curves(g.curves) for g in groups]


@pytest.fixture(scope="module")
def hand_fit():
    """A fit of a small noiseless sweep whose posterior is one point, repeated: the laws at
    their least-squares values, every scatter zero, no shape error."""
    table = simulate([GROUP], train_sizes=(4000, 8000, 16000, 32000), n_seeds=2, n_steps=30,
                     n_test=None, seed=3)
    groups, curves = stage1(table)
    data = _stack(groups, curves)
    start = least_squares(data)
    zero = np.zeros(1)
    values = {**{k: start[k] for k in ("gamma2", "gamma_conv", "kappa", "nu", "alpha")},
              "offset_slope": zero, "shape_error": np.zeros((1, data.loading.shape[2]))}
    values.update({k: zero for k in PARAMS if k not in values})
    values["gamma1"] = envelope_slope(data, values["kappa"], values["gamma2"],
                                      values["shape_error"])
    values["gamma_pred"] = values["gamma1"] * values["gamma2"]
    posterior = {k: np.broadcast_to(v, (1, 4, *v.shape)) for k, v in values.items()}
    dims = {k: ["group"] for k in values} | {"shape_error": ["group", "shape"]}
    idata = az.from_dict(posterior=posterior, dims=dims,
                         coords={"group": data.groups,
                                 "shape": np.arange(data.loading.shape[2])})
    return FitResult.build(idata, data=data, curves=curves, table=validate(table),
                           groups=groups, settings=SETTINGS,
                           diagnostics={"passed": True}, timings={}, notes=[])


# ----------------------------------------------------------------- the curve of one run
def test_the_departure_puts_the_minimum_at_the_optimum():
    rng = np.random.default_rng(0)
    knots, width = np.linspace(-2.2, 2.2, 9), 0.275
    # an envelope whose slope drifts as stage 1's may (a random walk of sd 0.1 per segment)
    log_slopes = np.log(1.2) + np.cumsum(rng.normal(0, 0.1, 8))
    x_star = rng.uniform(-1.5, 1.5, 20)
    slope = -envelope(x_star, log_slopes, knots, width, derivative=True)
    sharpness = rng.uniform(1.0, 6.0, 20)
    height = slope / sharpness * rng.uniform(*RATIO_RANGE, 20)
    a = rng.normal(0, 0.3, 20)
    d, b = departure_through(slope, height, sharpness, x_star)

    def f(x):
        return (envelope(x, log_slopes, knots, width) + a[:, None]
                + b[:, None] / sharpness[:, None]
                * np.logaddexp(0.0, sharpness[:, None] * (x - d[:, None])))

    # the value at x* is the height above the envelope, and the slope there is zero
    level = envelope(x_star, log_slopes, knots, width)
    np.testing.assert_allclose(f(x_star[:, None])[:, 0], level + a + height, atol=1e-12)
    gradient = -slope + b * expit(sharpness * (x_star - d))
    np.testing.assert_allclose(gradient, 0.0, atol=1e-12)
    # and it is the minimum: nothing lower on a fine grid around it
    grid = x_star[:, None] + np.linspace(-1.0, 1.0, 20001)
    step = grid[0, 1] - grid[0, 0]
    assert np.all(np.abs(grid[np.arange(20), np.argmin(f(grid), axis=1)] - x_star) <= step)


def test_a_height_the_departure_cannot_reach_is_refused():
    with pytest.raises(ValueError, match="s·h/g > 1"):
        departure_through(1.0, 0.2, 4.0, 0.0)  # s·h/g = 0.8


# ----------------------------------------------------------------- simulating from a fit
def test_the_simulated_runs_give_back_their_truths(hand_fit):
    """Noise and scatter off: stage 1 refitted to the simulated table finds each run's
    drawn optimum and offset. Not exactly: the refit places its envelope's knots on the
    simulated range, not the fit's, and penalises its slope's drift, so its envelope is not
    the one drawn (0.5 % in λ*, 0.005 in log ε* seen); the tolerances are four times that."""
    draw = posterior_draw(hand_fit, 0)
    table, runs = simulate_from_fit(hand_fit, draw, rng=np.random.default_rng(1),
                                    noise=False)
    original = hand_fit.fitted_table
    assert table["run_id"].tolist() == original["run_id"].tolist()
    assert table["step"].tolist() == original["step"].tolist()
    assert "lognorm_spectral_complexity" in table and "norm_spectral_complexity" not in table
    assert table["test_error"].between(0, 1).all()

    groups, curves = stage1(table)
    (group,), (c,) = groups, curves
    truth = runs.set_index("run_id").loc[group.runs.index]
    # the run that never left the plateau is simulated at chance, and left out again
    assert truth["stuck"].sum() == 1 and list(truth.index[truth["stuck"]]) == list(
        group.runs.index[~c.fitted_runs])
    seen = c.fitted_runs & ~c.censored
    assert seen.sum() >= 6
    truth = truth[seen]
    assert (truth["offset_moved"] == 0).all() and not truth["minimum_elsewhere"].any()
    np.testing.assert_allclose(c.x_star[seen] * group.x_scale + group.x_center,
                               truth["log_lam_star"], atol=0.02)
    np.testing.assert_allclose(c.y_star[seen], truth["log_eps_star"], atol=0.02)
    offsets = c.offset[seen]  # offsets are known up to where the envelope is zero
    np.testing.assert_allclose(offsets - offsets.mean(), truth["a"] - truth["a"].mean(),
                               atol=0.02)


@pytest.mark.parametrize("offsets", ["heights", "model"])
def test_without_scatter_the_optima_lie_on_the_laws(hand_fit, offsets):
    draw = with_scenario(posterior_draw(hand_fit, 0), "violated", 0.3)
    _, runs = simulate_from_fit(hand_fit, draw, rng=np.random.default_rng(2), noise=False,
                                offsets=offsets)
    runs = runs[~runs["stuck"]]
    ell = np.log(runs["train_size"].to_numpy(float))
    assert np.polyfit(ell, runs["log_lam_star"], 1)[0] == pytest.approx(draw["gamma2"][0])
    assert -np.polyfit(ell, runs["log_eps_star"], 1)[0] == pytest.approx(
        draw["gamma_conv"][0])
    # the envelopes of larger P lie lower: exactly so with the model's offsets, and up to
    # the heights' resampling (and the envelope's curvature) with the fitted runs' heights
    slope = np.polyfit(ell, runs["a"], 1)[0]
    assert slope == pytest.approx(-0.3, abs=1e-9 if offsets == "model" else 0.02)
    assert (runs["offset_moved"] == 0).all() and not runs["minimum_elsewhere"].any()


def test_noise_is_binomial_on_n_test_and_reproducible(hand_fit):
    table = hand_fit.fitted_table.assign(n_test=2000)
    fit = FitResult(hand_fit.idata, settings=hand_fit.settings,
                    diagnostics=hand_fit.diagnostics, meta=hand_fit.meta, table=table)
    draw = posterior_draw(fit, 0)
    first, _ = simulate_from_fit(fit, draw, rng=np.random.default_rng(5))
    again, _ = simulate_from_fit(fit, draw, rng=np.random.default_rng(5))
    counts = first["test_error"] * 2000
    np.testing.assert_allclose(counts, counts.round(), atol=1e-9)
    assert first.equals(again)


def test_the_scenarios_set_delta(hand_fit):
    draw = posterior_draw(hand_fit, 0)
    combined = truth_of(with_scenario(draw, "combined", 0.2))
    violated = truth_of(with_scenario(draw, "violated", 0.2))
    assert combined["delta"][0] == pytest.approx(0.0)
    assert combined["gamma_conv"][0] == pytest.approx(combined["gamma_pred"][0])
    assert violated["delta"][0] == pytest.approx(0.2)
    assert violated["delta_envelope"][0] == pytest.approx(0.2)
    assert violated["delta_shape"][0] == pytest.approx(0.0)
    # γ1 is the model's own: the envelope's mean slope between the law-2 optima
    assert combined["gamma1"][0] == pytest.approx(float(hand_fit.draws("gamma1")[0, 0]))


def test_the_simulated_envelope_is_the_one_gamma1_is_read_off(hand_fit):
    """γ1's truth (the model's envelope_slope) and the envelope the runs are drawn on are
    one: with a shape error that moves the slopes and a drift beyond the last knot (placed
    mid-way along the optima's stretch), the simulated envelope's chord between the law-2
    optima is the truth's γ1 — and not with either of them the other way round."""
    rng = np.random.default_rng(0)
    data = hand_fit.run_estimates()
    draw = posterior_draw(hand_fit, 0)
    lo, hi = draw["kappa"] + draw["gamma2"] / data.x_scale * data.ell_range.T
    data = replace(data, slope_loading=rng.normal(0, 0.2, data.slope_loading.shape),
                   knots=data.knots - (data.knots[:, -1] - (lo + hi) / 2)[:, None])
    draw["shape_error"] = np.full_like(draw["shape_error"], 1.5)
    draw["envelope_drift"] = np.full_like(draw["gamma2"], 0.3)

    def chord(draw):
        (env,) = true_envelopes(draw, data)
        return -(env(hi) - env(lo)) / (hi - lo) / data.x_scale

    gamma1 = envelope_slope(data, draw["kappa"], draw["gamma2"], draw["shape_error"],
                            draw["envelope_drift"])
    np.testing.assert_allclose(chord(draw), gamma1, rtol=1e-3)
    for name in ("shape_error", "envelope_drift"):
        assert np.all(np.abs(chord({**draw, name: -draw[name]}) / gamma1 - 1) > 0.01)


# ----------------------------------------------------------------- the arithmetic
def normal_posteriors(rng, n, *, sd_factor=1.0, bias=0.0):
    """Truths θ ~ N(0, 1), data y ~ N(θ, 1); the exact posterior is N(y/2, 1/2), here
    narrowed by ``sd_factor`` and shifted by ``bias``."""
    theta = rng.normal(size=n)
    y = theta + rng.normal(size=n)
    draws = (y / 2 + bias)[:, None] + sd_factor * np.sqrt(0.5) * rng.normal(size=(n, 1000))
    return theta, draws


def scores_of(theta, draws, rng):
    return [{**interval_hits(d, t), "truth": t, "rank": truth_rank(d, t, rng)}
            for t, d in zip(theta, draws)]


def test_calibrated_posteriors_pass_and_overconfident_ones_fail():
    rng = np.random.default_rng(11)
    good = scores_of(*normal_posteriors(rng, 400), rng)
    assert abs(np.mean([s["in90"] for s in good]) - 0.9) < 0.04
    assert abs(np.mean([s["in50"] for s in good]) - 0.5) < 0.07
    assert rank_test([s["rank"] for s in good])["p"] > 0.01

    narrow = scores_of(*normal_posteriors(rng, 400, sd_factor=0.5), rng)
    assert np.mean([s["in90"] for s in narrow]) < 0.7
    assert rank_test([s["rank"] for s in narrow])["p"] < 1e-6
    # too narrow: truths escape on both sides alike
    below, above = (np.mean([s[k] for s in narrow]) for k in ("below_q05", "above_q95"))
    assert below > 0.12 and above > 0.12

    biased = scores_of(*normal_posteriors(rng, 400, bias=0.8), rng)
    below, above = (np.mean([s[k] for s in biased]) for k in ("below_q05", "above_q95"))
    assert below > 0.2 > 0.02 > above   # posteriors too high: truths fall below them


def test_ranks_count_draws_below_and_split_ties():
    draws = np.arange(1000.0)
    rng = np.random.default_rng(0)
    assert truth_rank(draws, -1.0, rng) == 0
    assert truth_rank(draws, 1e9, rng) == RANK_DRAWS
    assert truth_rank(draws, 499.5, rng) in (49, 50)
    ties = [truth_rank(np.zeros(500), 0.0, rng) for _ in range(2000)]
    assert min(ties) == 0 and max(ties) == RANK_DRAWS  # ties spread over every rank
    assert abs(np.mean(ties) - RANK_DRAWS / 2) < 3


def test_rank_bins_keep_five_expected_per_bin():
    assert rank_test(np.arange(100))["bins"] == 10
    assert rank_test(np.arange(30) * 3)["bins"] == 5
    assert rank_test(np.arange(9))["bins"] == 0 and rank_test(np.arange(9))["p"] is None
    test = rank_test(np.arange(100))
    assert test["counts"] == [10] * 10 and test["p"] == pytest.approx(1.0)


def test_shares_come_with_clopper_pearson_intervals():
    none = share(0, 10)
    assert none["rate"] == 0 and none["q05"] == 0
    assert none["q95"] == pytest.approx(1 - 0.05 ** (1 / 10))
    every = share(10, 10)
    assert every["q95"] == 1 and every["q05"] == pytest.approx(0.05 ** (1 / 10))
    some = share(36, 40)
    assert some["q05"] < 0.9 < some["q95"] and some["q95"] - some["q05"] > 0.15
    assert share(0, 0)["rate"] is None


def test_the_result_counts_verdicts_per_scenario_and_writes_strict_json(tmp_path):
    rng = np.random.default_rng(3)
    theta, draws = normal_posteriors(rng, 40)
    scores = [{**s, "quantity": q, "group": "g", "replicate": k // 2,
               "scenario": "combined" if k < 20 else "violated"}
              for k, s in enumerate(scores_of(theta, draws, rng)) for q in QUANTITIES]
    calls = (["consistent"] * 9 + ["inconclusive"]
             + ["inconsistent"] * 8 + ["inconclusive", "consistent"])
    replicates = [{"replicate": k, "scenario": "combined" if k < 10 else "violated",
                   "ok": True, "error": None, "verdicts": {"g": call},
                   "diagnostics": {"passed": k != 3, "rhat_max": 1.0, "divergences": 0},
                   "runs": 10, "runs_offset_moved": 1, "offset_moved_abs_sum": 0.05,
                   "runs_minimum_elsewhere": 0,
                   "runs_censored": 2, "seconds": 1.0} for k, call in enumerate(calls)]
    replicates.append({"replicate": 20, "scenario": "violated", "ok": False,
                       "error": "boom", "runs": 10, "runs_offset_moved": 0,
                       "offset_moved_abs_sum": 0.0, "runs_minimum_elsewhere": 0,
                       "runs_censored": 0, "seconds": 0.5})
    result = CalibrationResult(
        scores=scores, replicates=replicates, group_info=[{"name": "g"}],
        settings={"replicates": 10, "delta": 0.2, "tolerance": 0.1,
                  "scenarios": ["combined", "violated"]})
    verdicts = result.verdicts()
    assert verdicts["combined"]["false_alarm"]["count"] == 0
    assert verdicts["combined"]["consistent"]["rate"] == pytest.approx(0.9)
    assert verdicts["violated"]["detection"]["rate"] == pytest.approx(0.8)
    assert verdicts["violated"]["n"] == 10  # the refit that raised gives no verdict
    refits = result.refits()
    assert refits["failed_diagnostics"] == 1 and refits["errors"] == [
        {"replicate": 20, "error": "boom"}]
    content = json.loads(result.save(tmp_path).read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))
    assert set(content) >= {"settings", "quantities", "groups", "verdicts", "refits",
                            "replicates", "scores", "definitions"}
    assert content["quantities"]["gamma1"]["n"] == 40
    table = result.table()
    assert "false alarms 0.00" in table and "detected 0.80" in table
