"""``scalingfit calibrate`` end to end on a tiny fit: calibration.json's layout, and bad
input as one line with exit status 2 before any refit."""

from __future__ import annotations

import json
import shutil

import pytest

from scalingfit.cli import main
from scalingfit.fitting.simulation import SimGroup, simulate

SAMPLING = ["--draws", "200", "--tune", "300", "--chains", "2"]
pytestmark = [pytest.mark.slow,
              # small draws fail the strict default diagnostics; these tests are about the
              # command, not about intervals
              pytest.mark.filterwarnings("ignore::scalingfit.errors.ScalingfitWarning")]


@pytest.fixture(scope="module")
def fit_dir(tmp_path_factory):
    """One group, four sizes, two seeds, a run that never leaves chance."""
    base = tmp_path_factory.mktemp("calibrate")
    group = SimGroup("cnn", "mnist", gamma1=1.4, gamma2=0.5, log_k2=-1.0, eps_star_ref=0.05,
                     stuck_runs=1)
    table = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=2, n_steps=25,
                     seed=7)
    table.to_csv(base / "runs.csv", index=False)
    assert main(["fit", str(base / "runs.csv"), "--out", str(base / "fit"), *SAMPLING,
                 "--seed", "1", "-q"]) == 0
    return base / "fit"


def strict(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in calibration.json"))


def test_calibrate_writes_calibration_json(fit_dir, tmp_path, capsys):
    out = tmp_path / "calibration"
    assert main(["calibrate", str(fit_dir), "--out", str(out), "--replicates", "1",
                 *SAMPLING, "-q"]) == 0
    printed = capsys.readouterr().out
    assert "false alarms" in printed and "detected" in printed and "rank p" in printed
    content = strict((out / "calibration.json").read_text())
    assert set(content) >= {"settings", "quantities", "groups", "verdicts", "refits",
                            "replicates", "scores", "definitions"}
    assert list(content["quantities"]) == ["gamma1", "gamma2", "gamma_pred", "gamma_conv",
                                           "delta"]
    gamma1 = content["quantities"]["gamma1"]
    assert gamma1["n"] == 2  # one group, one replicate per scenario
    assert set(gamma1["coverage90"]) == {"rate", "count", "n", "q05", "q95"}
    assert gamma1["rank_p"] is None  # two truths are too few for a rank test: said so
    assert [g["name"] for g in content["groups"]] == ["cnn / mnist"]
    verdicts = content["verdicts"]
    assert verdicts["combined"]["n"] == 1 and verdicts["violated"]["n"] == 1
    assert {"false_alarm", "consistent"} <= set(verdicts["combined"])
    assert "detection" in verdicts["violated"]
    assert content["refits"]["n"] == 2 and content["refits"]["errors"] == []
    # the refits were made as asked, and as the fit was otherwise
    fit = content["settings"]["fit"]
    assert (fit["draws"], fit["chains"], fit["at_end"]) == (200, 2, "optimum")
    for replicate in content["replicates"]:
        truth = replicate["truth"]["cnn / mnist"]
        expected = 0.0 if replicate["scenario"] == "combined" else 0.2
        assert truth["delta"] == pytest.approx(expected, abs=1e-12)
        assert replicate["runs"] == 7  # the stuck run is simulated, at chance, not counted


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_input_is_one_line_with_exit_2(fit_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    err = one_line_error(capsys, ["calibrate", str(tmp_path / "nothing"), "--out", out])
    assert "not a fit directory" in err
    (tmp_path / "file").write_text("x")
    err = one_line_error(capsys, ["calibrate", str(fit_dir), "--out", str(tmp_path / "file")])
    assert "it is a file" in err
    err = one_line_error(capsys, ["calibrate", str(fit_dir), "--out", out, "--replicates", "0"])
    assert "replicates" in err
    err = one_line_error(capsys, ["calibrate", str(fit_dir), "--out", out, "--delta", "-0.1"])
    assert "delta" in err
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(fit_dir / "posterior.nc", bare / "posterior.nc")
    err = one_line_error(capsys, ["calibrate", str(bare), "--out", out])
    assert "table.parquet" in err
    assert not (tmp_path / "out").exists()  # nothing written
