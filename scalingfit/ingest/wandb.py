"""Weights & Biases: local run logs, CSV exports, and projects through the public API.

Four ways W&B data arrives, all read into the same series per run (:class:`RunLog`):

- **Local run directories** (``wandb/run-*/``, ``wandb/offline-run-*/``): the binary
  record log ``run-<id>.wandb`` is read directly (:mod:`._leveldb_log`, every record's
  checksum verified) and decoded with the protobuf classes that ship with the ``wandb``
  package: history rows, the run's name and its config. No network, no login.
- **A line panel's CSV export** from the W&B UI: ``Step``, then ``<run name> - <metric>``
  columns, with ``__MIN``/``__MAX`` columns when the chart bucketed the points (the report
  says so; the main column is read). A directory of such exports (one per panel) is
  merged on run and step.
- **History exports**: ``run.history()`` / ``run.scan_history()`` saved as CSV, JSON
  lines or Parquet (a ``_step`` column), with the run's config as JSON beside it
  (``<name>.config.json``, ``<name>_config.json`` or ``config.json``).
- **``wandb://entity/project[/run_id][?filters]``**, online, through ``wandb.Api``:
  ``scan_history`` per metric, joined on ``_step`` (:mod:`._wandb_api`).

The run's display name is its ``run_id`` (it is what a run-name template parses); W&B's
own keys (``_runtime``, ``_timestamp``, ``_wandb``) are not read, and ``_step`` is the step.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, require
from ._common import RunLog, SourceReport, assemble, nothing_kept, track
from ._leveldb_log import read_records
from ._wandb_api import URL_SCHEME, flat_config, json_or_text, read_api
from .csv import SUFFIXES as TABLE_SUFFIXES
from .csv import read_frame
from .mapping import ALIASES, Mapping

__all__ = ["read", "is_wandb_table", "URL_SCHEME", "HISTORY_ONLY_SUFFIXES"]

#: Files that only W&B history exports come as (CSV and Parquet are sniffed).
HISTORY_ONLY_SUFFIXES = (".jsonl", ".ndjson")
_BUCKET_SUFFIXES = ("__MIN", "__MAX")
_STEP = "_step"


def is_wandb_table(path) -> bool:
    """Whether a CSV or Parquet file is a W&B panel export or history export."""
    return _table_kind(Path(path)) is not None


def read(path, mapping: Mapping | None = None):
    """Read W&B runs into canonical names.

    Parameters
    ----------
    path : str or Path
        A ``run-<id>.wandb`` file, a panel or history export, a directory holding any of
        them, or a ``wandb://entity/project[?filters]`` URL.
    mapping : Mapping, optional
        Metric names, units and run-name template; common names are recognised without.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        Rows with canonical names (not yet validated), and what was kept and skipped.
    """
    if isinstance(path, str) and path.startswith(URL_SCHEME):
        report = SourceReport(path, "wandb-api")
        runs = read_api(path, mapping, report)
        source = path
    else:
        path = Path(path)
        report = SourceReport(str(path), "wandb")
        runs = _local_runs(path, report)
        source = str(path)
    table = assemble(runs, mapping, report, source=source, step=_STEP)
    if table.empty:
        raise nothing_kept(report, runs, source=source)
    return table, report


# -- finding what to read -------------------------------------------------------------


def _local_runs(path: Path, report) -> list:
    run_logs, panels, histories = _files(path)
    if not (run_logs or panels or histories):
        raise DataError("no W&B run logs (run-*.wandb) or W&B CSV exports found.",
                        source=path, fix="give the wandb/ directory your runs wrote to, or "
                                         "the exported files.")
    runs = _Runs(report)
    protos = require("wandb.proto.wandb_internal_pb2", "wandb") if run_logs else None
    for file in track(run_logs, "reading W&B runs"):
        runs.add(*_read_run_log(file, protos, report))
    for file in panels:
        for run in _read_panel(file, report):
            runs.add(run)
    for file in histories:
        for run in _read_history(file, report):
            runs.add(run)
    if runs.ignored:
        report.notes.append("not numbers, not read: " + ", ".join(
            f"'{key}' ({n}x)" for key, n in runs.ignored.most_common(8)))
    return runs.all()


def _files(path: Path):
    """The run logs, panel exports and history exports at ``path``."""
    paths = [path] if path.is_file() else sorted(
        Path(directory, name) for directory, _, names in os.walk(path) for name in names)
    run_logs, panels, histories = [], [], []
    for file in paths:
        name = file.name.lower()
        if name.endswith(".wandb"):
            run_logs.append(file)
        elif name.endswith(HISTORY_ONLY_SUFFIXES):
            histories.append(file)
        elif name.endswith(TABLE_SUFFIXES):
            kind = _table_kind(file)
            if kind == "panel":
                panels.append(file)
            elif kind == "history":
                histories.append(file)
    return run_logs, panels, histories


def _table_kind(path: Path):
    """'panel', 'history' or None, from a table's column names."""
    columns = _column_names(path)
    if _STEP in columns:
        return "history"
    if len(columns) >= 2 and all(" - " in c for c in columns[1:]):
        return "panel"
    return None


def _column_names(path: Path) -> list:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0, sep="\t" if ".tsv" in name else ",").columns)
    except Exception:  # unreadable or empty: not a W&B table; the CSV reader will say why
        return []


class _Runs:
    """Runs by name; a run split over several files (a resumed run, several panels) is
    joined, two different W&B runs under one name are an error."""

    def __init__(self, report):
        self.report = report
        self.by_name: dict[str, RunLog] = {}
        self.wandb_ids: dict[str, str] = {}
        self.ignored = Counter()

    def add(self, run: RunLog, wandb_id: str | None = None, ignored=None):
        self.ignored.update(ignored or {})
        if wandb_id is not None:
            known = self.wandb_ids.setdefault(run.name, wandb_id)
            if known != wandb_id:
                raise DataError(
                    f"two W&B runs are named '{run.name}' (ids {known} and {wandb_id}).",
                    source=run.origin, column="run_id",
                    fix="remove the run directory you do not want (a failed attempt?), or "
                        "read the two from separate sources with different templates.")
        if run.name not in self.by_name:
            self.by_name[run.name] = run
            return
        kept = self.by_name[run.name]
        for metric, (steps, values) in run.series.items():
            if metric in kept.series:
                old_steps, old_values = kept.series[metric]
                steps = np.concatenate([old_steps, steps])
                values = np.concatenate([old_values, values])
            kept.series[metric] = (steps, values)
        for key, value in run.meta.items():
            kept.meta.setdefault(key, value)

    def all(self) -> list:
        return list(self.by_name.values())


# -- run logs (run-<id>.wandb) --------------------------------------------------------


def _read_run_log(file: Path, protos, report):
    """(RunLog, W&B run id, ignored keys) of one ``run-<id>.wandb`` file."""
    from google.protobuf.message import DecodeError

    history = _SeriesBuilder()
    config, name, run_id = {}, None, None
    for data in read_records(file, report.skipped):
        try:
            record = protos.Record.FromString(data)
        except DecodeError:
            report.skipped["W&B records that do not decode"] += 1
            continue
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {_item_key(item): item.value_json for item in record.history.item}
            step = row.pop(_STEP, None)
            if step is None and record.history.HasField("step"):
                step = str(record.history.step.num)
            history.add_row(step, {k: json_or_text(v) for k, v in row.items()})
        elif kind == "run":
            name = record.run.display_name or name
            run_id = record.run.run_id or run_id
            _update_config(config, record.run.config)
        elif kind == "config":
            _update_config(config, record.config)
    if history.missing_step:
        report.skipped["W&B history rows without a whole-number _step"] += (
            history.missing_step)
    run_id = run_id or file.stem.removeprefix("run-")
    run = RunLog(name or run_id, history.series(), flat_config(config), str(file.parent))
    return run, run_id, history.ignored


def _item_key(item) -> str:
    """W&B's flat name of a logged key: nested dicts are joined with dots, as in the UI."""
    return item.key or ".".join(item.nested_key)


def _update_config(config: dict, record):
    for item in record.update:
        config[_item_key(item)] = json_or_text(item.value_json)
    for item in record.remove:
        config.pop(_item_key(item), None)


class _SeriesBuilder:
    """Numeric series out of history rows, by key; what is not a number is counted."""

    def __init__(self):
        self.steps, self.values = defaultdict(list), defaultdict(list)
        self.ignored = Counter()
        self.missing_step = 0

    def add_row(self, step, row: dict):
        step = json_or_text(step) if isinstance(step, str) else step
        if (not isinstance(step, (int, float)) or isinstance(step, bool)
                or not np.isfinite(step) or step != int(step)):
            self.missing_step += 1  # no step, or not a whole number: not a row we can place
            return
        for key, value in row.items():
            if key.startswith("_"):
                continue  # W&B's own bookkeeping (_runtime, _timestamp, ...)
            if isinstance(value, (int, float)):  # bools too: True is 1
                self.steps[key].append(int(step))
                self.values[key].append(float(value))
            elif value is not None:
                self.ignored[key.split(".")[0]] += 1

    def series(self) -> dict:
        return {key: (np.array(self.steps[key], np.int64), np.array(self.values[key], float))
                for key in self.steps}


# -- panel exports ---------------------------------------------------------------------


def _read_panel(file: Path, report) -> list:
    """RunLogs of one line-panel CSV export (``Step``, ``<run> - <metric>``...)."""
    raw, notes = read_frame(file)
    report.notes += notes
    x_axis = raw.columns[0]
    steps = pd.to_numeric(raw[x_axis], errors="coerce")
    if steps.notna().any() and (steps.dropna() != np.round(steps.dropna())).any():
        raise DataError(f"the x-axis column '{x_axis}' holds non-integer values; this is not "
                        f"a step.", source=file, column=x_axis,
                        fix="export the panel with 'Step' on the x-axis.")
    no_step = steps.isna()
    if no_step.any():
        report.skipped["panel export rows without a step"] += int(no_step.sum())
    series = defaultdict(dict)
    for column in raw.columns[1:]:
        if column.endswith(_BUCKET_SUFFIXES):
            continue
        run, metric = column.rsplit(" - ", 1)
        values = pd.to_numeric(raw[column], errors="coerce")
        not_number = raw[column].notna() & values.isna() & ~no_step
        if not_number.any():
            report.skipped["panel export cells that are not numbers"] += int(not_number.sum())
        logged = values.notna() & ~no_step
        series[run][metric] = (steps[logged].to_numpy(np.int64),
                               values[logged].to_numpy(float))
    if any(str(c).endswith(_BUCKET_SUFFIXES) for c in raw.columns):
        report.notes.append(
            f"{file.name} is a bucketed panel export (__MIN/__MAX columns): each value is "
            f"what the chart drew for a bucket of steps, not every logged point; min/max "
            f"are not read. Export the runs' history for the raw values")
    return [RunLog(run, metrics, {}, str(file)) for run, metrics in series.items()]


# -- history exports -------------------------------------------------------------------


def _read_history(file: Path, report) -> list:
    """RunLogs of one history export, with the config found beside it."""
    if file.name.lower().endswith(HISTORY_ONLY_SUFFIXES):
        rows = _json_lines(file, report)
    else:
        raw, notes = read_frame(file)
        report.notes += notes
        rows = [{k: v for k, v in row.items() if not _is_missing(v)}
                for row in raw.to_dict("records")]
    run_column = next((c for c in ["run_id", *ALIASES["run_id"]]
                       if any(c in row for row in rows)), None)
    config = _config_beside(file)
    by_run = defaultdict(_SeriesBuilder)
    stem = _export_stem(file)
    for row in rows:
        name = str(row.pop(run_column)) if run_column and run_column in row else stem
        by_run[name].add_row(row.pop(_STEP, None), row)
    runs = []
    for name, history in by_run.items():
        if history.missing_step:
            report.skipped["W&B history rows without a whole-number _step"] += (
                history.missing_step)
        if history.ignored:
            report.notes.append(f"{file.name}: not numbers, not read: "
                                + ", ".join(sorted(history.ignored)))
        runs.append(RunLog(name, history.series(), dict(config), str(file)))
    return runs


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _json_lines(file: Path, report) -> list:
    rows = []
    with open(file, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                report.skipped["history export lines that are not JSON objects"] += 1
                continue
            rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def _export_stem(file: Path) -> str:
    """The run's name from an export's file name: ``cnn_P100.history.csv`` -> ``cnn_P100``."""
    name = file.name
    for suffix in (*TABLE_SUFFIXES, *HISTORY_ONLY_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
            break
    for suffix in (".history", "_history", "-history"):
        name = name.removesuffix(suffix)
    return name


def _config_beside(file: Path) -> dict:
    stem = _export_stem(file)
    for candidate in (f"{stem}.config.json", f"{stem}_config.json", f"{stem}-config.json",
                      "config.json"):
        path = file.with_name(candidate)
        if path.is_file():
            try:
                content = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                raise DataError(f"the run config beside {file.name} is not valid JSON "
                                f"({err}).", source=path) from err
            if not isinstance(content, dict):
                raise DataError("a run config must be a JSON object.", source=path)
            return flat_config(content)
    return {}
