"""Readers that turn training logs into the canonical table (DESIGN.md §3).

One module per source; :func:`load` dispatches on what each path is and validates every
source with :func:`scalingfit.table.validate`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..mapping import Mapping
from ..table import validate
from . import csv
from ._common import SourceReport

__all__ = ["load", "read_source", "SourceReport"]


def _reader_for(path: Path):
    if path.is_file() and path.name.lower().endswith(csv.SUFFIXES):
        return csv
    if not path.exists():
        raise DataError("no such file or directory.", source=path)
    raise DataError("no reader for this kind of source.", source=path,
                    fix=f"give a table file ({', '.join(csv.SUFFIXES)}).")


def read_source(path, mapping: Mapping | None = None, *, nan_policy: str = "raise"):
    """Read and validate one source; return (canonical table, report)."""
    path = Path(path)
    table, report = _reader_for(path).read(path, mapping)
    if "source" not in table:
        table["source"] = str(path)
    table = validate(table, source=str(path), nan_policy=nan_policy)
    if table.attrs.get("omitted_rows"):
        report.skipped["missing test_error or norm (nan_policy='omit')"] += (
            table.attrs["omitted_rows"])
    report.runs = table["run_id"].nunique()
    report.rows_kept = len(table)
    return table, report


def load(sources, mapping=None, *, nan_policy: str = "raise", return_report: bool = False):
    """Read sources into one canonical table.

    Parameters
    ----------
    sources : path or list of paths
        Files or directories.
    mapping : Mapping, dict or path to a YAML file, optional
        Column names and units (see :mod:`scalingfit.mapping`).
    nan_policy : {"raise", "omit"}
        Rows with a missing test error or norm: an error (default), or skipped and counted.
    return_report : bool
        Also return a list of :class:`SourceReport`, one per source.

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
    for source in sources:
        table, report = read_source(source, mapping, nan_policy=nan_policy)
        for run in pd.unique(table["run_id"]):
            if run in owner:
                raise DataError(f"run_id '{run}' also appears in {owner[run]}.", source=source,
                                column="run_id", fix="run ids must be unique across sources.")
            owner[run] = str(source)
        tables.append(table)
        reports.append(report)
    if not tables:
        raise DataError("no sources given.")
    table = pd.concat(tables) if len(tables) > 1 else tables[0]
    return (table, reports) if return_report else table
