"""Hugging Face ``transformers.Trainer``: the ``trainer_state.json`` of an output directory.

The Trainer saves its state, with the whole ``log_history``, in every checkpoint
(``<output_dir>/checkpoint-<step>/trainer_state.json``) and, after
``trainer.save_state()``, in the output directory itself. Each entry of ``log_history`` is
one call of ``Trainer.log``: evaluations (``eval_loss``, ``eval_<metric>`` from
``compute_metrics``, ``epoch``, ``step``) and the training loop's own entries (``loss``,
``learning_rate``, ``grad_norm``; ``train_runtime`` at the end).

A run is an output directory, named by the directory's name (which a run-name template
parses); of its states, the one of the latest step is read (each checkpoint's history is a
beginning of the next one's) and the others are counted in a note. The step is the
Trainer's global step. Evaluation entries become rows; the training loop's entries carry no
evaluation and are counted in the report, not read. Run metadata: what
:class:`~scalingfit.norms.TransformersNormCallback` was given as ``run=`` (saved with its
state, ``stateful_callbacks``), and the hyperparameter-search parameters (``trial_params``).
``training_args.bin`` is a pickle and is never read.

Read without the ``transformers`` package.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._common import RunLog, SourceReport, assemble, flat_metadata, nothing_kept, track
from .mapping import Mapping

__all__ = ["read", "STATE_FILE"]

STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")
#: Keys only the Trainer's training loop logs: an entry holding one is not an evaluation.
_TRAINING_KEYS = ("loss", "learning_rate", "grad_norm", "train_runtime", "train_loss")
_STEP = "step"
#: The callback whose saved state holds the run's metadata (scalingfit.norms).
_NORM_CALLBACK = "TransformersNormCallback"


def read(path, mapping: Mapping | None = None):
    """Read Trainer states into canonical names.

    Parameters
    ----------
    path : str or Path
        A ``trainer_state.json``, a checkpoint or output directory, or a directory of them.
    mapping : Mapping, optional
        Metric names, units and run-name template; common names are recognised without.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        Rows with canonical names (not yet validated), and what was kept and skipped.
    """
    path = Path(path)
    report = SourceReport(str(path), "huggingface")
    by_run = _states(path)
    if not by_run:
        raise DataError(f"no {STATE_FILE} found.", source=path,
                        fix="give the Trainer's output directory (its checkpoint-*/ hold "
                            f"{STATE_FILE}), or call trainer.save_state() after training.")
    runs, older = [], 0
    for directory, files in track(by_run.items(), "reading Trainer states"):
        states = [(file, _load(file)) for file in files]
        file, state = max(states, key=lambda item: (_global_step(item[1]),
                                                    item[0].parent == directory))
        older += len(states) - 1
        runs.append(_run_of(directory, file, state, report))
    if older:
        report.notes.append(f"{older} earlier checkpoints' {STATE_FILE} not read (their "
                            f"history is the beginning of the latest one's)")
    table = assemble(runs, mapping, report, source=str(path), step=_STEP)
    if table.empty:
        raise nothing_kept(report, runs, source=path)
    return table, report


def _states(path: Path) -> dict:
    """Run directory -> its ``trainer_state.json`` files."""
    if path.is_file():
        files = [path]
    else:
        files = sorted(Path(directory, STATE_FILE) for directory, subdirectories, names
                       in os.walk(path) if STATE_FILE in names)
    by_run = defaultdict(list)
    for file in files:
        directory = file.parent
        if _CHECKPOINT.match(directory.name):
            directory = directory.parent  # checkpoint-<step>/ belongs to its output directory
        by_run[directory].append(file)
    return dict(by_run)


def _load(file: Path) -> dict:
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"not valid JSON ({err}): the file is cut short or damaged.",
                        source=file,
                        fix=f"delete it (or its checkpoint directory) to read the previous "
                            f"checkpoint's {STATE_FILE}, or write it again with "
                            f"trainer.save_state().") from err
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise DataError(f"no 'log_history' list: not the {STATE_FILE} a Trainer writes.",
                        source=file, fix="give the Trainer's output or checkpoint directory.")
    return state


def _global_step(state: dict) -> int:
    step = state.get("global_step")
    return int(step) if isinstance(step, (int, float)) else -1


def _run_of(directory: Path, file: Path, state: dict, report) -> RunLog:
    steps, values = defaultdict(list), defaultdict(list)
    training, no_step = 0, 0
    for entry in state["log_history"]:
        if not isinstance(entry, dict):
            no_step += 1
            continue
        if any(key in entry for key in _TRAINING_KEYS):
            training += 1
            continue
        step = entry.get(_STEP)
        if not isinstance(step, (int, float)) or isinstance(step, bool) or step != int(step):
            no_step += 1
            continue
        for key, value in entry.items():
            if key != _STEP and isinstance(value, (int, float)) and not isinstance(value, bool):
                steps[key].append(int(step))
                values[key].append(float(value))
    if training:
        report.skipped["Trainer log entries of the training loop (loss, learning_rate: "
                       "no evaluation)"] += training
    if no_step:
        report.skipped["Trainer log entries without a whole-number step"] += no_step
    series = {key: (np.array(steps[key], np.int64), np.array(values[key], float))
              for key in steps}
    return RunLog(directory.name, series, _metadata(state), str(file))


def _metadata(state: dict) -> dict:
    """The run metadata the norm callback saved, then the hyperparameter search's."""
    saved = (state.get("stateful_callbacks") or {}).get(_NORM_CALLBACK) or {}
    if isinstance(saved, list):  # the Trainer keeps a list when a callback is there twice
        saved = saved[0] if saved else {}
    run = saved.get("args", {}).get("run") if isinstance(saved, dict) else None
    meta = flat_metadata(run) if isinstance(run, dict) else {}
    for key, value in flat_metadata(state.get("trial_params") or {}).items():
        meta.setdefault(key, value)
    return meta
