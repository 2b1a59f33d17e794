"""The report's figures, each a function of a :class:`~scalingfit.result.FitResult` (and
optionally a check's ``check.json`` content) returning a matplotlib ``Figure``.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas), never through pyplot's
global state, so they render the same in a script, a test or a notebook. Power laws get
log axes: norms, errors and training-set sizes. A norm beyond the range where its value
prints sensibly (a product over layers may reach 1e130) is shown divided by a power of ten
that the axis label states; its logs are never exponentiated beyond the float range.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..checking.verdict import TOLERANCE
from ..fitting.laws import envelope_offset, learning_curve, uncapped_optimum
from ..fitting.likelihood import PARAMS, laws_mean
from ..fitting.predictive import predictive_estimates
from ..fitting.result import describe
from .text import exponent_text

__all__ = ["FIGURES", "curves_figure", "collapse_figure", "optimal_norm_figure",
           "best_error_figure", "forest_figure", "diagnostics_figure", "ppc_figure"]

BAND = (0.05, 0.95)   # posterior bands: 90 %
N_BAND_DRAWS = 300    # draws used for the curve bands (quantiles of smooth functions)
PANEL = (5.2, 3.7)    # inches per panel


# ------------------------------------------------------------------------- data access
def _group_values(result, name):
    return result.idata.constant_data[name].to_numpy()


def run_table(result) -> pd.DataFrame:
    """Per run: group, P, its fitted optimum and last point in raw units (natural logs)."""
    c = result.idata.constant_data
    g = c["group_index"].to_numpy()
    scale, center = c["x_scale"].to_numpy()[g], c["x_center"].to_numpy()[g]
    z = c["z"].to_numpy()
    return pd.DataFrame({
        "run": np.arange(len(g)), "group": g, "train_size": c["train_size"].to_numpy(),
        "censored": c["censored"].to_numpy().astype(bool), "gamma": z[:, 0] / scale,
        "log_lam_star": center + scale * z[:, 1], "log_eps_star": z[:, 2],
        "log_lam_last": center + scale * c["x_last"].to_numpy(),
        "log_eps_last": c["y_last"].to_numpy(), "beta": c["beta"].to_numpy(),
    })


def row_table(result) -> pd.DataFrame:
    """Every fitted row: its run, group, P, log norm and test error."""
    o = result.idata.observed_data
    runs = run_table(result)
    run = o["row_run"].to_numpy().astype(int)
    return pd.DataFrame({"run": run, "group": runs["group"].to_numpy()[run],
                         "train_size": runs["train_size"].to_numpy()[run],
                         "log_norm": o["log_norm"].to_numpy(),
                         "test_error": o["test_error"].to_numpy()})


def _laws(draws: dict, x_scale, g: int, ell):
    """The laws' ``(γ, x*, y*)`` (standardised units) of group ``g`` at centred log P
    ``ell`` (a number or a grid), for each draw: arrays (draws, len(ell))."""
    ell = np.atleast_1d(np.asarray(ell, float))
    return laws_mean(draws, x_scale, np.full(len(ell), g), ell)


def _thin(draws: np.ndarray, n: int = N_BAND_DRAWS) -> np.ndarray:
    step = max(1, len(draws) // n)
    return draws[::step]


def _law_draws(result) -> dict:
    """Thinned draws of the laws' parameters (the curve bands need a few hundred)."""
    return {k: _thin(result.draws(k)) for k in ("gamma1", "gamma2", "gamma_conv", "kappa", "nu")}


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
    cols = min(2, n_groups)
    rows = math.ceil(n_groups / cols)
    fig = Figure(figsize=(PANEL[0] * cols, PANEL[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex).ravel()
    for ax in axes[n_groups:]:
        ax.set_visible(False)
    return fig, axes[:n_groups]


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


# ------------------------------------------------------------------------- law 1
def curves_figure(result, check=None) -> Figure:
    """Test error against the norm for every run, coloured by P, with the posterior band of
    each P's mean curve and the shared envelope ε = A·λ^(−γ1)."""
    runs, rows = run_table(result), row_table(result)
    x_scale, x_center = _group_values(result, "x_scale"), _group_values(result, "x_center")
    ell_center = _group_values(result, "ell_center")
    sharp, log_c = _group_values(result, "sharpness"), _group_values(result, "log_chance")
    plateau = _group_values(result, "plateau_sharpness")
    draws = _law_draws(result)
    fig, axes = _panels(len(result.groups))
    for g, (ax, name) in enumerate(zip(axes, result.group_names, strict=True)):
        mine = rows[rows["group"] == g]
        shift = _norm_shift(mine["log_norm"])
        colours = _colours(mine["train_size"])
        for _run, points in mine.groupby("run"):
            size = int(points["train_size"].iloc[0])
            ax.plot(_norm_values(points["log_norm"], shift), points["test_error"], "o",
                    color=colours[size], markersize=2.2, alpha=0.45, linewidth=0)
        # standardised units: the curve law of scalingfit.fitting.laws
        x_lo = (mine["log_norm"].min() - x_center[g]) / x_scale[g]
        x_hi = (mine["log_norm"].max() - x_center[g]) / x_scale[g]
        grid = np.linspace(x_lo, x_hi + 0.05 * (x_hi - x_lo), 160)
        gamma_std = draws["gamma1"][:, g, None] * x_scale[g]
        beta_group = float(np.median(runs.loc[runs["group"] == g, "beta"]))
        for size in colours:
            level = mine[mine["train_size"] == size]["log_norm"]
            span = (grid >= (level.min() - x_center[g]) / x_scale[g] - 0.02) & (
                grid <= (level.max() - x_center[g]) / x_scale[g] + 0.02)
            _, x_star, y_star = _laws(draws, x_scale, g, math.log(size) - ell_center[g])
            beta = float(np.median(runs.loc[(runs["group"] == g)
                                            & (runs["train_size"] == size), "beta"]))
            y_min = uncapped_optimum(y_star, log_c[g], plateau[g])
            y = learning_curve(grid[None, span], x_star, y_min, gamma_std, beta, sharp[g],
                               log_c[g], plateau[g])
            _band(ax, _norm_values(x_center[g] + x_scale[g] * grid[span], shift), np.exp(y),
                  colours[size])
        # the envelope shared by all P, drawn where the curves of the centre of log P meet it
        offset = envelope_offset(gamma_std, beta_group, sharp[g])
        _, x_centre, y_centre = _laws(draws, x_scale, g, 0.0)
        envelope = y_centre - offset - gamma_std * (grid[None, :] - x_centre)
        envelope = np.minimum(envelope, log_c[g] + 0.3)  # stop the line just above chance
        _band(ax, _norm_values(x_center[g] + x_scale[g] * grid, shift), np.exp(envelope),
              "black", label=f"envelope, γ1 = {_interval_text(draws['gamma1'][:, g])}",
              alpha=0.15)
        ax.lines[-1].set_linestyle("--")
        _log_axes(ax)
        ax.set_xlabel(_norm_label(result, shift))
        ax.set_ylabel("test error ε (fraction)")
        ax.set_title(name, fontsize=10)
        ax.set_ylim(max(mine["test_error"].min() * 0.6, 1e-4), min(1.0, np.exp(log_c[g]) * 1.4))
        handles = ax.get_legend_handles_labels()
        _size_legend(ax, colours, loc="upper right")
        ax.add_artist(ax.get_legend())
        ax.legend(*handles, loc="lower left", fontsize=7)
    fig.suptitle("Law 1: test error along training against the norm (bands: 90 % posterior "
                 "of each P's curve)", fontsize=10)
    return fig


def collapse_figure(result, check=None) -> Figure:
    """ε/ε* against λ/λ* for every run that reached its optimum: one curve if law 1 holds."""
    runs, rows = run_table(result), row_table(result)
    x_scale = _group_values(result, "x_scale")
    sharp = _group_values(result, "sharpness")
    gamma1 = result.draws("gamma1")
    fig, axes = _panels(len(result.groups))
    for g, (ax, name) in enumerate(zip(axes, result.group_names, strict=True)):
        mine = rows[rows["group"] == g]
        colours = _colours(mine["train_size"])
        seen = runs[(runs["group"] == g) & ~runs["censored"]]
        for _, run in seen.iterrows():
            points = mine[mine["run"] == run["run"]]
            ax.plot(np.exp(points["log_norm"] - run["log_lam_star"]),
                    points["test_error"] / np.exp(run["log_eps_star"]), "o",
                    color=colours[int(run["train_size"])], markersize=2.2, alpha=0.45)
        u_lo = float((mine["log_norm"] - mine["run"].map(runs["log_lam_star"])).min())
        u = np.linspace(max(u_lo, -12.0), 1.2, 200)
        g_std = float(np.median(gamma1[:, g])) * x_scale[g]
        beta = float(np.median(seen["beta"])) if len(seen) else 1.0
        curve = learning_curve(u / x_scale[g], 0.0, 0.0, g_std, beta, sharp[g])
        ax.plot(np.exp(u), np.exp(curve), color="black", linewidth=1.4,
                label="fitted curve shape (no plateau)")
        slope_line = -float(np.median(gamma1[:, g])) * u - envelope_offset(g_std, beta, sharp[g])
        ax.plot(np.exp(u), np.exp(slope_line), "--", color="black", linewidth=1,
                label=f"envelope slope −γ1, γ1 = {_interval_text(gamma1[:, g])}")
        _log_axes(ax)
        ax.set_ylim(0.6, max(3.0, float((mine["test_error"]
                                         / np.exp(mine["run"].map(runs["log_eps_star"])))
                                        .quantile(0.995)) * 1.2))
        ax.set_xlabel("λ / λ*  (norm over the run's optimal norm)")
        ax.set_ylabel("ε / ε*  (error over the run's best error)")
        n_out = int(((runs["group"] == g) & runs["censored"]).sum())
        ax.set_title(name + (f" ({n_out} runs without an optimum left out)" if n_out else ""),
                     fontsize=10)
        handles = ax.get_legend_handles_labels()
        _size_legend(ax, colours, loc="upper right")
        ax.add_artist(ax.get_legend())
        ax.legend(*handles, loc="lower left", fontsize=7)
    fig.suptitle("Collapse: every run rescaled by its own optimum (λ*, ε*)", fontsize=10)
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
    """λ* against P per run, with law 2's 90 % posterior band."""
    x_scale, x_center = _group_values(result, "x_scale"), _group_values(result, "x_center")
    draws = _law_draws(result)
    fig, panels = _size_panels(result, check)
    for g, ax, name, mine, held, grid, ell in panels:
        log_lam = x_center[g] + x_scale[g] * _laws(draws, x_scale, g, ell)[1]
        shift = _norm_shift(np.concatenate([mine["log_lam_star"], log_lam.ravel()]))
        _band(ax, grid, _norm_values(log_lam, shift), "C0",
              label=f"law 2, γ2 = {_interval_text(result.draws('gamma2')[:, g])}")
        seen, bound = mine[~mine["censored"]], mine[mine["censored"]]
        ax.plot(seen["train_size"], _norm_values(seen["log_lam_star"], shift), "o", color="C0",
                markersize=3.5, alpha=0.7, label="runs: fitted optimum λ*")
        if len(bound):
            ax.plot(bound["train_size"], _norm_values(bound["log_lam_last"], shift), "^",
                    markerfacecolor="none", color="C3", markersize=5,
                    label="runs still improving: last λ (λ* is above)")
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
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Law 2: the optimal norm λ*(P) = k2·P^γ2", fontsize=10)
    return fig


def best_error_figure(result, check=None) -> Figure:
    """ε* against P: the runs' optima, the fitted convergence law, the combined laws, and
    (with a check) the held-out sizes predicted and observed."""
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
                    label="runs still improving: last ε (ε* is below)")
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
    fig.suptitle("Best error ε*(P): measured and predicted (bands: 90 % posterior)", fontsize=10)
    return fig


# ------------------------------------------------------------------------- exponents
FOREST = (("gamma1", "γ1 (law 1: ε ∝ λ^−γ1)"), ("gamma2", "γ2 (law 2: λ* ∝ P^γ2)"),
          ("gamma_pred", "γ1·γ2 (combined laws)"), ("gamma_conv", "γ_conv (fitted ε* ∝ P^−γ)"))


def forest_figure(result, check=None) -> Figure:
    """Posterior medians, 50 % and 90 % intervals of γ1, γ2, γ1γ2, γ_conv (and Δ) per group."""
    names = result.group_names
    panels = list(FOREST)
    with_delta = not result.settings.get("tie_convergence")
    if with_delta:
        panels.append(("delta", "Δ = γ_conv − γ1·γ2"))
    fig = Figure(figsize=(3.0 * len(panels), 0.45 * len(names) + 1.6), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True)
    recipe = {g["name"]: g.get("paper_recipe") for g in (check or {}).get("groups", [])}
    y = np.arange(len(names))[::-1]
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = (result.draws("gamma_conv") - result.draws("gamma_pred") if key == "delta"
                  else result.draws(key))
        q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        ax.hlines(y, q[0], q[4], color="C0", linewidth=1.2, label="90 % interval")
        ax.hlines(y, q[1], q[3], color="C0", linewidth=4, label="50 % interval")
        ax.plot(q[2], y, "o", color="white", markeredgecolor="C0", markersize=5,
                label="median")
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
            ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(label + " (posterior)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    axes[0].set_ylabel(f"group ({' / '.join(result.settings['group_by'])})")
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncol=len(handles), fontsize=8)
    fig.suptitle("Exponents across groups", fontsize=10)
    return fig


# ------------------------------------------------------------------------- sampler checks
DIAGNOSED = tuple(p for p in PARAMS if p != "shape_error")


def diagnostics_figure(result, check=None) -> Figure:
    """R-hat and effective sample sizes of every parameter and group, against rc's limits."""
    import arviz as az

    from ..settings import rc

    posterior = result.idata.posterior
    names = [n for n in DIAGNOSED if n in posterior]
    if result.settings.get("tie_convergence"):
        names = [n for n in names if n != "gamma_conv"]
    rhat = az.rhat(posterior[names])
    bulk, tail = az.ess(posterior[names], method="bulk"), az.ess(posterior[names], method="tail")
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
    fig.suptitle(f"Sampler diagnostics: {d['chains']} chains × {d['draws']} draws, "
                 f"{d['divergences']} divergences — "
                 f"{'passed' if d['passed'] else 'FAILED: do not trust the intervals'}",
                 fontsize=10)
    return fig


def ppc_figure(result, check=None) -> Figure:
    """Posterior predictive check of the run summaries the model was fitted to: each run's
    envelope slope, log λ* and log ε*, as a residual from its predictive distribution."""
    runs = run_table(result)
    replicas = predictive_estimates(result, seed=int(result.settings.get("seed", 0)))
    observed = runs[["gamma", "log_lam_star", "log_eps_star"]].to_numpy()
    centre, spread = np.median(replicas, axis=0), replicas.std(axis=0)
    low, high = np.quantile(replicas, [0.05, 0.95], axis=0)
    inside = (observed >= low) & (observed <= high)
    residual = (observed - centre) / spread
    censored = runs["censored"].to_numpy()
    fig = Figure(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    titles = ("envelope slope γ̂", "optimal norm: log λ*", "best error: log ε*")
    n_groups = len(result.groups)
    edge = 1.6449  # the 90 % predictive interval, in sds of a Gaussian
    for k, ax in enumerate(axes):
        use = ~censored if k else np.ones(len(runs), bool)
        ax.axhspan(-edge, edge, color="C2", alpha=0.12, label="90 % predictive interval")
        ax.axhline(0, color="black", linewidth=0.8)
        for g in range(n_groups):
            sel = (runs["group"].to_numpy() == g) & use
            jitter = np.exp(0.04 * (g - (n_groups - 1) / 2))
            ax.plot(runs["train_size"].to_numpy()[sel] * jitter, residual[sel, k], "o",
                    color=f"C{g % 10}", markersize=3.5, alpha=0.8,
                    label=result.group_names[g])
        ax.set_xscale("log")
        _log_axis(ax.xaxis, *ax.get_xlim())
        share = inside[use, k].mean() if use.any() else float("nan")
        ax.set_title(f"{titles[k]}: {inside[use, k].sum()}/{use.sum()} runs ({share:.0%}) "
                     "inside", fontsize=9)
        ax.set_xlabel("P (training-set size, examples)")
    axes[0].set_ylabel("(observed − predicted) / predictive sd")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    skipped = int(censored.sum())
    fig.suptitle("Posterior predictive check of each run's stage-1 summaries (new run scatter "
                 "and measurement noise, same P levels)"
                 + (f"; {skipped} runs still improving left out of λ*, ε*" if skipped else ""),
                 fontsize=10)
    return fig


#: name → (function, caption), in the order the report shows them
FIGURES = {
    "curves": (curves_figure, "Test error against the norm along training, every run "
               "coloured by its training-set size P. Bands: 90 % posterior of each P's "
               "curve; dashed: the envelope ε = A·λ^−γ1 shared by all P (law 1)."),
    "collapse": (collapse_figure, "Every run rescaled by its own optimum: ε/ε* against λ/λ*. "
                 "If law 1 holds with one shape, all runs fall on one curve; dashed: the "
                 "envelope's slope −γ1."),
    "optimal_norm": (optimal_norm_figure, "Law 2: each run's optimal norm λ* against P, "
                     "with the 90 % posterior band of λ* = k2·P^γ2."),
    "best_error": (best_error_figure, "Best error ε* against P: the runs' optima, the "
                   "fitted convergence law (γ_conv) and the combined laws' slope γ1·γ2; "
                   "with a check, the held-out sizes as predicted by the combined laws "
                   "refitted without them (squares, 90 %) and as observed (stars)."),
    "exponents": (forest_figure, "Posterior medians, 50 % and 90 % intervals of the exponents "
                  "per group; crosses: the paper's log-log recipe, when a check is given. "
                  "γ1 and γ2 depend on the norm (λ → λ^c maps γ1 → γ1/c, γ2 → c·γ2); "
                  "γ1·γ2 and γ_conv do not."),
    "diagnostics": (diagnostics_figure, "Sampler diagnostics: R-hat and bulk/tail effective "
                    "sample sizes of every parameter in every group, against the limits in "
                    "scalingfit.rc."),
    "ppc": (ppc_figure, "Posterior predictive check: each run's stage-1 summaries (its "
            "envelope slope, log λ*, log ε*) against replicates from the posterior, as "
            "residuals in predictive standard deviations; about 90 % should fall in the "
            "shaded band. Runs still improving at their last step have no measured optimum "
            "and are left out of the λ* and ε* panels."),
}
