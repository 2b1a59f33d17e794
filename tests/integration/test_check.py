"""`scalingfit check` and `scalingfit predict` on a small real fit (two groups of the example).

The fits come from the session fixture ``small_check_dir`` (conftest.py). The statistical
claims (verdicts over many simulated datasets, held-out coverage) are measured by
``benchmarks/check_suite.py``, not here.
"""

import json
import math
import warnings

import numpy as np
import pytest

from scalingfit.checking.comparison import level_labels, level_log_likelihood
from scalingfit.checking.heldout import default_holdout, heldout_predictions, observed_optima
from scalingfit.checking.prediction import predict, predictive_draws
from scalingfit.cli import main
from scalingfit.errors import DataError, ScalingfitWarning
from scalingfit.fitting.result import FitResult
from tests.support.small_check import SMALL, small_table

pytestmark = pytest.mark.slow
S_KEYS = {"mean", "median", "sd", "q05", "q95"}


@pytest.fixture(scope="module")
def content(small_check_dir):
    return json.loads((small_check_dir / "check.json").read_text())


@pytest.fixture(scope="module")
def fits(small_check_dir):
    return {name: FitResult.load(small_check_dir / f"fit-{name}")
            for name in ("free", "combined", "heldout")}


def is_summary(s):
    return (set(s) >= S_KEYS and all(isinstance(s[k], float) for k in S_KEYS)
            and s["q05"] <= s["median"] <= s["q95"] and s["sd"] >= 0)


def test_check_json_has_the_contracted_layout(content):
    assert len(content["groups"]) == 2
    for g in content["groups"]:
        assert isinstance(g["architecture"], str) and isinstance(g["dataset"], str)
        assert is_summary(g["delta"])
        assert g["verdict"] in ("consistent", "inconsistent", "inconclusive")
        assert len(g["heldout"]) == 1
        for h in g["heldout"]:
            assert isinstance(h["train_size"], int)
            assert isinstance(h["observed_eps_star"], float) and h["observed_eps_star"] > 0
            assert is_summary(h["pred_eps_star"])
            inside = h["pred_eps_star"]["q05"] <= h["observed_eps_star"] <= h[
                "pred_eps_star"]["q95"]
            assert h["covered"] == inside


def test_verdict_matches_delta_of_the_free_fit(content, fits):
    delta = fits["free"].draws("gamma_conv") - fits["free"].draws("gamma_pred")
    for g, group in enumerate(content["groups"]):
        assert group["delta"]["median"] == pytest.approx(float(np.median(delta[:, g])))
        low, high = group["delta"]["q05"], group["delta"]["q95"]
        tolerance = content["settings"]["tolerance"]
        expected = ("inconsistent" if low > 0 or high < 0 else
                    "consistent" if -tolerance <= low and high <= tolerance else "inconclusive")
        assert group["verdict"] == expected
    # the example holds the combined law by construction
    assert [g["verdict"] for g in content["groups"]] == ["consistent", "consistent"]


def test_heldout_is_the_largest_size_and_refit_never_saw_it(content, fits):
    for g, group in enumerate(content["groups"]):
        sizes = fits["free"].idata.constant_data["train_size"].to_numpy()[
            fits["free"].idata.constant_data["group_index"].to_numpy() == g]
        assert group["heldout"][0]["train_size"] == int(sizes.max()) == 32000
    assert 32000 not in set(fits["heldout"].idata.constant_data["train_size"].to_numpy())
    assert fits["heldout"].settings["tie_convergence"] is True
    assert fits["combined"].settings["tie_convergence"] is True


def test_observed_eps_star_is_the_geometric_mean_of_the_runs_optima(content, fits):
    optima = observed_optima(fits["free"])
    c = fits["free"].idata.constant_data
    for g, group in enumerate(content["groups"]):
        h = group["heldout"][0]
        mine = optima[(optima["group_index"] == g) & (optima["train_size"] == h["train_size"])]
        assert len(mine) == h["n_runs"] == 3
        runs = np.flatnonzero((c["group_index"].to_numpy() == g)
                              & (c["train_size"].to_numpy() == h["train_size"]))
        y_star = c["z"].to_numpy()[runs, 2]
        assert not c["censored"].to_numpy()[runs].any()
        assert h["observed_eps_star"] == pytest.approx(math.exp(y_star.mean()))


def test_heldout_interval_is_wider_than_the_laws_own(fits):
    """The predictive interval adds the new P's deviation, seed scatter and measurement."""
    holdout = default_holdout(fits["free"])
    entries = heldout_predictions(fits["heldout"], fits["free"], holdout, seed=3)
    for g, (entry,) in enumerate(entries):
        line = np.exp(predictive_draws(fits["heldout"], entry["train_size"])["log_eps_star"][:, g])
        width = entry["pred_eps_star"]["q95"] - entry["pred_eps_star"]["q05"]
        assert width > np.quantile(line, 0.95) - np.quantile(line, 0.05)
        assert entry["extrapolation_factor"] == pytest.approx(32000 / 24000)


def test_loo_compares_levels(content, fits):
    loo = content["loo"]
    assert loo["free"]["n_levels"] == loo["combined"]["n_levels"] == 12   # 2 groups x 6 P
    assert loo["elpd_diff"] == pytest.approx(loo["combined"]["elpd_loo"] - loo["free"]["elpd_loo"])
    assert loo["se_diff"] > 0
    assert sum(g["n_levels"] for g in loo["groups"].values()) == 12
    ll = level_log_likelihood(fits["free"])
    assert ll.shape == (SMALL["chains"], SMALL["draws"], 12)
    assert np.isfinite(ll.to_numpy()).all()
    assert level_labels(fits["free"])[0] == "cnn / mnist / P=4000"


def test_exact_refits_replace_the_unreliable_loo_terms(fits):
    from scalingfit.checking.comparison import compare, exact_level_elpd, loo

    free, combined = fits["free"], fits["combined"]
    psis = {name: loo(fits[name])[0] for name in ("free", "combined")}
    # where PSIS is reliable, the exact refit without that size must agree with it
    good = int(np.argmin(psis["free"].pareto_k.to_numpy()))
    exact = exact_level_elpd(free, good)
    assert exact == pytest.approx(float(psis["free"].loo_i[good]), abs=0.3)

    # refit the level of largest k (whichever model holds it): it alone changes
    k = {name: e.pareto_k.to_numpy() for name, e in psis.items()}
    worst = max(k, key=lambda name: k[name].max())
    level = int(np.argmax(k[worst]))
    limit = k[worst][level] - 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        plain, refitted = compare(combined, free), compare(combined, free, refit=True,
                                                           k_limit=limit)
    assert refitted[worst]["refitted"] == [level_labels(free)[level]]
    other = "free" if worst == "combined" else "combined"
    assert refitted[other]["refitted"] == []
    assert refitted[other]["elpd_loo"] == pytest.approx(plain[other]["elpd_loo"])
    # that level's term changed (to its exact value, checked against PSIS above) ...
    change = refitted[worst]["elpd_loo"] - plain[worst]["elpd_loo"]
    assert change != 0
    # ... and the difference between the models moved by that change, in its direction
    sign = 1 if worst == "combined" else -1
    assert refitted["elpd_diff"] - plain["elpd_diff"] == pytest.approx(sign * change)


def test_paper_recipe_is_beside_each_group(content):
    for g in content["groups"]:
        recipe = g["paper_recipe"]
        assert recipe["architecture"] == g["architecture"]
        assert {"gamma1", "gamma2", "gamma_pred", "gamma_conv", "delta"} <= set(recipe)


def test_holdout_must_leave_two_sizes(fits):
    from scalingfit.checking.pipeline import _without

    table = fits["free"].fitted_table
    sizes = sorted(table["train_size"].unique())
    with pytest.raises(DataError, match="leaves 1 training-set size"):
        _without(table, fits["free"], {0: sizes[1:]})


def test_predict_labels_interpolation_and_extrapolation(fits):
    rows = predict(fits["combined"], [10_000, 64_000, 1_000])
    assert [r["region"] for r in rows] == ["interpolation"] * 2 + ["extrapolation"] * 4
    assert [r["factor"] for r in rows[2:4]] == [pytest.approx(2.0)] * 2
    assert [r["factor"] for r in rows[4:]] == [pytest.approx(4.0)] * 2
    for r in rows:
        assert r["law"].startswith("combined")
        assert is_summary(r["eps_star"]) and is_summary(r["eps_star_run"])
        law, run = r["eps_star"], r["eps_star_run"]
        assert run["q95"] - run["q05"] > law["q95"] - law["q05"]
    # ε* falls and λ* grows with P, in both groups
    eps = {(r["architecture"], r["train_size"]): r["eps_star"]["median"] for r in rows}
    lam = {(r["architecture"], r["train_size"]): r["log_lam_star"]["median"] for r in rows}
    for arch in ("cnn", "mlp"):
        assert eps[(arch, 1_000)] > eps[(arch, 10_000)] > eps[(arch, 64_000)]
        assert lam[(arch, 1_000)] < lam[(arch, 10_000)] < lam[(arch, 64_000)]
    # the MLP's norm is near 1e130: its log is kept, never exponentiated
    assert 290 < lam[("mlp", 64_000)] / 1.0 < 310


def test_predict_cli(small_check_dir, capsys, tmp_path):
    out = tmp_path / "pred.json"
    code = main(["predict", str(small_check_dir / "fit-combined"), "--train-size", "64000",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "extrapolation x2" in text and "cnn / mnist" in text and "e+13" in text
    assert len(json.loads(out.read_text())["predictions"]) == 2


def test_check_cli_on_a_fit_directory(small_check_dir, tmp_path, capsys):
    """FIT_DIR in, a refit without P=24000 only (--holdout), no LOO: one fit."""
    out = tmp_path / "check"
    args = ["check", str(small_check_dir / "fit-free"), "--out", str(out), "--holdout",
            "24000", "--no-loo", "-q", "--tune", str(SMALL["tune"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        assert main(args) == 0
    text = capsys.readouterr().out
    assert "verdict" in text and "held out" in text and "paper recipe" in text
    content = json.loads((out / "check.json").read_text())
    assert [h["train_size"] for g in content["groups"] for h in g["heldout"]] == [24000] * 2
    assert content["loo"] is None
    assert sorted(p.name for p in out.iterdir()) == ["check.json", "fit-free", "fit-heldout"]
    # no fit-combined/ after --no-loo: the output says so, and predict points to the fix
    assert "no fit-combined/" in text and "--tie-convergence" in text
    assert main(["predict", str(out / "fit-combined"), "--train-size", "64000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-loo" in err and "--tie-convergence" in err
    # the refit reused the fit directory's settings
    refit = FitResult.load(out / "fit-heldout")
    assert refit.idata.posterior.sizes["draw"] == SMALL["draws"]
    assert refit.settings["seed"] == SMALL["seed"]


def test_check_cli_errors_are_one_line(small_check_dir, tmp_path, capsys):
    assert main(["check", str(small_check_dir / "fit-free"), "--out", str(tmp_path),
                 "--holdout", "12k"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--holdout" in err
    for holdout in (["4000 8000x"], ["4000", "80x00"], ["4000,8000;"]):
        assert main(["check", str(small_check_dir / "fit-free"), "--out", str(tmp_path),
                     "--holdout", *holdout]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--holdout" in err and "commas or spaces" in err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["check", str(small_check_dir / "fit-free"), "--out", str(afile / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(afile / "c") in err
    truncated = tmp_path / "truncated"  # a posterior.nc cut short (a full disk, a copy)
    truncated.mkdir()
    data = (small_check_dir / "fit-free" / "posterior.nc").read_bytes()
    (truncated / "posterior.nc").write_bytes(data[:len(data) // 2])
    for command in (["predict", str(truncated), "--train-size", "1000"],
                    ["check", str(truncated), "--out", str(tmp_path / "y")],
                    ["report", str(truncated), "--out", str(tmp_path / "z")]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(truncated / "posterior.nc") in err, err
    bare = tmp_path / "bare"  # a fit directory from before fits kept their table
    bare.mkdir()
    FitResult.load(small_check_dir / "fit-free").idata.to_netcdf(str(bare / "posterior.nc"))
    assert main(["check", str(bare), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "table.parquet" in err
    assert main(["predict", str(tmp_path / "nowhere"), "--train-size", "10"]) == 2
    assert "not a fit directory" in capsys.readouterr().err


def test_saved_fit_keeps_its_table(small_check_dir):
    """The saved fit keeps the table it fitted, so check can refit from a FIT_DIR."""
    free = FitResult.load(small_check_dir / "fit-free")
    table = small_table()
    assert len(free.fitted_table) == len(table)
    assert set(free.fitted_table["run_id"]) == set(table["run_id"])


def test_check_json_identifies_the_table_it_checked(content, small_check_dir):
    summary = json.loads((small_check_dir / "fit-free" / "summary.json").read_text())
    assert content["table_sha256_16"] == summary["table_sha256_16"]
    assert content["settings"]["table_sha256_16"] == summary["table_sha256_16"]
    tables = content["settings"]["fit_tables"]
    assert tables["free"] == tables["combined"] == summary["table_sha256_16"]
    assert tables["heldout"] != summary["table_sha256_16"]  # fitted without P=32000
    assert {"norm", "group_by", "at_end", "n_test"} <= set(content["settings"]["fit"])


def test_check_strict_exits_3_when_a_fit_fails_diagnostics(small_check_dir, tmp_path, capsys):
    """15 draws cannot pass the ESS limit: --strict turns the warning into exit status 3,
    after writing everything (test_check_cli_on_a_fit_directory: exit 0 without it)."""
    out = tmp_path / "check"
    args = ["check", str(small_check_dir / "fit-free"), "--out", str(out), "--no-loo", "-q",
            "--draws", "15", "--tune", "15", "--holdout", "24000"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        assert main([*args, "--strict"]) == 3
    captured = capsys.readouterr()
    assert "failed their convergence diagnostics" in captured.out
    assert "--strict" in captured.err and "heldout" in captured.err
    assert (out / "check.json").exists() and (out / "fit-heldout" / "posterior.nc").exists()
    assert not FitResult.load(out / "fit-heldout").converged


def test_fit_table_states_its_interval_and_the_combined_law(fits):
    free, combined = fits["free"].table(), fits["combined"].table()
    assert "90 % interval" in free.splitlines()[0] and "combined-law" not in free
    assert "90 % interval" in combined.splitlines()[0]
    assert "combined-law model" in combined and "gamma1*gamma2" in combined
