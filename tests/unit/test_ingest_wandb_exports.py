"""W&B CSV exports: line panels (bucketed or not) and run history with its config."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from scalingfit.errors import DataError
from scalingfit.ingest import load, wandb

TEMPLATE = {"runs": {"template": "{architecture}_P{train_size}_seed{seed}"}}


def panel(path, runs, steps, *, bucketed=False, metrics=("test/error", "norm/l1")):
    """A line-panel export: Step, then '<run> - <metric>' (and __MIN/__MAX) columns."""
    table = pd.DataFrame({"Step": steps})
    for r, run in enumerate(runs):
        for m, metric in enumerate(metrics):
            values = 0.1 * (r + 1) + 0.01 * m + 0.001 * np.arange(len(steps))
            table[f"{run} - {metric}"] = values
            if bucketed:
                table[f"{run} - {metric}__MIN"] = values - 0.05
                table[f"{run} - {metric}__MAX"] = values + 0.05
    table.to_csv(path, index=False)
    return table


def test_a_panel_export_is_recognised_and_read(tmp_path):
    written = panel(tmp_path / "errors.csv", ["cnn_P10_seed0", "cnn_P20_seed1"], [0, 10, 20])
    assert wandb.is_wandb_table(tmp_path / "errors.csv")
    table = load(tmp_path / "errors.csv", TEMPLATE)
    run = table[table["run_id"] == "cnn_P20_seed1"]
    assert run["test_error"].tolist() == written["cnn_P20_seed1 - test/error"].tolist()
    assert run["train_size"].unique().tolist() == [20]


def test_bucketed_exports_say_so_and_use_the_main_column(tmp_path):
    written = panel(tmp_path / "p.csv", ["cnn_P10_seed0"], [0, 5], bucketed=True)
    table, (report,) = load(tmp_path / "p.csv", TEMPLATE, return_report=True)
    assert table["test_error"].tolist() == written["cnn_P10_seed0 - test/error"].tolist()
    assert "bucketed" in report.line() and "__MIN/__MAX" in report.line()


def test_panels_in_one_directory_are_merged_and_gaps_counted(tmp_path):
    panel(tmp_path / "a.csv", ["cnn_P10_seed0"], [0, 1, 2], metrics=("test/error",))
    panel(tmp_path / "b.csv", ["cnn_P10_seed0"], [0, 2], metrics=("norm/l1",))
    table, (report,) = load(tmp_path, TEMPLATE, return_report=True)
    assert table["step"].tolist() == [0, 2]
    assert report.skipped == Counter({"steps without 'norm/l1' logged": 1})


def test_empty_cells_are_not_logged_values(tmp_path):
    (tmp_path / "p.csv").write_text(
        "Step,cnn_P1_seed0 - test/error,cnn_P1_seed0 - norm/l1,cnn_P2_seed0 - test/error,"
        "cnn_P2_seed0 - norm/l1\n"
        "0,0.5,1.0,,\n1,0.4,2.0,0.3,2.5\n")
    table = load(tmp_path / "p.csv", TEMPLATE)
    assert table.groupby("run_id").size().to_dict() == {"cnn_P1_seed0": 2, "cnn_P2_seed0": 1}


def test_a_wall_time_x_axis_is_refused(tmp_path):
    (tmp_path / "p.csv").write_text("Wall time,r - test/error\n1.5,0.3\n2.25,0.2\n")
    with pytest.raises(DataError, match="x-axis column 'Wall time'"):
        load(tmp_path / "p.csv")


@pytest.mark.parametrize("layout", ["plain", "wandb"])
def test_history_export_with_its_config_beside(tmp_path, layout):
    history = pd.DataFrame({"_step": [0, 1, 2, 3], "_runtime": [1.0, 2, 3, 4],
                            "test/error": [0.9, np.nan, 0.5, 0.4],
                            "norm/spectral": [1.0, 2.0, 3.0, 4.0],
                            "train/loss": [2.0, 1.5, 1.0, 0.5]})
    history.to_csv(tmp_path / "my-run.csv", index=False)
    config = {"architecture": "vit", "dataset": "mnist", "P": 600, "seed": 2, "_wandb": {}}
    if layout == "wandb":  # config.yaml's and older API's layout
        config = {k: {"value": v, "desc": None} for k, v in config.items()}
    (tmp_path / "my-run.config.json").write_text(json.dumps(config))
    table, (report,) = load(tmp_path / "my-run.csv", return_report=True)
    assert table["step"].tolist() == [0, 2, 3]  # step 1 has no test error
    assert report.skipped == Counter({"steps without 'test/error' logged": 1})
    row = table.iloc[0]
    assert (row["run_id"], row["architecture"], row["train_size"], row["seed"]) == (
        "my-run", "vit", 600, 2)
    assert "_runtime" not in table and "_wandb" not in table


def test_history_as_json_lines_and_parquet(tmp_path):
    rows = [{"_step": s, "test/error": 0.5 / (s + 1), "norm/l1": s + 1.0, "media": {"a": 1}}
            for s in range(4)]
    lines = [json.dumps(r) for r in rows] + ["{not json", ""]
    (tmp_path / "cnn_P5_seed0.jsonl").write_text("\n".join(lines))
    pd.DataFrame(rows).drop(columns="media").to_parquet(tmp_path / "cnn_P6_seed0.parquet")
    table, (report,) = load(tmp_path, TEMPLATE, return_report=True)
    assert sorted(table["train_size"].unique()) == [5, 6]
    assert len(table) == 8
    assert report.skipped == Counter({"history export lines that are not JSON objects": 1})
    assert "media" in report.line()


def test_a_history_export_with_a_run_column_holds_several_runs(tmp_path):
    pd.DataFrame({"run": ["cnn_P1_seed0"] * 2 + ["cnn_P2_seed0"] * 2, "_step": [0, 1, 0, 1],
                  "test/error": [0.5, 0.4, 0.6, 0.3], "norm/l1": [1.0, 2, 3, 4]}).to_csv(
        tmp_path / "runs.csv", index=False)
    table = load(tmp_path / "runs.csv", TEMPLATE)
    assert sorted(table["run_id"].unique()) == ["cnn_P1_seed0", "cnn_P2_seed0"]


def test_a_broken_config_is_a_clear_error(tmp_path):
    pd.DataFrame({"_step": [0], "test/error": [0.5], "norm/l1": [1.0]}).to_csv(
        tmp_path / "r.csv", index=False)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(DataError, match="config.json.*not valid JSON"):
        load(tmp_path / "r.csv")


def test_a_canonical_csv_is_not_taken_for_a_wandb_export(tmp_path):
    pd.DataFrame({"run_id": ["a"], "train_size": [1], "step": [0], "test_error": [0.5],
                  "norm_l1": [1.0]}).to_csv(tmp_path / "t.csv", index=False)
    assert not wandb.is_wandb_table(tmp_path / "t.csv")
    _, (report,) = load(tmp_path / "t.csv", return_report=True)
    assert report.reader == "table"
