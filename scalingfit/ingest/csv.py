"""Tables on disk: CSV (also .tsv, .csv.gz) and Parquet, canonical or mapped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError, first_line
from ._common import SourceReport
from .mapping import Mapping

__all__ = ["read", "read_frame", "SUFFIXES"]

SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")


def read(path, mapping: Mapping | None = None) -> tuple[pd.DataFrame, SourceReport]:
    """Read a table file into canonical names; rows are labelled by line (header = row 1).

    Parameters
    ----------
    path : str or Path
        A CSV, TSV or Parquet file.
    mapping : Mapping, optional
        Column names and units of this file; common names are recognised without one.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        The table with canonical column names (not yet validated) and what was recognised.
    """
    path = Path(path)
    raw, notes = read_frame(path)
    parquet = path.name.lower().endswith((".parquet", ".pq"))
    raw.index = pd.RangeIndex(1, len(raw) + 1) if parquet else pd.RangeIndex(2, len(raw) + 2)
    if raw.columns.size and all(str(c).startswith("Unnamed") for c in raw.columns):
        raise DataError("no header row found.", source=path, row=1,
                        fix="the first line must name the columns.")
    table, recognised = (mapping or Mapping()).apply(raw, source=str(path))
    report = SourceReport(str(path), "table", recognised=recognised, notes=notes)
    return table, report


def read_frame(path) -> tuple[pd.DataFrame, list[str]]:
    """A table file as it is (Parquet, or text with its delimiter detected), and notes on
    how it was read: the one table reader of every source that comes as a table."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            return pd.read_parquet(path), []
        except Exception as err:  # pyarrow raises several unrelated types
            raise DataError(f"not a readable Parquet file ({type(err).__name__}: "
                            f"{first_line(err)}).", source=path) from err
    return _read_text_table(path, "\t" if ".tsv" in name else ",")


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DECIMAL_COMMA = r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$"


def _read_text_table(path, sep):
    """The table and notes on how it was read.

    A file written with another delimiter than its suffix says (a semicolon-separated CSV,
    as spreadsheets write in locales with a decimal comma) reads as one column whose name
    holds the real delimiter; it is read again with that one, and numbers written with a
    decimal comma are read as numbers. The report says so.
    """
    raw = _read_csv(path, sep=sep)
    notes = []
    header = str(raw.columns[0]) if raw.shape[1] == 1 else ""
    other = next((d for d in _DELIMITER_NAMES if d != sep and d in header), None)
    if other is None:
        return raw, notes
    raw = _read_csv(path, sep=other)
    note = (f"read as {_DELIMITER_NAMES[other]}-separated (the header has no "
            f"{_DELIMITER_NAMES[sep]})")
    if other != "," and any(
            raw[c].dropna().astype(str).str.match(_DECIMAL_COMMA).all() and raw[c].notna().any()
            for c in raw.columns if not pd.api.types.is_numeric_dtype(raw[c])):
        raw = _read_csv(path, sep=other, decimal=",")
        note += ", with decimal commas"
    notes.append(note)
    return raw, notes


def _read_csv(path, **options):
    try:
        return pd.read_csv(path, skipinitialspace=True, **options)
    except pd.errors.EmptyDataError as err:
        raise DataError("the file is empty.", source=path,
                        fix="check that the file is the one you meant.") from err
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(f"not a readable CSV table ({first_line(err)}).", source=path,
                        fix="give a comma-separated file with a header row.") from err
