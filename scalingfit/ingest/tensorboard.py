"""TensorBoard event files (``events.out.tfevents.*``), read without TensorFlow.

A directory holding event files is a run, named by its path under the source (as
TensorBoard names runs); its scalar tags are the metrics and the event ``step`` is the
step. Scalars written as ``simple_value`` (PyTorch's SummaryWriter, tensorboardX, TF1) and
as one-element tensors of the ``scalars`` plugin (TF2's ``tf.summary.scalar``) are both
read. Run metadata comes from the hparams plugin where a run has it (TF2's
``hp.hparams``, PyTorch's ``add_hparams``, whose sub-directory is folded into its run),
else from the mapping's run-name template, else from its ``set``.

Every record's two checksums are verified (:mod:`._tfrecord`); a damaged or truncated
record is counted in the report and every intact record around it is still read.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

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

    runs = _fold_hparams_runs(decoded, path, report)
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
