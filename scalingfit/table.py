"""The canonical table: the contract between readers, reference runs and the fit.

One row per (run, logged step), long format (DESIGN.md §3). :data:`COLUMNS` is the single
source of truth; ``data_schema/canonical_table.schema.json`` is generated from it
(``python -m scalingfit.table > data_schema/canonical_table.schema.json``) and a test keeps
the two in step. :func:`validate` is the one validator everything goes through: it names
the source, the row and the column of the first problem, and says how to fix it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "COLUMNS",
    "GROUP_KEYS",
    "Column",
    "norm_names",
    "log_norm",
    "validate",
    "schema",
]

#: Value used for a group key that the table does not have (DESIGN.md §3: one group).
DEFAULT_GROUP = "all"
GROUP_KEYS = ("architecture", "dataset")
NORM_PATTERN = re.compile(r"^(log)?norm_(.+)$")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string", "integer" or "number"
    required: bool
    description: str
    minimum: float | None = None
    maximum: float | None = None
    per_run: bool = False  # constant within a run


COLUMNS = (
    Column("run_id", "string", True, "Unique identifier of a training run.", per_run=False),
    Column("architecture", "string", False,
           "Group key, e.g. cnn, resnet18, vit. Missing: one group named 'all'.", per_run=True),
    Column("dataset", "string", False,
           "Group key, e.g. cifar10. Missing: one group named 'all'.", per_run=True),
    Column("train_size", "integer", True, "P, the number of training examples.", 1,
           per_run=True),
    Column("seed", "integer", False, "Random seed of the run.", per_run=True),
    Column("step", "integer", True, "Epoch or iteration; unique within a run.", 0),
    Column("test_error", "number", True, "Test error as a fraction in [0, 1], not percent.",
           0, 1),
    Column("train_error", "number", False, "Training error as a fraction in [0, 1].", 0, 1),
    Column("test_loss", "number", False, "Test loss."),
    Column("train_loss", "number", False, "Training loss."),
    Column("n_test", "integer", False,
           "Test-set size, for the binomial noise of test_error.", 1, per_run=True),
    Column("source", "string", False, "File the row was read from (set by scalingfit.load).",
           per_run=True),
)
_BY_NAME = {c.name: c for c in COLUMNS}
_NORM_DOC = ("norm_<name>: a norm-based complexity (> 0, up to the float64 limit), e.g. "
             "norm_spectral_complexity, norm_frobenius, norm_l1, norm_group21, "
             "norm_spectral_product. lognorm_<name>: its natural log, when that is what was "
             "logged (used as a log, never exponentiated). At least one is required.")


def norm_names(table: pd.DataFrame) -> list[str]:
    """Names of the norms a table carries, from ``norm_<name>`` and ``lognorm_<name>``."""
    names = []
    for column in table.columns:
        match = NORM_PATTERN.match(str(column))
        if match and match.group(2) not in names:
            names.append(match.group(2))
    return names


def log_norm(table: pd.DataFrame, name: str) -> np.ndarray:
    """Natural log of norm ``name``: ``lognorm_<name>`` as is, else ``log(norm_<name>)``."""
    if f"lognorm_{name}" in table:
        return table[f"lognorm_{name}"].to_numpy(float)
    if f"norm_{name}" in table:
        return np.log(table[f"norm_{name}"].to_numpy(float))
    raise KeyError(name)


def _fmt(value):
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else repr(value)


def _first(table, mask):
    labels = table.index[np.asarray(mask)]
    more = f" (and {len(labels) - 1} more rows)" if len(labels) > 1 else ""
    return labels[0], more


def _numeric(table, name, source):
    """Column ``name`` as float, or a DataError at the first entry that is not a number."""
    raw = table[name]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        row, more = _first(table, bad)
        raise DataError(f"{raw[row]!r} is not a number{more}.", source=source, row=row,
                        column=name, fix="write plain numbers in this column.")
    return values.astype(float)


def _check_range(table, name, values, source, *, kind, minimum, maximum, exclusive=False):
    nan = values.isna()
    if nan.any():
        row, more = _first(table, nan)
        raise DataError(f"value is missing (NaN){more}.", source=source, row=row, column=name,
                        fix="fill it in, or remove the row (scalingfit never drops rows "
                            "silently; pass nan_policy='omit' to drop such rows with a count).")
    inf = ~np.isfinite(values)
    if inf.any():
        row, more = _first(table, inf)
        raise DataError(f"value {_fmt(values[row])} is not finite{more}.", source=source, row=row,
                        column=name, fix="remove or correct the diverged entry.")
    if kind == "integer":
        frac = values != np.round(values)
        if frac.any():
            row, more = _first(table, frac)
            raise DataError(f"{_fmt(values[row])} is not a whole number{more}.", source=source,
                            row=row, column=name, fix="write an integer.")
    if minimum is not None:
        low = values <= minimum if exclusive else values < minimum
        if low.any():
            row, more = _first(table, low)
            relation = ">" if exclusive else "≥"
            raise DataError(f"{_fmt(values[row])} is out of range; expected {relation} {minimum}"
                            f"{more}.", source=source, row=row, column=name,
                            fix=_range_fix(name))
    if maximum is not None:
        high = values > maximum
        if high.any():
            row, more = _first(table, high)
            problem = f"{_fmt(values[row])} is out of range; expected ≤ {maximum}{more}."
            fix = _range_fix(name)
            if name.endswith("_error") and (values <= 100).all():
                problem = (f"{_fmt(values[row])} is above 1: the errors look like percent "
                           f"(max {values.max():g}), but the table says fraction{more}.")
                fix = (f"divide by 100, or declare the unit in a mapping file "
                       f"(--map) with 'units: {{{name}: percent}}'.")
            raise DataError(problem, source=source, row=row, column=name, fix=fix)


def _range_fix(name):
    if name.startswith("norm_"):
        return (f"norms must be > 0; if the column holds logs, name it 'log{name}' or declare "
                f"'units: {{{name}: log}}' in a mapping file (--map).")
    return f"see the '{name}' entry in data_schema/README.md."


def validate(table: pd.DataFrame, *, source: str = "<table>", nan_policy: str = "raise"):
    """Check a table against the canonical schema and return it in canonical form.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (run, step). Its index labels the source rows (line numbers for text
        files) and is used in error messages.
    source : str
        Name of the source, for error messages.
    nan_policy : {"raise", "omit"}
        What to do with rows whose ``test_error`` or a norm is NaN: raise (default), or drop
        them and count them in ``result.attrs["omitted_rows"]``.

    Returns
    -------
    pandas.DataFrame
        The same rows, with canonical dtypes, group keys filled in, canonical columns first
        (unknown columns kept, after them), sorted by run and step.

    Raises
    ------
    DataError
        At the first problem, naming source, row and column, and how to fix it.
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    if not isinstance(table, pd.DataFrame) or table.shape[1] == 0:
        raise DataError("no columns found: this is not a table.", source=source,
                        fix="give a CSV or Parquet file with a header row (see "
                            "data_schema/README.md).")
    if len(table) == 0:
        raise DataError("the table has no rows.", source=source,
                        fix="check that the file is the one you meant and is not empty.")
    table = table.copy()
    table.columns = [str(c).strip() for c in table.columns]
    duplicated = table.columns[table.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"the column '{duplicated[0]}' appears twice.", source=source,
                        column=duplicated[0], fix="rename or remove one of them.")
    missing = [c.name for c in COLUMNS if c.required and c.name not in table]
    norms = norm_names(table)
    if missing or not norms:
        what = ", ".join(f"'{m}'" for m in missing)
        if not norms:
            what += (", " if what else "") + "a norm column ('norm_<name>' or 'lognorm_<name>')"
        raise DataError(
            f"missing required column(s): {what}; found {', '.join(map(repr, table.columns))}.",
            source=source, column=missing[0] if missing else None,
            fix="rename the columns to the canonical names, or pass a mapping file "
                "(--map mapping.yaml, e.g. 'columns: {test_error: val_err}'); "
                "see data_schema/README.md.")

    omitted = 0
    value_columns = ["test_error"] + [c for c in table.columns if NORM_PATTERN.match(c)]
    if nan_policy == "omit":
        drop = table[value_columns].isna().any(axis=1)
        omitted = int(drop.sum())
        table = table[~drop]
        if len(table) == 0:
            raise DataError(f"all {omitted} rows have a missing test_error or norm.",
                            source=source, fix="check the column mapping.")

    for name in ("run_id", *GROUP_KEYS, "source"):
        if name not in table:
            if name in GROUP_KEYS:
                table[name] = DEFAULT_GROUP
            continue
        if name == "source" and table[name].isna().all():
            continue
        null = table[name].isna() | (table[name].astype(str).str.strip() == "")
        if null.any():
            row, more = _first(table, null)
            raise DataError(f"value is empty{more}.", source=source, row=row, column=name,
                            fix=f"give every row a {name}.")
        table[name] = table[name].astype(str).str.strip()

    for column in COLUMNS:
        if column.kind == "string" or column.name not in table:
            continue
        values = _numeric(table, column.name, source)
        if not column.required and values.isna().all():
            continue  # an optional column that was left empty
        _check_range(table, column.name, values, source, kind=column.kind,
                     minimum=column.minimum, maximum=column.maximum)
        table[column.name] = values.astype("int64") if column.kind == "integer" else values

    for name in table.columns:
        match = NORM_PATTERN.match(name)
        if not match:
            continue
        values = _numeric(table, name, source)
        is_log = bool(match.group(1))
        _check_range(table, name, values, source, kind="number",
                     minimum=None if is_log else 0.0, maximum=None, exclusive=True)
        table[name] = values

    _check_per_run(table, source)
    key = table[["run_id", "step"]]
    dup = key.duplicated(keep=False)
    if dup.any():
        rows = table.index[dup]
        first = table.loc[rows[0], ["run_id", "step"]]
        twin = rows[(key.loc[rows] == first.values).all(axis=1).to_numpy()]
        raise DataError(
            f"run '{first['run_id']}' has step {first['step']} twice (rows "
            f"{', '.join(map(str, twin[:3]))}); {int(dup.sum())} rows are duplicates in all.",
            source=source, row=twin[1], column="step",
            fix="remove the repeated rows, or give each run a unique run_id.")

    order = [c.name for c in COLUMNS if c.name in table]
    order += [c for c in table.columns if NORM_PATTERN.match(c)]
    order += [c for c in table.columns if c not in order]
    table = table[order].sort_values(["run_id", "step"], kind="stable")
    table.attrs["omitted_rows"] = omitted
    return table


def _check_per_run(table, source):
    """Per-run metadata (group keys, P, seed, n_test) must not change within a run."""
    columns = [c.name for c in COLUMNS if c.per_run and c.name in table]
    varying = table.groupby("run_id", sort=False)[columns].nunique(dropna=False) > 1
    if varying.to_numpy().any():
        run, column = next((r, c) for r in varying.index for c in columns if varying.loc[r, c])
        rows = table.index[table["run_id"] == run]
        values = table.loc[rows, column]
        second = rows[(values != values.iloc[0]).to_numpy()][0]
        raise DataError(
            f"run '{run}' has more than one {column} ({values.iloc[0]!r} at row {rows[0]}, "
            f"{values[second]!r} here).", source=source, row=second, column=column,
            fix=f"{column} must be constant within a run; give the runs distinct run_ids.")


def schema() -> dict:
    """The canonical table as a JSON Schema (one row = one object)."""
    types = {"string": "string", "integer": "integer", "number": "number"}
    properties = {}
    for column in COLUMNS:
        prop = {"type": types[column.kind], "description": column.description}
        if column.minimum is not None:
            prop["minimum"] = column.minimum
        if column.maximum is not None:
            prop["maximum"] = column.maximum
        if column.per_run:
            prop["x-constant-within-run"] = True
        properties[column.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://scalingfit.invalid/canonical_table.schema.json",
        "title": "scalingfit canonical table (one row per run and logged step)",
        "type": "object",
        "required": [c.name for c in COLUMNS if c.required],
        "properties": properties,
        "patternProperties": {
            r"^norm_.+$": {"type": "number", "exclusiveMinimum": 0, "description": _NORM_DOC},
            r"^lognorm_.+$": {"type": "number", "description": _NORM_DOC},
        },
        "additionalProperties": True,
        "x-table-constraints": [
            "at least one norm_<name> or lognorm_<name> column",
            "(run_id, step) is unique",
            "columns marked x-constant-within-run do not change within a run",
            "unknown columns are kept, not dropped",
        ],
    }


if __name__ == "__main__":
    print(json.dumps(schema(), indent=2, ensure_ascii=False))
