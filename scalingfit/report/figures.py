"""The report's figures, each a function of a :class:`~scalingfit.result.FitResult` (and
optionally a check's ``check.json`` content) returning a matplotlib ``Figure``.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas), never through pyplot's
global state, so they render the same in a script, a test or a notebook. Power laws get
log axes: norms, errors and training-set sizes. A norm beyond the range where its value
prints sensibly (a product over layers may reach 1e130) is shown divided by a power of ten
that the axis label states; its logs are never exponentiated beyond the float range.

What they draw is the fit's own description of the curves (:mod:`scalingfit.fitting.run_curves`):
each group's envelope ``E`` (shared by its runs), each run's offset from it and departure,
the optimum ``(λ*, ε*)`` of a run that has one in its logged range, and the last point of a
run still improving there (``censored``: drawn with open markers everywhere).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..checking.verdict import TOLERANCE, delta_parts
from ..fitting.laws import cap, envelope
from ..fitting.likelihood import PARAMS, laws_mean
from ..fitting.predictive import predictive_estimates
from ..fitting.result import describe
from ..fitting.run_curves import RUN_COVERAGE_MIN
from ..ingest.table import log_norm
from .text import exponent_text, percent

__all__ = ["FIGURES", "curves_figure", "collapse_figure", "points_figure",
           "optimal_norm_figure", "best_error_figure", "forest_figure", "diagnostics_figure",
           "ppc_figure", "run_table", "row_table"]

BAND = (0.05, 0.95)   # posterior bands: 90 %
N_BAND_DRAWS = 300    # draws used for the curve bands (quantiles of smooth functions)
PANEL = (5.2, 3.7)    # inches per panel
Z90 = 1.6448536269514722  # half-width of a 90 % Gaussian interval, in sds
PLATEAU_GREY = "0.6"  # runs that never left the chance plateau (not fitted)
RUN_GID = "run:"      # gid prefix of the artist holding one run's points (tests count them)


# ------------------------------------------------------------------------- data access
def _group_values(result, name):
    return result.idata.constant_data[name].to_numpy()


def run_table(result) -> pd.DataFrame:
    """Per fitted run: id, group, P, shape, whether it is still improving at its last point
    (``censored``), its offset from the envelope, and, in raw units (natural logs), its
    reference point ``(log_lam_ref, log_eps_ref)``: the optimum, or the last point of a
    run without one — what the collapse rescales it by."""
    c = result.idata.constant_data
    g = c["group_index"].to_numpy()
    scale, center = c["x_scale"].to_numpy()[g], c["x_center"].to_numpy()[g]
    z = c["z"].to_numpy()
    censored = c["censored"].to_numpy().astype(bool)
    log_lam_last = center + scale * c["x_last"].to_numpy()
    log_eps_last = c["y_last"].to_numpy()
    return pd.DataFrame({
        "run": np.arange(len(g)), "run_id": c["run"].to_numpy().astype(str), "group": g,
        "train_size": c["train_size"].to_numpy().astype(int),
        "shape": c["shape_class"].to_numpy().astype(str), "censored": censored,
        "offset": z[:, 0],
        "log_lam_star": center + scale * z[:, 1], "log_eps_star": z[:, 2],
        "log_lam_last": log_lam_last, "log_eps_last": log_eps_last,
        "log_lam_ref": np.where(censored, log_lam_last, center + scale * z[:, 1]),
        "log_eps_ref": np.where(censored, log_eps_last, z[:, 2]),
        "point_coverage": c["point_coverage"].to_numpy(),
    })


def row_table(result) -> pd.DataFrame:
    """Every logged row of the fitted runs: its run, group, P, log norm, test error, the
    fitted log error and its predictive sd."""
    o = result.idata.observed_data
    runs = run_table(result)
    run = o["row_run"].to_numpy().astype(int)
    fitted = run >= 0
    run = run[fitted]
    return pd.DataFrame({"run": run, "group": runs["group"].to_numpy()[run],
                         "train_size": runs["train_size"].to_numpy()[run],
                         "censored": runs["censored"].to_numpy()[run],
                         "log_norm": o["log_norm"].to_numpy()[fitted],
                         "test_error": o["test_error"].to_numpy()[fitted],
                         "fitted_log_error": o["fitted_log_error"].to_numpy()[fitted],
                         "predictive_sd": o["predictive_sd"].to_numpy()[fitted]})


def plateau_rows(result) -> pd.DataFrame:
    """The rows of the runs that never left the chance plateau (not fitted; listed in
    ``meta["excluded_runs"]``), read from the fitted table: run id, group, log norm, error.
    Empty when there are none, or when the result carries no table."""
    excluded = result.meta.get("excluded_runs") or []
    table = result.fitted_table
    columns = ["run_id", "group", "train_size", "log_norm", "test_error"]
    if not excluded or table is None:
        return pd.DataFrame(columns=columns)
    group = {str(r["run_id"]): int(r["group_index"]) for r in excluded}
    rows = table[table["run_id"].astype(str).isin(group)]
    rows = rows.sort_values(["run_id", "step"]) if "step" in rows else rows
    return pd.DataFrame({"run_id": rows["run_id"].astype(str).to_numpy(),
                         "group": rows["run_id"].astype(str).map(group).to_numpy(),
                         "train_size": rows["train_size"].to_numpy(),
                         "log_norm": log_norm(rows, result.settings["norm"]),
                         "test_error": rows["test_error"].to_numpy(float)})


def _laws(draws: dict, x_scale, g: int, ell):
    """The laws' ``(a, x*, y*)`` (standardised units) of group ``g`` at centred log P
    ``ell`` (a number or a grid), for each draw: arrays (draws, len(ell))."""
    ell = np.atleast_1d(np.asarray(ell, float))
    return laws_mean(draws, x_scale, np.full(len(ell), g), ell)


def _thin(draws: np.ndarray, n: int = N_BAND_DRAWS) -> np.ndarray:
    step = max(1, len(draws) // n)
    return draws[::step]


LAW_KEYS = ("alpha", "offset_slope", "kappa", "gamma2", "nu", "gamma_conv")


def _law_draws(result) -> dict:
    """Thinned draws of the laws' parameters (the curve bands need a few hundred)."""
    return {k: _thin(result.draws(k)) for k in LAW_KEYS}


def _envelope_draws(result, g: int, x, x_ref: float):
    """The group's envelope, shifted by the runs' mean offset and capped at chance, at
    standardised log norms ``x``, for thinned posterior draws: (draws, len(x)) log errors.

    Its slopes are stage 1's corrected for the group's shape error ``u`` (log slopes minus
    ``slope_loading @ u``, as γ1 reads them:
    :func:`~scalingfit.fitting.likelihood.envelope_slope`); its level is pinned at ``x_ref``,
    where it is stage 1's envelope plus the runs' mean offset ``α``. Pinned, because a shape
    error that tilts the envelope would otherwise move its arbitrary level too, which stage
    1 compensates by shifting every run's offset alike — a shift stage 2 leaves to ``α``
    (:func:`scalingfit.fitting.pipeline._reduce_shape_errors`)."""
    c = result.idata.constant_data
    u = _thin(result.draws("shape_error"))[:, g, :]               # (draws, k)
    alpha = _thin(result.draws("alpha"))[:, g]
    knots, width = c["knots"].to_numpy()[g], float(c["width"].to_numpy()[g])
    base = c["log_slopes"].to_numpy()[g]
    log_slopes = base - u @ c["slope_loading"].to_numpy()[g].T
    grid = np.append(np.asarray(x, float), x_ref)
    e = envelope(grid[None, :], log_slopes[:, None, :], knots, width)
    e_ref = float(envelope(np.array([x_ref]), base, knots, width)[0])
    level = e[:, :-1] - e[:, -1:] + e_ref + alpha[:, None]
    return cap(level, float(c["log_chance"].to_numpy()[g]),
               float(c["plateau_sharpness"].to_numpy()[g]))


def _optima_stretch(result, g: int):
    """Per draw, the standardised log norms of the law-2 optima at the group's smallest and
    largest P: the stretch over which γ1 is the envelope's mean slope. (draws, 2)."""
    c = result.idata.constant_data
    ell_range = c["ell_range"].to_numpy()[g]
    kappa, gamma2 = result.draws("kappa")[:, g], result.draws("gamma2")[:, g]
    x_scale = float(c["x_scale"].to_numpy()[g])
    return kappa[:, None] + gamma2[:, None] / x_scale * ell_range[None, :]


def _norm_shift(log_values) -> int:
    """Power of ten to divide a norm by so that it plots within the float range."""
    decimal = np.asarray(log_values, float) / math.log(10)
    if np.nanmax(np.abs(decimal)) < 250:
        return 0
    return int(round(float(np.nanmedian(decimal))))


def _norm_values(log_values, shift: int):
    return np.exp(np.asarray(log_values, float) - shift * math.log(10))


def _norm_label(result, shift: int, symbol: str = "λ") -> str:
    name = result.settings.get("norm", "norm").replace("_", " ")
    unit = f"{symbol} / 1e{shift}" if shift else symbol
    return f"norm {unit}  ({name})"


def _colours(sizes):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    sizes = sorted(set(int(s) for s in sizes))
    return {s: cmap(0.05 + 0.85 * i / max(len(sizes) - 1, 1)) for i, s in enumerate(sizes)}


def _panels(n_groups, *, sharex=False):
    """A figure with one panel per group, two to a row (one wide panel for one group)."""
    cols = min(2, n_groups)
    rows = math.ceil(n_groups / cols)
    size = (PANEL[0] * cols, PANEL[1] * rows) if n_groups > 1 else (1.5 * PANEL[0],
                                                                     1.2 * PANEL[1])
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex).ravel()
    for ax in axes[n_groups:]:
        ax.set_visible(False)
    return fig, axes[:n_groups]


def _suptitle(fig, text: str):
    """The figure's title, wrapped to the figure's width."""
    import textwrap

    width = int(fig.get_figwidth() * 13)  # characters of a 10-point title per inch, about
    fig.suptitle(textwrap.fill(text, width), fontsize=10)


def _compact(value, _position=None) -> str:
    """Tick labels that stay short: 0.03, 20, 5000, 20k, 1e+130."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    if 1e4 <= value < 1e6:
        return f"{value / 1e3:g}k"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _log_axis(axis, low, high):
    """Short labels on one log axis: at 1, 2, (3,) 5 × 10^k when it spans few decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = math.log10(high / low) if low > 0 and high > low else 10.0
    subs = ((1.0, 2.0, 3.0, 5.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5
            else (1.0,))
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=8 if decades < 5 else 5))
    axis.set_major_formatter(FuncFormatter(_compact))
    axis.set_minor_formatter(NullFormatter())


def _log_axes(ax):
    """Log scale on both axes, with short tick labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, *ax.get_xlim())
    _log_axis(ax.yaxis, *ax.get_ylim())


def _band(ax, x, samples, colour, label=None, alpha=0.25):
    low, mid, high = np.quantile(samples, [BAND[0], 0.5, BAND[1]], axis=0)
    ax.fill_between(x, low, high, color=colour, alpha=alpha, linewidth=0)
    ax.plot(x, mid, color=colour, linewidth=1.4, label=label)


def _interval_text(values):
    return exponent_text(describe(values))


def _size_legend(ax, colours, title="P (training-set size)", loc="best"):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", linestyle="-", markersize=4, label=f"{s:,}")
               for s, c in colours.items()]
    ax.legend(handles=handles, title=title, fontsize=7, title_fontsize=7, loc=loc,
              ncol=2 if len(handles) > 4 else 1)


def _size_colorbar(fig, ax, colours):
    """A discrete colour bar beside ``ax`` naming the training-set size of each colour."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    sizes = list(colours)
    mappable = ScalarMappable(norm=BoundaryNorm(np.arange(len(sizes) + 1) - 0.5, len(sizes)),
                              cmap=ListedColormap([colours[s] for s in sizes]))
    bar = fig.colorbar(mappable, ax=ax, ticks=np.arange(len(sizes)), fraction=0.04, pad=0.01,
                       aspect=25)
    bar.ax.set_yticklabels([_compact(s) for s in sizes], fontsize=7)
    bar.ax.tick_params(length=0)
    bar.set_label("P (training-set size)", fontsize=7)
    return bar


def _style_handles(censored=True, plateau=False):
    """Legend entries for the marker styles the per-run figures share."""
    from matplotlib.lines import Line2D

    out = [(Line2D([], [], marker="o", color="0.35", linestyle="none", markersize=5,
                   markeredgecolor="black"), "a run's optimum")]
    if censored:
        out.append((Line2D([], [], marker="o", color="0.35", markerfacecolor="none",
                           linestyle="none", markersize=5),
                    "open: no optimum in range (still improving), at its last point"))
    if plateau:
        out.append((Line2D([], [], marker="o", color=PLATEAU_GREY, linestyle="none",
                           markersize=3), "grey: never left the chance plateau (not fitted)"))
    return out


def _figure_legend(fig, axes, extra=(), ncol=3):
    """One legend under the figure: the labelled artists of ``axes`` (each label once) and
    ``extra`` (handle, label) pairs."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    for handle, label in extra:
        handles.setdefault(label, handle)
    if handles:
        column = 0.06 * max(map(len, handles)) + 0.6  # inches an 8-point entry needs
        ncol = max(1, min(ncol, len(handles), int(fig.get_figwidth() / column)))
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=ncol,
                   fontsize=8)


# ------------------------------------------------------------------------- law 1
def curves_figure(result, check=None) -> Figure:
    """Test error against the norm for every run, coloured by P: its points, its fitted
    curve (thin), its optimum (or its last point, open, when it has none in range); runs
    that never left the chance plateau in grey; the group's envelope, shifted by the runs'
    mean offset, with its 90 % posterior band, and the stretch of λ where the optima lie,
    over which γ1 is the envelope's mean slope."""
    runs, rows, stuck = run_table(result), row_table(result), plateau_rows(result)
    x_scale, x_center = _group_values(result, "x_scale"), _group_values(result, "x_center")
    knots, log_c = _group_values(result, "knots"), _group_values(result, "log_chance")
    gamma1 = result.draws("gamma1")
    fig, axes = _panels(len(result.groups))
    for g, (ax, name) in enumerate(zip(axes, result.group_names, strict=True)):
        mine, grey = rows[rows["group"] == g], stuck[stuck["group"] == g]
        shift = _norm_shift(np.concatenate([mine["log_norm"], grey["log_norm"]]))
        colours = _colours(mine["train_size"])
        for _run_id, points in grey.groupby("run_id"):
            ax.plot(_norm_values(points["log_norm"], shift), points["test_error"], "o",
                    color=PLATEAU_GREY, markersize=2.2, alpha=0.6, linewidth=0)
        for run, points in mine.groupby("run"):
            info = runs.loc[run]
            colour = colours[int(info["train_size"])]
            lam = _norm_values(points["log_norm"], shift)
            ax.plot(lam, points["test_error"], "o", color=colour, markersize=2.0, alpha=0.35,
                    linewidth=0, gid=RUN_GID + info["run_id"])
            ax.plot(lam, np.exp(points["fitted_log_error"]), "-", color=colour,
                    linewidth=0.7, alpha=0.9)
            ax.plot(_norm_values([info["log_lam_ref"]], shift), [math.exp(info["log_eps_ref"])],
                    "o", markersize=4.5, color=colour, markeredgecolor="black",
                    markeredgewidth=0.7,
                    markerfacecolor="none" if info["censored"] else colour, zorder=4)
        # the envelope over the group's whole range (standardised log norm): where runs
        # still on it show it (its knots), then straight on, with its last segment's slope
        x_data = (mine["log_norm"].to_numpy() - x_center[g]) / x_scale[g]
        stretch = np.sort(np.median(_optima_stretch(result, g), axis=0))
        x = np.linspace(min(knots[g][0], x_data.min()), max(knots[g][-1], x_data.max()), 240)
        lam = _norm_values(x_center[g] + x_scale[g] * x, shift)
        draws = np.exp(_envelope_draws(result, g, x, stretch[0]))
        shown = x <= knots[g][-1] + 1e-9
        _band(ax, lam[shown], draws[:, shown], "black", alpha=0.18,
              label="the group's envelope + the runs' mean offset, capped at chance (90 %)")
        ax.lines[-1].set(linestyle="--", zorder=3.5, linewidth=1.6)  # over the runs' curves
        if (~shown).any():
            beyond = np.flatnonzero(~shown)
            beyond = np.concatenate([[beyond[0] - 1], beyond])  # join the two pieces
            _band(ax, lam[beyond], draws[:, beyond], "black", alpha=0.08,
                  label="beyond the last run still on it: straight on (its last slope)")
            ax.lines[-1].set(linestyle=":", zorder=3.5, linewidth=1.6)
        low, high = _norm_values(x_center[g] + x_scale[g] * stretch, shift)
        ax.axvspan(low, high, color="C1", alpha=0.12, linewidth=0,
                   label="where the optima lie (law 2, from the smallest to the largest P)")
        ax.annotate(f"γ1 = {_interval_text(gamma1[:, g])}\n(mean slope over this stretch)",
                    xy=(math.sqrt(low * high), 0.98), xycoords=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=7, color="C1",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                          "alpha": 0.8})
        _log_axes(ax)
        ax.set_xlabel(_norm_label(result, shift))
        ax.set_ylabel("test error ε (fraction)")
        ax.set_title(name, fontsize=10)
        errors = np.concatenate([mine["test_error"], grey["test_error"]])
        ax.set_ylim(max(errors[errors > 0].min() * 0.6, 1e-4),
                    min(1.0, max(math.exp(log_c[g]), errors.max()) * 1.5))
        _log_axis(ax.yaxis, *ax.get_ylim())
        _size_colorbar(fig, ax, colours)
    censored = bool(runs["censored"].any())
    _figure_legend(fig, axes, _style_handles(censored, plateau=len(stuck) > 0), ncol=2)
    _suptitle(fig, "Law 1: test error along training against the norm — points, each run's "
                   "fitted curve and optimum, and the group's shared envelope")
    return fig


def collapse_figure(result, check=None) -> Figure:
    """ε/ε* against λ/λ* for every fitted run: a run with an optimum in range rescaled by
    it, a run still improving at its last point rescaled by that point (open markers).
    Below λ/λ* = 1 the runs follow their shared envelope; a reference line of slope −γ1
    through (1, 1)."""
    runs, rows = run_table(result), row_table(result)
    gamma1 = result.draws("gamma1")
    fig, axes = _panels(len(result.groups))
    for g, (ax, name) in enumerate(zip(axes, result.group_names, strict=True)):
        mine = rows[rows["group"] == g]
        colours = _colours(mine["train_size"])
        ratios_x, ratios_y = [], []
        for run, points in mine.groupby("run"):
            info = runs.loc[run]
            colour = colours[int(info["train_size"])]
            u = np.exp(points["log_norm"].to_numpy() - info["log_lam_ref"])
            v = points["test_error"].to_numpy() / math.exp(info["log_eps_ref"])
            fitted = np.exp(points["fitted_log_error"].to_numpy() - info["log_eps_ref"])
            ax.plot(u, fitted, "-", color=colour, linewidth=0.6, alpha=0.8)
            ax.plot(u, v, "o", color=colour, markersize=2.6 if info["censored"] else 2.2,
                    alpha=0.75 if info["censored"] else 0.45, linewidth=0,
                    markerfacecolor="none" if info["censored"] else colour,
                    markeredgewidth=0.7, gid=RUN_GID + info["run_id"])
            ratios_x.append(u)
            ratios_y.append(v)
        ratios_x, ratios_y = np.concatenate(ratios_x), np.concatenate(ratios_y)
        median = float(np.median(gamma1[:, g]))
        u = np.geomspace(max(ratios_x.min(), 1e-300), 1.0, 100)
        ax.plot(u, u ** -median, "--", color="black", linewidth=1.1,
                label=f"slope −γ1 through (1, 1): γ1 = {_interval_text(gamma1[:, g])}")
        ax.axvline(1.0, color="0.5", linewidth=0.6)
        ax.axhline(1.0, color="0.5", linewidth=0.6)
        _log_axes(ax)
        ax.set_ylim(0.6, max(3.0, float(np.quantile(ratios_y, 0.995)) * 1.2))
        _log_axis(ax.yaxis, *ax.get_ylim())
        ax.set_xlabel("λ / λ*  (norm over the run's optimal norm, or its last)")
        ax.set_ylabel("ε / ε*  (error over the run's best, or its last)")
        n_open = int(runs.loc[runs["group"] == g, "censored"].sum())
        ax.set_title(f"{name}: {int((runs['group'] == g).sum())} runs"
                     + (f", {n_open} still improving (open)" if n_open else ""), fontsize=10)
        ax.legend(loc="lower left", fontsize=7)
        _size_colorbar(fig, ax, colours)
    if runs["censored"].any():
        from matplotlib.lines import Line2D

        _figure_legend(fig, [], [
            (Line2D([], [], marker="o", color="0.35", linestyle="none", markersize=4),
             "filled: rescaled by the run's optimum (λ*, ε*)"),
            (Line2D([], [], marker="o", color="0.35", markerfacecolor="none",
                    linestyle="none", markersize=4),
             "open: no optimum in range (still improving), rescaled by its last point")])
    _suptitle(fig, "Collapse: every fitted run rescaled by its optimum (λ*, ε*), or by its "
                   "last point when it has none in range; thin lines: the fitted curves")
    return fig


def _halo():
    """A white outline that keeps a coloured line readable over points of its colour."""
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=3, foreground="white")


def _running_median(u, r, per_bin=15):
    """Medians of ``r`` in bins of ``u`` holding about ``per_bin`` points each (3 to 16
    bins): the systematic part of the residuals, the noise averaged away."""
    bins = int(np.clip(len(u) // per_bin, 3, 16))
    edges = np.unique(np.quantile(u, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(edges) - 2)
    full = [k for k in range(len(edges) - 1) if (which == k).sum() >= 3]
    return (np.array([np.median(u[which == k]) for k in full]),
            np.array([np.median(r[which == k]) for k in full]))


def points_figure(result, check=None) -> Figure:
    """The raw-point check of stage 1: per run, the share of its points inside their 90 %
    predictive interval, against P; per group, the standardised residuals of its points
    against λ/λ*, with their running median (a curve the model cannot follow shows as a
    bend or a wave in it)."""
    runs, rows = run_table(result), row_table(result)
    n_groups = len(result.groups)
    fig, axes = _panels(n_groups + 1)
    ax = axes[0]
    for g in range(n_groups):
        mine = runs[runs["group"] == g]
        jitter = np.exp(0.05 * (g - (n_groups - 1) / 2))
        for censored, face in ((False, f"C{g % 10}"), (True, "none")):
            sel = mine[mine["censored"] == censored]
            ax.plot(sel["train_size"] * jitter, sel["point_coverage"], "o", color=f"C{g % 10}",
                    markerfacecolor=face, markersize=4, alpha=0.8, linewidth=0,
                    label=result.group_names[g] if not censored else None)
        for _, run in mine[mine["point_coverage"] < RUN_COVERAGE_MIN].iterrows():
            ax.annotate(run["run_id"], (run["train_size"] * jitter, run["point_coverage"]),
                        xytext=(4, -2), textcoords="offset points", fontsize=6)
    ax.axhline(0.9, color="C2", linestyle="--", linewidth=1, label="nominal 0.9")
    ax.axhline(RUN_COVERAGE_MIN, color="C3", linestyle=":", linewidth=1.2,
               label=f"misfit below {RUN_COVERAGE_MIN:g}")
    ax.set_xscale("log")
    _log_axis(ax.xaxis, *ax.get_xlim())
    ax.set_ylim(min(0.5, float(runs["point_coverage"].min()) - 0.05), 1.02)
    ax.set_xlabel("P (training-set size, examples)")
    ax.set_ylabel("share of the run's points in their 90 % interval")
    ax.set_title("per run (open: still improving at its last point)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")  # misfit runs are named on the left
    for g, ax in enumerate(axes[1:]):
        mine = rows[rows["group"] == g]
        colours = _colours(mine["train_size"])
        ref = runs["log_lam_ref"].to_numpy()[mine["run"].to_numpy()]
        u = mine["log_norm"].to_numpy() - ref
        r = (np.log(mine["test_error"].to_numpy()) - mine["fitted_log_error"].to_numpy()) \
            / mine["predictive_sd"].to_numpy()
        ax.axhspan(-Z90, Z90, color="C2", alpha=0.12, linewidth=0,
                   label="90 % predictive interval")
        ax.axhline(0, color="black", linewidth=0.6)
        sizes = mine["train_size"].to_numpy()
        ax.scatter(np.exp(u), r, s=6, c=[colours[int(p)] for p in sizes], alpha=0.45,
                   linewidths=0)
        for size, colour in colours.items():  # a size whose curves bend otherwise stands out
            centre, level = _running_median(u[sizes == size], r[sizes == size])
            ax.plot(np.exp(centre), level, "-", color=colour, linewidth=1.6,
                    path_effects=[_halo()], label="running median of each P")
        ax.set_xscale("log")
        _log_axis(ax.xaxis, *ax.get_xlim())
        limit = min(10.0, max(4.0, float(np.quantile(np.abs(r), 0.995)) * 1.1))
        ax.set_ylim(-limit, limit)
        inside = float(np.mean(np.abs(r) <= Z90))
        ax.set_title(f"{result.group_names[g]}: {percent(inside)} of its points inside",
                     fontsize=10)
        ax.set_xlabel("λ / λ*  (norm over the run's optimal norm, or its last)")
        ax.set_ylabel("(observed − fitted) / predictive sd")
        _size_colorbar(fig, ax, colours)
    _figure_legend(fig, axes[1:2])
    _suptitle(fig, "Do the fitted curves describe the logged points? (per run: share inside "
                   "their 90 % predictive interval; per group: standardised residuals)")
    return fig


# ------------------------------------------------------------------------- law 2 and ε*
def _size_grid(sizes, check_sizes=()):
    low = min(min(sizes), *check_sizes) if check_sizes else min(sizes)
    high = max(max(sizes), *check_sizes) if check_sizes else max(sizes)
    return np.geomspace(low / 1.25, high * 1.25, 60)


def _heldout(check, name):
    if not check:
        return []
    for g in check["groups"]:
        if g["name"] == name:
            return g["heldout"]
    return []


def _size_panels(result, check):
    """The figure and, per group, what a plot against P needs: its axes, name, run rows,
    held-out sizes, a grid of P spanning both, and that grid's centred log P."""
    runs = run_table(result)
    ell_center = _group_values(result, "ell_center")
    fig, axes = _panels(len(result.groups))

    def panels():
        for g, (ax, name) in enumerate(zip(axes, result.group_names, strict=True)):
            mine = runs[runs["group"] == g]
            held = _heldout(check, name)
            grid = _size_grid(mine["train_size"], [h["train_size"] for h in held])
            yield g, ax, name, mine, held, grid, np.log(grid) - ell_center[g]

    return fig, panels()


def optimal_norm_figure(result, check=None) -> Figure:
    """λ* against P per run (open: a run still improving, at its last norm, a lower bound
    on λ*), with law 2's 90 % posterior band."""
    x_scale, x_center = _group_values(result, "x_scale"), _group_values(result, "x_center")
    draws = _law_draws(result)
    fig, panels = _size_panels(result, check)
    for g, ax, name, mine, held, grid, ell in panels:
        log_lam = x_center[g] + x_scale[g] * _laws(draws, x_scale, g, ell)[1]
        shift = _norm_shift(np.concatenate([mine["log_lam_ref"], log_lam.ravel()]))
        _band(ax, grid, _norm_values(log_lam, shift), "C0",
              label=f"law 2, γ2 = {_interval_text(result.draws('gamma2')[:, g])}")
        seen, bound = mine[~mine["censored"]], mine[mine["censored"]]
        ax.plot(seen["train_size"], _norm_values(seen["log_lam_star"], shift), "o", color="C0",
                markersize=3.5, alpha=0.7, label="runs: fitted optimum λ*")
        if len(bound):
            ax.plot(bound["train_size"], _norm_values(bound["log_lam_last"], shift), "^",
                    markerfacecolor="none", color="C3", markersize=5,
                    label="no optimum in range: last λ (λ* is above)")
        for h in held:
            p = h["pred_log_lam_star"]
            ax.errorbar([h["train_size"]], _norm_values([p["median"]], shift),
                        yerr=[_norm_values([p["median"]], shift) - _norm_values([p["q05"]], shift),
                              _norm_values([p["q95"]], shift) - _norm_values([p["median"]], shift)],
                        fmt="s", color="C1", capsize=4, markersize=4,
                        label="held out: predicted (90 %)")
            ax.plot([h["train_size"]], _norm_values([h["observed_log_lam_star"]], shift), "*",
                    color="C3", markersize=10, label="held out: observed")
        _log_axes(ax)
        ax.set_xlabel("P (training-set size, examples)")
        ax.set_ylabel(_norm_label(result, shift, "λ*").replace("norm ", "optimal norm "))
        ax.set_title(name)
        ax.legend(fontsize=7, loc="upper left")
    _suptitle(fig, "Law 2: the optimal norm λ*(P) = k2·P^γ2")
    return fig


def best_error_figure(result, check=None) -> Figure:
    """ε* against P: the runs' optima (open: a run still improving, at its last point, an
    upper bound on ε*), the fitted convergence law, the combined laws, and (with a check)
    the held-out sizes predicted and observed."""
    x_scale = _group_values(result, "x_scale")
    draws = _law_draws(result)
    combined = {**draws, "gamma_conv": _thin(result.draws("gamma_pred"))}
    tied = bool(result.settings.get("tie_convergence"))
    fig, panels = _size_panels(result, check)
    for g, ax, name, mine, held, grid, ell in panels:
        if not tied:
            _band(ax, grid, np.exp(_laws(draws, x_scale, g, ell)[2]), "C0",
                  label="fitted: γ_conv = " + _interval_text(result.draws("gamma_conv")[:, g]))
        # the combined laws' slope, through the fitted ε* at the centre of log P
        _band(ax, grid, np.exp(_laws(combined, x_scale, g, ell)[2]), "C2",
              label="combined laws: γ1·γ2 = " + _interval_text(result.draws("gamma_pred")[:, g]),
              alpha=0.18)
        seen, bound = mine[~mine["censored"]], mine[mine["censored"]]
        ax.plot(seen["train_size"], np.exp(seen["log_eps_star"]), "o", color="C0",
                markersize=3.5, alpha=0.7, label="runs: fitted optimum ε*")
        if len(bound):
            ax.plot(bound["train_size"], np.exp(bound["log_eps_last"]), "v",
                    markerfacecolor="none", color="C3", markersize=5,
                    label="no optimum in range: last ε (ε* is below)")
        for h in held:
            p = h["pred_eps_star"]
            ax.errorbar([h["train_size"]], [p["median"]],
                        yerr=[[p["median"] - p["q05"]], [p["q95"] - p["median"]]], fmt="s",
                        color="C1", capsize=4, markersize=4,
                        label="held out: combined laws refitted without it (90 %)")
            ax.plot([h["train_size"]], [h["observed_eps_star"]], "*", color="C3",
                    markersize=10, label="held out: observed ε* (mean of its runs)")
        _log_axes(ax)
        ax.set_xlabel("P (training-set size, examples)")
        ax.set_ylabel("best test error ε* (fraction)")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
    _suptitle(fig, "Best error ε*(P): measured and predicted (bands: 90 % posterior)")
    return fig


# ------------------------------------------------------------------------- exponents
FOREST = (("gamma1", "γ1 (envelope's mean slope)"), ("gamma2", "γ2 (λ* ∝ P^γ2)"),
          ("gamma_pred", "γ1·γ2 (combined laws)"), ("gamma_conv", "γ_conv (ε* ∝ P^−γ_conv)"))
#: Δ and its two parts (:func:`scalingfit.checking.verdict.delta_parts`), for a free fit.
FOREST_DELTA = (("delta", "Δ = γ_conv − γ1·γ2"),
                ("delta_envelope", "δ_envelope (offsets vs P)"),
                ("delta_shape", "δ_shape (height above E vs P)"))


def forest_figure(result, check=None) -> Figure:
    """Posterior medians, 50 % and 90 % intervals of γ1, γ2, γ1γ2, γ_conv per group (γ1's
    local slopes at the smallest and largest P beside it); for a free fit, Δ and its parts
    δ_envelope and δ_shape on a second row."""
    names = result.group_names
    free = not result.settings.get("tie_convergence")
    rows = [list(FOREST)] + ([list(FOREST_DELTA)] if free else [])
    draws = {key: result.draws(key) for key, _ in FOREST}
    if free:
        draws.update(delta_parts(result))
    fig = Figure(figsize=(3.3 * len(FOREST), max(0.42 * len(names) + 1.3, 2.2) * len(rows) + 0.6),
                 layout="constrained")
    grid = fig.subplots(len(rows), len(FOREST), sharey=True, squeeze=False)
    recipe = {g["name"]: g.get("paper_recipe") for g in (check or {}).get("groups", [])}
    y = np.arange(len(names))[::-1]
    for axes, panels in zip(grid, rows, strict=True):
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, (key, label) in zip(axes, panels):
            q = np.quantile(draws[key], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
            ax.hlines(y, q[0], q[4], color="C0", linewidth=1.2, label="90 % interval")
            ax.hlines(y, q[1], q[3], color="C0", linewidth=4, label="50 % interval")
            ax.plot(q[2], y, "o", color="white", markeredgecolor="C0", markersize=5,
                    label="median")
            if key == "gamma1":  # how much the envelope's slope drifts across the optima
                for end, marker in (("smallest_P", "<"), ("largest_P", ">")):
                    ax.plot(np.median(result.draws(f"gamma1_at_{end}"), axis=0), y, marker,
                            color="0.45", markersize=5,
                            label=f"γ1's local slope at the {end.replace('_', ' ')} (median)")
            marks = [(i, recipe[n][key]) for i, n in enumerate(names)
                     if recipe.get(n) and recipe[n].get(key) is not None
                     and np.isfinite(recipe[n][key])]
            if marks:
                ax.plot([m[1] for m in marks], [y[m[0]] for m in marks], "x", color="C3",
                        label="paper recipe")
            if key == "delta":
                tolerance = check["settings"]["tolerance"] if check else TOLERANCE
                ax.axvspan(-tolerance, tolerance, color="C2", alpha=0.12,
                           label=f"±{tolerance:g}: 'consistent' zone")
            if key.startswith("delta"):
                ax.axvline(0, color="black", linewidth=0.8)
            ax.set_xlabel(label, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(y, names)
        axes[0].set_ylabel(f"group ({' / '.join(result.settings['group_by'])})")
    handles = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncol=min(len(handles), 4), fontsize=8)
    _suptitle(fig, "Exponents across groups (posterior)"
              + ("; below: Δ = δ_envelope + δ_shape" if free else ""))
    return fig


# ------------------------------------------------------------------------- sampler checks
#: γ1, the exponent reported (a function of κ, γ2 and the shape error), and every free
#: parameter the likelihood reads but the shape error (many directions per group).
DIAGNOSED = ("gamma1",) + tuple(p for p in PARAMS if p != "shape_error")


def diagnostics_figure(result, check=None) -> Figure:
    """R-hat and effective sample sizes of every parameter and group, against rc's limits."""
    import arviz as az

    from ..settings import rc

    posterior = result.idata.posterior
    names = [n for n in DIAGNOSED if n in posterior]
    if result.settings.get("tie_convergence"):
        names = [n for n in names if n != "gamma_conv"]
    with np.errstate(invalid="ignore", divide="ignore"):
        # a quantity fixed by construction (the size scatter of a group with one run per
        # size) has no R-hat or ESS: NaN, not drawn
        rhat = az.rhat(posterior[names])
        bulk = az.ess(posterior[names], method="bulk")
        tail = az.ess(posterior[names], method="tail")
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_r, ax_e = fig.subplots(1, 2)
    x = np.arange(len(names))
    for i, name in enumerate(names):
        r = np.atleast_1d(rhat[name].to_numpy())
        ax_r.plot(np.full(len(r), i), r, "o", color="C0", markersize=4, alpha=0.7)
        ax_e.plot(np.full(len(r), i - 0.12), np.atleast_1d(bulk[name].to_numpy()), "o",
                  color="C0", markersize=4, alpha=0.7, label="bulk" if i == 0 else None)
        ax_e.plot(np.full(len(r), i + 0.12), np.atleast_1d(tail[name].to_numpy()), "s",
                  color="C1", markersize=4, alpha=0.7, label="tail" if i == 0 else None)
    ax_r.axhline(rc["diagnostics.rhat_max"], color="C3", linestyle="--",
                 label=f"limit {rc['diagnostics.rhat_max']}")
    ax_e.axhline(rc["diagnostics.ess_min"], color="C3", linestyle="--",
                 label=f"limit {rc['diagnostics.ess_min']:.0f}")
    ax_e.set_yscale("log")
    for ax, label in ((ax_r, "R-hat (rank-normalised split)"),
                      (ax_e, "effective sample size (draws)")):
        ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
        ax.set_xlabel("parameter (one point per group)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    d = result.diagnostics
    _suptitle(fig, f"Sampler diagnostics: {d['chains']} chains × {d['draws']} draws, "
                   f"{d['divergences']} divergences — "
                   f"{'passed' if d['passed'] else 'FAILED: do not trust the intervals'}")
    return fig


PPC_TITLES = ("offset from the envelope (log ε)", "optimal norm: log λ*", "best error: log ε*")


def ppc_figure(result, check=None) -> Figure:
    """Posterior predictive check of the estimates stage 2 was fitted to: each run's offset
    from the envelope, log λ* and log ε*, as a residual from its predictive distribution."""
    runs = run_table(result)
    replicas = predictive_estimates(result, seed=int(result.settings.get("seed", 0)))
    observed = runs[["offset", "log_lam_star", "log_eps_star"]].to_numpy()
    centre, spread = np.median(replicas, axis=0), replicas.std(axis=0)
    low, high = np.quantile(replicas, [0.05, 0.95], axis=0)
    inside = (observed >= low) & (observed <= high)
    residual = (observed - centre) / spread
    censored = runs["censored"].to_numpy()
    # with at_end="bound", a run without an optimum says only x* ≥ x_last, y* ≤ y_last:
    # its last point is no draw of the optimum, so it is left out of those two panels
    bound = result.settings.get("at_end") == "bound"
    fig = Figure(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    n_groups = len(result.groups)
    for k, ax in enumerate(axes):
        use = ~censored if (k and bound) else np.ones(len(runs), bool)
        ax.axhspan(-Z90, Z90, color="C2", alpha=0.12, label="90 % predictive interval")
        ax.axhline(0, color="black", linewidth=0.8)
        for g in range(n_groups):
            jitter = np.exp(0.04 * (g - (n_groups - 1) / 2))
            for open_ in (False, True):
                sel = (runs["group"].to_numpy() == g) & use & (censored == open_)
                ax.plot(runs["train_size"].to_numpy()[sel] * jitter, residual[sel, k], "o",
                        color=f"C{g % 10}", markerfacecolor="none" if open_ else f"C{g % 10}",
                        markersize=3.5, alpha=0.8, linewidth=0,
                        label=None if open_ else result.group_names[g])
        ax.set_xscale("log")
        _log_axis(ax.xaxis, *ax.get_xlim())
        share = inside[use, k].mean() if use.any() else float("nan")
        ax.set_title(f"{PPC_TITLES[k]}: {inside[use, k].sum()}/{use.sum()} runs "
                     f"({percent(share)}) inside", fontsize=9)
        ax.set_xlabel("P (training-set size, examples)")
    axes[0].set_ylabel("(observed − predicted) / predictive sd")
    handles, labels = axes[0].get_legend_handles_labels()
    if censored.any():
        handles.append(_style_handles()[1][0])
        labels.append("open: no optimum in range (its last point"
                      + (", left out of λ*, ε*)" if bound else " taken as the optimum)"))
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
               fontsize=8)
    _suptitle(fig, "Posterior predictive check of each run's stage-1 estimates (new run "
                   "scatter and measurement noise, same P levels)")
    return fig


#: name → (function, caption), in the order the report shows them
FIGURES = {
    "curves": (curves_figure, "Test error against the norm along training, every run "
               "coloured by its training-set size P: its logged points, its fitted curve "
               "(thin line) and its optimum (black-edged dot; open: no optimum in its logged "
               "range, at its last point); grey: runs that never left the chance plateau (not "
               "fitted). Dashed, with its 90 % posterior band: the group's shared envelope, "
               "shifted by the runs' mean offset and capped at chance; dotted beyond the last "
               "run still on it, where stage 1 continues it straight. Shaded: the stretch of "
               "λ where the optima lie (law 2, smallest to largest P), over which γ1 is the "
               "envelope's mean slope. Where a run's curve leaves the envelope, it departs."),
    "collapse": (collapse_figure, "Every fitted run rescaled: ε/ε* against λ/λ*, by its "
                 "optimum, or, for a run still improving at its last point (open markers), by "
                 "that point. Before their optima the runs should fall on one curve, the "
                 "envelope; dashed: slope −γ1 through (1, 1). Thin lines: the fitted curves, "
                 "rescaled alike."),
    "points": (points_figure, "Do the fitted curves describe the logged points? First "
               "panel: per run, the share of its points inside their 90 % predictive "
               "interval (fitted curve ± 1.645 predictive sd) against P; about 0.9 is right, "
               f"below {RUN_COVERAGE_MIN:g} the run is flagged misfit (named). Other panels, per "
               "group: each point's (observed − fitted) / predictive sd against λ/λ*, "
               "coloured by P, with the running median: flat near 0 when the curve shape fits; "
               "a bend or wave there shows where the curves bend otherwise than the model."),
    "optimal_norm": (optimal_norm_figure, "Law 2: each run's optimal norm λ* against P, "
                     "with the 90 % posterior band of λ* = k2·P^γ2; open triangles: runs "
                     "still improving at their last point (their last norm; λ* is above)."),
    "best_error": (best_error_figure, "Best error ε* against P: the runs' optima (open "
                   "triangles: runs still improving, at their last point; ε* is below), the "
                   "fitted convergence law (γ_conv) and the combined laws' slope γ1·γ2; "
                   "with a check, the held-out sizes as predicted by the combined laws "
                   "refitted without them (squares, 90 %) and as observed (stars)."),
    "exponents": (forest_figure, "Posterior medians, 50 % and 90 % intervals of the exponents "
                  "per group; triangles: the envelope's local slope at the optima of the "
                  "smallest and largest P (how much γ1 drifts); crosses: the paper's log-log "
                  "recipe, when a check is given. For a fit with a free γ_conv, Δ and its two "
                  "parts: δ_envelope (the runs' offsets from the envelope drifting with P) and "
                  "δ_shape (the optimum's height above its envelope drifting with P). "
                  "γ1 and γ2 depend on the norm (λ → λ^c maps γ1 → γ1/c, γ2 → c·γ2); "
                  "γ1·γ2, γ_conv and the δs do not."),
    "diagnostics": (diagnostics_figure, "Sampler diagnostics: R-hat and bulk/tail effective "
                    "sample sizes of γ1 and of every free parameter (but the shape errors) in "
                    "every group, against the limits in scalingfit.rc."),
    "ppc": (ppc_figure, "Posterior predictive check of what stage 2 was fitted to: each "
            "run's offset from the envelope, log λ* and log ε*, against replicates from the "
            "posterior, as residuals in predictive standard deviations; about 90 % should "
            "fall in the shaded band. Open markers: runs without an optimum in range (their "
            "last point is taken as the optimum; with at_end='bound' they are left out of "
            "the λ* and ε* panels)."),
}
