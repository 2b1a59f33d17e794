"""MLflow: local file stores (``mlruns/``), read as plain files, and tracking servers.

**File stores** are what the ``mlflow`` client writes with a ``file:`` tracking URI (the
``mlruns/`` directory): one directory per experiment, one per run inside it, and in each run

- ``meta.yaml``: the run's id, name (``run_name``), status and ``lifecycle_stage``;
- ``metrics/<key>``: one line per logged value, ``<timestamp> <value> <step>`` (a key with
  ``/`` is a nested path: ``metrics/test/error`` is ``test/error``);
- ``params/<key>`` and ``tags/<key>``: one value each, as text.

They are read without the ``mlflow`` package. A run is named by its run name (the
``mlflow.runName`` tag), which is what a run-name template parses; its params, and its
tags other than MLflow's own (``mlflow.*``), are its metadata (numbers where the text is
one), params first; the experiment's name is the ``experiment`` column. Runs deleted in
MLflow (``lifecycle_stage: deleted``, or moved to ``.trash``) are counted, not read. An
MLflow run's ``artifacts/`` are not searched for logs: they hold copies (checkpoints, a
TensorBoard log); give such a directory as its own SOURCE to read it.

**Tracking servers**: ``mlflow://HOST[:PORT]/EXPERIMENT[?filter=...]`` (plain HTTP), or
``mlflow:///EXPERIMENT`` with the tracking URI given by ``--mlflow-uri`` (``mlflow_uri=``
in Python; any URI the client takes: ``https://...``, ``databricks``, ``file:...``) or by
``MLFLOW_TRACKING_URI``. ``filter`` is MLflow's run filter (``params.P = '1000'``). The
runs are listed with ``MlflowClient.search_runs`` and each metric that the mapping names,
or that is recognised without one, is fetched with ``get_metric_history``; this path
needs the ``mlflow`` (or ``mlflow-skinny``) package.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import yaml

from ..errors import DataError, first_line, require
from ._common import RunLog, SourceReport, assemble, nothing_kept, number_or_text, track
from ._wandb_api import metrics_to_fetch
from .mapping import Mapping

__all__ = ["read", "is_run_meta", "URL_SCHEME", "parse_url"]

URL_SCHEME = "mlflow://"
_TRASH = ".trash"
_RUN_NAME_TAG = "mlflow.runName"
_PAGE_SIZE = 1000


def is_run_meta(path) -> bool:
    """Whether a file is the ``meta.yaml`` of a run in an MLflow file store."""
    path = Path(path)
    return path.name == "meta.yaml" and path.is_file() and (path.parent / "metrics").is_dir()


def read(path, mapping: Mapping | None = None, *, tracking_uri: str | None = None):
    """Read MLflow runs into canonical names.

    Parameters
    ----------
    path : str or Path
        A file store (``mlruns/``), an experiment or run directory in it, a run's
        ``meta.yaml``, or a ``mlflow://HOST[:PORT]/EXPERIMENT`` URL.
    mapping : Mapping, optional
        Metric names, units and run-name template; common names are recognised without.
    tracking_uri : str, optional
        For a URL without a host (``mlflow:///EXPERIMENT``): the tracking URI to use.

    Returns
    -------
    (pandas.DataFrame, SourceReport)
        Rows with canonical names (not yet validated), and what was kept and skipped.
    """
    if isinstance(path, str) and path.startswith(URL_SCHEME):
        report = SourceReport(path, "mlflow-server")
        runs = _server_runs(path, mapping, report, tracking_uri)
        source = path
    else:
        path = Path(path)
        report = SourceReport(str(path), "mlflow")
        runs = _store_runs(path, report)
        source = str(path)
    _refuse_shared_names(runs, source)
    table = assemble(runs, mapping, report, source=source)
    if table.empty:
        raise nothing_kept(report, runs, source=source)
    return table, report


def _refuse_shared_names(runs, source):
    seen = {}
    for run in runs:
        if run.name in seen:
            raise DataError(
                f"two MLflow runs are named '{run.name}' ({seen[run.name]} and {run.origin}).",
                source=source, column="run_id",
                fix="delete the one you do not want (a failed attempt? `mlflow runs delete "
                    "--run-id ID`), or rename one in the MLflow UI.")
        seen[run.name] = run.origin


# -- file stores -----------------------------------------------------------------------


def _store_runs(path: Path, report) -> list:
    run_dirs = _run_directories(path, report)
    if not run_dirs:
        raise DataError("no MLflow runs found (run directories hold meta.yaml and "
                        "metrics/).", source=path,
                        fix="give the mlruns/ directory the MLflow client wrote to (its "
                            "tracking URI, file:...).")
    runs, deleted = [], 0
    experiments = {}
    for directory in track(run_dirs, "reading MLflow runs"):
        meta = _meta(directory / "meta.yaml", run=True)
        if meta.get("lifecycle_stage") == "deleted":
            deleted += 1
            continue
        experiment = experiments.get(directory.parent)
        if experiment is None:
            experiment = experiments[directory.parent] = _experiment_name(directory.parent)
        runs.append(_read_run(directory, meta, experiment, report))
    if deleted:
        report.skipped["runs deleted in MLflow (lifecycle_stage: deleted), not read"] += deleted
    return runs


def _run_directories(path: Path, report) -> list:
    if path.is_file():
        if not is_run_meta(path):
            raise DataError("not the meta.yaml of an MLflow run (no metrics/ beside it).",
                            source=path, fix="give the mlruns/ directory.")
        return [path.parent]
    found, trashed = [], 0
    for directory, subdirectories, files in os.walk(path):
        subdirectories.sort()
        here = Path(directory)
        if here.name == _TRASH:
            trashed += sum(1 for d, _, names in os.walk(here) if "meta.yaml" in names
                           and (Path(d) / "metrics").is_dir())
            subdirectories.clear()
            continue
        if "meta.yaml" in files and "metrics" in subdirectories:
            found.append(here)
            subdirectories.clear()  # metrics/, params/, tags/, artifacts/: this run's own
    if trashed:
        report.skipped["runs in MLflow's .trash, not read"] += trashed
    return found


def _meta(file: Path, *, run: bool) -> dict:
    """A ``meta.yaml``, or a one-line error naming it and the fix."""
    what = "run" if run else "experiment"
    fix = (f"restore it from a backup, or move the {what} directory out of the store; an "
           f"MLflow {what}'s meta.yaml holds its id"
           + (", name (run_name) and lifecycle_stage." if run else " and name."))
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"damaged MLflow meta.yaml ({first_line(err)}).", source=file,
                        fix=fix) from err
    if not isinstance(content, dict) or (run and not (content.get("run_id")
                                                     or content.get("run_uuid"))):
        raise DataError(f"damaged MLflow meta.yaml: no {'run_id' if run else 'name'} in it.",
                        source=file, fix=fix)
    return content


def _experiment_name(directory: Path):
    file = directory / "meta.yaml"
    if not file.is_file():
        return None
    return _meta(file, run=False).get("name")


def _read_run(directory: Path, meta: dict, experiment, report) -> RunLog:
    run_id = str(meta.get("run_id") or meta.get("run_uuid"))
    tags = _values(directory / "tags")
    name = str(meta.get("run_name") or tags.get(_RUN_NAME_TAG) or run_id)
    metadata = {k: number_or_text(v) for k, v in tags.items() if not k.startswith("mlflow.")}
    metadata.update({k: number_or_text(v) for k, v in _values(directory / "params").items()})
    if experiment is not None:
        metadata.setdefault("experiment", experiment)
    series = {}
    for file in sorted(p for p in (directory / "metrics").rglob("*") if p.is_file()):
        key = file.relative_to(directory / "metrics").as_posix()
        series[key] = _metric_lines(file, report)
    return RunLog(name, series, metadata, str(directory))


def _values(directory: Path) -> dict:
    """``params/`` or ``tags/``: key (nested paths joined with ``/``) -> text."""
    if not directory.is_dir():
        return {}
    return {file.relative_to(directory).as_posix(): file.read_text(encoding="utf-8",
                                                                   errors="replace")
            for file in sorted(directory.rglob("*")) if file.is_file()}


def _metric_lines(file: Path, report):
    """(steps, values) of one metric file: lines ``<timestamp> <value> [<step>]``."""
    steps, values, bad = [], [], 0
    with open(file, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            fields = line.split()
            if not fields:
                continue
            try:
                value = float(fields[1])
                step = int(fields[2]) if len(fields) > 2 else 0  # MLflow < 1.0: no step
            except (IndexError, ValueError):
                bad += 1
                continue
            steps.append(step)
            values.append(value)
    if bad:
        report.skipped["MLflow metric lines that do not parse (<timestamp> <value> <step>)"] += bad
    return np.array(steps, np.int64), np.array(values, float)


# -- tracking servers ------------------------------------------------------------------


def parse_url(url: str, tracking_uri: str | None = None):
    """``(tracking URI, experiment, filter string)`` of an ``mlflow://`` URL.

    ``mlflow://HOST[:PORT]/EXPERIMENT`` is the server at ``http://HOST[:PORT]``;
    ``mlflow:///EXPERIMENT`` takes ``tracking_uri``, else ``MLFLOW_TRACKING_URI``.
    """
    parts = urlsplit(url)
    experiment = unquote(parts.path.lstrip("/"))
    example = "e.g. mlflow://localhost:5000/my-experiment"
    if parts.scheme != "mlflow" or not experiment:
        raise DataError("an MLflow URL names a server and an experiment: "
                        "mlflow://HOST[:PORT]/EXPERIMENT[?filter=...].", source=url,
                        fix=example)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {"filter"}
    if unknown:
        raise DataError(f"unknown query key(s) {sorted(unknown)}; expected 'filter'.",
                        source=url, fix="e.g. ?filter=params.P = '1000' (MLflow's run filter)")
    if parts.netloc and tracking_uri:
        raise DataError(f"the server is given twice: in the URL ({parts.netloc}) and as "
                        f"--mlflow-uri ({tracking_uri}).", source=url,
                        fix="write the URL as mlflow:///EXPERIMENT to use --mlflow-uri, or "
                            "leave --mlflow-uri out.")
    uri = f"http://{parts.netloc}" if parts.netloc else (
        tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    if not uri:
        raise DataError("no tracking server: the URL names no host, and neither "
                        "--mlflow-uri nor MLFLOW_TRACKING_URI is set.", source=url,
                        fix=f"{example}, or --mlflow-uri https://... (mlflow_uri= in Python).")
    return uri, experiment, query.get("filter") or ""


def _server_runs(url: str, mapping, report, tracking_uri, *, client=None) -> list:
    uri, experiment_name, filter_string = parse_url(url, tracking_uri)
    if client is None:
        tracking = require("mlflow.tracking", "mlflow")
        client = tracking.MlflowClient(tracking_uri=uri)
    reach = f"check the server ({uri}) and the experiment's name"
    try:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None and experiment_name.isdigit():
            experiment = client.get_experiment(experiment_name)
    except Exception as err:  # MlflowException, requests' errors: several types
        raise DataError(f"MLflow did not answer ({type(err).__name__}: {first_line(err)}).",
                        source=url, fix=f"{reach}; or read a local store: give the mlruns/ "
                                        "directory.") from err
    if experiment is None:
        raise DataError(f"no experiment named '{experiment_name}' on {uri}.", source=url,
                        fix=reach + ".")
    runs, token = [], None
    try:
        while True:
            page = client.search_runs([experiment.experiment_id], filter_string=filter_string,
                                      max_results=_PAGE_SIZE, page_token=token)
            runs.extend(page)
            token = getattr(page, "token", None)
            if not token:
                break
    except Exception as err:
        raise DataError(f"MLflow did not list the runs ({type(err).__name__}: "
                        f"{first_line(err)}).", source=url,
                        fix="check the filter (MLflow's syntax: params.P = '1000').") from err
    if not runs:
        raise DataError("no runs match.", source=url, fix="check the experiment and filter.")
    logs, not_fetched = [], set()
    for run in track(runs, "reading MLflow runs"):
        tags = dict(run.data.tags)
        metadata = {k: number_or_text(v) for k, v in tags.items()
                    if not k.startswith("mlflow.")}
        metadata.update({k: number_or_text(v) for k, v in run.data.params.items()})
        metadata.setdefault("experiment", experiment.name)
        chosen, others = metrics_to_fetch(list(run.data.metrics), mapping, config=metadata)
        not_fetched.update(others)
        series = {}
        for key in chosen:
            history = client.get_metric_history(run.info.run_id, key)
            series[key] = (np.array([m.step for m in history], np.int64),
                           np.array([m.value for m in history], float))
        name = run.info.run_name or tags.get(_RUN_NAME_TAG) or run.info.run_id
        logs.append(RunLog(str(name), series, metadata, f"{url.split('?')[0]}/{run.info.run_id}"))
    if not_fetched:
        report.notes.append(f"{len(not_fetched)} other metrics not fetched (name them in "
                            f"the mapping to read them): {', '.join(sorted(not_fetched)[:8])}")
    return logs
