"""Run settings: dataclass defaults, YAML files and ``--key=value`` overrides, merged in order.

Values are parsed as YAML scalars or flow collections (``--lr=3e-4``,
``--model.channels=[16,32]``), never executed. Dotted keys reach into nested dicts.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml

from scalingfit.atomic import atomic_path
from scalingfit.errors import DataError

__all__ = ["parse_overrides", "read_yaml", "merge", "from_dict", "write_yaml", "float_list"]


def float_list(text) -> tuple[float, ...]:
    """An argparse type: ``"1,2.5,4"`` -> ``(1.0, 2.5, 4.0)``."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") \
            from err
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def parse_overrides(tokens) -> dict:
    """``["--a.b=1", "--c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; anything else is an error."""
    result: dict = {}
    for token in tokens:
        if not token.startswith("--") or "=" not in token:
            raise DataError(f"cannot read the argument {token!r}.",
                            fix="give settings as --key=value (e.g. --lr=3e-4 or "
                                "--model.channels=[16,32]).")
        key, _, text = token[2:].partition("=")
        key = key.replace("-", "_")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as err:
            raise DataError(f"the value of --{key} is not valid YAML ({err}).") from err
        *parents, leaf = key.split(".")
        node = result
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return result


def read_yaml(path) -> dict:
    """A YAML mapping from ``path`` (safe loader), or a DataError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise DataError(f"cannot read the file ({err.strerror}).", source=path) from err
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(f"not valid YAML ({getattr(err, 'problem', err)}).", source=path,
                        row=mark.line + 1 if mark else None) from err
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise DataError(f"expected a mapping of settings, found {type(content).__name__}.",
                        source=path)
    return content


def merge(base: dict, *updates: dict) -> dict:
    """Deep merge: later dicts win; nested dicts are merged, not replaced."""
    result = dict(base)
    for update in updates:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merge(result[key], value)
            else:
                result[key] = value
    return result


def from_dict(cls, values: dict, *, source: str = "settings"):
    """An instance of dataclass ``cls``; unknown keys and wrongly typed values are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DataError(f"unknown setting(s) {', '.join(unknown)}.", source=source,
                        fix=f"valid settings: {', '.join(fields)}.")
    defaults = cls()
    checked = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        checked[key] = _coerce(key, value, default, source)
    return dataclasses.replace(defaults, **checked)


def _coerce(key, value, default, source):
    """Check ``value`` against the type of the field's default (None: anything goes)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        ok = True
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise DataError(f"setting '{key}' = {value!r} should be a {type(default).__name__}.",
                        source=source)
    return value


def write_yaml(path, values: dict):
    """Write ``values`` as YAML, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(values, sort_keys=False))
