"""PyTorch Lightning: the ``metrics.csv`` (and ``hparams.yaml``) of its ``CSVLogger``.

``CSVLogger(save_dir, name)`` writes ``<save_dir>/<name>/version_<N>/metrics.csv``: columns
``epoch``, ``step`` and one per logged metric, one row per logging call, so metrics logged
at one step by different calls (the training loss, the validation metrics, an epoch's
mean) sit on different rows, empty elsewhere. Each metric is read as the series of its
filled cells and the series are joined on ``step`` (:func:`._common.assemble`): one row per
step, with every value logged at it, none invented; a value logged twice at one step
keeps the later one, counted. Steps with no evaluation (the training rows) are counted in
the report, not read.

A run is named by its logger name (the folder above ``version_<N>``), which a run-name
template parses; the version is the ``version`` column. Several versions under one name
(reruns, or a sweep under Lightning's default name ``lightning_logs``) are distinct runs,
named ``<name>/version_<N>`` (a template still reads the name). ``hparams.yaml`` beside it
(``save_hyperparameters()``) gives the run's metadata, read as plain data: a Python object
tag in it is read as the data it holds, never constructed.

Read without the ``lightning`` package. TensorBoard- and W&B-logged Lightning runs are read
by those readers.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import DataError, first_line
from ._common import RunLog, SourceReport, assemble, flat_metadata, nothing_kept, track
from .csv import read_frame
from .mapping import LIGHTNING_VERSION, Mapping

__all__ = ["read", "is_metrics_file", "METRICS_FILE"]

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
_STEP = "step"


def is_metrics_file(path) -> bool:
    """Whether a file is the ``metrics.csv`` of a Lightning ``CSVLogger``."""
    path = Path(path)
    return path.name == METRICS_FILE and (
        LIGHTNING_VERSION.match(path.parent.name) is not None
        or (path.parent / HPARAMS_FILE).is_file())


def read(path, mapping: Mapping | None = None):
    """Read Lightning ``CSVLogger`` runs into canonical names.

    Parameters
    ----------
    path : str or Path
        A ``metrics.csv``, a ``version_<N>`` directory, or a directory searched for them.
    mapping : Mapping, optional
        Metric names, units and run-name template; common names are recognised without.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        Rows with canonical names (not yet validated), and what was kept and skipped.
    """
    path = Path(path)
    report = SourceReport(str(path), "lightning")
    files = [path] if path.is_file() else sorted(
        Path(directory, METRICS_FILE) for directory, _, names in os.walk(path)
        if METRICS_FILE in names and is_metrics_file(Path(directory, METRICS_FILE)))
    if not files:
        raise DataError(f"no Lightning {METRICS_FILE} found (in version_<N>/ directories).",
                        source=path, fix="give the save_dir of your CSVLogger.")
    names = defaultdict(list)
    for file in files:
        names[file.parent.parent.name].append(file)
    runs = []
    for file in track(files, "reading Lightning runs"):
        name, version = file.parent.parent.name, _version(file.parent.name)
        if len(names[name]) > 1:
            name = f"{name}/{file.parent.name}"
        runs.append(_run_of(file, name, version, report))
    shared = [n for n, group in names.items() if len(group) > 1]
    if shared:
        report.notes.append(
            f"several versions under one logger name ({', '.join(shared[:3])}): each is a run "
            f"of its own, named <name>/version_<N>")
    table = assemble(runs, mapping, report, source=str(path), step=_STEP)
    if table.empty:
        raise nothing_kept(report, runs, source=path)
    return table, report


def _version(folder: str):
    match = LIGHTNING_VERSION.match(folder)
    return int(match.group(1)) if match else folder


def _run_of(file: Path, name: str, version, report) -> RunLog:
    raw, notes = read_frame(file)
    report.notes += notes
    if _STEP not in raw.columns:
        raise DataError(
            f"no '{_STEP}' column (found {', '.join(map(repr, raw.columns[:8]))}).",
            source=file, column=_STEP,
            fix=f"a CSVLogger's {METRICS_FILE} starts with 'epoch' and 'step'; if the file's "
                f"header was cut or edited, restore it, or name the column that counts steps "
                f"'step'.")
    steps = pd.to_numeric(raw[_STEP], errors="coerce")
    whole = steps.notna() & np.isfinite(steps) & (steps == np.round(steps))
    if (~whole).any():
        report.skipped[f"{METRICS_FILE} rows without a whole-number step"] += int((~whole).sum())
    series = {}
    for column in raw.columns:
        if column == _STEP:
            continue
        values = pd.to_numeric(raw[column], errors="coerce")
        not_number = raw[column].notna() & values.isna() & whole
        if not_number.any():
            report.skipped[f"{METRICS_FILE} cells that are not numbers"] += int(not_number.sum())
        logged = values.notna() & whole
        # every row of a step repeats 'epoch': one value, written on several rows, is one
        # value (a different value at the same step is a re-log, counted by assemble)
        pairs = pd.DataFrame({"step": steps[logged], "value": values[logged]}).drop_duplicates()
        series[str(column)] = (pairs["step"].to_numpy(np.int64),
                               pairs["value"].to_numpy(float))
    meta = {**_hparams(file.parent / HPARAMS_FILE), "version": version}
    return RunLog(name, series, meta, str(file.parent))


class _PlainLoader(yaml.SafeLoader):
    """YAML's safe loader, reading Python-object tags as the plain data they hold."""


def _plain(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_PlainLoader.add_multi_constructor("tag:yaml.org,2002:python/", _plain)
_PlainLoader.add_multi_constructor("!", _plain)


def _hparams(file: Path) -> dict:
    if not file.is_file():
        return {}
    try:
        content = yaml.load(file.read_text(encoding="utf-8"), Loader=_PlainLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"damaged hparams.yaml ({first_line(err)}).", source=file,
                        fix="correct it (save_hyperparameters() writes one 'key: value' per "
                            "line), or delete it and give the run's metadata with a run-name "
                            "template or 'set' in a mapping file.") from err
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise DataError(f"hparams.yaml holds a {type(content).__name__}, not a dictionary.",
                        source=file, fix="write one 'key: value' per line.")
    return flat_metadata(content)
