"""The paper's per-run .npy files, and the unpickler that never runs their code."""

from __future__ import annotations

import os
import pickle
import subprocess
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalingfit.cli import main
from scalingfit.errors import DataError
from scalingfit.ingest import load, paper
from scalingfit.ingest._safe_pickle import load_object_npy

EPOCHS = np.unique(np.logspace(0, np.log10(50), 12, dtype=int))


def logs(scale=1.0, *, norms_as_logs=False):
    t = EPOCHS.astype(float)
    norm = 3.0 * t ** 0.5 * scale
    out = {"log_epochs": EPOCHS, "train_error": 50.0 / t, "val_error": 60.0 / t ** 0.5,
           "train_loss": 1 / t, "val_loss": 2 / t, "model_norm": norm ** 3, "spectral": norm,
           "l1": 100 * norm, "fro": 10 * norm, "g_2_1": 20 * norm}
    if norms_as_logs:
        for key in ("model_norm", "spectral", "l1", "fro", "g_2_1"):
            out[key] = np.log(out[key])
    return out


def test_a_run_file_becomes_canonical_rows(tmp_path):
    np.save(tmp_path / "CNN_CIFAR10_P1000_seed3_WD0.0005.npy", logs())
    table = load(tmp_path)
    first = table.iloc[0]
    assert (first["architecture"], first["dataset"], first["train_size"], first["seed"],
            first["weight_decay"]) == ("CNN", "CIFAR10", 1000, 3, 0.0005)
    assert table["step"].tolist() == EPOCHS.tolist()
    np.testing.assert_allclose(table["test_error"], logs()["val_error"] / 100)
    np.testing.assert_allclose(table["train_error"], logs()["train_error"] / 100)
    np.testing.assert_allclose(table["norm_spectral_complexity"], logs()["model_norm"])
    np.testing.assert_allclose(table["norm_group21"], logs()["g_2_1"])
    np.testing.assert_allclose(table["test_loss"], logs()["val_loss"])


def test_vit_norms_are_logs_and_stay_logs(tmp_path):
    np.save(tmp_path / "ViT_CIFAR100_P500_seed0_WD0.0_INIT2.0.npy", logs(norms_as_logs=True))
    table = load(tmp_path)
    assert "norm_l1" not in table and table["init_scale"].eq(2.0).all()
    np.testing.assert_allclose(table["lognorm_spectral_complexity"],
                               np.log(logs()["model_norm"]))


def test_a_mapping_is_laid_over_the_built_in_one(tmp_path):
    np.save(tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy", {**logs(), "path": EPOCHS * 2.0})
    table = load(tmp_path, {"columns": {"norm_path": "path"}, "set": {"n_test": 10000}})
    assert table["norm_path"].tolist() == (EPOCHS * 2.0).tolist()
    assert table["n_test"].eq(10000).all()


def test_odd_names_in_a_directory_are_counted_and_a_lone_one_is_an_error(tmp_path):
    np.save(tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy", logs())
    np.save(tmp_path / "CNN_CIFAR10.npy", {"aggregated": [1, 2]})
    table, (report,) = load(tmp_path, return_report=True)
    assert table["run_id"].nunique() == 1
    assert report.skipped == Counter({f"files not named {paper._NAME_HELP}": 1})
    with pytest.raises(DataError, match="does not follow"):
        load(tmp_path / "CNN_CIFAR10.npy")
    # a template makes a differently named file readable
    np.save(tmp_path / "run-7.npy", logs())
    table = load(tmp_path / "run-7.npy", {"runs": {"template": "run-{seed}"},
                                          "set": {"train_size": 50}})
    assert table["seed"].eq(7).all()


@pytest.mark.parametrize("content, message", [
    (np.arange(4.0), "holds a ndarray"),
    ({"val_error": [1.0]}, "no 'log_epochs'"),
    ({"log_epochs": [1, 2], "val_error": [1.0, 2.0, 3.0]}, "'val_error' has shape"),
    ({"log_epochs": [1.5, 2.0], "val_error": [1.0, 2.0]}, "not a list of whole epochs"),
])
def test_malformed_run_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy"
    np.save(path, content, allow_pickle=True)
    with pytest.raises(DataError, match=message):
        load(path)


# -- the restricted unpickler ----------------------------------------------------------

class _RunsAShellCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evaluates:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


class _StartsAProcess:
    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        return (subprocess.Popen, (self.argv,))


def write_npy_with_pickle(path, obj):
    """A .npy file with an object array header and ``obj`` pickled as its data."""
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(obj, file, protocol=3)


@pytest.mark.parametrize("make", [
    lambda marker: _RunsAShellCommand(f"touch {marker}"),
    lambda marker: {"log_epochs": [1], "val_error": _RunsAShellCommand(f"touch {marker}")},
    lambda marker: _Evaluates(f"open({str(marker)!r}, 'w').close()"),
    lambda marker: _StartsAProcess(["touch", str(marker)]),
])
def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path, make):
    marker = tmp_path / "pwned"
    path = tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy"
    write_npy_with_pickle(path, make(marker))
    with pytest.raises(DataError, match="refused to load: its pickle calls"):
        load_object_npy(path)
    assert not marker.exists()
    # through the command line: one line, exit status 2, still nothing run
    assert main(["ingest", str(path), "--out", str(tmp_path / "t.csv")]) == 2
    assert not marker.exists()


def test_the_refusal_names_what_was_refused(tmp_path):
    path = tmp_path / "x.npy"
    write_npy_with_pickle(path, _RunsAShellCommand("true"))
    with pytest.raises(DataError, match=r"'(posix|nt|os)\.system'"):
        load_object_npy(path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_content_loads_under_every_protocol(tmp_path, protocol):
    content = {"a": np.arange(5, dtype=np.int32), "b": np.float64(2.5), "c": [1, "x", 2.0],
               "d": {"nested": np.ones((2, 3))}, "e": np.array(["s", "t"])}
    path = tmp_path / "x.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(np.array(content, dtype=object), file, protocol=protocol)
    loaded = load_object_npy(path)
    assert loaded["a"].tolist() == [0, 1, 2, 3, 4] and loaded["b"] == 2.5
    assert loaded["c"] == [1, "x", 2.0] and loaded["d"]["nested"].shape == (2, 3)


def test_a_plain_numeric_npy_is_returned_as_an_array(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(2, 3))
    assert load_object_npy(tmp_path / "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_damaged_pickles_are_clear_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("npy") / "CNN_MNIST_P10_seed0_WD0.0.npy"
    np.save(path, logs())
    blob = bytearray(path.read_bytes())
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(0, len(blob) - 1)):]
    else:
        for _ in range(data.draw(st.integers(1, 5))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(blob))
    try:
        load(path)
    except DataError as err:
        assert "\n" not in str(err)


@pytest.mark.parametrize("key", ["val_error", "log_epochs"])
def test_complex_values_are_refused_not_cast(tmp_path, key):
    """A damaged dtype can read as complex numbers: casting them to float would drop
    their imaginary part without a word (hypothesis found one in
    test_damaged_pickles_are_clear_errors)."""
    run = logs()
    run[key] = run[key] * (1 + 1j)
    np.save(tmp_path / "CNN_MNIST_P10_seed0_WD0.0.npy", run)
    with pytest.raises(DataError, match=f"'{key}'.* not numbers"):
        load(tmp_path)


# -- one norm convention per table (issue 13, item 5) ----------------------------------

def mixed_folder(root):
    """CNN and ResNet runs store norms as values, ViT runs as natural logs."""
    for model, scale in (("CNN", 1.0), ("ResNet18", 2.0), ("ViT", 3.0)):
        for size in (1000, 2000):
            np.save(root / f"{model}_CIFAR10_P{size}_seed0_WD0.0.npy",
                    logs(scale * size / 1000, norms_as_logs=model == "ViT"))


@pytest.mark.parametrize("mapping", [None, {"set": {"n_test": 10000}}])
def test_cnn_resnet_and_vit_files_read_into_one_table(tmp_path, mapping):
    mixed_folder(tmp_path)
    table, (report,) = load(tmp_path, mapping, return_report=True)
    assert table["run_id"].nunique() == 6 and len(table) == 6 * len(EPOCHS)
    norms = [c for c in table if "norm_" in c]
    assert norms == ["lognorm_spectral_complexity", "lognorm_spectral_product",
                     "lognorm_l1", "lognorm_frobenius", "lognorm_group21"]
    assert not table[norms].isna().any().any()
    for model, scale in (("CNN", 1.0), ("ResNet18", 2.0), ("ViT", 3.0)):
        rows = table[(table["architecture"] == model) & (table["train_size"] == 2000)]
        expected = np.log(logs(scale * 2)["model_norm"])
        np.testing.assert_allclose(rows["lognorm_spectral_complexity"], expected, rtol=1e-12)
    assert ("norm_spectral_complexity stored as lognorm_spectral_complexity (its natural "
            f"log, {4 * len(EPOCHS)} values), as other runs of this source log it"
            in report.line())


def test_the_mixed_folder_reads_on_the_command_line(tmp_path, capsys):
    mixed_folder(tmp_path)
    out = tmp_path / "table.csv"
    assert main(["ingest", str(tmp_path), "--out", str(out)]) == 0
    assert "6 runs" in capsys.readouterr().out
