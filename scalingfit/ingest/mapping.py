"""Column mappings: how a source's names and units become the canonical table's.

One YAML format serves every source (CSV, TensorBoard, W&B, the paper's files)::

    columns:            # canonical column <- source column, tag or metric ('metrics' also works)
      test_error: val_err
      norm_spectral_complexity: norm/spectral_complexity
    units:              # test_error: fraction (default) | percent | accuracy | accuracy_percent
      test_error: percent   # norm_*: linear (default) | log (natural) | log10
    runs:
      template: "{architecture}_{dataset}_P{train_size}_seed{seed}"   # run name -> metadata
    set:                # constants, for rows the source and the template leave empty
      n_test: 10000

Without a mapping, common names are recognised (:data:`ALIASES`, and norms logged as
``norm/<name>``, ``norms/<name>`` or ``norm.<name>`` become ``norm_<name>``) and reported.

Run metadata is taken, in this order, from the source itself (a column, the TensorBoard
hparams plugin, the W&B config), from the run-name template, then from ``set``: each
fills only what the ones before it left empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import DataError
from .table import COLUMNS, NORM_PATTERN, missing_columns, missing_error

__all__ = ["Mapping", "ALIASES", "RunTemplate", "suggest_template", "require_columns",
           "ERROR_UNITS", "as_written"]

#: Source names recognised without a mapping, per canonical column (first match wins).
ALIASES = {
    "run_id": ["run", "run_name", "name", "Name", "run_path"],
    "architecture": ["arch", "model"],
    "dataset": ["data", "dataset_name"],
    "train_size": ["P", "n_train", "num_train", "train_samples", "n_samples", "ntrain"],
    "step": ["epoch", "Epoch", "Step", "_step", "global_step", "iteration", "iter"],
    "test_error": ["test_err", "test/error", "error/test", "eval/error", "test/err",
                   "val_error", "val_err", "val/error", "eval_error", "eval_err"],
    "train_error": ["train_err", "train/error", "error/train"],
    "test_loss": ["test/loss", "loss/test", "eval/loss", "val_loss", "val/loss", "eval_loss"],
    "train_loss": ["train/loss", "loss/train", "loss"],
    "n_test": ["num_test", "test_size", "n_test_examples"],
}
#: Error units: how a value in each becomes a fraction, and how a fraction is written back
#: in it (to see the source as written). The one table of unit conversions.
ERROR_UNITS = {
    "fraction": (lambda v: v, lambda v: v),
    "percent": (lambda v: v / 100.0, lambda v: v * 100.0),
    "accuracy": (lambda v: 1.0 - v, lambda v: 1.0 - v),
    "accuracy_percent": (lambda v: 1.0 - v / 100.0, lambda v: (1.0 - v) * 100.0),
}
NORM_UNITS = ("linear", "log", "log10")
_SECTIONS = {"columns", "metrics", "units", "runs", "set"}
#: Norms as loggers name them: ``norm/spectral``, ``norms/l1``, ``lognorm/fro``, ``norm.l1``;
#: and as a Hugging Face Trainer's evaluation logs them: ``eval_lognorm_fro`` in its log
#: history and MLflow, ``eval/lognorm_fro`` in TensorBoard and W&B.
_NORM_TAG = re.compile(r"^(?:eval[_/](?=(?:log)?norms?_))?(log)?norms?[/._](.+)$")
#: A PyTorch Lightning logger's version folder (``<name>/version_<N>``).
LIGHTNING_VERSION = re.compile(r"^version_(\d+)$")
_CANONICAL = tuple(c.name for c in COLUMNS)
#: Canonical columns that take a unit (besides every ``norm_<name>``).
_ERROR_COLUMNS = ("test_error", "train_error")


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def likely_typo(name: str, candidates=_CANONICAL) -> str | None:
    """The candidate ``name`` is most likely a misspelling of, or None.

    A name is taken for a typo when it is not a candidate itself but is within one edit
    of one (names of up to 5 letters) or two edits (longer names), case ignored.
    """
    if name in candidates:
        return None
    limit = 1 if len(name) <= 5 else 2
    scored = sorted((_distance(name.lower(), c.lower()), c) for c in candidates)
    return scored[0][1] if scored and scored[0][0] <= limit else None


def _refuse_typo(name: str, section: str, origin: str, what: str):
    """Refuse a key of ``section`` that looks like a misspelt canonical column name."""
    if NORM_PATTERN.match(name):
        return
    near = likely_typo(name)
    if near is not None:
        raise DataError(
            f"'{name}' under '{section}' is not a canonical column, but is a letter or two "
            f"away from '{near}': did you mean '{near}'? ({what})", source=origin,
            fix=f"write '{near}' (a new column needs a name more than two edits away from a "
                f"canonical one; see data_schema/README.md).")


def _check_unit_key(key, unit, columns, origin):
    """A key of ``units`` must be a canonical name that takes a unit."""
    if key.startswith("norm_") or key in _ERROR_COLUMNS or key.endswith("_error"):
        return
    source_of = {v: k for k, v in columns.items()}
    if key in source_of:
        raise DataError(f"'{key}' under 'units' is the source's name of '{source_of[key]}'; "
                        f"units take the canonical name.", source=origin,
                        fix=f"write 'units: {{{source_of[key]}: {unit}}}'.")
    alias = next((c for c, names in ALIASES.items() if key in names), None)
    near = alias if alias in _ERROR_COLUMNS else likely_typo(key, _ERROR_COLUMNS)
    problem = (f"'{key}' under 'units' is not a column of the table nor a canonical name "
               f"that takes a unit (test_error, train_error, norm_<name>)")
    problem += f"; did you mean '{near}'?" if near else "."
    fix = (f"write 'units: {{{near}: {unit}}}'." if near else
           "give the unit under the column's canonical name (after the mapping's renames).")
    raise DataError(problem, source=origin, fix=fix)


def suggest_template(name: str) -> str | None:
    """A run-name template that reads ``name``, e.g. ``cnn-mnist-P12000-s0`` ->
    ``{architecture}-{dataset}-P{train_size}-s{seed}``; None if no training-set size is
    recognisable in it (a letter ``P``, ``N`` or ``n`` before a number).

    Text before the size becomes architecture, then dataset; ``seed<k>``/``s<k>`` the seed,
    and ``<letters><number>`` after it (``lr0.1``, ``WD0.0``) a field named by the letters.
    """
    base = Path(str(name)).name
    if LIGHTNING_VERSION.match(base) and Path(str(name)).parent.name:
        base = Path(str(name)).parent.name  # the logger's name, above its version folder
    parts = re.split(r"([_\-]+)", base)
    fields, out, text_fields = set(), [], ["architecture", "dataset"]
    size_at = next((i for i, part in enumerate(parts) if i % 2 == 0 and
                    re.fullmatch(r"(?:P|N|n|ntrain|ntr)\d+", part)), None)
    if size_at is None:
        return None
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        prefixed = re.fullmatch(r"([A-Za-z]+)(-?\d+(?:\.\d+)?(?:e-?\d+)?)", part)
        if i == size_at:
            field_name, prefix = "train_size", prefixed.group(1)
        elif i < size_at and text_fields and not re.fullmatch(r"[\d.]+", part):
            field_name, prefix = text_fields.pop(0), ""
        elif prefixed and prefixed.group(1).lower() in ("seed", "s", "sd"):
            field_name, prefix = "seed", prefixed.group(1)
        elif prefixed and i > size_at:
            field_name, prefix = prefixed.group(1).lower(), prefixed.group(1)
        else:
            out.append(part)
            continue
        if field_name in fields or not field_name.isidentifier():
            out.append(part)
            continue
        fields.add(field_name)
        out.append(f"{prefix}{{{field_name}}}")
    template = "".join(out)
    try:
        parsed = RunTemplate(template).parse(base)
    except re.error:
        return None
    return template if parsed and "train_size" in parsed else None


@dataclass
class RunTemplate:
    """A run-name template such as ``"{architecture}_{dataset}_P{train_size}_seed{seed}"``."""

    template: str
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        parts = re.split(r"\{(\w+)\}", self.template)
        pattern = ""
        for i, part in enumerate(parts):
            if i % 2 == 0:
                pattern += re.escape(part)
            else:
                numeric = part in ("train_size", "seed", "n_test")
                pattern += rf"(?P<{part}>-?\d+)" if numeric else rf"(?P<{part}>[^/]+?)"
        self.regex = re.compile(rf"^{pattern}$")

    def parse(self, name: str) -> dict | None:
        """Fields of ``name`` (numbers as int), or None if it does not match.

        The template is matched against the last part of the name, then the whole name;
        a PyTorch Lightning version folder (``cnn_P1000/version_0``) is passed over, so
        the part before it is tried too.
        """
        path = Path(str(name))
        candidates = [path.name, str(name)]
        if LIGHTNING_VERSION.match(path.name) and path.parent.name:
            candidates.insert(1, path.parent.name)
        match = next(filter(None, map(self.regex.match, candidates)), None)
        if not match:
            return None
        return {k: int(v) if k in ("train_size", "seed", "n_test") else v
                for k, v in match.groupdict().items()}


@dataclass
class Mapping:
    """Canonical names and units for one kind of source. See the module docstring."""

    columns: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)
    template: RunTemplate | None = None
    constants: dict = field(default_factory=dict)
    origin: str = "<mapping>"

    @classmethod
    def from_yaml(cls, path) -> Mapping:
        """Read a mapping file; problems are reported with the file and key."""
        try:
            content = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError as err:
            raise DataError("mapping file not found.", source=path) from err
        except yaml.YAMLError as err:
            raise DataError(f"not valid YAML ({err}).".replace("\n", " "), source=path) from err
        return cls.from_dict(content or {}, origin=str(path))

    @classmethod
    def from_dict(cls, content: dict, *, origin: str = "<mapping>") -> Mapping:
        if not isinstance(content, dict):
            raise DataError("a mapping must be a YAML dictionary.", source=origin,
                            fix="see the example in `scalingfit fit --help`.")
        unknown = set(content) - _SECTIONS
        if unknown:
            raise DataError(f"unknown section(s) {sorted(unknown)}; expected some of "
                            f"{sorted(_SECTIONS)}.", source=origin)
        for section in _SECTIONS:
            if content.get(section) is not None and not isinstance(content[section], dict):
                raise DataError(f"'{section}' must be a dictionary, not "
                                f"{type(content[section]).__name__}.", source=origin,
                                fix=f"write it as '{section}: {{key: value}}' (see "
                                    f"docs/ingest.md).")
        columns = {}
        for section in ("columns", "metrics"):
            for key, value in (content.get(section) or {}).items():
                if key in columns and columns[key] != value:
                    raise DataError(f"'{key}' is mapped twice ({columns[key]!r}, {value!r}).",
                                    source=origin)
                _refuse_typo(str(key), section, origin,
                             "it would be read as an extra column under that name")
                columns[str(key)] = str(value)
        units = {str(k): str(v) for k, v in (content.get("units") or {}).items()}
        for key, unit in units.items():
            _check_unit_key(key, unit, columns, origin)
            allowed = NORM_UNITS if key.startswith("norm_") else tuple(ERROR_UNITS)
            if unit not in allowed:
                raise DataError(f"unit {unit!r} for {key!r} is not understood.", source=origin,
                                fix=f"errors take {tuple(ERROR_UNITS)}; norm_* columns take "
                                    f"{NORM_UNITS}.")
        runs = content.get("runs") or {}
        unknown = set(runs) - {"template"}
        if unknown:
            raise DataError(f"unknown key(s) {sorted(unknown)} under 'runs'; expected "
                            f"'template'.", source=origin,
                            fix="write 'runs: {template: \"{architecture}_P{train_size}_"
                                "seed{seed}\"}'.")
        template = RunTemplate(runs["template"]) if runs.get("template") else None
        if template is not None:
            for name in template.regex.groupindex:
                _refuse_typo(name, "runs: template", origin,
                             "the template would fill a column of that name")
        constants = {str(k): v for k, v in (content.get("set") or {}).items()}
        for key in constants:
            _refuse_typo(key, "set", origin, "'set' would add a column under that name")
        return cls(columns, units, template, constants, origin)

    def apply(self, raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, dict]:
        """Rename, convert units and fill metadata; return the table and what was recognised.

        Columns the mapping does not mention keep their names, so unknown columns are kept.
        """
        rename, recognised = self.resolve(raw.columns, source=source)
        table = raw.rename(columns=rename)
        self._check_unit_columns(table, rename, source)
        if self.template is not None and "run_id" in table:
            table = self._parse_run_names(table, source)
        for key, value in self.constants.items():
            # the source and the template win; `set` fills what they leave empty
            table[key] = table[key].where(table[key].notna(), value) if key in table else value
        return self._convert_units(table, source), recognised

    def resolve(self, names, *, source=None) -> tuple[dict, dict]:
        """Which source names become which canonical names, without touching any data.

        Returns ``(rename, recognised)``: every renamed source name with its canonical
        name, and the subset that was recognised without the mapping saying so. Readers
        that assemble rows from logged series use it to know which series a row needs.
        """
        names = [str(n) for n in names]
        present = set(names)
        rename, recognised = {}, {}
        for canonical, name in self.columns.items():
            if name not in present:
                raise DataError(f"the mapping ({self.origin}) maps '{canonical}' to '{name}', "
                                f"which is not among the columns {names}.",
                                source=source, column=name, fix="correct the mapping.")
            rename[name] = canonical
        for canonical, aliases in ALIASES.items():
            if canonical in present or canonical in rename.values():
                continue
            alias = next((a for a in aliases if a in present and a not in rename), None)
            if alias is not None:
                rename[alias] = canonical
                recognised[canonical] = alias
        for name in names:
            match = _NORM_TAG.match(name)
            if not match or name in rename:
                continue
            name_part = re.sub(r"[^0-9A-Za-z]+", "_", match.group(2))
            canonical = f"{match.group(1) or ''}norm_{name_part}"
            if canonical not in present and canonical not in rename.values():
                rename[name] = canonical
                recognised[canonical] = name
        return rename, recognised

    def _parse_run_names(self, table, source):
        # parse each distinct run name once, then spread the fields over its rows
        codes, names = pd.factorize(table["run_id"].astype(str))
        parsed = []
        for code, name in enumerate(names):
            fields = self.template.parse(name)
            if fields is None:
                row = table.index[np.flatnonzero(codes == code)[0]]
                raise DataError(f"run name {name!r} does not match the template "
                                f"{self.template.template!r}.", source=source, row=row,
                                column="run_id", fix=f"correct 'runs: template' in {self.origin}.")
            parsed.append(fields)
        for column in dict.fromkeys(key for fields in parsed for key in fields):
            from_names = np.array([fields.get(column) for fields in parsed], object)[codes]
            if column not in table or table[column].isna().all():
                table[column] = from_names
            else:  # the source's own values win; the template fills the gaps
                table[column] = table[column].where(table[column].notna(), from_names)
        return table

    def _check_unit_columns(self, table, rename, source):
        """A unit given under a source name, or for a norm spelt unlike any of the table's."""
        for column in self.units:
            if column in table:
                continue
            if column in rename:
                raise DataError(
                    f"the mapping ({self.origin}) gives a unit for '{column}', which it reads "
                    f"as '{rename[column]}'.", source=source, column=column,
                    fix=f"units take the canonical name: write 'units: {{{rename[column]}: "
                        f"{self.units[column]}}}'.")
            norms = [c for c in table.columns if str(c).startswith("norm_")]
            near = likely_typo(column, norms) if column.startswith("norm_") else None
            if near is not None:
                raise DataError(
                    f"the mapping ({self.origin}) gives a unit for '{column}', which is not a "
                    f"column of the table; did you mean '{near}'?", source=source,
                    column=column, fix=f"write 'units: {{{near}: {self.units[column]}}}'.")

    def _convert_units(self, table, source):
        for column, unit in self.units.items():
            if column not in table:
                continue
            values = pd.to_numeric(table[column], errors="coerce")
            if unit in ERROR_UNITS:
                table[column] = ERROR_UNITS[unit][0](values)
            elif unit in ("log", "log10"):
                factor = np.log(10.0) if unit == "log10" else 1.0
                table["log" + column] = values * factor
                table = table.drop(columns=column)
        return table


def as_written(values, unit: str):
    """An error column, converted to a fraction from ``unit``, as the source wrote it."""
    return ERROR_UNITS[unit][1](values)


def require_columns(table: pd.DataFrame, *, source, reader: str,
                    mapping: Mapping | None = None) -> None:
    """Raise if ``table`` (canonical names, after the mapping) lacks a required column, with
    a fix for this kind of source and this mapping: a log has metrics to name, not columns
    to rename; run metadata may come from the run names (a template is suggested)."""
    missing, has_norm = missing_columns(table)
    if missing or not has_norm:
        raise missing_error(table, missing, has_norm, source=source,
                            fix=_missing_fix(table, missing, has_norm, reader, mapping))


def _missing_fix(table, missing, has_norm, reader, mapping) -> str:
    """How to get the missing required columns, for this kind of source and mapping."""
    is_log = reader is not None and reader != "table"
    where = (f"in your mapping ({mapping.origin})" if mapping is not None
             else "in a mapping file (--map mapping.yaml; mapping= in Python)")
    section = "metrics" if is_log else "columns"
    fixes = []
    values = [m for m in missing if m in ("run_id", "step", "test_error")]
    if values:
        example = {"test_error": "val_err", "step": "epoch", "run_id": "name"}[values[0]]
        if is_log:
            fixes.append(f"name the metric that holds {values[0]} {where}, e.g. "
                         f"'metrics: {{{values[0]}: <tag>}}'")
        else:
            fixes.append(f"rename the column(s) to the canonical names, or map them {where}, "
                         f"e.g. 'columns: {{{values[0]}: {example}}}'")
    meta = [m for m in missing if m not in values]
    if meta:
        fixes.append(_metadata_fix(table, meta, is_log, where, mapping))
    if not has_norm:
        fixes.append(_norm_fix(table, section, where, mapping))
    return "; ".join(fixes) + "; see data_schema/README.md."


def _metadata_fix(table, meta, is_log, where, mapping) -> str:
    names = ", ".join(f"'{m}'" for m in meta)
    if not is_log:
        start = (f"map the column that holds {names} {where} (e.g. 'columns: {{{meta[0]}: "
                 f"P}}'), or, as run metadata, ")
    else:
        start = f"{names} is run metadata, which these logs do not hold: "
    template = getattr(mapping, "template", None)
    run = str(table["run_id"].dropna().iloc[0]) if "run_id" in table and \
        table["run_id"].notna().any() else None
    if template is not None:
        how = (f"add {{{meta[0]}}} to the run-name template {where} "
               f"({template.template!r} has no such field)")
    else:
        suggested = suggest_template(run) if run is not None else None
        how = (f"take it from the run names with a template {where}, e.g. "
               f"'runs: {{template: \"{suggested or '{architecture}_P{train_size}_seed{seed}'}"
               f"\"}}'")
        if run is not None:
            how += f" (written {'from' if suggested else 'to match'} the run name '{run}')"
    return (f"{start}{how}, or give every row one value with "
            f"'set: {{{meta[0]}: <value>}}' (see docs/ingest.md)")


def _norm_fix(table, section, where, mapping) -> str:
    text = ("a norm's canonical name starts with 'norm_' (or 'lognorm_' for its natural "
            "log)")
    columns = getattr(mapping, "columns", None) or {}
    wrong = [(k, v) for k, v in columns.items() if "norm" in k.lower() and
             not NORM_PATTERN.match(k)]
    if wrong:
        key, value = wrong[0]
        return (f"the mapping ({mapping.origin}) maps {value!r} to {key!r}, but {text}: "
                f"write '{_as_norm(key)}: {value}'")
    normish = [c for c in table.columns if "norm" in c.lower()]
    example = normish[0] if normish else "<column>"
    return (f"{text}: rename the column, or map it {where}, e.g. "
            f"'{section}: {{{_as_norm(example)}: {example}}}'")


def _as_norm(name: str) -> str:
    """A canonical norm name for a column such as 'spectral_norm' -> 'norm_spectral'."""
    if name == "<column>":
        return "norm_<name>"
    core = re.sub(r"(?i)norms?", "", name)
    core = re.sub(r"[^0-9A-Za-z]+", "_", core).strip("_")
    return f"norm_{core}" if core else "norm_<name>"
