"""Groups other than architecture × dataset: two optimisers of one CNN, fitted, checked and
reported with ``--group-by optimizer``. Every output must name the groups by their
``group_by`` values and keep each group's numbers with its name."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from scalingfit.cli import main
from scalingfit.fitting.simulation import SimGroup, simulate

# One architecture and dataset; the optimisers differ in their exponents, so a group whose
# numbers were swapped with the other's would show it.
OPTIMISERS = {
    "adam": SimGroup("cnn", "mnist", gamma1=1.6, gamma2=0.45, log_k2=-1.0, eps_star_ref=0.03),
    "sgd": SimGroup("cnn", "mnist", gamma1=0.7, gamma2=0.9, log_k2=-1.0, eps_star_ref=0.05),
}
SAMPLING = ["--draws", "200", "--tune", "300", "--chains", "2", "--seed", "1", "-q"]
# small draws fail the strict default diagnostics; these tests are about names, not intervals
pytestmark = pytest.mark.filterwarnings("ignore::scalingfit.errors.ScalingfitWarning")


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    parts = []
    for k, (optimizer, group) in enumerate(OPTIMISERS.items()):
        table = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=3,
                         n_steps=25, seed=10 + k)
        parts.append(table.assign(optimizer=optimizer,
                                  run_id=optimizer + "-" + table["run_id"]))
    path = tmp_path_factory.mktemp("group-by") / "runs.csv"
    pd.concat(parts).to_csv(path, index=False)
    return path


def test_fit_check_and_report_name_groups_by_their_group_by_values(runs_csv, tmp_path,
                                                                    capsys):
    fit_dir, check_dir, report_dir = tmp_path / "fit", tmp_path / "check", tmp_path / "report"

    assert main(["fit", str(runs_csv), "--group-by", "optimizer", "--out", str(fit_dir),
                 *SAMPLING]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line for line in printed.splitlines()
            if line.split() and line.split()[0] in OPTIMISERS}
    assert set(rows) == set(OPTIMISERS) and "cnn / mnist" not in printed

    summary = json.loads((fit_dir / "summary.json").read_text())
    assert [g["optimizer"] for g in summary["groups"]] == ["adam", "sgd"]
    assert [g["name"] for g in summary["groups"]] == ["adam", "sgd"]
    assert all(g["architecture"] == "cnn" and g["dataset"] == "mnist"
               for g in summary["groups"])  # docs/design.md §4 keys stay
    gamma1 = {g["optimizer"]: g["params"]["gamma1"]["median"] for g in summary["groups"]}
    assert gamma1["adam"] > 1.2 > gamma1["sgd"], gamma1  # each group has its own numbers

    assert main(["check", str(fit_dir), "--no-loo", "--out", str(check_dir), *SAMPLING]) == 0
    printed = capsys.readouterr().out
    content = json.loads((check_dir / "check.json").read_text())
    assert [g["optimizer"] for g in content["groups"]] == ["adam", "sgd"]
    for entry, fitted in zip(content["groups"], summary["groups"], strict=True):
        # the verdict and the held-out size are the group's own
        assert entry["gamma_pred"]["median"] == pytest.approx(
            fitted["params"]["gamma_pred"]["median"])
        assert [h["train_size"] for h in entry["heldout"]] == [32000]
        assert entry["paper_recipe"]["optimizer"] == entry["optimizer"]
    assert sum(line.startswith(("adam ", "sgd ")) for line in printed.splitlines()) >= 4

    assert main(["report", str(fit_dir), "--check", str(check_dir), "--out",
                 str(report_dir)]) == 0
    page = (report_dir / "report.md").read_text()
    assert "| adam |" in page and "| sgd |" in page and "cnn / mnist" not in page
