"""The canonical table's validator: what it accepts, and a located error for everything else."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from scalingfit.errors import DataError
from scalingfit.ingest.mapping import Mapping, require_columns
from scalingfit.ingest.table import log_norm, norm_names, schema, validate

ROOT = Path(__file__).resolve().parents[2]


def table(**overrides):
    rows = {"run_id": ["a", "a", "b", "b"], "train_size": [100, 100, 200, 200],
            "step": [1, 2, 1, 2], "test_error": [0.5, 0.4, 0.45, 0.3],
            "norm_l2": [1.0, 2.0, 1.5, 3.0], "lr": [0.1, 0.1, 0.2, 0.2]}
    rows.update(overrides)
    frame = pd.DataFrame(rows)
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # line numbers, header = 1
    return frame


def test_a_good_table_comes_back_canonical():
    out = validate(table().iloc[::-1], source="t.csv")
    assert list(out["run_id"]) == ["a", "a", "b", "b"] and list(out["step"]) == [1, 2, 1, 2]
    assert (out["architecture"] == "all").all() and (out["dataset"] == "all").all()
    assert "lr" in out and out["train_size"].dtype == np.int64
    assert list(out.columns[:3]) == ["run_id", "architecture", "dataset"]


@pytest.mark.parametrize(("overrides", "row", "column", "words"), [
    ({"test_error": [0.5, np.nan, 0.4, 0.3]}, 3, "test_error", "missing"),
    ({"test_error": [0.5, np.inf, 0.4, 0.3]}, 3, "test_error", "not finite"),
    ({"test_error": [50.0, 40, 45, 30]}, 2, "test_error", "percent"),
    ({"norm_l2": [1.0, 0.0, 1.0, 2.0]}, 3, "norm_l2", "> 0"),
    ({"norm_l2": [1.0, 2.0, -1.0, 2.0]}, 4, "norm_l2", "> 0"),
    ({"norm_l2": [1.0, 2.0, np.inf, 2.0]}, 4, "norm_l2", "not finite"),
    ({"step": [1, 1, 1, 2]}, 3, "step", "twice"),
    ({"train_size": [100, 150, 200, 200]}, 3, "train_size", "more than one"),
    ({"train_size": [100, 100, 0, 0]}, 4, "train_size", "out of range"),
    ({"step": [1, 2.5, 1, 2]}, 3, "step", "whole number"),
    ({"test_error": [0.5, "abc", 0.4, 0.3]}, 3, "test_error", "not a number"),
    ({"run_id": ["a", None, "b", "b"]}, 3, "run_id", "empty"),
])
def test_bad_values_are_located(overrides, row, column, words):
    with pytest.raises(DataError) as caught:
        validate(table(**overrides), source="t.csv")
    err = caught.value
    assert (err.source, err.row, err.column) == ("t.csv", row, column)
    assert words in str(err) and "Fix:" in str(err) and "\n" not in str(err)


def test_missing_columns_and_norms_are_named():
    with pytest.raises(DataError, match="'step'.*a norm column") as caught:
        validate(table().drop(columns=["step", "norm_l2"]), source="t.csv")
    assert caught.value.column == "step"


def test_an_empty_table_is_refused():
    with pytest.raises(DataError, match="no rows"):
        validate(table().iloc[:0])


def test_nan_policy_omit_counts_what_it_drops():
    out = validate(table(test_error=[0.5, np.nan, 0.4, 0.3]), nan_policy="omit")
    assert len(out) == 3 and out.attrs["omitted_rows"] == 1


def test_lognorms_are_used_as_logs_up_to_the_float64_limit():
    logs = [700.0, 705.0, 702.0, 709.0]  # exp(709) ~ 8e307: near the float64 limit
    frame = table().drop(columns="norm_l2").assign(lognorm_big=logs, norm_huge=np.exp(logs))
    out = validate(frame)
    assert norm_names(out) == ["big", "huge"]
    np.testing.assert_allclose(log_norm(out, "big"), [700.0, 705.0, 702.0, 709.0])
    np.testing.assert_allclose(log_norm(out, "huge"), logs)


def test_the_schema_file_is_generated_from_the_code_and_describes_real_rows():
    on_disk = json.loads((ROOT / "data_schema" / "canonical_table.schema.json").read_text())
    assert on_disk == schema(), "run `make schema` to regenerate data_schema/"
    from scalingfit.fitting.simulation import example_table

    rows = example_table().head(50).to_dict("records")
    for row in rows:
        jsonschema.validate(row, on_disk)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**rows[0], "test_error": 1.5}, on_disk)


# -- review fixes: non-finite values, hints both CLI and Python users read, plain numbers --

@pytest.mark.parametrize("overrides", [
    {"test_error": [0.5, np.inf, 0.4, 0.3]},
    {"norm_l2": [1.0, np.inf, 1.5, 3.0]},
    {"norm_l2": [1.0, np.nan, 1.5, -np.inf]},
])
def test_nan_policy_omit_skips_and_counts_inf_too(overrides):
    out = validate(table(**overrides), nan_policy="omit")
    assert out.attrs["omitted_rows"] == 4 - len(out)
    assert np.isfinite(out[["test_error", "norm_l2"]].to_numpy()).all() and len(out) >= 2


def test_omit_does_not_hide_entries_that_are_not_numbers():
    with pytest.raises(DataError, match="'abc' is not a number"):
        validate(table(test_error=[0.5, "abc", np.inf, 0.3]), nan_policy="omit")


@pytest.mark.parametrize("overrides", [
    {"test_error": [0.5, np.nan, 0.4, 0.3]}, {"norm_l2": [1.0, np.inf, 1.5, 3.0]}])
def test_the_nan_policy_hint_reads_for_the_cli_and_for_python(overrides):
    with pytest.raises(DataError) as caught:
        validate(table(**overrides))
    assert "--nan-policy omit" in caught.value.fix and "nan_policy='omit'" in caught.value.fix


def test_values_in_messages_are_plain_numbers_not_numpy_reprs():
    frame = table(train_size=np.array([12000, 12001, 200, 200], dtype=np.int64))
    with pytest.raises(DataError) as caught:
        validate(frame, source="t.csv")
    assert "(12000 at row 2, 12001 here)" in str(caught.value)
    assert "np." not in str(caught.value)
    frame = table(architecture=np.array(["cnn", "vit", "cnn", "cnn"]))
    with pytest.raises(DataError, match=r"\('cnn' at row 2, 'vit' here\)"):
        validate(frame)


def test_a_fractional_step_says_what_to_use_instead():
    with pytest.raises(DataError) as caught:
        validate(table(step=[0.25, 0.5, 0.25, 0.5]))
    assert "whole number" in str(caught.value) and "iteration count" in caught.value.fix


def test_a_truncated_row_is_named_by_its_first_missing_required_value():
    # a CSV written by `scalingfit ingest --out table.csv` has a source column; a line cut
    # after `step` leaves test_error, the norm and the source empty
    frame = table(source=["t.csv", "t.csv", None, "t.csv"], test_error=[0.5, 0.4, None, 0.3],
                  norm_l2=[1.0, 2.0, None, 3.0])
    with pytest.raises(DataError) as caught:
        validate(frame, source="t.csv")
    assert (caught.value.row, caught.value.column) == (4, "test_error")
    with pytest.raises(DataError, match="give every row a source"):
        validate(table(source=["t.csv", "t.csv", " ", "t.csv"]))


def test_one_column_holding_semicolons_is_named_a_delimiter_problem():
    frame = pd.DataFrame({"run_id;train_size;step;test_error;norm_l2": ["a;1;0;0.5;1.0"]})
    with pytest.raises(DataError, match="looks semicolon-separated") as caught:
        validate(frame, source="t.csv")
    assert "sep=';'" in caught.value.fix
    frame = pd.DataFrame({"run_id\ttrain_size\tstep": ["a\t1\t0"]})
    with pytest.raises(DataError, match="looks tab-separated"):
        validate(frame)


def test_missing_metadata_in_logs_points_to_the_run_name_template_or_set():
    frame = table(run_id=["cnn-mnist-P12000-s0"] * 2 + ["cnn-mnist-P24000-s0"] * 2)
    with pytest.raises(DataError) as caught:
        require_columns(frame.drop(columns="train_size"), source="logs", reader="tensorboard")
    fix = caught.value.fix
    assert 'template: "{architecture}-{dataset}-P{train_size}-s{seed}"' in fix
    assert "'cnn-mnist-P12000-s0'" in fix and "set: {train_size:" in fix
    assert "rename the columns" not in fix and "--map mapping.yaml" in fix


def test_the_fix_refers_to_the_mapping_that_was_given():
    mapping = Mapping.from_dict({"runs": {"template": "{architecture}_{seed}"}},
                                origin="my.yaml")
    with pytest.raises(DataError) as caught:
        require_columns(table().drop(columns="train_size"), source="w", reader="wandb",
                        mapping=mapping)
    fix = caught.value.fix
    assert "--map" not in fix and "my.yaml" in fix
    assert "add {train_size} to the run-name template" in fix


def test_a_norm_mapped_without_the_norm_prefix_is_named():
    mapping = Mapping.from_dict({"columns": {"spectral_norm": "spectral"}}, origin="m.yaml")
    frame = table().rename(columns={"norm_l2": "spectral"})
    mapped, _ = mapping.apply(frame, source="t.csv")
    with pytest.raises(DataError) as caught:
        require_columns(mapped, source="t.csv", reader="table", mapping=mapping)
    assert "canonical name starts with 'norm_' (or 'lognorm_'" in caught.value.fix
    assert "write 'norm_spectral: spectral'" in caught.value.fix
    with pytest.raises(DataError) as caught:  # without a mapping: the norm-like column
        require_columns(table().rename(columns={"norm_l2": "grad_norm"}), source="t.csv",
                        reader="table")
    assert "'columns: {norm_grad: grad_norm}'" in caught.value.fix
    with pytest.raises(DataError, match="missing required column") as caught:  # a DataFrame
        validate(table().rename(columns={"norm_l2": "grad_norm"}))
    assert "'norm_'" in caught.value.fix and "scalingfit.load" in caught.value.fix


def test_an_infinite_norm_from_tensorboard_is_explained_as_float32_overflow():
    frame = table(norm_spectral=[1.0, np.inf, 2.0, 3.0]).drop(columns="norm_l2")
    with pytest.raises(DataError) as caught:
        validate(frame, reader="tensorboard")
    assert "float32" in str(caught.value) and "'lognorm/spectral'" in caught.value.fix
    assert "diverged" not in caught.value.fix
    with pytest.raises(DataError) as caught:  # other sources: a diverged entry
        validate(frame, reader="table")
    assert "diverged" in caught.value.fix and "float32" not in str(caught.value)
