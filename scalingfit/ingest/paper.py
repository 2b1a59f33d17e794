"""The per-run ``.npy`` files of the paper's published code (arXiv 2505.13230).

Each file is ``np.save`` of a dict, named ``{Model}_{DATASET}_P{P}_seed{seed}_WD{wd}.npy``
(``_INIT{f}`` appended for runs with a scaled initialisation). What the keys hold, read
from the published training code:

=============  ==========================================  =============================
key            what it is                                  canonical column
=============  ==========================================  =============================
log_epochs     epochs at which the rest was measured       step
val_error      error in percent **on the test split**      test_error (÷ 100)
train_error    training error in percent                   train_error (÷ 100)
val_loss       loss on the test split                      test_loss
train_loss     training loss                               train_loss
model_norm     spectral complexity (Bartlett et al.)       norm_spectral_complexity
spectral       product of the layers' spectral norms       norm_spectral_product
l1             entry-wise L1 norm                          norm_l1
fro            Frobenius norm                              norm_frobenius
g_2_1          group (2,1) norm                            norm_group21
=============  ==========================================  =============================

The ViT files hold the natural logs of their norms (they reach 1e75), so for them the
norms become ``lognorm_*``. These are the reader's built-in mapping; a mapping file
(``--map``) is laid over it, so it can rename, convert or add. The files are pickles: they
are loaded with an allow-list unpickler (:mod:`._safe_pickle`) that never runs code.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ._common import RunLog, SourceReport, assemble, nothing_kept, track
from ._safe_pickle import load_object_npy
from .mapping import Mapping

__all__ = ["read", "NAME_PATTERN", "KEYS"]

NAME_PATTERN = re.compile(
    r"^(?P<architecture>[A-Za-z0-9]+)_(?P<dataset>[A-Za-z0-9]+)_P(?P<train_size>\d+)"
    r"_seed(?P<seed>-?\d+)_WD(?P<weight_decay>[^_]+?)(?:_INIT(?P<init_scale>[^_]+))?$")
#: canonical column -> key in the files
KEYS = {"test_error": "val_error", "train_error": "train_error", "test_loss": "val_loss",
        "train_loss": "train_loss", "norm_spectral_complexity": "model_norm",
        "norm_spectral_product": "spectral", "norm_l1": "l1", "norm_frobenius": "fro",
        "norm_group21": "g_2_1"}
_PERCENT = ("test_error", "train_error")
_STEPS = "log_epochs"
_LOG_NORM_MODELS = ("vit",)  # their norms are stored as natural logs
_NAME_HELP = "{Model}_{DATASET}_P{P}_seed{seed}_WD{wd}[_INIT{f}].npy"


def read(path, mapping: Mapping | None = None):
    """Read the paper's run files into canonical names.

    Parameters
    ----------
    path : str or Path
        One ``.npy`` run file, or a directory searched for them.
    mapping : Mapping, optional
        Laid over the built-in mapping (see the module docstring).

    Returns
    -------
    (pandas.DataFrame, SourceReport)
    """
    path = Path(path)
    report = SourceReport(str(path), "paper-npy")
    files = [path] if path.is_file() else sorted(path.rglob("*.npy"))
    if not files:
        raise DataError("no .npy files found.", source=path)
    has_template = mapping is not None and mapping.template is not None
    runs, unnamed = [], []
    for file in track(files, "reading .npy runs"):
        meta = _metadata_from_name(file.stem)
        if meta is None and not has_template:
            if path.is_file():
                raise DataError(f"the file name does not follow {_NAME_HELP}, so P, seed and "
                                f"the model are unknown.", source=file,
                                fix="rename the file, or give a run-name template in a "
                                    "mapping file (runs: template).")
            unnamed.append(file.name)
            continue
        runs.append(_run_of(file, meta or {}, report))
    if unnamed:
        report.skipped[f"files not named {_NAME_HELP}"] += len(unnamed)
        report.notes.append("not read (name): " + ", ".join(unnamed[:5])
                            + (", ..." if len(unnamed) > 5 else ""))
    tables = []
    for logs, group in _by_norm_scale(runs):
        table = assemble(group, _layered(mapping, group, logs), report, source=str(path))
        if not table.empty:
            tables.append(table)
    report.runs_found = len(runs)
    if not tables:
        raise nothing_kept(report, runs, source=path)
    return pd.concat(tables), report


def _metadata_from_name(stem: str):
    match = NAME_PATTERN.match(stem)
    if match is None:
        return None
    meta = {k: v for k, v in match.groupdict().items() if v is not None}
    meta["train_size"], meta["seed"] = int(meta["train_size"]), int(meta["seed"])
    for key in ("weight_decay", "init_scale"):
        if key in meta:
            try:
                meta[key] = float(meta[key])
            except ValueError:
                pass  # kept as written
    return meta


def _run_of(file: Path, meta: dict, report) -> RunLog:
    logs = load_object_npy(file)
    if not isinstance(logs, dict):
        raise DataError(f"holds a {type(logs).__name__}, not the dict of a run's logs.",
                        source=file, fix=f"give the per-run files ({_NAME_HELP}).")
    if _STEPS not in logs:
        raise DataError(f"has no '{_STEPS}' (keys: {sorted(map(str, logs))}).", source=file,
                        fix=f"give the per-run files ({_NAME_HELP}).")
    steps = _numbers(logs[_STEPS], file, _STEPS)
    if steps.ndim != 1 or (steps != np.round(steps)).any():
        raise DataError(f"'{_STEPS}' is not a list of whole epochs.", source=file,
                        column=_STEPS)
    steps = steps.astype(np.int64)
    series, not_read = {}, []
    for key, value in logs.items():
        if key == _STEPS:
            continue
        try:
            values = _floats(value)
        except (TypeError, ValueError):
            values = None
        if values is None or values.shape != steps.shape:
            if str(key) in KEYS.values():
                shape = "not numbers" if values is None else f"shape {values.shape}"
                raise DataError(f"'{key}' has {shape}, but {len(steps)} epochs were logged.",
                                source=file, column=str(key))
            not_read.append(str(key))
            continue
        series[str(key)] = (steps, values)
    if not_read:
        report.notes.append(f"{file.name}: not one value per logged epoch, not read: "
                            + ", ".join(not_read))
    return RunLog(file.stem, series, meta, str(file))


def _numbers(value, file, key):
    try:
        return _floats(value)
    except (TypeError, ValueError) as err:
        raise DataError(f"'{key}' is not numbers.", source=file, column=key) from err


def _floats(value) -> np.ndarray:
    """``value`` as floats; complex values are refused (TypeError), not cast: the cast
    would silently drop their imaginary part."""
    values = np.asarray(value)
    if np.iscomplexobj(values):
        raise TypeError("complex values")
    return values.astype(float)


def _by_norm_scale(runs):
    """Runs whose norms are logs (ViT) and the others, each as (is_log, runs)."""
    def in_logs(run):
        return str(run.meta.get("architecture", "")).lower() in _LOG_NORM_MODELS

    groups = ((False, [r for r in runs if not in_logs(r)]), (True, [r for r in runs if in_logs(r)]))
    return [(flag, group) for flag, group in groups if group]


def _layered(mapping: Mapping | None, runs, logs: bool) -> Mapping:
    """The built-in mapping for these runs, with the user's mapping laid over it."""
    mapping = mapping or Mapping()
    present = {key for run in runs for key in run.series}
    columns = {canonical: key for canonical, key in KEYS.items() if key in present}
    units = {c: "percent" for c in _PERCENT if c in columns}
    if logs:
        units.update({c: "log" for c in columns if c.startswith("norm_")})
    return Mapping(columns={**columns, **mapping.columns}, units={**units, **mapping.units},
                   template=mapping.template, constants=mapping.constants,
                   origin=mapping.origin)
