"""Helpers of the report: huge norms stay plottable, tick labels stay short, the runs section
names odd runs, the residuals' running median shows a bend."""

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


def test_the_runs_section_lists_misfit_and_plateau_runs_by_id():
    from scalingfit.report.page import runs_rows

    def run(run_id, shape="optimum", check="ok", coverage=0.93, below=False):
        return {"run_id": run_id, "group": "g", "train_size": 4000, "shape": shape,
                "starts_below_chance": below, "point_coverage": coverage,
                "point_check": check}

    summary = {"groups": [{"name": "g", "n_runs": 4, "n_censored": 1, "point_coverage": 0.81,
                           "shapes": {"plateau_only": 1, "two_minima": 1, "no_optimum": 1,
                                      "optimum": 2}}],
               "runs": [run("a"), run("b", "two_minima", below=True),
                        run("c", "no_optimum", "misfit", 0.55),
                        run("d", "optimum", "misfit", 0.6),
                        {**run("e", "plateau_only", "not fitted", None),
                         "starts_below_chance": None}]}
    (row,) = runs_rows(summary)
    assert row == ["g", "3", "1", "1", "1", "81 %", "2: c (55 %), d (60 %)", "1: e"]


def test_the_running_median_finds_a_bend_and_ignores_noise():
    from scalingfit.report.figures import _running_median

    rng = np.random.default_rng(0)
    u = rng.uniform(-3, 0, 600)
    centre, level = _running_median(u, np.sin(2 * u) + rng.normal(0, 1, 600))
    assert 6 <= len(centre) <= 16 and np.all(np.diff(centre) > 0)  # 600 points: 16 bins
    assert np.max(np.abs(level - np.sin(2 * centre))) < 0.5
