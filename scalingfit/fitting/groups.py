"""The table in fitting units: which norm, which groups, which rows each group fits.

A group is one combination of the ``group_by`` columns (architecture × dataset by
default); :func:`group_name` is how every output names it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from ..ingest.table import log_norm, norm_names
from .run_curves import GroupCurves

__all__ = ["choose_norm", "prepare", "Group", "group_name", "NORM_PREFERENCE", "MIN_POINTS",
           "source_row"]

#: Norms chosen by default, in this order, when the table has several.
NORM_PREFERENCE = ("spectral_complexity", "spectral_product", "group21", "frobenius", "l1",
                   "l2")
MIN_POINTS = 6  # a run with fewer logged steps cannot show a plateau, a slope and an optimum


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


def source_row(table, rows):
    """The source a table was read from and the first of ``rows``, for error messages."""
    source = table["source"].iloc[0] if "source" in table and table["source"].notna().any() \
        else "<table>"
    return str(source), rows[0]


def group_name(values) -> str:
    """How a group is named everywhere (tables, figures, JSON): its ``group_by`` values
    joined by " / ", e.g. ``cnn / mnist`` or ``adam``."""
    values = values.values() if isinstance(values, dict) else values
    return " / ".join(map(str, values))


@dataclass
class Group:
    """One group's rows in fitting units: ``x = (log λ − x_center)/x_scale``."""

    keys: dict             # group_by column -> value
    curves: GroupCurves
    runs: pd.DataFrame     # one row per run (index run_id, sorted): train_size
    x_center: float
    x_scale: float

    @property
    def name(self) -> str:
        return group_name(self.keys)


def prepare(table: pd.DataFrame, *, norm: str, group_by, n_test=None):
    """Split the table into :class:`Group` s in fitting units; check each can be fitted.

    Returns the groups and a list of warnings.
    """
    notes = []
    x_all = log_norm(table, norm)
    missing = ~np.isfinite(x_all)
    if missing.any():
        source, row = source_row(table, table.index[missing])
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
        keys = dict(zip(group_by, label if isinstance(label, tuple) else (label,)))
        name = group_name(keys)
        sizes = rows["train_size"].unique()
        if len(sizes) < 2:
            source, row = source_row(rows, rows.index)
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
        ell = np.log(runs["train_size"].to_numpy(float))
        curves = GroupCurves((x - center) / scale, y, run_index.astype(int), n, len(runs),
                             ell - ell.mean())
        groups.append(Group(keys, curves, runs, center, scale))
    return groups, notes


def _check_falling(rows, name):
    """Law 1 needs errors that fall along training. Where most runs end above where they
    start, the column is almost always accuracy, and a fit would be slow and meaningless."""
    ends = rows.sort_values("step").groupby("run_id")["test_error"].agg(
        first=lambda e: e.iloc[:3].median(), last=lambda e: e.iloc[-3:].median())
    rising = ends[ends["last"] > ends["first"]]
    if len(rising) > len(ends) / 2:
        source, row = source_row(rows, rows.index)
        raise DataError(
            f"group {name}: test_error ends above where it starts in {len(rising)} of "
            f"{len(ends)} runs (median {rising['first'].median():.3g} -> "
            f"{rising['last'].median():.3g}): is it accuracy rather than error?",
            source=source, column="test_error",
            fix="if it is accuracy, declare it in a mapping file (--map) with 'units: "
                "{test_error: accuracy}' (or accuracy_percent), or write 1 - accuracy.")
