"""Tables on disk: CSV (also .tsv, .csv.gz) and Parquet, canonical or mapped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..mapping import Mapping
from ._common import SourceReport

__all__ = ["read", "SUFFIXES"]

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
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            raw = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types
            raise DataError(f"not a readable Parquet file ({type(err).__name__}: {err}).",
                            source=path) from err
        raw.index = pd.RangeIndex(1, len(raw) + 1)
    else:
        sep = "\t" if ".tsv" in name else ","
        try:
            raw = pd.read_csv(path, sep=sep, skipinitialspace=True)
        except pd.errors.EmptyDataError as err:
            raise DataError("the file is empty.", source=path,
                            fix="check that the file is the one you meant.") from err
        except (UnicodeDecodeError, pd.errors.ParserError) as err:
            detail = str(err).splitlines()[0]
            raise DataError(f"not a readable CSV table ({detail}).", source=path,
                            fix="give a comma-separated file with a header row.") from err
        raw.index = pd.RangeIndex(2, len(raw) + 2)
    if raw.columns.size and all(str(c).startswith("Unnamed") for c in raw.columns):
        raise DataError("no header row found.", source=path, row=1,
                        fix="the first line must name the columns.")
    table, recognised = (mapping or Mapping()).apply(raw, source=str(path))
    report = SourceReport(str(path), "table", recognised=recognised)
    return table, report
