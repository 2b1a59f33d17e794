"""The learning-curve shape: its minimum is the optimum, its slopes are the exponents."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from scalingfit.fitting.laws import (
    capped_optimum,
    envelope,
    learning_curve,
    ramps,
    uncapped_optimum,
)

PARAMS = dict(x_star=1.3, y_star=-3.0, gamma=1.7, beta=0.6, sharpness=4.0)


def test_the_minimum_is_at_the_optimum():
    x = np.linspace(-5, 8, 130001)
    f = learning_curve(x, **PARAMS)
    i = np.argmin(f)
    assert x[i] == pytest.approx(PARAMS["x_star"], abs=1e-4)
    assert f[i] == pytest.approx(PARAMS["y_star"], abs=1e-9)


def test_slopes_far_from_the_break_are_the_envelope_and_the_rise():
    x = np.array([-20.0, -19.0, 19.0, 20.0])
    f = learning_curve(x, **PARAMS)
    assert f[1] - f[0] == pytest.approx(-PARAMS["gamma"], rel=1e-9)
    assert f[3] - f[2] == pytest.approx(PARAMS["beta"], rel=1e-9)


def test_equal_envelope_slopes_make_a_straight_line_everywhere():
    knots, x = np.linspace(-2, 2, 7), np.linspace(-6, 6, 241)
    e = envelope(x, np.full(6, np.log(1.3)), knots, 0.3)
    np.testing.assert_allclose(np.diff(e) / np.diff(x), -1.3, rtol=1e-9)
    np.testing.assert_allclose(ramps(x, knots, 0.3, order=1).sum(axis=-1), 1.0, rtol=1e-12)


def test_the_envelope_s_slope_follows_its_segments_and_its_derivatives_are_exact():
    knots, width = np.linspace(-3, 3, 4), 0.05
    log_slopes = np.log([2.0, 1.0, 0.5])
    inside = np.array([-2.0, 0.0, 2.0])  # one point well inside each segment
    slope = envelope(inside, log_slopes, knots, width, derivative=True)
    np.testing.assert_allclose(slope, [-2.0, -1.0, -0.5], rtol=1e-8)
    x, step = np.linspace(-4, 4, 33), 1e-6
    for order in (1, 2):
        numeric = (ramps(x + step, knots, 0.7, order=order - 1)
                   - ramps(x - step, knots, 0.7, order=order - 1)) / (2 * step)
        np.testing.assert_allclose(ramps(x, knots, 0.7, order=order), numeric, atol=1e-7)


def test_the_plateau_caps_the_error_at_chance():
    x = np.linspace(-10, 0, 50)
    capped = learning_curve(x, **PARAMS, log_chance=np.log(0.9), plateau_sharpness=8.0)
    assert np.all(capped <= np.log(0.9) + 1e-12)
    assert capped[0] == pytest.approx(np.log(0.9), abs=1e-6)


def test_numpy_and_pytensor_agree():
    x = np.linspace(-3, 4, 11)
    expected = learning_curve(x, **PARAMS, log_chance=np.log(0.9), plateau_sharpness=8.0)
    symbolic = learning_curve(pt.as_tensor(x), **PARAMS, log_chance=np.log(0.9),
                              plateau_sharpness=8.0, xp=pt).eval()
    np.testing.assert_allclose(symbolic, expected, rtol=1e-12)


@pytest.mark.parametrize("y_star", [-4.0, -1.0, -0.6])
def test_the_capped_optimum_is_the_curve_minimum_under_the_plateau(y_star):
    log_c, h = np.log(0.5), 1.5  # a soft cap, and optima far from, near and above chance
    x = np.linspace(-4, 4, 40001)
    curve = learning_curve(x, 0.5, y_star, 0.8, 0.3, 2.0, log_c, h)
    best = capped_optimum(y_star, log_c, h)
    assert curve.min() == pytest.approx(best, abs=1e-9)
    assert x[curve.argmin()] == pytest.approx(0.5, abs=1e-3)
    assert uncapped_optimum(best, log_c, h) == pytest.approx(y_star, abs=1e-9)
    assert uncapped_optimum(best, log_c, h, xp=pt).eval() == pytest.approx(y_star, abs=1e-9)


def test_the_inverse_stays_finite_at_and_above_chance():
    values = uncapped_optimum(np.array([np.log(0.5), 0.0]), np.log(0.5), 2.0)
    assert np.all(np.isfinite(values))
