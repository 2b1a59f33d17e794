"""``wandb://entity/project[/run_id][?filters]``: runs read online through ``wandb.Api``.

The URL names a project (or one run); its query becomes the ``filters`` of
``Api.runs`` (a MongoDB-style query on run fields, ``config.*`` and ``summary_metrics.*``):
``?state=finished&config.dataset=cifar10`` or ``?filters={"config.P": {"$gte": 1000}}``.

For every run, each metric is paged with ``run.scan_history(keys=["_step", metric])``,
which returns every logged row (``run.history()`` samples); metrics logged at different
steps are joined on ``_step`` by :func:`._common.assemble`. Which metrics: those the
mapping names, and those of the run's summary that are recognised without one (test
error, losses, ``norm/*``); the others are counted in the report, not fetched.

This path needs the network and a W&B login, so the test suite covers the URL parsing,
the choice of metrics and the join on a stand-in for the API, not the API itself.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..errors import DataError, first_line, require
from ._common import RunLog, track
from .mapping import Mapping
from .table import NORM_PATTERN

__all__ = ["URL_SCHEME", "parse_url", "read_api", "flat_config", "json_or_text", "history_series",
           "metrics_to_fetch"]

URL_SCHEME = "wandb://"
_PAGE_SIZE = 1000
_CANONICAL = {"test_error", "train_error", "test_loss", "train_loss", "step"}


def parse_url(url: str):
    """``(entity/project, run id or None, filters)`` of a ``wandb://`` URL.

    Query values are JSON where they parse (``P=1000`` is a number), else strings;
    ``filters=<JSON object>`` is merged in as is.
    """
    parts = urlsplit(url)
    path = [p for p in (parts.netloc + parts.path).split("/") if p]
    if parts.scheme != "wandb" or len(path) not in (2, 3):
        raise DataError("a W&B URL names a project: wandb://entity/project[/run_id]"
                        "[?filters].", source=url,
                        fix="e.g. wandb://my-team/scaling?state=finished")
    filters = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        parsed = json_or_text(value)
        if key == "filters":
            if not isinstance(parsed, dict):
                raise DataError("'filters=' must be a JSON object.", source=url,
                                fix='e.g. filters={"config.P": {"$gte": 1000}}')
            filters.update(parsed)
        else:
            filters[key] = parsed
    return "/".join(path[:2]), (path[2] if len(path) == 3 else None), filters


def json_or_text(value: str):
    """A value W&B stores as JSON text (or a query value): parsed where it parses."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def flat_config(config: dict) -> dict:
    """A W&B config as flat metadata: ``{"value": v}`` unwrapped, nested keys joined with
    dots, lists as JSON text, W&B's own keys (``_wandb``) left out."""
    flat = {}

    def visit(prefix, value):
        if isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value:
            value = value["value"]  # config.yaml / older API layout
        if isinstance(value, dict):
            for key, inner in value.items():
                visit(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, (list, tuple)):
            flat[prefix] = json.dumps(value)
        elif value is not None:
            flat[prefix] = value

    for key, value in config.items():
        if not str(key).startswith("_"):
            visit(str(key), value)
    return flat


def metrics_to_fetch(keys, mapping: Mapping | None, *, config=()):
    """The metric keys worth a ``scan_history``: named by the mapping or recognised.

    Parameters
    ----------
    keys : list of str
        The run's summary keys (the metrics it logged).
    mapping : Mapping or None
    config : collection of str
        The run's config keys: a name the mapping gives that is one of them is metadata.

    Returns
    -------
    (list, list)
        The keys to fetch, and the run's other metric keys.
    """
    keys = [k for k in keys if not str(k).startswith("_")]
    wanted = {name for name in (mapping.columns.values() if mapping else ())
              if name not in config}
    names = sorted(set(keys) | wanted)
    rename, _ = (mapping or Mapping()).resolve([*names, *config])
    chosen = [k for k in names if k in wanted or rename.get(k, k) in _CANONICAL
              or NORM_PATTERN.match(rename.get(k, k))]
    return chosen, [k for k in keys if k not in chosen]


def history_series(rows, key):
    """(steps, values) of ``key`` in history rows (dicts with ``_step``), numbers only."""
    steps, values = [], []
    for row in rows:
        step, value = row.get("_step"), row.get(key)
        if isinstance(value, (int, float)) and isinstance(step, (int, float)):
            steps.append(int(step))
            values.append(float(value))
    return np.array(steps, np.int64), np.array(values, float)


def read_api(url: str, mapping: Mapping | None, report, *, api=None) -> list:
    """RunLogs of the runs a ``wandb://`` URL selects (needs the network and a login)."""
    project, run_id, filters = parse_url(url)
    if api is None:
        wandb = require("wandb", "wandb")
        try:
            api = wandb.Api(timeout=60)
        except Exception as err:  # no API key, no network: wandb raises several types
            raise DataError(f"cannot reach W&B ({type(err).__name__}: {first_line(err)}).",
                            source=url,
                            fix="run `wandb login`, or read the local run directories "
                                "(wandb/run-*) instead.") from err
    try:
        runs = ([api.run(f"{project}/{run_id}")] if run_id
                else list(api.runs(project, filters=filters or None, per_page=100)))
    except Exception as err:
        raise DataError(f"W&B did not list the runs ({type(err).__name__}: {first_line(err)}).",
                        source=url, fix="check the entity, project and filters.") from err
    if not runs:
        raise DataError("no runs match.", source=url, fix="check the project and filters.")
    not_fetched = set()
    logs = []
    for run in track(runs, "reading W&B runs"):
        summary = dict(run.summary_metrics or {})
        config = flat_config(dict(run.config))
        keys = [k for k, v in summary.items() if isinstance(v, (int, float))]
        chosen, others = metrics_to_fetch(keys, mapping, config=config)
        not_fetched.update(others)
        series = {}
        for key in chosen:  # one scan per metric: a scan only returns rows with all its keys
            rows = run.scan_history(keys=["_step", key], page_size=_PAGE_SIZE)
            series[key] = history_series(rows, key)
        logs.append(RunLog(run.name or run.id, series, config,
                           f"{url.split('?')[0]}/{run.id}"))
    if not_fetched:
        report.notes.append(f"{len(not_fetched)} other metrics not fetched (name them in "
                            f"the mapping to read them): {', '.join(sorted(not_fetched)[:8])}")
    return logs
