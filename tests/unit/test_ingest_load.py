"""Dispatch, directory scanning, bad input and the `scalingfit ingest` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalingfit.cli import main
from scalingfit.errors import DataError, ScalingfitError
from scalingfit.ingest import load, read_source, write_table
from scalingfit.ingest.mapping import Mapping


def canonical_csv(path, runs=("a", "b"), errors=(0.5, 0.4)):
    rows = [{"run_id": run, "train_size": 10 * (i + 1), "step": step, "test_error": e,
             "norm_l1": 1.0 + step} for i, run in enumerate(runs) for step, e in
            enumerate(errors)]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_an_empty_directory_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(DataError, match="no training logs found"):
        load(tmp_path)
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def test_a_directory_with_several_kinds_gives_one_report_each(tmp_path):
    canonical_csv(tmp_path / "table.csv")
    epochs = np.array([1, 2, 3])
    np.save(tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy",
            {"log_epochs": epochs, "val_error": np.array([50.0, 40, 30]),
             "model_norm": np.array([1.0, 2, 3])})
    (tmp_path / "README.md").write_text("not a log")
    table, reports = load(tmp_path, return_report=True)
    assert sorted(r.reader for r in reports) == ["paper-npy", "table"]
    assert table["run_id"].nunique() == 3
    with pytest.raises(DataError, match="holds several kinds"):
        read_source(tmp_path)


def test_percent_and_fraction_mixed_in_one_csv_is_refused(tmp_path):
    rows = [{"run_id": "a", "train_size": 10, "step": s, "test_error": e, "norm_l1": 1.0 + s}
            for s, e in enumerate([0.9, 0.5])]
    rows += [{"run_id": "b", "train_size": 20, "step": s, "test_error": e, "norm_l1": 1.0 + s}
             for s, e in enumerate([88.0, 45.0])]
    pd.DataFrame(rows).to_csv(tmp_path / "mixed.csv", index=False)
    for mapping in (None, {"units": {"test_error": "percent"}}):
        with pytest.raises(DataError, match="mixes percent and fraction: run 'b' goes up to "
                                            "88 .* run 'a' never exceeds 0.9"):
            load(tmp_path / "mixed.csv", mapping)


def test_unknown_files_and_missing_paths(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no reader for this kind of file"):
        load(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "nope")


def test_ingest_command_prints_reports_and_writes_both_formats(tmp_path, capsys):
    canonical_csv(tmp_path / "t.csv")
    for out in ("table.parquet", "table.csv"):
        assert main(["ingest", str(tmp_path / "t.csv"), "--out", str(tmp_path / out)]) == 0
        printed = capsys.readouterr().out
        assert "2 runs, 4 rows kept, 0 skipped" in printed and f"wrote {tmp_path / out}" in printed
    again = pd.read_parquet(tmp_path / "table.parquet")
    assert again["test_error"].tolist() == pd.read_csv(tmp_path / "table.csv")[
        "test_error"].tolist()


def test_ingest_refuses_an_unknown_output_before_reading(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "missing"), "--out", str(tmp_path / "t.xlsx")]) == 2
    assert "--out must end in one of" in capsys.readouterr().err


def test_write_table_turns_mixed_metadata_into_text(tmp_path):
    table = pd.DataFrame({"run_id": ["a", "b"], "weight_decay": [0.0, "5e-4"]})
    write_table(table, tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["weight_decay"].tolist() == ["0.0", "5e-4"]


def test_run_ids_must_be_unique_across_sources(tmp_path):
    canonical_csv(tmp_path / "one.csv")
    canonical_csv(tmp_path / "two.csv")
    with pytest.raises(DataError, match="run_id 'a' also appears"):
        load([tmp_path / "one.csv", tmp_path / "two.csv"])


# -- the mapping, as the readers use it ------------------------------------------------

def test_resolve_recognises_norm_tags_and_aliases():
    rename, recognised = Mapping().resolve(
        ["norm/spectral_complexity", "norms/l1", "lognorm/fro", "norm.group21", "model",
         "val_error", "global_step", "norm_l2"])
    assert rename == {"norm/spectral_complexity": "norm_spectral_complexity",
                      "norms/l1": "norm_l1", "lognorm/fro": "lognorm_fro",
                      "norm.group21": "norm_group21", "model": "architecture",
                      "val_error": "test_error", "global_step": "step"}
    assert recognised["norm_l1"] == "norms/l1"


def test_the_source_wins_over_the_template_and_the_template_over_set():
    raw = pd.DataFrame({"run_id": ["cnn_P10", "cnn_P20"], "train_size": [99, np.nan],
                        "step": [0, 0], "test_error": [0.5, 0.5], "norm_l1": [1.0, 1.0]})
    mapping = Mapping.from_dict({"runs": {"template": "{architecture}_P{train_size}"},
                                 "set": {"train_size": 1, "dataset": "mnist"}})
    table, _ = mapping.apply(raw, source="x")
    assert table["train_size"].tolist() == [99, 20]
    assert table["dataset"].tolist() == ["mnist", "mnist"]
    assert table["architecture"].tolist() == ["cnn", "cnn"]


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(["t.csv", "h.jsonl", "r.parquet", "CNN_MNIST_P1_seed0_WD0.0.npy",
                             "run-x.wandb", "events.out.tfevents.1.host"]),
       prefix=st.sampled_from([b"", b":W&B\xe1\xbe\x00", b"\x93NUMPY\x01\x00",
                               b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, "
                               b"'shape': (), }", b"Step,a - test/error\n",
                               b"_step,test/error,norm/l1\n"]),
       body=st.binary(max_size=400))
def test_any_bytes_give_a_table_or_a_one_line_error(tmp_path_factory, name, prefix, body):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(prefix + body)
    try:
        load(path, {"set": {"train_size": 1}})
    except ScalingfitError as err:
        assert "\n" not in str(err)


# -- review fixes ----------------------------------------------------------------------

def runs_frame(n_runs=2, steps=5):
    rows = [{"run_id": f"cnn-mnist-P{p}-s0", "architecture": "cnn", "dataset": "mnist",
             "train_size": p, "seed": 0, "step": s, "test_error": 0.5 - 0.05 * s,
             "norm_spectral_complexity": 1.5 + s}
            for p in (1000 * (i + 1) for i in range(n_runs)) for s in range(steps)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("column", ["norm_spectral_complexity", "test_error"])
def test_omit_skips_and_counts_inf_rows_on_the_command_line(tmp_path, capsys, column):
    frame = runs_frame()
    frame.loc[7, column] = np.inf
    frame.to_csv(tmp_path / "inf2.csv", index=False)
    out = tmp_path / "o.parquet"
    assert main(["ingest", str(tmp_path / "inf2.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "row 9" in err and f"column '{column}'" in err and "not finite" in err
    assert "mixes percent" not in err and "--nan-policy omit" in err
    assert main(["ingest", str(tmp_path / "inf2.csv"), "--nan-policy", "omit",
                 "--out", str(out)]) == 0
    assert "9 rows kept, 1 skipped (1 NaN or inf test_error" in capsys.readouterr().out
    assert len(pd.read_parquet(out)) == 9


def test_a_semicolon_separated_csv_with_decimal_commas_is_read(tmp_path):
    frame = runs_frame()
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    table, (report,) = load(tmp_path / "semi.csv", return_report=True)
    assert "read as semicolon-separated" in report.line() and "decimal commas" in report.line()
    assert table["test_error"].tolist() == frame["test_error"].tolist()
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    table, (report,) = load(tmp_path / "semi.csv", return_report=True)
    assert "decimal commas" not in report.line() and len(table) == len(frame)
    frame.to_csv(tmp_path / "tab.csv", sep="\t", index=False)
    assert len(load(tmp_path / "tab.csv")) == len(frame)


def test_a_truncated_line_in_an_ingested_csv_names_its_first_missing_value(tmp_path, capsys):
    runs_frame().to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "table.csv"
    assert main(["ingest", str(tmp_path / "runs.csv"), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert "source" in lines[0].split(",")
    lines[4] = ",".join(lines[4].split(",")[:6])  # cut after step
    out.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["ingest", str(out), "--out", str(tmp_path / "again.parquet")]) == 2
    err = capsys.readouterr().err
    assert "row 5, column 'test_error': value is missing" in err and "'source'" not in err


def test_fractional_steps_say_how_to_make_them_whole(tmp_path, capsys):
    frame = runs_frame()
    frame["step"] = frame["step"] * 0.25
    frame.to_csv(tmp_path / "frac.csv", index=False)
    assert main(["ingest", str(tmp_path / "frac.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "0.25 is not a whole number" in err and "iteration count" in err


def test_metadata_missing_from_a_panel_export_points_to_the_template(tmp_path, capsys):
    frame = pd.DataFrame({"Step": [0, 1, 2]})
    for run in ("cnn_mnist_P100_seed0", "cnn_mnist_P200_seed0"):
        frame[f"{run} - test/error"] = [0.5, 0.4, 0.3]
        frame[f"{run} - norm/l1"] = [1.0, 2.0, 3.0]
    frame.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "m.yaml").write_text("set: {n_test: 10000}\n")
    assert main(["ingest", str(tmp_path / "panel.csv"), "--map", str(tmp_path / "m.yaml"),
                 "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing required column(s): 'train_size'" in err
    assert 'template: "{architecture}_{dataset}_P{train_size}_seed{seed}"' in err
    assert f"your mapping ({tmp_path / 'm.yaml'})" in err and "--map mapping.yaml" not in err
    assert "rename the columns" not in err


def test_mapping_typos_stop_the_command_with_a_did_you_mean(tmp_path, capsys):
    runs_frame().to_csv(tmp_path / "runs.csv", index=False)
    for text, words in [("units: {test_eror: percent}\n", "did you mean 'test_error'?"),
                        ("set: {n_tset: 10000}\n", "did you mean 'n_test'?"),
                        ("set: {architecure: foo}\n", "did you mean 'architecture'?")]:
        (tmp_path / "m.yaml").write_text(text)
        assert main(["ingest", str(tmp_path / "runs.csv"), "--map", str(tmp_path / "m.yaml"),
                     "--out", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "not understood" not in err
