"""`scalingfit predict` where the laws stop holding: sizes so small that the predicted best
error reaches the group's chance plateau, and sizes so large that the factor needs an
exponent. Reads the combined-law fit of the session's small check (conftest.py)."""

import json
import re

import pytest

from scalingfit.checking.prediction import chance_errors, predict
from scalingfit.cli import main
from scalingfit.fitting.result import FitResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def combined(small_check_dir):
    return FitResult.load(small_check_dir / "fit-combined")


def test_chance_is_each_groups_fitted_plateau(combined):
    chance = chance_errors(combined)
    assert len(chance) == 2
    # 10-class datasets (MNIST, Fashion-MNIST): chance is about 0.9
    assert all(0.8 < c < 0.95 for c in chance)


def test_predictions_above_chance_are_flagged(combined):
    rows = predict(combined, [10, 64_000])
    tiny, large = rows[:2], rows[2:]
    for r in tiny:  # a power law extrapolated 400 times below the data passes chance
        assert r["eps_star"]["median"] >= r["chance_error"]
        assert r["above_chance"] is True and r["reaches_chance"] is True
    for r in large:
        assert r["eps_star"]["q95"] < r["chance_error"]
        assert r["above_chance"] is False and r["reaches_chance"] is False


def test_predict_cli_marks_and_explains_them(small_check_dir, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["predict", str(small_check_dir / "fit-combined"), "--train-size", "10,64000",
                 "1000000000", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    flagged = [line for line in lines if "ABOVE CHANCE" in line and " 10 " in line]
    assert len(flagged) == 2
    assert not any("ABOVE CHANCE" in line for line in lines if "64000" in line)
    assert any(line.startswith("ABOVE CHANCE: ") and "meaningless" in line for line in lines)
    # a factor beyond 1e4 is written short and never runs into the next column
    huge = [line for line in lines if "1000000000" in line]
    assert len(huge) == 2 and all(re.search(r"x3\.1e\+04  +\d", line) for line in huge)
    rows = json.loads(out.read_text())["predictions"]
    assert [r["above_chance"] for r in rows] == [True, True, False, False, False, False]
    assert all(isinstance(r["chance_error"], float) for r in rows)
