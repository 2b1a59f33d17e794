"""MLflow: a file store written by the real ``mlflow`` client, offline, read as plain files
(no mlflow needed) and through the client's API (the path a tracking server takes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import scalingfit
from scalingfit.cli import main
from scalingfit.errors import DataError

pytest.importorskip("mlflow")

SIZES, SEEDS = (100, 200), (0, 1)
STEPS = (1, 2, 4, 8, 16)
KEPT = ["run_id", "architecture", "dataset", "train_size", "seed", "step", "test_error",
        "lognorm_spectral_complexity", "test_loss"]


def write_store(root):
    """Four runs through the mlflow client: params, a tag, metrics logged at evaluation steps
    and the training loss at more; a fifth run, deleted."""
    script = textwrap.dedent(f"""
        import math, mlflow
        mlflow.set_tracking_uri({root.as_uri()!r})
        mlflow.set_experiment("scaling")
        for size in {SIZES!r}:
            for seed in {SEEDS!r}:
                with mlflow.start_run(run_name=f"mlp_toy_P{{size}}_seed{{seed}}"):
                    mlflow.log_params({{"P": size, "seed": seed, "arch": "mlp", "lr": 0.1}})
                    mlflow.set_tag("dataset", "toy")
                    for step in range(17):
                        mlflow.log_metrics({{"train/loss": 1.0 / (step + 1),
                                            "grad_norm": 1.0}}, step=step)
                    for step in {STEPS!r}:
                        mlflow.log_metrics({{
                            "test/error": 0.5 / (1 + step * size / 1000) + 0.01 * seed,
                            "lognorm/spectral_complexity": math.log(step * size),
                            "val_loss": 2.0 / (step + 1)}}, step=step)
        with mlflow.start_run(run_name="mlp_toy_P300_seed0") as run:
            mlflow.log_metric("test/error", 0.3, step=1)
        mlflow.tracking.MlflowClient().delete_run(run.info.run_id)
    """)
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow") / "mlruns"
    write_store(root)
    return root


def test_a_file_store_reads_with_no_mapping(store):
    table, (report,) = scalingfit.load(store, return_report=True)
    assert report.reader == "mlflow" and report.runs == 4
    assert report.rows_kept == 4 * len(STEPS)
    assert table["step"].tolist() == list(STEPS) * 4
    assert set(table["train_size"]) == set(SIZES) and set(table["seed"]) == set(SEEDS)
    assert table["architecture"].eq("mlp").all() and table["dataset"].eq("toy").all()
    assert table["experiment"].eq("scaling").all() and table["lr"].eq(0.1).all()
    np.testing.assert_allclose(np.exp(table["lognorm_spectral_complexity"]),
                               table["step"] * table["train_size"])
    # the steps where only the training loss was logged: counted, not rows
    assert report.skipped["steps without 'test/error' logged"] == 4 * (17 - len(STEPS))
    assert report.skipped["runs deleted in MLflow (lifecycle_stage: deleted), not read"] == 1
    np.testing.assert_allclose(table["train_loss"], 1.0 / (table["step"] + 1))


def test_a_file_store_needs_no_mlflow(store, monkeypatch):
    expected = scalingfit.load(store)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    pd.testing.assert_frame_equal(scalingfit.load(store), expected)


def test_the_client_api_gives_the_same_rows(store, monkeypatch):
    """``mlflow:///EXPERIMENT`` goes through MlflowClient (search_runs,
    get_metric_history), as for a tracking server; here on the file store, offline."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from_files = scalingfit.load(store)
    through_api, (report,) = scalingfit.load("mlflow:///scaling", mlflow_uri=store.as_uri(),
                                             return_report=True)
    assert report.reader == "mlflow-server"
    columns = [c for c in KEPT if c != "test_loss"] + ["experiment"]
    pd.testing.assert_frame_equal(through_api[columns].reset_index(drop=True),
                                  from_files[columns].reset_index(drop=True))
    # metrics that are neither named nor recognised are not fetched, and said so
    assert "other metrics not fetched" in report.line()


def test_the_command_takes_a_tracking_uri(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out = tmp_path / "table.csv"
    assert main(["ingest", "mlflow:///scaling", "--mlflow-uri", store.as_uri(), "--out",
                 str(out)]) == 0
    assert f"4 runs, {4 * len(STEPS)} rows kept" in capsys.readouterr().out
    assert main(["ingest", "mlflow://localhost:5000/scaling", "--mlflow-uri",
                 store.as_uri(), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "given twice" in err and "Fix:" in err


def test_an_unreachable_server_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    assert main(["ingest", "mlflow://127.0.0.1:9/scaling", "--out",
                 str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mlflow://127.0.0.1:9/scaling: MLflow did not answer")
    assert err.count("\n") == 1 and "Fix:" in err


def test_a_damaged_meta_yaml_is_one_line_naming_it(store, tmp_path, capsys):
    import shutil

    copy = tmp_path / "mlruns"
    shutil.copytree(store, copy)
    meta = sorted(copy.glob("*/*/meta.yaml"))[0]
    meta.write_text("run_id: [unclosed\nname: x\n")
    assert main(["ingest", str(copy), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {meta}: damaged MLflow meta.yaml") and err.count("\n") == 1
    assert "Fix: restore it" in err
    meta.write_text("status: 3\n")  # valid YAML, but no run id
    with pytest.raises(DataError, match="no run_id"):
        scalingfit.load(copy)


def test_two_runs_of_one_name_are_refused(store, tmp_path):
    import shutil

    copy = tmp_path / "mlruns"
    shutil.copytree(store, copy)
    run = next(p.parent for p in sorted(copy.glob("*/*/meta.yaml"))
               if "P100_seed0" in p.read_text())
    twin = run.with_name("f" * 32)
    shutil.copytree(run, twin)
    (twin / "meta.yaml").write_text((twin / "meta.yaml").read_text().replace(
        f"run_id: {run.name}", f"run_id: {twin.name}"))
    with pytest.raises(DataError, match="two MLflow runs are named"):
        scalingfit.load(copy)
