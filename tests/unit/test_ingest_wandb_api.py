"""``wandb://`` sources: what can be checked offline.

The real ``wandb.Api`` needs the network and a login, which the test machines do not
have. These tests cover the URL and filter parsing, the choice of metrics, the join of
per-metric scans on ``_step``, and the calls made to the API, on a small stand-in that
behaves as the documented API does (``runs(path, filters=...)``, ``run.scan_history(keys)``
returning only rows holding every key). The API itself is not exercised here.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from scalingfit.errors import DataError
from scalingfit.ingest._common import SourceReport, assemble
from scalingfit.ingest._wandb_api import (
    flat_config,
    history_series,
    metrics_to_fetch,
    parse_url,
    read_api,
)
from scalingfit.ingest.mapping import Mapping
from scalingfit.ingest.table import validate


def test_parse_url():
    assert parse_url("wandb://team/proj") == ("team/proj", None, {})
    assert parse_url("wandb://team/proj/abc123") == ("team/proj", "abc123", {})
    path, run, filters = parse_url(
        "wandb://team/proj?state=finished&config.P=1000&filters=%7B%22tags%22%3A%7B%22%24in"
        "%22%3A%5B%22paper%22%5D%7D%7D")
    assert filters == {"state": "finished", "config.P": 1000, "tags": {"$in": ["paper"]}}


@pytest.mark.parametrize("url", ["wandb://team", "wandb://a/b/c/d", "wandb://t/p?filters=3"])
def test_bad_urls_are_one_line_errors(url):
    with pytest.raises(DataError, match="wandb://"):
        parse_url(url)


def test_flat_config():
    config = {"_wandb": {"x": 1}, "opt": {"lr": {"value": 0.1, "desc": None}, "betas": [0.9, 1]},
              "P": {"value": 100, "desc": None}, "none": None}
    assert flat_config(config) == {"opt.lr": 0.1, "opt.betas": "[0.9, 1]", "P": 100}


def test_metrics_to_fetch_recognised_and_mapped():
    keys = ["test/error", "norm/spectral", "gpu_temp", "_timestamp", "acc"]
    chosen, others = metrics_to_fetch(keys, None)
    assert chosen == ["norm/spectral", "test/error"] and others == ["gpu_temp", "acc"]
    mapping = Mapping.from_dict({"metrics": {"test_error": "acc", "architecture": "arch"}})
    chosen, _ = metrics_to_fetch(keys, mapping, config={"arch": "cnn"})
    assert "acc" in chosen and "arch" not in chosen


def test_scans_per_metric_are_joined_on_step():
    # two metrics logged at different steps, as scan_history returns them per key
    errors = [{"_step": s, "test/error": 0.5 / (s + 1)} for s in range(0, 10, 2)]
    norms = [{"_step": s, "norm/l1": float(s + 1)} for s in range(0, 10)]
    from scalingfit.ingest._common import RunLog

    run = RunLog("cnn", {"test/error": history_series(errors, "test/error"),
                         "norm/l1": history_series(norms, "norm/l1")},
                 {"P": 10}, "wandb://t/p/x")
    report = SourceReport("wandb://t/p", "wandb-api")
    table = validate(assemble([run], None, report, source="wandb://t/p", step="_step"))
    assert table["step"].tolist() == [0, 2, 4, 6, 8]
    assert table["norm_l1"].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert report.skipped == Counter({"steps without 'test/error' logged": 5})


class StandInRun:
    """Behaves as wandb.apis.public.Run does for what the reader uses."""

    def __init__(self, name, history, config):
        self.name, self.id, self.config = name, name[::-1], config
        self._history = history
        self.summary_metrics = {k: v for row in history for k, v in row.items()}
        self.scans = []

    def scan_history(self, keys=None, page_size=1000):
        self.scans.append(tuple(keys))
        return iter([{k: row[k] for k in keys} for row in self._history
                     if all(k in row for k in keys)])


class StandInApi:
    def __init__(self, runs):
        self._runs, self.calls = runs, []

    def runs(self, path, filters=None, per_page=50):
        self.calls.append((path, filters))
        return iter(self._runs)

    def run(self, path):
        self.calls.append((path,))
        return self._runs[0]


def test_read_api_on_a_stand_in():
    history = [{"_step": s, "test/error": 0.5, "norm/l1": 1.0 + s, "gpu": 40} for s in range(3)]
    history.append({"_step": 3, "norm/l1": 9.0})
    run = StandInRun("cnn_P8_seed0", history, {"P": 8, "seed": 0})
    api = StandInApi([run])
    report = SourceReport("wandb://t/p", "wandb-api")
    logs = read_api("wandb://t/p?state=finished", None, report, api=api)
    assert api.calls == [("t/p", {"state": "finished"})]
    assert sorted(run.scans) == [("_step", "norm/l1"), ("_step", "test/error")]
    (log,) = logs
    assert log.series["norm/l1"][0].tolist() == [0, 1, 2, 3]
    assert log.meta == {"P": 8, "seed": 0}
    assert "gpu" in report.line()  # not fetched, and said so
    read_api("wandb://t/p/xyz", None, report, api=api)
    assert api.calls[-1] == ("t/p/xyz",)


def test_no_matching_runs_is_an_error():
    with pytest.raises(DataError, match="no runs match"):
        read_api("wandb://t/p", None, SourceReport("x", "y"), api=StandInApi([]))


def test_history_series_skips_non_numbers():
    rows = [{"_step": 0, "k": 1.5}, {"_step": 1, "k": "NaN?"}, {"_step": 2, "k": None}]
    steps, values = history_series(rows, "k")
    assert steps.tolist() == [0] and np.array_equal(values, [1.5])
