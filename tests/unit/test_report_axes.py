"""Axis helpers of the report: huge norms stay plottable, tick labels stay short."""

import math

import numpy as np
from matplotlib.figure import Figure

from scalingfit.report.figures import _compact, _log_axes, _norm_label, _norm_shift, _norm_values


def test_norms_beyond_the_float_range_are_shifted_by_a_stated_power_of_ten():
    logs = np.array([900.0, 905.0, 912.0])           # e^912 overflows float64
    shift = _norm_shift(logs)
    assert shift == round(905.0 / math.log(10))
    values = _norm_values(logs, shift)
    assert np.isfinite(values).all() and 1e-10 < values.min() < values.max() < 1e10

    class Result:
        settings = {"norm": "spectral_product"}

    assert _norm_label(Result, shift) == f"norm λ / 1e{shift}  (spectral product)"
    assert _norm_shift(np.log([1e130, 1e132])) == 0   # still printable as it is


def test_tick_labels_are_short():
    assert [_compact(v) for v in (0.005, 0.2, 20, 5000, 20000, 1e130)] == [
        "0.005", "0.2", "20", "5000", "20k", "1e130"]


def test_log_axes_label_short_ranges_at_1_2_5():
    figure = Figure()
    ax = figure.add_subplot()
    ax.plot([4000, 32000], [0.03, 0.006])
    _log_axes(ax)
    figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert len(labels) >= 3 and "10k" in labels
