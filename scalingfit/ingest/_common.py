"""What every reader shares: the per-source report, runs as logged series, and their assembly.

Log files (TensorBoard, W&B, the paper's ``.npy`` files) hold *series*: for each metric, the
steps at which it was logged and its values. :func:`assemble` turns the series of many runs
into canonical rows, one per (run, step): a step is kept when everything a row needs (test
error, every norm) was logged at it, and every step that is not kept is counted with the
name of the metric it lacked — never dropped silently.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..progress import track as progress_track
from .mapping import Mapping, as_written
from .table import NORM_PATTERN

__all__ = ["SourceReport", "RunLog", "assemble", "nothing_kept", "check_error_units", "track",
           "progress", "flat_metadata", "number_or_text"]

#: Whether readers may draw progress bars (set by :func:`progress`, used by :func:`track`).
_PROGRESS = ContextVar("scalingfit_ingest_progress", default=False)
#: Below this many items a progress bar is only noise.
_PROGRESS_MIN_ITEMS = 20


@dataclass
class SourceReport:
    """What one source gave: runs, rows kept, and every skipped row counted by reason."""

    source: str
    reader: str
    runs: int = 0
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    recognised: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    runs_found: int | None = None

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def line(self) -> str:
        """One line for the terminal."""
        runs = f"{self.runs} runs"
        if self.runs_found is not None and self.runs_found != self.runs:
            runs = f"{self.runs_found} runs found ({self.runs} with rows kept)"
        text = (f"{self.source} [{self.reader}]: {runs}, {self.rows_kept} rows kept, "
                f"{self.rows_skipped} skipped")
        if self.skipped:
            text += " (" + "; ".join(f"{n} {why}" for why, n in self.skipped.items()) + ")"
        if self.recognised:
            text += "; recognised " + ", ".join(f"{v!r} as {k}" for k, v in
                                                self.recognised.items())
        if self.notes:
            text += "; note: " + "; ".join(self.notes)
        return text


@dataclass
class RunLog:
    """One run as a reader found it: metric series keyed by step, and run metadata.

    Parameters
    ----------
    name : str
        The run's name; it becomes ``run_id`` and is what a run-name template parses.
    series : dict
        Metric name -> ``(steps, values)``, int64 and float64 arrays in logging order.
    meta : dict
        Per-run metadata (hyperparameters, config) under the source's own names.
    origin : str
        File or directory the run came from (the table's ``source`` column).
    """

    name: str
    series: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    origin: str = ""


def flat_metadata(content: dict, prefix: str = "") -> dict:
    """Run metadata (hyperparameters, params) as flat scalars: nested keys joined with dots,
    lists as JSON text, None left out, so that each becomes one column."""
    flat = {}
    for key, value in content.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flat_metadata(value, name))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        elif value is not None:
            flat[name] = value
    return flat


def number_or_text(text: str):
    """A value stored as text (an MLflow param, a tag): an int or float where it is one."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def assemble(runs, mapping: Mapping | None, report: SourceReport, *, source,
             step: str = "step") -> pd.DataFrame:
    """Join the series of each run on their steps and apply the mapping.

    Parameters
    ----------
    runs : list of RunLog
    mapping : Mapping or None
    report : SourceReport
        Receives the count of skipped steps by reason and what was recognised.
    source : str
        For error messages.
    step : str
        The source's name for the step (``global_step``, ``_step``, ...); it is recognised
        as ``step`` unless the mapping says otherwise.

    Returns
    -------
    pandas.DataFrame
        Canonical names (not yet validated); rows labelled ``"<run> step <step>"``.
    """
    mapping = mapping or Mapping()
    metrics = sorted({name for run in runs for name in run.series})
    meta_keys = sorted({key for run in runs for key in run.meta} - set(metrics) - {step})
    rename, _ = mapping.resolve(["run_id", step, *metrics, *meta_keys], source=source)
    needed = _needed(metrics, rename)

    frames, gaps = [], set()
    for run in runs:
        kept, columns = _rows_of(run, needed, report, gaps)
        if kept is None:
            report.notes.append(f"run '{run.name}' has no step with "
                                f"{' and '.join(repr(n) for n in needed) or 'any metric'}")
            continue
        labels = pd.Index([f"{run.name} step {s}" for s in kept.tolist()], dtype=object)
        # one constructor call: hundreds of metrics or config keys stay cheap
        frames.append(pd.DataFrame({
            "run_id": run.name, step: kept, **columns,
            **{key: run.meta.get(key, np.nan) for key in meta_keys},
            "source": run.origin or source}, index=labels))
    report.runs_found = len(runs)
    if not frames:
        return pd.DataFrame()
    for frame in frames:  # a metric some runs never logged has holes too
        gaps.update(set(metrics) - set(frame.columns))
    raw = pd.concat(frames)
    table, recognised = mapping.apply(raw, source=source)
    report.recognised.update(recognised)
    return _keep_gappy_optionals_apart(table, gaps, rename, report)


#: Optional canonical columns, which the table holds only without gaps.
_OPTIONAL_VALUES = ("train_error", "test_loss", "train_loss")


def _keep_gappy_optionals_apart(table, gaps, rename, report):
    """A training loss logged at other steps than the test error keeps its own name.

    The canonical ``train_loss`` (and ``train_error``, ``test_loss``) must be given at
    every row, or not at all; a metric that was not logged at some of the kept steps
    stays a column under its source name (``<name>_partial`` when that is the canonical
    name itself), with a note, rather than becoming a canonical column full of holes (or
    costing rows).
    """
    for name in sorted(gaps):
        canonical = rename.get(name, name)
        if canonical in _OPTIONAL_VALUES and canonical in table:
            # a metric logged under the canonical name itself (a Trainer's end-of-training
            # 'train_loss', a Lightning 'train_loss' logged per step) needs another name
            kept = name if canonical != name else f"{name}_partial"
            table = table.rename(columns={canonical: kept})
            report.notes.append(f"'{name}' is not logged at every kept step: kept as "
                                f"'{kept}', not as {canonical}")
            report.recognised.pop(canonical, None)
    return table


def _needed(metrics, rename):
    """Source names of the series a row cannot do without: test error, step, every norm."""
    needed = []
    for name in metrics:
        canonical = rename.get(name, name)
        if canonical in ("test_error", "step") or NORM_PATTERN.match(canonical):
            needed.append(name)
    # test error first: a step without it is reported as such, whatever else it lacks
    return sorted(needed, key=lambda n: rename.get(n, n) != "test_error")


def nothing_kept(report: SourceReport, runs, *, source) -> DataError:
    """The error for a source whose runs gave no row, saying what they did hold."""
    metrics = sorted({name for run in runs for name in run.series})
    if not metrics:
        return DataError(f"{len(runs)} run(s) found, but no scalar metrics in them.",
                         source=source, fix="check that this is the log you meant.")
    shown = ", ".join(repr(m) for m in metrics[:12]) + (", ..." if len(metrics) > 12 else "")
    return DataError(
        f"{len(runs)} run(s) found, but no step has every metric a row needs "
        f"({'; '.join(report.notes[:2])}).", source=source,
        fix=f"name the metrics in a mapping file (--map), e.g. 'metrics: {{test_error: "
            f"<name>, norm_spectral_complexity: <name>}}'; the metrics found are {shown}.")


def _rows_of(run: RunLog, needed, report, gaps: set):
    """(kept steps, column per metric) of one run; (None, None) if no step is kept."""
    if not run.series:
        return None, None
    all_steps = np.unique(np.concatenate([s for s, _ in run.series.values()]))
    columns, logged = {}, {}
    for name, (steps, values) in run.series.items():
        steps, values = _last_per_step(steps, values, report)
        at = np.searchsorted(all_steps, steps)
        columns[name] = np.full(len(all_steps), np.nan)
        columns[name][at] = values
        logged[name] = np.zeros(len(all_steps), bool)
        logged[name][at] = True
    keep = np.ones(len(all_steps), bool)
    for name in needed:
        present = logged.get(name, np.zeros(len(all_steps), bool))
        lacking = keep & ~present
        if lacking.any():
            report.skipped[f"steps without '{name}' logged"] += int(lacking.sum())
        keep &= present
    if not keep.any():
        return None, None
    gaps.update(name for name, present in logged.items() if not present[keep].all())
    return all_steps[keep], {name: column[keep] for name, column in columns.items()}


def _last_per_step(steps, values, report):
    """One value per step: a step logged twice (a restart, a re-log) keeps the later value."""
    steps = np.asarray(steps, np.int64)
    values = np.asarray(values, np.float64)
    if len(steps) < 2 or (np.diff(steps) > 0).all():
        return steps, values
    # the last occurrence of each step, in logging order
    reversed_first = np.unique(steps[::-1], return_index=True)[1]
    last = len(steps) - 1 - reversed_first
    replaced = len(steps) - len(last)
    if replaced:
        report.skipped["values logged again at the same step (the later one kept)"] += replaced
    return steps[last], values[last]


def check_error_units(table: pd.DataFrame, mapping: Mapping | None, *, source):
    """Refuse a table whose runs mix percent and fraction in an error column.

    The validator catches errors above 1 (percent in a fraction column); it cannot see a
    table where some runs are in percent and others in fractions once a unit is declared.
    A run whose error never exceeds 1 beside a run that goes above 1, in the unit the table
    was written in, is that mix.
    """
    units = mapping.units if mapping is not None else {}
    for column in ("test_error", "train_error"):
        if column not in table or "run_id" not in table:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        # NaN and inf say nothing about the unit: the validator reports (or omits) them
        values = values.where(np.isfinite(values))
        written = as_written(values, units.get(column, "fraction"))
        if not written.max() > 1:
            continue  # all within [0, 1]: nothing can be in percent
        peaks = written.groupby(table["run_id"].astype(str)).max().dropna()
        if len(peaks) < 2 or not ((peaks > 1).any() and (peaks <= 1).any()):
            continue
        high, low = peaks.idxmax(), peaks.idxmin()
        rows = table.index[(table["run_id"].astype(str) == high).to_numpy()]
        row = rows[np.nanargmax(written.loc[rows].to_numpy())]
        raise DataError(
            f"{column} mixes percent and fraction: run '{high}' goes up to {peaks[high]:g} "
            f"(percent) while run '{low}' never exceeds {peaks[low]:g} (fraction).",
            source=source, row=row, column=column,
            fix="write every run in one unit (fractions in [0, 1], or percent declared with "
                f"'units: {{{column}: percent}}' in a mapping file).")


@contextmanager
def progress(enabled: bool | None):
    """Let readers draw progress bars inside this block (None: when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    token = _PROGRESS.set(bool(enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def track(items, description: str):
    """Iterate over ``items`` with a progress bar on stderr when there are many of them."""
    items = list(items)
    yield from progress_track(items, description,
                              show=_PROGRESS.get() and len(items) >= _PROGRESS_MIN_ITEMS)
