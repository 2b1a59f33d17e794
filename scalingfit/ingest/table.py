"""The canonical table: the contract between readers, reference runs and the fit.

One row per (run, logged step), long format (docs/design.md §3). :data:`COLUMNS` is the single
source of truth; ``data_schema/canonical_table.schema.json`` is generated from it
(``python -m scalingfit.ingest.table > data_schema/canonical_table.schema.json``) and a test keeps
the two in step. :func:`validate` is the one validator everything goes through: it names
the source, the row and the column of the first problem, and says how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..errors import DataError

__all__ = [
    "COLUMNS",
    "GROUP_KEYS",
    "Column",
    "norm_names",
    "log_norm",
    "one_norm_convention",
    "validate",
    "missing_columns",
    "write_table",
    "schema",
    "OUTPUT_SUFFIXES",
]

#: Value used for a group key that the table does not have (docs/design.md §3: one group).
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


def one_norm_convention(table: pd.DataFrame, *, source: str = "<table>", logged=()):
    """Hold each norm one way on every row: as ``lognorm_<name>`` wherever any row needs it.

    Sources (and runs within one) differ on whether a norm is stored as a value or as its
    natural log: the paper's ViT files hold logs, its CNN and ResNet files values; a
    TensorBoard log may hold ``lognorm/<name>`` beside a CSV of ``norm_<name>``. Laid side
    by side they would leave each row half empty. So where ``lognorm_<name>`` is a column
    (or ``<name>`` is in ``logged``: other sources log it), every ``norm_<name>`` value
    becomes its log in ``lognorm_<name>`` and ``norm_<name>`` goes: logs never need
    exponentiating, and the values fit in float64 either way (docs/design.md §2).

    Parameters
    ----------
    table : pandas.DataFrame
        Canonical names, validated or not.
    source : str
        For error messages.
    logged : collection of str
        Norm names that other tables, read beside this one, hold as logs.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table, and for each converted norm the number of values converted.

    Raises
    ------
    DataError
        A value that has no log (zero, negative, not a number), or a row that gives both
        a norm and its log when the two disagree.
    """
    converted = {}
    for column in [c for c in table.columns if str(c).startswith("norm_")]:
        name = column[len("norm_"):]
        log_column = f"lognorm_{name}"
        if log_column not in table and name not in logged:
            continue
        values = _numeric(table, column, source)
        logs = (pd.to_numeric(table[log_column], errors="coerce") if log_column in table
                else pd.Series(np.nan, index=table.index))
        # NaN and inf stay what they are (the validator reports them, or --nan-policy
        # omit counts them); a value with no logarithm is refused here, as the validator would
        given = values.notna() & logs.isna()
        bad = given & (values <= 0)
        if bad.any():
            row, more = _first(table, bad)
            raise DataError(f"{_fmt(values[row])} is out of range; expected > 0{more} (this "
                            f"table holds the norm as its log, {log_column}).", source=source,
                            row=row, column=column, fix=_range_fix(column))
        with np.errstate(divide="ignore", invalid="ignore"):
            from_values = np.log(values.where(given))
        both = values.notna() & logs.notna() & np.isfinite(values) & np.isfinite(logs)
        if both.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                differ = both & ~np.isclose(np.log(values.where(both)), logs, rtol=1e-6,
                                            atol=1e-9)
            if differ.any():
                row, more = _first(table, differ)
                raise DataError(
                    f"{column} is {_fmt(values[row])} but {log_column} is {_fmt(logs[row])}, "
                    f"whose exp is {_fmt(math.exp(min(logs[row], 709.0)))}{more}.",
                    source=source, row=row, column=column,
                    fix=f"give each row the norm one way (its natural log in {log_column}), "
                        f"or correct the one that is wrong.")
        table = table.drop(columns=column)
        table[log_column] = logs.where(~given, from_values)
        converted[name] = int(given.sum())
    return table, converted


#: Largest float32: TensorBoard stores scalars as float32, so a larger norm becomes inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: How a hint names the nan policy for both the CLI and the Python user.
OMIT_HINT = "--nan-policy omit (nan_policy='omit' in Python)"


def _fmt(value) -> str:
    """A value as a person writes it (12000, 0.25, inf, 'cnn'), never numpy's repr."""
    if value is None:
        return "empty"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return f"{number:.6g}"
    return repr(str(value))


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
        raise DataError(f"{_fmt(raw[row])} is not a number{more}.", source=source, row=row,
                        column=name, fix="write plain numbers in this column.")
    return values.astype(float)


def _check_range(table, name, values, source, *, kind, minimum, maximum, exclusive=False,
                 reader=None):
    omissible = name == "test_error" or bool(NORM_PATTERN.match(name))
    nan = values.isna()
    if nan.any():
        row, more = _first(table, nan)
        skip = (f"; {OMIT_HINT} skips rows with a missing test_error or norm and counts them"
                if omissible else "")
        raise DataError(f"value is missing (NaN){more}.", source=source, row=row, column=name,
                        fix=f"fill it in, or remove the row (scalingfit never drops rows "
                            f"silently{skip}).")
    inf = ~np.isfinite(values)
    if inf.any():
        row, more = _first(table, inf)
        skip = (f"; or skip such rows with {OMIT_HINT}, which counts them" if omissible
                else "")
        problem = f"value {_fmt(values[row])} is not finite{more}."
        fix = f"remove or correct the diverged entry{skip}."
        if reader == "tensorboard" and name.startswith("norm_") and values[row] > 0:
            problem = (f"value inf{more}: TensorBoard stores scalars as float32, so a norm "
                       f"above {FLOAT32_MAX:.3g} is written as inf.")
            norm = name[len("norm_"):]
            fix = (f"log the norm's natural log instead, under the tag 'lognorm/{norm}' (read "
                   f"as 'lognorm_{norm}', used as a log, never exponentiated; or map any tag "
                   f"to it with 'metrics: {{lognorm_{norm}: <tag>}}'), e.g. "
                   f"writer.add_scalar('lognorm/{norm}', math.log(norm), step){skip}.")
        raise DataError(problem, source=source, row=row, column=name, fix=fix)
    if kind == "integer":
        frac = values != np.round(values)
        if frac.any():
            row, more = _first(table, frac)
            fix = "write an integer."
            if name == "step":
                fix = ("steps are integers: use the iteration count (or the evaluation index) "
                       "as step; a fractional epoch can stay in the table as a column of "
                       "another name (e.g. 'epoch_float').")
            raise DataError(f"{_fmt(values[row])} is not a whole number{more}.", source=source,
                            row=row, column=name, fix=fix)
    if minimum is not None:
        low = values <= minimum if exclusive else values < minimum
        if low.any():
            row, more = _first(table, low)
            relation = ">" if exclusive else "≥"
            raise DataError(f"{_fmt(values[row])} is out of range; expected {relation} "
                            f"{_fmt(minimum)}{more}.", source=source, row=row, column=name,
                            fix=_range_fix(name))
    if maximum is not None:
        high = values > maximum
        if high.any():
            row, more = _first(table, high)
            problem = (f"{_fmt(values[row])} is out of range; expected ≤ {_fmt(maximum)}"
                       f"{more}.")
            fix = _range_fix(name)
            if name.endswith("_error") and (values <= 100).all():
                problem = (f"{_fmt(values[row])} is above 1: the errors look like percent "
                           f"(max {_fmt(values.max())}), but the table says fraction{more}.")
                fix = (f"divide by 100, or declare the unit in a mapping file "
                       f"(--map) with 'units: {{{name}: percent}}'.")
            raise DataError(problem, source=source, row=row, column=name, fix=fix)


def _range_fix(name):
    if name.startswith("norm_"):
        return (f"norms must be > 0; if the column holds logs, name it 'log{name}' or declare "
                f"'units: {{{name}: log}}' in a mapping file (--map).")
    return f"see the '{name}' entry in data_schema/README.md."


def missing_columns(table: pd.DataFrame) -> tuple[list[str], bool]:
    """The required columns ``table`` lacks, and whether it has a norm."""
    return [c.name for c in COLUMNS if c.required and c.name not in table], \
        bool(norm_names(table))


def validate(table: pd.DataFrame, *, source: str = "<table>", nan_policy: str = "raise",
             reader: str | None = None):
    """Check a table against the canonical schema and return it in canonical form.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (run, step). Its index labels the source rows (line numbers for text
        files) and is used in error messages.
    source : str
        Name of the source, for error messages.
    nan_policy : {"raise", "omit"}
        What to do with rows whose ``test_error`` or a norm is NaN or infinite: raise
        (default), or drop them and count them in ``result.attrs["omitted_rows"]``
        (``result.attrs["omitted_inf_norms"]`` counts those with an infinite norm).
    reader : str, optional
        The kind of source the table was read from (``"table"``, ``"tensorboard"``,
        ``"wandb"``, ...), so that the fixes fit it: TensorBoard stores float32. (Readers
        check the required columns first, with fixes that fit the source and its mapping:
        :func:`scalingfit.ingest.mapping.require_columns`.)

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
    _check_delimiter(table, source)
    missing, has_norm = missing_columns(table)
    if missing or not has_norm:
        raise missing_error(table, missing, has_norm, source=source,
                            fix="rename the column(s) to the canonical names (a norm's starts "
                                "with 'norm_', or 'lognorm_' for its natural log), or read "
                                "the source with scalingfit.load and a mapping; see "
                                "data_schema/README.md.")

    omitted, omitted_inf_norms = 0, 0
    value_columns = ["test_error"] + [c for c in table.columns if NORM_PATTERN.match(c)]
    if nan_policy == "omit":
        # NaN or +-inf; an entry that is not a number at all stays, and is reported below
        numbers = table[value_columns].apply(pd.to_numeric, errors="coerce")
        infinite = numbers.isin([np.inf, -np.inf])
        drop = table[value_columns].isna().any(axis=1) | infinite.any(axis=1)
        omitted = int(drop.sum())
        norm_inf = infinite[[c for c in value_columns if c.startswith("norm_")]].any(axis=1)
        omitted_inf_norms = int(norm_inf.sum())
        table = table[~drop]
        if len(table) == 0:
            fix = "check the column mapping."
            if omitted_inf_norms:
                fix = ("norms must be finite; if they are too large for the logger "
                       "(TensorBoard stores float32, largest "
                       f"{FLOAT32_MAX:.3g}), log their natural log as 'lognorm/<name>'.")
            raise DataError(f"all {omitted} rows have a missing or non-finite test_error or "
                            f"norm ({omitted_inf_norms} with an infinite norm).",
                            source=source, fix=fix)

    # required columns first: a truncated line is reported at its first missing value
    _check_strings(table, ("run_id",), source)
    _check_numbers(table, [c for c in COLUMNS if c.required and c.kind != "string"], source,
                   reader)
    for name in table.columns:
        match = NORM_PATTERN.match(name)
        if not match:
            continue
        values = _numeric(table, name, source)
        is_log = bool(match.group(1))
        _check_range(table, name, values, source, kind="number",
                     minimum=None if is_log else 0.0, maximum=None, exclusive=True,
                     reader=reader)
        table[name] = values
    for name in GROUP_KEYS:
        if name not in table:
            table[name] = DEFAULT_GROUP
    _check_strings(table, GROUP_KEYS, source)
    _check_numbers(table, [c for c in COLUMNS if not c.required and c.kind != "string"],
                   source, reader)
    if "source" in table and not table["source"].isna().all():
        _check_strings(table, ("source",), source)

    _check_per_run(table, source)
    key = table[["run_id", "step"]]
    dup = key.duplicated(keep=False)
    if dup.any():
        rows = table.index[dup]
        first = table.loc[rows[0], ["run_id", "step"]]
        twin = rows[(key.loc[rows] == first.values).all(axis=1).to_numpy()]
        raise DataError(
            f"run '{first['run_id']}' has step {_fmt(first['step'])} twice (rows "
            f"{', '.join(map(str, twin[:3]))}); {int(dup.sum())} rows are duplicates in all.",
            source=source, row=twin[1], column="step",
            fix="remove the repeated rows, or give each run a unique run_id.")

    order = [c.name for c in COLUMNS if c.name in table]
    order += [c for c in table.columns if NORM_PATTERN.match(c)]
    order += [c for c in table.columns if c not in order]
    table = table[order].sort_values(["run_id", "step"], kind="stable")
    table.attrs["omitted_rows"] = omitted
    table.attrs["omitted_inf_norms"] = omitted_inf_norms
    return table


def _check_strings(table, names, source):
    """String columns: no empty entry; stored stripped."""
    for name in names:
        if name not in table:
            continue
        null = table[name].isna() | (table[name].astype(str).str.strip() == "")
        if null.any():
            row, more = _first(table, null)
            article = "an" if name[0] in "aeiou" else "a"
            raise DataError(f"value is empty{more}.", source=source, row=row, column=name,
                            fix=f"give every row {article} {name}.")
        table[name] = table[name].astype(str).str.strip()


def _check_numbers(table, columns, source, reader):
    for column in columns:
        if column.name not in table:
            continue
        values = _numeric(table, column.name, source)
        if not column.required and values.isna().all():
            continue  # an optional column that was left empty
        _check_range(table, column.name, values, source, kind=column.kind,
                     minimum=column.minimum, maximum=column.maximum, reader=reader)
        table[column.name] = values.astype("int64") if column.kind == "integer" else values


_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _check_delimiter(table, source):
    """A table of one column whose name holds ';' or a tab was split at the wrong character."""
    if table.shape[1] != 1:
        return
    header = str(table.columns[0])
    for character, name in _DELIMITERS.items():
        if character in header:
            raise DataError(
                f"the header is one column, {header!r}: the file looks {name}-separated.",
                source=source, row=1, column=header,
                fix=f"give the file to scalingfit.load or `scalingfit ingest`, which detect "
                    f"the delimiter, or read it with pandas.read_csv(path, sep={character!r}).")


def missing_error(table, missing, has_norm, *, source, fix) -> DataError:
    """The error for a table without some required columns, naming what it has."""
    what = ", ".join(f"'{m}'" for m in missing)
    if not has_norm:
        what += (", " if what else "") + "a norm column ('norm_<name>' or 'lognorm_<name>')"
    return DataError(
        f"missing required column(s): {what}; found {', '.join(map(repr, table.columns))}.",
        source=source, column=missing[0] if missing else None, fix=fix)


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
            f"run '{run}' has more than one {column} ({_fmt(values.iloc[0])} at row "
            f"{rows[0]}, {_fmt(values[second])} here).", source=source, row=second,
            column=column,
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


OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")


def write_table(table: pd.DataFrame, path) -> Path:
    """Write a canonical table to ``.parquet`` or ``.csv``, atomically.

    Metadata columns whose values mix types across runs (a weight decay logged as a number
    by one run and as a string by another) are written as strings, which both formats hold.
    """
    path = Path(path)
    if not path.name.lower().endswith(OUTPUT_SUFFIXES):
        raise DataError(f"the output must end in one of {', '.join(OUTPUT_SUFFIXES)}.",
                        source=path, fix="name the file table.parquet or table.csv.")
    table = table.copy()
    for column in [c for c in table.columns if pd.api.types.is_object_dtype(table[c])]:
        kinds = {type(v) for v in table[column].dropna()}
        if len(kinds) > 1:
            table[column] = table[column].map(lambda v: v if pd.isna(v) else str(v))
    with atomic_path(path) as tmp:
        if path.name.lower().endswith(".csv"):
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return path


if __name__ == "__main__":
    print(json.dumps(schema(), indent=2, ensure_ascii=False))
