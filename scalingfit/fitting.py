"""``fit``: canonical table → stage-1 run summaries → stage-2 posterior → :class:`FitResult`.

The two stages are described in :mod:`scalingfit.summaries` and :mod:`scalingfit.model`.
This module prepares the data (which norm, which groups, which noise), runs them, and
says loudly what deserves a second look.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError, ScalingfitWarning
from .rc import rc
from .summaries import GroupCurves, summarise_group
from .table import log_norm, norm_names, validate

__all__ = ["fit", "choose_norm", "prepare", "Group"]

#: Norms chosen by default, in this order, when the table has several.
NORM_PREFERENCE = ("spectral_complexity", "spectral_product", "group21", "frobenius", "l1",
                   "l2")
MIN_POINTS = 6  # a run with fewer logged steps cannot show a plateau, a slope and an optimum
#: Below this median reach (:mod:`scalingfit.summaries`), γ1 is a third or more steeper than
#: any slope the group's curves show: say that it rests on the curve's shape. On curves drawn
#: from the model (benchmarks/envelope_reach.py), γ1 was within 4 % of the truth and inside
#: its 90 % interval down to a reach of 0.81; between 0.5 and 0.71 it strayed by up to 16 %
#: and missed its interval in 2 of 6 fits.
REACH_WARN = 0.75


def choose_norm(table: pd.DataFrame, norm: str | None) -> str:
    """The norm to fit: the one asked for, else the first of :data:`NORM_PREFERENCE`."""
    available = norm_names(table)
    if norm is not None:
        if norm not in available:
            raise DataError(f"no column 'norm_{norm}' or 'lognorm_{norm}'; the table has "
                            f"norms {available}.", column=f"norm_{norm}",
                            fix="pick one of those with --norm.")
        return norm
    return next((n for n in NORM_PREFERENCE if n in available), available[0])


def _where(table, rows):
    source = table["source"].iloc[0] if "source" in table and table["source"].notna().any() \
        else "<table>"
    return str(source), rows[0]


@dataclass
class Group:
    """One group's rows in fitting units: ``x = (log λ − x_center)/x_scale``."""

    label: tuple
    curves: GroupCurves
    runs: pd.DataFrame     # one row per run (index run_id, sorted): train_size
    x_center: float
    x_scale: float

    @property
    def name(self) -> str:
        return "/".join(map(str, self.label))


def prepare(table: pd.DataFrame, *, norm: str, group_by, n_test=None):
    """Split the table into :class:`Group` s in fitting units; check each can be fitted.

    Returns the groups and a list of warnings.
    """
    notes = []
    x_all = log_norm(table, norm)
    missing = ~np.isfinite(x_all)
    if missing.any():
        source, row = _where(table, table.index[missing])
        raise DataError(f"norm '{norm}' is missing in {int(missing.sum())} rows.",
                        source=source, row=row, column=f"norm_{norm}",
                        fix="choose a norm logged at every step (--norm), or drop those rows.")
    unknown = [k for k in group_by if k not in table]
    if unknown:
        raise DataError(f"--group-by column(s) {unknown} not in the table.", column=unknown[0],
                        fix=f"choose among {list(table.columns)}.")
    table = table.assign(_x=x_all)
    if n_test is None and "n_test" not in table:
        notes.append("no n_test column or --n-test: the noise in log error is fitted "
                     "without its binomial part.")
    groups = []
    for label, rows in table.groupby(list(group_by), sort=True):
        label = label if isinstance(label, tuple) else (label,)
        name = "/".join(map(str, label))
        sizes = rows["train_size"].unique()
        if len(sizes) < 2:
            source, row = _where(rows, rows.index)
            raise DataError(
                f"group {name} has a single train_size (P={sizes[0]}, "
                f"{rows['run_id'].nunique()} runs): law 2 needs runs at two or more P.",
                source=source, row=row, column="train_size",
                fix="add runs at other training-set sizes, or group differently (--group-by).")
        counts = rows.groupby("run_id").size()
        short = counts[counts < MIN_POINTS]
        if len(short):
            notes.append(f"group {name}: {len(short)} runs with fewer "
                         f"than {MIN_POINTS} logged steps left out ({', '.join(short.index[:5])}"
                         f"{', ...' if len(short) > 5 else ''}).")
            rows = rows[~rows["run_id"].isin(short.index)]
        if rows["train_size"].nunique() < 2:
            raise DataError(f"group {name}: after leaving out short runs, "
                            "a single train_size remains.", column="train_size",
                            fix="log more steps per run.")
        runs = rows.groupby("run_id", sort=True).agg(train_size=("train_size", "first"))
        _check_falling(rows, name)
        if runs.groupby("train_size").size().max() == 1:
            notes.append(f"group {name} has one run per P (seed-averaged "
                         "curves?): run-to-run variation cannot be told apart from departures "
                         "from the power laws, so the intervals rest on the scatter about "
                         "the laws alone.")
        rows = rows.sort_values(["run_id", "step"])
        x = rows["_x"].to_numpy(float)
        center, scale = float(x.mean()), float(x.std())
        if not scale > 0:
            raise DataError(f"group {name}: the norm '{norm}' never "
                            "changes.", column=f"norm_{norm}", fix="check the norm column.")
        run_index = pd.Categorical(rows["run_id"], categories=runs.index).codes
        n = rows["n_test"].to_numpy(float) if "n_test" in rows else None
        if n_test is not None:
            n = np.full(len(rows), float(n_test))
        errors = rows["test_error"].to_numpy(float)
        if n is not None:
            # a test error of 0 (or 1) has a finite log: the usual half-count correction
            y = np.log((np.round(errors * n) + 0.5) / (n + 1.0))
        else:
            floor = 0.5 * errors[errors > 0].min() if (errors > 0).any() else 1e-6
            y = np.log(np.maximum(errors, floor))
        curves = GroupCurves((x - center) / scale, y, run_index.astype(int), n, len(runs))
        groups.append(Group(label, curves, runs, center, scale))
    return groups, notes


def _check_falling(rows, name):
    """Law 1 needs errors that fall along training. Where most runs end above where they
    start, the column is almost always accuracy, and a fit would be slow and meaningless."""
    ends = rows.sort_values("step").groupby("run_id")["test_error"].agg(
        first=lambda e: e.iloc[:3].median(), last=lambda e: e.iloc[-3:].median())
    rising = ends[ends["last"] > ends["first"]]
    if len(rising) > len(ends) / 2:
        source, row = _where(rows, rows.index)
        raise DataError(
            f"group {name}: test_error ends above where it starts in {len(rising)} of "
            f"{len(ends)} runs (median {rising['first'].median():.3g} -> "
            f"{rising['last'].median():.3g}): is it accuracy rather than error?",
            source=source, column="test_error",
            fix="if it is accuracy, declare it in a mapping file (--map) with 'units: "
                "{test_error: accuracy}' (or accuracy_percent), or write 1 - accuracy.")


def fit(table: pd.DataFrame, *, norm: str | None = None, group_by=("architecture", "dataset"),
        n_test: int | None = None, at_end: str = "bound", tie_convergence: bool = False,
        method: str = "two-stage", sampler: str | None = None, draws: int | None = None,
        tune: int | None = None, chains: int | None = None, seed: int | None = None,
        progress: bool = True):
    """Fit both dynamical laws, hierarchically across groups.

    Parameters
    ----------
    table : pandas.DataFrame
        A canonical table (docs/design.md §3), e.g. from :func:`scalingfit.load`.
    norm : str, optional
        Which norm (``norm_<name>`` or ``lognorm_<name>``); default: see
        :data:`NORM_PREFERENCE`.
    group_by : sequence of str
        Columns whose combinations are the groups (default architecture × dataset).
    n_test : int, optional
        Test-set size when the table has no ``n_test`` column (for the binomial noise).
    at_end : {"bound", "optimum"}
        A run still improving at its last step: λ* is a lower bound (default) or the last
        point (the paper's convention).
    tie_convergence : bool
        Fit the combined-law model, in which ``γ_conv = γ1·γ2``.
    method : {"two-stage", "full"}
        The fast two-stage fit (default), or the full point-level model it was validated
        against (:mod:`scalingfit.full_model`; minutes, not seconds).
    sampler, draws, tune, chains, seed
        Sampling settings; ``None`` means :data:`scalingfit.rc`.
    progress : bool
        Show progress while fitting runs, compiling and sampling.

    Returns
    -------
    FitResult
    """
    from .model import build_model
    from .result import FitResult
    from .sampling import diagnostics, sample

    if method not in ("two-stage", "full"):
        raise ValueError(f"method must be 'two-stage' or 'full', got {method!r}")
    if method == "full" and at_end != "bound":
        raise ValueError("at_end does not apply to method='full': its runs' optima are "
                         "latent, extrapolated past the last point when need be.")
    timings = {}
    start = time.perf_counter()
    table = validate(table, source=_where(table, table.index)[0] if len(table) else "<table>")
    norm = choose_norm(table, norm)
    group_by = tuple(group_by)
    groups, prepared = prepare(table, norm=norm, group_by=group_by, n_test=n_test)
    notes = []  # every warning about the data, printed now and kept in summary.json

    def note(message):
        notes.append(message)
        warnings.warn(message, ScalingfitWarning, stacklevel=3)

    for message in prepared:
        note(message)

    summaries = [summarise_group(group.curves)
                 for group in _progress(groups, progress, "fitting run curves")]
    timings["stage1_s"] = time.perf_counter() - start

    data = _summary_data(groups, summaries)
    censored = int(data.censored.sum())
    if censored:
        note(f"{censored} of {len(data.run_ids)} runs: fitted optimum at or beyond the last "
             f"logged point (still improving, or too flat to place a minimum before it); "
             f"their optimum is treated as "
             f"{'a lower bound on λ*' if at_end == 'bound' else 'the last point'} "
             f"(at_end={at_end!r}).")
    for g, (group, s) in enumerate(zip(groups, summaries)):
        share = data.censored[data.group == g].mean()
        if at_end == "bound" and share > 0.5:
            note(f"group {group.name}: {share:.0%} of runs end before their optimum, so γ2 "
                 "and γ_conv are weakly identified; train longer, or take the last point as "
                 "the optimum (--at-end optimum; at_end='optimum' in Python: the paper's "
                 "convention).")
        reach = float(np.median(s.reach))
        if reach < REACH_WARN:
            note(f"group {group.name}: the fitted curves never fall as steeply as their "
                 f"envelope slope (the median run reaches {reach:.2f} of it): γ1 is the "
                 "asymptote of a bend, not a slope seen in the data, and is only as good as "
                 "the curve's shape; look at the fit figure (scalingfit report), and see "
                 "envelope_reach in summary.json.")

    if method == "full":
        from .full_model import build_full_model

        model = build_full_model(data, groups, summaries, tie_convergence=tie_convergence)
    else:
        model = build_model(data, at_end=at_end, tie_convergence=tie_convergence)
    t0 = time.perf_counter()
    idata = sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                   progress=progress, jitter=method != "full")
    timings["stage2_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    diag = diagnostics(idata)
    settings = dict(method=method, norm=norm, group_by=list(group_by), at_end=at_end,
                    tie_convergence=tie_convergence, n_test=n_test,
                    sampler=sampler or rc["sample.sampler"], seed=seed if seed is not None
                    else rc["sample.seed"])
    result = FitResult.build(idata, data=data, summaries=summaries, table=table,
                             groups=groups, settings=settings, diagnostics=diag,
                             timings=timings, notes=notes)
    if not diag["passed"]:
        warnings.warn(result.diagnostics_line(), ScalingfitWarning, stacklevel=2)
    return result


def _progress(items, show, description):
    if not show:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


def _summary_data(groups, summaries):
    """Stack the groups' run summaries into the arrays the model reads."""
    from .model import SummaryData

    parts = {k: [] for k in ("run_ids", "group", "level", "ell", "z", "cov", "loading",
                             "censored", "x_last", "y_last", "y_last_sd")}
    x_scale, x_center, ell_center, seeded = [], [], [], []
    level_offset = 0
    for g, (group, s) in enumerate(zip(groups, summaries)):
        runs = group.runs
        ell = np.log(runs["train_size"].to_numpy(float))
        levels = pd.factorize(runs["train_size"], sort=True)[0]
        parts["run_ids"].append(runs.index.to_numpy(str))
        parts["group"].append(np.full(len(runs), g))
        parts["level"].append(levels + level_offset)
        parts["ell"].append(ell - ell.mean())
        parts["z"].append(np.column_stack([s.gamma, s.x_star, s.y_star]))
        parts["loading"].append(s.shared_loading)
        for key in ("cov", "censored", "x_last", "y_last", "y_last_sd"):
            parts[key].append(getattr(s, key))
        level_offset += levels.max() + 1
        x_scale.append(group.x_scale)
        x_center.append(group.x_center)
        ell_center.append(ell.mean())
        seeded.append(np.bincount(levels).max() > 1)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return SummaryData(groups=[group.label for group in groups], x_scale=np.array(x_scale),
                       x_center=np.array(x_center), ell_center=np.array(ell_center),
                       seeded_levels=np.array(seeded), **arrays)
