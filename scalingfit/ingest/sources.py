"""Which reader each source needs, and :func:`load`, which reads them all into one table.

A directory may hold several kinds of log, each read as its own source; every source is
checked for the columns a row needs (:func:`~scalingfit.ingest.mapping.require_columns`,
with fixes that fit the source and the mapping) and validated
(:func:`~scalingfit.ingest.table.validate`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import DataError
from . import csv, huggingface, lightning, mlflow, paper, tensorboard, wandb
from ._common import check_error_units, progress
from .mapping import Mapping, require_columns
from .table import FLOAT32_MAX, one_norm_convention, validate

__all__ = ["load", "read_source"]

#: The reason under which rows dropped by ``nan_policy="omit"`` are counted.
OMITTED = "NaN or inf test_error or norm (--nan-policy omit)"
_LOOKED_FOR = ("TensorBoard event files, W&B run logs (run-*.wandb), W&B CSV exports, "
               "MLflow file stores (mlruns/), Hugging Face trainer_state.json, Lightning "
               "metrics.csv, the paper's .npy run files, CSV/Parquet tables")


def _reader_for(path: Path):
    """The reader of one file (a directory is split by :func:`_sources_in` first)."""
    name = path.name.lower()
    if tensorboard.is_event_file(path):
        return tensorboard
    if name.endswith(".wandb") or name.endswith(wandb.HISTORY_ONLY_SUFFIXES):
        return wandb
    if name.endswith(".npy"):
        return paper
    if path.name == huggingface.STATE_FILE:
        return huggingface
    if mlflow.is_run_meta(path):
        return mlflow
    if lightning.is_metrics_file(path):
        return lightning
    if name.endswith(csv.SUFFIXES):
        return wandb if wandb.is_wandb_table(path) else csv
    raise DataError("no reader for this kind of file.", source=path,
                    fix=f"give one of: {_LOOKED_FOR}.")


def _sources_in(source) -> list:
    """(reader, path) pairs for one SOURCE argument: a file, a directory or a URL."""
    if isinstance(source, str) and source.startswith(wandb.URL_SCHEME):
        return [(wandb, source)]
    if isinstance(source, str) and source.startswith(mlflow.URL_SCHEME):
        return [(mlflow, source)]
    path = Path(source)
    if not path.exists():
        raise DataError("no such file or directory.", source=path)
    if path.is_file():
        return [(_reader_for(path), path)]
    kinds, tables = set(), []
    for directory, subdirectories, files in os.walk(path):
        subdirectories.sort()
        if Path(directory).name == ".trash":  # MLflow's deleted runs (it counts them)
            subdirectories.clear()
            continue
        if "meta.yaml" in files and "metrics" in subdirectories:
            # an MLflow run: its metric files have no suffix to tell them, its artifacts
            # are copies; the MLflow reader takes the store as a whole
            kinds.add(mlflow)
            subdirectories.clear()
            continue
        for name in sorted(files):
            try:
                reader = _reader_for(Path(directory, name))
            except DataError:
                continue  # not a log: README, requirements.txt, debug.log, ...
            if reader is csv:
                tables.append(Path(directory, name))
            else:
                kinds.add(reader)
    # each reader walks the directory itself and reads only its own kind of file
    found = [(reader, path) for reader in (tensorboard, wandb, paper, mlflow, huggingface,
                                           lightning) if reader in kinds]
    found += [(csv, table) for table in tables]
    if not found:
        raise DataError(f"no training logs found in this directory (looked for {_LOOKED_FOR}).",
                        source=path, fix="check the path, or give the files themselves.")
    return found


def read_source(path, mapping: Mapping | None = None, *, nan_policy: str = "raise",
                reader=None, mlflow_uri: str | None = None):
    """Read and validate one source; return (canonical table, report)."""
    if reader is None:
        found = _sources_in(path)
        if len(found) > 1:
            raise DataError(f"holds several kinds of log ({', '.join(str(p) for _, p in found)})"
                            f"; read_source reads one.", source=path,
                            fix="use scalingfit.load, which reads them all.")
        ((reader, path),) = found
    options = {"tracking_uri": mlflow_uri} if reader is mlflow else {}
    table, report = reader.read(path, mapping, **options)
    if "source" not in table:
        table["source"] = str(path)
    # runs of one source may store a norm as a value and others as its log (the paper's
    # CNN and ViT files): one convention for the whole table, never a half-empty column
    table, converted = one_norm_convention(table, source=str(path))
    _note_converted(report, converted, "other runs of this source log it")
    check_error_units(table, mapping, source=str(path))
    require_columns(table, source=str(path), reader=report.reader, mapping=mapping)
    table = validate(table, source=str(path), nan_policy=nan_policy, reader=report.reader)
    if table.attrs.get("omitted_rows"):
        report.skipped[OMITTED] += table.attrs["omitted_rows"]
    if report.reader == "tensorboard" and table.attrs.get("omitted_inf_norms"):
        report.notes.append(
            f"{table.attrs['omitted_inf_norms']} of the skipped rows have a norm that is inf: "
            f"TensorBoard stores float32 (largest {FLOAT32_MAX:.3g}); log such a norm's "
            f"natural log as 'lognorm/<name>' instead")
    report.runs = table["run_id"].nunique()
    report.rows_kept = len(table)
    return table, report


def _note_converted(report, converted: dict, why: str):
    for name, count in converted.items():
        report.notes.append(f"norm_{name} stored as lognorm_{name} (its natural log, "
                            f"{count} values), as {why}")


def load(sources, mapping=None, *, nan_policy: str = "raise", return_report: bool = False,
         show_progress: bool | None = False, mlflow_uri: str | None = None):
    """Read sources into one canonical table.

    Parameters
    ----------
    sources : path, URL or list of them
        Files, directories (every log found in them), ``wandb://entity/project`` or
        ``mlflow://HOST[:PORT]/EXPERIMENT`` URLs.
    mapping : Mapping, dict or path to a YAML file, optional
        Column names and units (see :mod:`scalingfit.ingest.mapping`).
    nan_policy : {"raise", "omit"}
        Rows with a missing or infinite test error or norm: an error (default), or skipped
        and counted (``--nan-policy omit`` on the command line).
    return_report : bool
        Also return a list of :class:`SourceReport`, one per source read.
    show_progress : bool or None
        Progress bars on stderr while reading large trees (None: when it is a terminal).
    mlflow_uri : str, optional
        The MLflow tracking URI for ``mlflow:///EXPERIMENT`` sources (``--mlflow-uri``).

    Returns
    -------
    pandas.DataFrame, or (pandas.DataFrame, list of SourceReport)
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = (Mapping.from_dict(mapping) if isinstance(mapping, dict)
                   else Mapping.from_yaml(mapping))
    tables, reports, owner = [], [], {}
    with progress(show_progress):
        for source in sources:
            for reader, path in _sources_in(source):
                table, report = read_source(path, mapping, nan_policy=nan_policy,
                                            reader=reader, mlflow_uri=mlflow_uri)
                for run in pd.unique(table["run_id"]):
                    if run in owner:
                        raise DataError(f"run_id '{run}' also appears in {owner[run]}.",
                                        source=path, column="run_id",
                                        fix="run ids must be unique across sources.")
                    owner[run] = str(path)
                tables.append(table)
                reports.append(report)
    if not tables:
        raise DataError("no sources given.")
    # one source logs a norm, another its log: the table holds the log for every row
    logged = {c[len("lognorm_"):] for t in tables for c in t.columns
              if str(c).startswith("lognorm_")}
    for i, (table, report) in enumerate(zip(tables, reports)):
        tables[i], converted = one_norm_convention(table, source=report.source, logged=logged)
        _note_converted(report, converted, "another source logs it")
    table = pd.concat(tables) if len(tables) > 1 else tables[0]
    return (table, reports) if return_report else table
