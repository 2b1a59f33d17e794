"""`scalingfit fit` from the command line: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import arviz as az
import numpy as np
import pandas as pd
import pytest

from scalingfit.cli import main
from scalingfit.fitting.result import FitResult
from scalingfit.fitting.simulation import EXAMPLE_GROUPS, simulate

# few draws keep the suite fast; their diagnostics may fail, which the fit warns about
pytestmark = pytest.mark.filterwarnings("ignore::scalingfit.errors.ScalingfitWarning")
QUICK = ["--draws", "200", "--tune", "300", "--chains", "2", "-q"]
S_KEYS = {"mean", "median", "sd", "q05", "q95"}


def test_fit_writes_the_documented_outputs(tmp_path, capsys):
    out = tmp_path / "fit"
    assert main(["fit", "--example", "--out", str(out), *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "gamma1" in printed and "R-hat" in printed
    assert "90 % interval" in printed and "combined-law" not in printed
    summary = json.loads((out / "summary.json").read_text())
    assert isinstance(summary["norm"], str)
    assert set(summary["diagnostics"]) >= {"rhat_max", "ess_bulk_min", "divergences"}
    assert isinstance(summary["versions"], dict) and "pymc" in summary["versions"]
    assert len(summary["groups"]) == len(EXAMPLE_GROUPS)
    for group in summary["groups"]:
        assert isinstance(group["architecture"], str) and isinstance(group["dataset"], str)
        assert isinstance(group["n_runs"], int)
        assert set(group["params"]) == {"gamma1", "gamma2", "gamma_pred", "gamma_conv"}
        for stats in group["params"].values():
            assert set(stats) == S_KEYS and stats["q05"] <= stats["median"] <= stats["q95"]
    idata = az.from_netcdf(out / "posterior.nc")
    pred = idata.posterior["gamma1"] * idata.posterior["gamma2"]
    np.testing.assert_allclose(idata.posterior["gamma_pred"], pred)
    loaded = FitResult.load(out)
    assert loaded.summary()["groups"] == summary["groups"]
    assert not list(out.glob("*.part"))


def test_strict_exits_nonzero_when_diagnostics_fail(tmp_path, capsys):
    source = write(tmp_path, "runs.csv", good_table())
    args = ["fit", str(source), "--out", str(tmp_path / "fit"), "--draws", "15", "--tune",
            "15", "--chains", "2", "-q"]
    assert main([*args, "--strict"]) == 3
    assert "FAILED" in capsys.readouterr().out
    assert main(args) == 0  # without --strict the failure is reported, not fatal


def write(tmp_path, name, frame=None, text=None, data=None):
    path = tmp_path / name
    if frame is not None:
        frame.to_csv(path, index=False)
    elif text is not None:
        path.write_text(text)
    else:
        path.write_bytes(data)
    return path


def good_table():
    return simulate(EXAMPLE_GROUPS[:1], train_sizes=(4000, 8000), n_seeds=2, n_steps=12, seed=1)


def bad_inputs(tmp_path):
    t = good_table()
    nan, inf, zero, percent, dup = (t.copy() for _ in range(5))
    nan.loc[5, "test_error"] = np.nan
    inf.loc[7, "norm_spectral_complexity"] = np.inf
    zero.loc[9, "norm_spectral_complexity"] = 0.0
    percent["test_error"] *= 100
    dup = pd.concat([dup, dup.iloc[[3]]])
    single = t.assign(train_size=4000, run_id=t["run_id"] + "x")
    return {
        "missing column": (write(tmp_path, "a.csv", t.drop(columns="step")), "'step'"),
        "NaN": (write(tmp_path, "b.csv", nan), "row 7, column 'test_error'"),
        "inf": (write(tmp_path, "c.csv", inf), "row 9, column 'norm_spectral_complexity'"),
        "zero norm": (write(tmp_path, "d.csv", zero), "row 11, column 'norm_spectral"),
        "percent": (write(tmp_path, "e.csv", percent), "percent"),
        "duplicate rows": (write(tmp_path, "f.csv", dup), "twice"),
        "single P": (write(tmp_path, "g.csv", single), "single train_size"),
        "empty file": (write(tmp_path, "h.csv", text=""), "empty"),
        "not a table": (write(tmp_path, "i.csv", data=bytes(range(256)) * 4), "not a"),
    }


def test_bad_input_is_one_line_naming_the_place(tmp_path, capsys):
    for case, (path, words) in bad_inputs(tmp_path).items():
        assert main(["fit", str(path), "--out", str(tmp_path / "out"), *QUICK]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (case, err)
        assert str(path) in err and words in err, (case, err)
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_real_process_shows_no_traceback(tmp_path):
    path, _ = bad_inputs(tmp_path)["percent"]
    done = subprocess.run([sys.executable, "-m", "scalingfit", "fit", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "units: {test_error: percent}" in done.stderr


def test_a_mapping_file_renames_and_converts(tmp_path):
    t = good_table().rename(columns={"test_error": "val_err", "step": "epoch"})
    t["val_err"] *= 100
    source = write(tmp_path, "runs.csv", t)
    mapping = write(tmp_path, "map.yaml", text="columns: {test_error: val_err}\n"
                                               "units: {test_error: percent}\n")
    assert main(["fit", str(source), "--map", str(mapping), "--out", str(tmp_path / "f"),
                 *QUICK]) == 0


@pytest.mark.parametrize("boom_in", ["posterior", "summary"])
def test_outputs_are_written_atomically(tmp_path, monkeypatch, boom_in):
    import scalingfit as sf

    result = sf.fit(good_table(), draws=50, tune=50, chains=2, progress=False)
    out = tmp_path / "fit"
    result.save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    if boom_in == "posterior":
        monkeypatch.setattr(type(result.idata), "to_netcdf", boom)
    else:
        monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        result.save(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_bad_output_directory_stops_the_fit_before_it_starts(tmp_path, capsys):
    """Found before the fit, not after it (when result.save would have thrown it away)."""
    import time

    afile = tmp_path / "afile"
    afile.write_text("")
    start = time.perf_counter()
    assert main(["fit", "--example", "--out", str(afile / "fit"), *QUICK]) == 2
    assert time.perf_counter() - start < 5  # no fit was made
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(afile / "fit") in err


@pytest.mark.slow
def test_fit_example_prints_only_its_own_lines(tmp_path):
    """What a user sees in a fresh process: the command's own lines and nothing else — no
    other library's warning (ArviZ warns once a day as it is imported, so the cache it
    keeps its stamp in is a fresh one here; the default sampler, as a user runs it)."""
    import os
    import re

    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-m", "scalingfit", "fit", "--example", "--out",
                           str(tmp_path / "fit"), "--draws", "200", "--tune", "300",
                           "--chains", "2"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    # stderr: stage 1's progress and our one-line warnings; a multi-line warning of another
    # library (its "file:line: FutureWarning:" line, its text, its source line) fails here
    for line in done.stderr.splitlines():
        assert re.match(r"(fitting run curves: |warning: \S)", line), done.stderr
    groups = [f"{g.architecture} / {g.dataset}" for g in EXAMPLE_GROUPS]
    names = "|".join(map(re.escape, groups))
    ours = re.compile(r"(norm: \w+; posterior median|group +runs +gamma1|-{20,}$|"
                      rf"({names}) +\d+ |runs \(shape|({names}): \d+ runs|sampler |wrote |$)")
    lines = done.stdout.splitlines()
    assert len(lines) == 7 + 2 * len(groups), done.stdout
    for line in lines:
        assert ours.match(line), done.stdout
