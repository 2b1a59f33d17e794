"""One norm convention per table, the names a Trainer and Lightning log under, and the new
clients kept optional (issue 13)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import scalingfit
from scalingfit.errors import DataError
from scalingfit.ingest.mapping import Mapping, RunTemplate
from scalingfit.ingest.table import one_norm_convention


def rows(run, norms=None, lognorms=None, train_size=100):
    frame = pd.DataFrame({"run_id": run, "train_size": train_size, "step": [1, 2, 3],
                          "test_error": [0.5, 0.4, 0.3]})
    if norms is not None:
        frame["norm_fro"] = norms
    if lognorms is not None:
        frame["lognorm_fro"] = lognorms
    return frame


def test_a_norm_becomes_its_log_where_other_rows_log_it():
    table = pd.concat([rows("a", norms=[1.0, np.e, np.e ** 2]),
                       rows("b", lognorms=[5.0, 6.0, 7.0])], ignore_index=True)
    out, converted = one_norm_convention(table)
    assert "norm_fro" not in out and converted == {"fro": 3}
    np.testing.assert_allclose(out["lognorm_fro"], [0, 1, 2, 5, 6, 7])


def test_a_table_of_one_convention_is_left_alone():
    table = rows("a", norms=[1.0, 2.0, 3.0])
    out, converted = one_norm_convention(table)
    assert converted == {} and out.equals(table)
    # unless another source logs that norm
    out, converted = one_norm_convention(table, logged={"fro"})
    assert converted == {"fro": 3} and list(out["lognorm_fro"]) == list(np.log([1, 2, 3]))


def test_a_value_with_no_log_and_a_disagreement_are_refused():
    table = pd.concat([rows("a", norms=[1.0, 0.0, 3.0]), rows("b", lognorms=[5, 6, 7])],
                      ignore_index=True)
    with pytest.raises(DataError, match="row 1, column 'norm_fro': 0 is out of range"):
        one_norm_convention(table)
    table = rows("a", norms=[1.0, 2.0, 3.0], lognorms=[0.0, np.log(2.0), 9.0])
    with pytest.raises(DataError, match="row 2, column 'norm_fro': norm_fro is 3 but "
                                        "lognorm_fro is 9"):
        one_norm_convention(table)
    # both given and agreeing: one column, the log
    table = rows("a", norms=[1.0, 2.0, 3.0], lognorms=np.log([1.0, 2.0, 3.0]))
    assert list(one_norm_convention(table)[0].columns).count("lognorm_fro") == 1


def test_a_missing_norm_stays_missing_for_the_nan_policy(tmp_path):
    table = pd.concat([rows("a", norms=[1.0, np.nan, 3.0]), rows("b", lognorms=[5, 6, 7])])
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="row 3, column 'lognorm_fro': value is missing"):
        scalingfit.load(tmp_path / "t.csv")
    _, (report,) = scalingfit.load(tmp_path / "t.csv", nan_policy="omit", return_report=True)
    assert report.rows_kept == 5 and report.rows_skipped == 1


def test_sources_that_disagree_read_into_one_table(tmp_path):
    rows("a", norms=[1.0, 2.0, 3.0]).to_csv(tmp_path / "values.csv", index=False)
    rows("b", lognorms=[5.0, 6.0, 7.0], train_size=200).to_csv(tmp_path / "logs.csv",
                                                               index=False)
    table, reports = scalingfit.load([tmp_path / "values.csv", tmp_path / "logs.csv"],
                                     return_report=True)
    assert "norm_fro" not in table and not table["lognorm_fro"].isna().any()
    np.testing.assert_allclose(table["lognorm_fro"], [*np.log([1, 2, 3]), 5, 6, 7])
    assert "as another source logs it" in reports[0].line()
    assert "stored as" not in reports[1].line()


def test_trainer_and_lightning_names_are_recognised():
    names = ["eval_error", "eval_loss", "eval_lognorm_spectral_complexity", "eval/lognorm_l1",
             "lognorm/frobenius", "eval_norm_group21", "eval_runtime", "normalized_loss"]
    rename, _ = Mapping().resolve(names)
    assert rename == {"eval_error": "test_error", "eval_loss": "test_loss",
                      "eval_lognorm_spectral_complexity": "lognorm_spectral_complexity",
                      "eval/lognorm_l1": "lognorm_l1", "lognorm/frobenius": "lognorm_frobenius",
                      "eval_norm_group21": "norm_group21"}
    # accuracy is not an error: never recognised as one
    assert "eval_accuracy" not in Mapping().resolve(["eval_accuracy"])[0]


def test_a_template_reads_the_name_above_a_lightning_version_folder():
    template = RunTemplate("{architecture}_P{train_size}_seed{seed}")
    assert template.parse("cnn_P100_seed1/version_3") == {"architecture": "cnn",
                                                           "train_size": 100, "seed": 1}
    assert template.parse("cnn_P100_seed1/other") is None


def test_the_core_imports_without_the_new_clients():
    script = textwrap.dedent("""
        import sys
        for name in ("mlflow", "transformers", "lightning", "pytorch_lightning"):
            sys.modules[name] = None  # as if not installed
        import scalingfit, scalingfit.ingest.sources, scalingfit.norms
        from scalingfit.errors import MissingDependencyError
        for name, extra in (("TransformersNormCallback", "huggingface"),
                            ("LightningNormCallback", "lightning")):
            try:
                getattr(scalingfit.norms, name)
            except MissingDependencyError as err:
                assert f"scalingfit[{extra}]" in str(err), err
            else:
                raise AssertionError(name)
        try:
            scalingfit.load("mlflow://localhost:5000/x")
        except MissingDependencyError as err:
            assert "scalingfit[mlflow]" in str(err), err
        else:
            raise AssertionError("mlflow://")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
