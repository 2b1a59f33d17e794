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

from .errors import DataError

__all__ = ["Mapping", "ALIASES", "RunTemplate"]

#: Source names recognised without a mapping, per canonical column (first match wins).
ALIASES = {
    "run_id": ["run", "run_name", "name", "Name", "run_path"],
    "architecture": ["arch", "model"],
    "dataset": ["data", "dataset_name"],
    "train_size": ["P", "n_train", "num_train", "train_samples", "n_samples", "ntrain"],
    "step": ["epoch", "Epoch", "Step", "_step", "global_step", "iteration", "iter"],
    "test_error": ["test_err", "test/error", "error/test", "eval/error", "test/err",
                   "val_error", "val_err", "val/error"],
    "train_error": ["train_err", "train/error", "error/train"],
    "test_loss": ["test/loss", "loss/test", "eval/loss", "val_loss", "val/loss"],
    "train_loss": ["train/loss", "loss/train", "loss"],
    "n_test": ["num_test", "test_size", "n_test_examples"],
}
ERROR_UNITS = ("fraction", "percent", "accuracy", "accuracy_percent")
NORM_UNITS = ("linear", "log", "log10")
_SECTIONS = {"columns", "metrics", "units", "runs", "set"}
#: Norms as loggers name them: ``norm/spectral``, ``norms/l1``, ``lognorm/fro``, ``norm.l1``.
_NORM_TAG = re.compile(r"^(log)?norms?[/.](.+)$")


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
        """Fields of ``name`` (numbers as int), or None if it does not match."""
        match = self.regex.match(Path(str(name)).name) or self.regex.match(str(name))
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
        columns = {}
        for section in ("columns", "metrics"):
            for key, value in (content.get(section) or {}).items():
                if key in columns and columns[key] != value:
                    raise DataError(f"'{key}' is mapped twice ({columns[key]!r}, {value!r}).",
                                    source=origin)
                columns[str(key)] = str(value)
        units = {str(k): str(v) for k, v in (content.get("units") or {}).items()}
        for key, unit in units.items():
            allowed = NORM_UNITS if key.startswith("norm_") else ERROR_UNITS
            if not (key.startswith("norm_") or key.endswith("_error")) or unit not in allowed:
                raise DataError(f"unit {unit!r} for {key!r} is not understood.", source=origin,
                                fix=f"errors take {ERROR_UNITS}; norm_* columns take "
                                    f"{NORM_UNITS}.")
        runs = content.get("runs") or {}
        template = RunTemplate(runs["template"]) if runs.get("template") else None
        return cls(columns, units, template, dict(content.get("set") or {}), origin)

    def apply(self, raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, dict]:
        """Rename, convert units and fill metadata; return the table and what was recognised.

        Columns the mapping does not mention keep their names, so unknown columns are kept.
        """
        rename, recognised = self.resolve(raw.columns, source=source)
        table = raw.rename(columns=rename)
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

    def _convert_units(self, table, source):
        for column, unit in self.units.items():
            if column not in table:
                continue
            values = pd.to_numeric(table[column], errors="coerce")
            if unit == "percent":
                table[column] = values / 100.0
            elif unit == "accuracy":
                table[column] = 1.0 - values
            elif unit == "accuracy_percent":
                table[column] = 1.0 - values / 100.0
            elif unit in ("log", "log10"):
                factor = np.log(10.0) if unit == "log10" else 1.0
                table["log" + column] = values * factor
                table = table.drop(columns=column)
        return table
