"""TensorBoard event files (``events.out.tfevents.*``), read without TensorFlow.

A directory holding event files is a run, named by its path under the source (as
TensorBoard names runs); its scalar tags are the metrics and the event ``step`` is the
step. Scalars written as ``simple_value`` (PyTorch's SummaryWriter, tensorboardX, TF1) and
as one-element tensors of the ``scalars`` plugin (TF2's ``tf.summary.scalar``) are both
read. Two kinds of sub-directory that writers add to a run belong to it:
``add_scalars(main_tag, {key: value})`` writes each key's series into its own folder
(PyTorch: ``RUN/<main_tag with / as _>_<key>``, tensorboardX: ``RUN/<main_tag>/<key>``)
under the tag ``<main_tag>``, read as the run's metric ``<main_tag>/<key>``; and
``add_hparams`` writes a folder of hyperparameters. Run metadata comes from the hparams
plugin where a run has it (TF2's ``hp.hparams``, PyTorch's ``add_hparams``), else from the
mapping's run-name template, else from its ``set``.

Every record's two checksums are verified (:mod:`._tfrecord`); a damaged or truncated
record is counted in the report and every intact record around it is still read.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import DataError, require
from ._common import RunLog, SourceReport, assemble, nothing_kept, track
from ._tfevent import EventScalars
from ._tfrecord import read_records
from .mapping import Mapping

__all__ = ["read", "is_event_file"]

_TIMESTAMP = re.compile(r"tfevents\.(\d+(?:\.\d+)?)")


def is_event_file(path) -> bool:
    """Whether a file name is that of a TensorBoard event file."""
    return "tfevents" in Path(path).name


def read(path, mapping: Mapping | None = None):
    """Read the scalars of every run under ``path`` into canonical names.

    Parameters
    ----------
    path : str or Path
        An event file, a run directory, or a directory of runs.
    mapping : Mapping, optional
        Tag names, units and run-name template; common tag names are recognised without.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        Rows with canonical names (not yet validated), and what was kept and skipped.
    """
    path = Path(path)
    protos = _protos()
    report = SourceReport(str(path), "tensorboard")
    by_run = _event_files(path)
    if not by_run:
        raise DataError("no TensorBoard event files (events.out.tfevents.*) found.",
                        source=path, fix="give the log directory your SummaryWriter wrote to.")

    decoded, ignored = {}, Counter()
    for directory, files in track(by_run.items(), "reading TensorBoard runs"):
        scalars = EventScalars(protos)
        for file in files:
            for buffer, starts, ends in read_records(file, report.skipped):
                scalars.feed(buffer, starts, ends)
        series, not_scalars = scalars.series()
        report.skipped.update(not_scalars)
        if scalars.undecodable:
            report.skipped["event records that do not decode"] += scalars.undecodable
        ignored.update(scalars.ignored)
        decoded[directory] = (series, scalars.hparams)

    runs = _fold_hparams_runs(_fold_add_scalars(decoded, path, report), path, report)
    if ignored:
        report.notes.append("not scalars, not read: " + ", ".join(
            f"{n} {kind}" for kind, n in ignored.most_common()))
    table = assemble(runs, mapping, report, source=str(path), step="global_step")
    if table.empty:
        raise nothing_kept(report, runs, source=path)
    return table, report


def _protos():
    """The protobuf classes that ship with the tensorboard package (no TensorFlow needed)."""
    return SimpleNamespace(
        event=require("tensorboard.compat.proto.event_pb2", "tensorboard"),
        summary=require("tensorboard.compat.proto.summary_pb2", "tensorboard"),
        hparams=require("tensorboard.plugins.hparams.plugin_data_pb2", "tensorboard"))


def _event_files(path: Path) -> dict:
    """Run directory -> its event files, oldest first."""
    if path.is_file():
        return {path.parent: [path]} if is_event_file(path) else {}
    runs = defaultdict(list)
    for directory, subdirectories, files in os.walk(path):
        subdirectories.sort()
        for name in files:
            if is_event_file(name):
                runs[Path(directory)].append(Path(directory, name))
    return {run: sorted(files, key=_written_at) for run, files in sorted(runs.items())}


def _written_at(file: Path):
    match = _TIMESTAMP.search(file.name)
    return (float(match.group(1)) if match else float("inf"), file.name)


def _run_name(directory: Path, root: Path) -> str:
    if root.is_file() or directory == root:
        return directory.name
    return directory.relative_to(root).as_posix()


def _fold_hparams_runs(decoded: dict, root: Path, report) -> list:
    """RunLogs, with hyperparameter-only sub-runs folded into their parent run.

    PyTorch's ``SummaryWriter.add_hparams`` writes the hyperparameters (and the final
    metrics it was given) into a new sub-directory of the run; TensorBoard shows it as a
    separate run. Its hyperparameters describe the parent run, so they go there.
    """
    runs = {}
    for directory, (series, hparams) in decoded.items():
        parent = directory.parent
        if hparams and parent in decoded and parent != directory:
            parent_series, parent_hparams = decoded[parent]
            for key, value in hparams.items():
                parent_hparams.setdefault(key, value)
            if series:
                report.notes.append(
                    f"'{_run_name(directory, root)}' holds add_hparams() output: its "
                    f"hyperparameters describe '{_run_name(parent, root)}', its scalars "
                    f"({', '.join(sorted(series))}) are not rows")
            continue
        runs[directory] = (series, hparams)
    return [RunLog(_run_name(directory, root), series, dict(hparams), str(directory))
            for directory, (series, hparams) in runs.items()]


def _fold_add_scalars(decoded: dict, root: Path, report) -> dict:
    """Series folders written by ``add_scalars`` folded into their runs, as metrics.

    ``SummaryWriter.add_scalars(main_tag, {key: value}, step)`` writes each key's values
    through a writer of its own, into a sub-folder of the run (PyTorch: ``main_tag`` with
    ``/`` replaced by ``_``, then ``_<key>``; tensorboardX: ``<main_tag>/<key>``), every
    one under the tag ``main_tag``. Both writers also create the run's own event file.
    A folder is such a series folder when an enclosing run (a directory with event
    files, nearest first) makes every tag in it fit that relation; its series then
    become the metrics ``<main_tag>/<key>`` of that run. A nested run directory
    (``runs/cnn/seed0``) has tags that do not spell its folder's name, and stays a run.
    """
    runs = {directory: (dict(series), hparams) for directory, (series, hparams)
            in decoded.items()}
    folded, metrics = set(), set()
    for directory in sorted(decoded, key=lambda d: len(d.parts)):  # enclosing runs first
        series, hparams = decoded[directory]
        if hparams or not series:
            continue
        for parent in directory.parents:
            if parent not in runs or parent in folded:
                continue
            folder = directory.relative_to(parent).as_posix()
            keys = {tag: _series_key(folder, tag) for tag in series}
            if None in keys.values():
                continue
            parent_series = runs[parent][0]
            for tag, key in keys.items():
                metric = f"{tag}/{key}"
                if metric in parent_series:  # also logged with add_scalar: the folder's
                    # values come after the run's (a step in both keeps the folder's)
                    report.notes.append(
                        f"'{metric}' of '{_run_name(parent, root)}' is logged both in the "
                        f"run and in its add_scalars() folder '{folder}'")
                    steps, values = parent_series[metric]
                    parent_series[metric] = (np.concatenate([steps, series[tag][0]]),
                                             np.concatenate([values, series[tag][1]]))
                else:
                    parent_series[metric] = series[tag]
                metrics.add(metric)
            folded.add(directory)
            del runs[directory]
            break
    if folded:
        report.notes.append(f"{len(folded)} add_scalars() folders read as metrics of their "
                            f"runs ({', '.join(sorted(metrics))})")
    return runs


def _series_key(folder: str, tag: str) -> str | None:
    """The key of ``add_scalars(tag, {key: ...})`` that writes into ``folder``, or None."""
    for prefix in (tag.replace("/", "_") + "_", tag + "/"):  # PyTorch, tensorboardX
        if folder.startswith(prefix) and len(folder) > len(prefix):
            return folder[len(prefix):]
    return None
