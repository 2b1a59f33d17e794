"""The perceptron commands as a user meets them: progress in log files, flags that do not
apply, α values that collide, ``-q``, early checks and the help texts."""

import importlib.util
import re

import pandas as pd
import pytest

import reference_runs.perceptron_theory as perceptron_theory
from reference_runs.__main__ import main
from reference_runs.perceptron import PerceptronConfig
from scalingfit.errors import ScalingfitError

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed")

SMALL = ["--n", "50", "--alpha", "1,2", "--seeds", "2", "--steps", "30", "--device", "cpu"]


def _perceptron(tmp_path, *extra):
    return main(["perceptron", *SMALL, "--out", str(tmp_path / "runs.csv"), *extra])


# --- progress ----------------------------------------------------------------------------


@needs_torch
def test_perceptron_prints_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert _perceptron(tmp_path) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "perceptron gd, 4 runs: step 0/30 (0 %), started"
    assert re.fullmatch(r"perceptron gd, 4 runs: step 30/30 \(100 %\), \d+ s elapsed, done",
                        lines[-1])
    assert captured.out.startswith("wrote ")


def test_theory_prints_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert main(["perceptron-theory", "--alpha", "5", "--points", "3",
                 "--out", str(tmp_path / "t.csv")]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "perceptron theory: point 0/3 (0 %), started"
    assert lines[1].startswith("perceptron theory: point 3/3 (100 %)")
    assert lines[2] == "perceptron theory: optima and limits of 1 alpha"
    assert captured.out.startswith("wrote 3 rows")


# --- -q --------------------------------------------------------------------------------


@needs_torch
def test_quiet_silences_progress_but_not_the_wrote_line(tmp_path, capsys):
    assert _perceptron(tmp_path, "-q") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("\n") == 1
    assert captured.out.startswith("wrote 104 rows (4 runs, settings {")
    assert captured.out.rstrip().endswith(f"to {tmp_path / 'runs.csv'}")


# --- flags that do not apply --------------------------------------------------------------


@pytest.mark.parametrize("optimizer, flag", [
    ("gd", ["--weight-decay", "0.1"]), ("adam", ["--weight-decay", "0.1"]),
    ("projected", ["--weight-decay", "0"]), ("gd", ["--radius", "3"]),
    ("gd-wd", ["--radius", "0.1:10"]), ("adam", ["--radius", "3"])])
def test_a_flag_the_optimizer_does_not_use_is_an_error(tmp_path, capsys, optimizer, flag):
    assert _perceptron(tmp_path, "--optimizer", optimizer, *flag, "-q") == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"error: {flag[0]} is for --optimizer ")
    assert f"; {optimizer} " in message and "\n" not in message
    assert not (tmp_path / "runs.csv").exists()


def _settings(out):
    """The settings dict of the 'wrote ...' line."""
    return eval(re.search(r"settings (\{.*\})\) to ", out).group(1))  # noqa: S307


@needs_torch
@pytest.mark.parametrize("optimizer, flags, weight_decay", [
    ("gd", [], 0.0), ("adam", [], 0.0), ("gd-wd", [], 1e-4),
    ("gd-wd", ["--weight-decay", "0.05"], 0.05)])
def test_the_summary_shows_the_settings_the_table_records(tmp_path, capsys, optimizer,
                                                           flags, weight_decay):
    assert _perceptron(tmp_path, "--optimizer", optimizer, *flags, "-q") == 0
    settings = _settings(capsys.readouterr().out)
    table = pd.read_csv(tmp_path / "runs.csv")
    assert settings["weight_decay"] == weight_decay
    assert (table.weight_decay == weight_decay).all()
    assert "radius" not in settings and "radius" not in table
    lrs = table.groupby("alpha").lr.first()
    assert settings["alphas"] == lrs.index.tolist()
    expected_lr = lrs.iloc[0] if lrs.nunique() == 1 else lrs.tolist()
    assert settings["lr"] == pytest.approx(expected_lr, rel=1e-5)


@needs_torch
def test_projected_takes_its_radius_and_reports_it(tmp_path, capsys):
    assert _perceptron(tmp_path, "--optimizer", "projected", "--radius", "3", "-q") == 0
    settings = _settings(capsys.readouterr().out)
    table = pd.read_csv(tmp_path / "runs.csv")
    assert settings["radius"] == "3" and (table.radius.astype(str) == "3").all()
    assert settings["weight_decay"] == 0.0


# --- α values that give the same P --------------------------------------------------------


def test_alphas_with_the_same_train_size_are_an_error(tmp_path, capsys):
    code = main(["perceptron", "--n", "100", "--alpha", "1,1.001", "--seeds", "4",
                 "--out", str(tmp_path / "runs.csv")])
    assert code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: invalid perceptron settings") and "\n" not in message
    assert "alpha 1 and 1.001 both give P = round(alpha*n) = 100" in message
    with pytest.raises(ScalingfitError, match="alpha 2 is given twice"):
        PerceptronConfig(n=100, alphas=(2.0, 1.0, 2.0))
    assert PerceptronConfig(n=1000, alphas=(1.0, 1.001)).train_sizes == [1000, 1001]


# --- perceptron-theory --exponents --------------------------------------------------------


@pytest.mark.parametrize("alphas", ["5", "5,5"])
def test_exponents_with_one_alpha_fail_before_solving(tmp_path, capsys, monkeypatch, alphas):
    def solve(*args, **kwargs):
        raise AssertionError("the table was computed before the arguments were checked")

    monkeypatch.setattr(perceptron_theory, "theory_table", solve)
    code = main(["perceptron-theory", "--alpha", alphas, "--exponents",
                 "--out", str(tmp_path / "t.csv")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --exponents needs at least two alpha values, got 5.")
    assert not (tmp_path / "t.csv").exists()


# --- help ------------------------------------------------------------------------------


def test_help_gives_the_defaults_of_steps_and_dtype(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["perceptron", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--steps STEPS optimisation steps (default 2000)" in text
    assert re.search(r"--dtype \{float32,float64\} \S.*\(default float32\) --out", text)
    assert "--optimizer {gd,gd-wd,adam,projected} gd (default)" in text
