"""The canonical table's validator: what it accepts, and a located error for everything else."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from scalingfit.errors import DataError
from scalingfit.table import log_norm, norm_names, schema, validate

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
    from scalingfit.simulation import example_table

    rows = example_table().head(50).to_dict("records")
    for row in rows:
        jsonschema.validate(row, on_disk)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**rows[0], "test_error": 1.5}, on_disk)
