"""The check's pure parts: the verdict rule, the paper's recipe, number formatting."""

import math

import numpy as np
import pytest

from scalingfit.checking.paper_recipe import paper_recipe
from scalingfit.checking.verdict import TOLERANCE, verdict
from scalingfit.errors import ScalingfitError
from scalingfit.fitting.simulation import EXAMPLE_GROUPS, SimGroup, simulate
from scalingfit.report.text import format_log


def interval(low, high):
    return {"mean": (low + high) / 2, "median": (low + high) / 2, "sd": (high - low) / 3.3,
            "q05": low, "q95": high}


@pytest.mark.parametrize(("low", "high", "expected"), [
    (-0.05, 0.05, "consistent"),
    (-0.1, 0.1, "consistent"),              # the tolerance itself is inside
    (-0.02, 0.15, "inconclusive"),          # holds 0, but also discrepancies above 0.1
    (-0.3, 0.3, "inconclusive"),
    (0.01, 0.05, "consistent"),             # not 0, but smaller than anyone would care
    (0.05, 0.2, "inconclusive"),            # excludes 0, not the tolerance
    (0.12, 0.3, "inconsistent"),            # wholly beyond the tolerance
    (-0.4, -0.2, "inconsistent"),
])
def test_verdict_rule(low, high, expected):
    assert verdict(interval(low, high)) == expected


def test_verdict_tolerance_is_a_parameter():
    s = interval(-0.08, 0.08)
    assert verdict(s, tolerance=0.1) == "consistent"
    assert verdict(s, tolerance=0.05) == "inconclusive"
    assert TOLERANCE == 0.1
    with pytest.raises(ScalingfitError, match="tolerance must be positive"):
        verdict(s, tolerance=0.0)


def test_paper_recipe_recovers_exponents_of_noiseless_curves():
    table, truth = simulate(EXAMPLE_GROUPS[:2], n_test=None, n_seeds=2, n_steps=200,
                            return_truth=True)
    for row in paper_recipe(table, norm="spectral_complexity"):
        true = truth[(row["architecture"], row["dataset"])]
        assert row["gamma1"] == pytest.approx(true["gamma1"], rel=0.05)
        assert row["gamma2"] == pytest.approx(true["gamma2"], rel=0.05)
        assert row["gamma_conv"] == pytest.approx(true["gamma_conv"], rel=0.05)
        assert row["delta"] == pytest.approx(row["gamma_conv"] - row["gamma1"] * row["gamma2"])
        assert row["n_runs_in_window"] == row["n_runs"] == 16


def test_paper_recipe_window_follows_the_documented_rule():
    group = SimGroup("a", "b", gamma1=1.0, gamma2=0.5, scatter_x=0, scatter_y=0,
                     scatter_gamma=0)
    table = simulate([group], n_test=None, n_seeds=1, n_steps=60)
    wide = paper_recipe(table, norm="spectral_complexity", window=(0.0, 1.0))[0]
    narrow = paper_recipe(table, norm="spectral_complexity", window=(0.4, 0.6))[0]
    assert narrow["n_window_points"] < wide["n_window_points"]
    # a window too narrow to hold three points of any run leaves γ1 undefined, not made up
    empty = paper_recipe(table, norm="spectral_complexity", window=(0.5, 0.5001))[0]
    assert empty["n_runs_in_window"] == 0 and math.isnan(empty["gamma1"])


def test_format_log_never_overflows():
    assert format_log(math.log(1.18e130)) == "1.18e+130"
    assert format_log(800.0).endswith("e+347")        # beyond float64, still printed
    assert format_log(math.log(15.5)) == "15.5"
    assert format_log(math.log(2e-5)) == "2.00e-05"
    assert np.isfinite(float(format_log(-2.0)))


def test_check_json_is_strict_json():
    """A recipe slope without points is NaN in Python and null in check.json."""
    import json

    from scalingfit.checking.pipeline import _json_safe

    text = json.dumps(_json_safe({"groups": [{"gamma1": float("nan"), "x": [1.0, math.inf]}]}),
                      allow_nan=False)
    assert json.loads(text) == {"groups": [{"gamma1": None, "x": [1.0, None]}]}


def test_check_refuses_bad_settings_before_fitting():
    """Mistakes are reported at once, not after minutes of sampling."""
    from scalingfit.checking.pipeline import check

    table = simulate(EXAMPLE_GROUPS[:1], n_seeds=1, n_steps=10)
    with pytest.raises(ScalingfitError, match="tolerance must be positive"):
        check(table, tolerance=-0.1)
    with pytest.raises(ScalingfitError, match="no run has a held-out size"):
        check(table, holdout=[12345])
