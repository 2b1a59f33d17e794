"""The command line's cheap parts, without a fit: size lists, output paths checked before any
work, one-line errors for unreadable fits and OS errors, the predict table's layout and
chance flags, and the check/fit identity rule the report applies."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from scalingfit import cli
from scalingfit.atomic import OutputPathError, atomic_path, check_output_dir, check_output_file
from scalingfit.checking.pipeline import check_matches
from scalingfit.checking.prediction import _chance_flags
from scalingfit.cli import main, parse_sizes
from scalingfit.errors import ScalingfitError
from scalingfit.report.text import check_table, fit_table, prediction_table


def one_error_line(capsys, *words):
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    return err


# ------------------------------------------------------------------ size lists
@pytest.mark.parametrize("values", [["4000", "8000"], ["4000,8000"], ["4000 8000"],
                                    ["4000, 8000"], ["4000,", "8000"], [" 4000\t8000 "]])
def test_sizes_take_commas_spaces_or_both(values):
    assert parse_sizes(values, "--holdout", integer=True) == [4000, 8000]


def test_a_quoted_space_is_a_separator_not_glue():
    assert parse_sizes(["4000 8000"], "--holdout", integer=True) != [40008000]
    assert parse_sizes("64000,128000", "--train-size") == [64000.0, 128000.0]
    assert parse_sizes(["6.4e4"], "--train-size") == [64000.0]


@pytest.mark.parametrize(("values", "bad"), [
    (["12k"], "'12k'"), (["4000x"], "'4000x'"), (["4000,8000x"], "'8000x'"),
    (["4000;8000"], "'4000;8000'"), (["-5"], "'-5'"), (["0"], "'0'"), (["nan"], "'nan'"),
    (["inf"], "'inf'"), (["4000.5"], "'4000.5'")])
def test_garbage_in_a_size_list_is_named(values, bad):
    with pytest.raises(ScalingfitError, match="--holdout") as err:
        parse_sizes(values, "--holdout", integer=True)
    assert bad in str(err.value) and "commas or spaces" in str(err.value)


def test_empty_size_list_is_an_error():
    with pytest.raises(ScalingfitError, match="at least one"):
        parse_sizes([","], "--train-size")


def test_both_flags_take_several_tokens_and_repeat():
    parser = cli.build_parser()
    args = parser.parse_args(["check", "fit", "--out", "c", "--holdout", "4000", "8000"])
    assert args.sources == ["fit"] and parse_sizes(args.holdout, "--holdout") == [4000, 8000]
    args = parser.parse_args(["check", "fit", "--holdout", "4000,8000", "--out", "c"])
    assert parse_sizes(args.holdout, "--holdout") == [4000, 8000]
    args = parser.parse_args(["predict", "fit", "--train-size", "64000,128000",
                              "--train-size", "5"])
    assert parse_sizes(args.train_size, "--train-size") == [64000, 128000, 5]


def test_holdout_garbage_stops_check_before_any_work(tmp_path, capsys):
    # the source does not even exist: the size list is judged first
    assert main(["check", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c"),
                 "--holdout", "4000 8000x"]) == 2
    one_error_line(capsys, "--holdout", "'8000x'")
    assert not (tmp_path / "c").exists()


def test_predict_size_garbage_is_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--train-size", "12k"]) == 2
    one_error_line(capsys, "--train-size", "'12k'")


# ------------------------------------------------------------------ output paths
@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


@pytest.mark.parametrize("argv", [
    ["fit", "--example", "--out", "{afile}/fit", "-q"],
    ["fit", "--example", "--out", "{afile}", "-q"],
    ["check", "--example", "--out", "{afile}/check", "-q"],
    ["ingest", "{tmp}/runs.csv", "--out", "{afile}/t.parquet", "-q"],
    ["report", "{tmp}/fit", "--out", "{afile}/r"],
    ["predict", "{tmp}/fit", "--train-size", "64000", "--json", "{afile}/p.json"],
    ["predict", "{tmp}/fit", "--train-size", "64000", "--json", "{tmp}"],
])
def test_bad_output_paths_stop_before_any_work(argv, afile, tmp_path, capsys):
    """Each would fit, read or predict first if the path were not checked: these return at
    once (the fit directory and the source do not even exist), naming the path."""
    argv = [a.format(afile=afile, tmp=tmp_path) for a in argv]
    out = next(a for a, flag in zip(argv[1:], argv) if flag in ("--out", "--json"))
    assert main(argv) == 2
    one_error_line(capsys, out, "Fix:")


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs /proc")
def test_an_unwritable_place_is_found_by_trying(capsys):
    assert main(["ingest", "nowhere.csv", "--out", "/proc/t.parquet"]) == 2
    one_error_line(capsys, "/proc/t.parquet")


def test_path_checks_create_nothing(tmp_path, afile):
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target and not (tmp_path / "a").exists()
    assert check_output_file(tmp_path / "x" / "p.json") and not (tmp_path / "x").exists()
    assert not list(tmp_path.glob(".scalingfit-probe*"))
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_dir(afile / "fit")
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_file(tmp_path)


def test_atomic_writes_name_the_path_when_a_file_is_in_the_way(afile):
    with pytest.raises(ScalingfitError, match=re.escape(str(afile / "sub"))):
        with atomic_path(afile / "sub" / "x.json") as tmp:
            tmp.write_text("{}")


def test_any_os_error_on_a_path_is_one_line(monkeypatch, tmp_path, capsys):
    def boom(args):
        raise NotADirectoryError(20, "Not a directory", str(tmp_path / "f" / "g"))

    summary, arguments, _ = cli.COMMANDS["predict"]
    monkeypatch.setitem(cli.COMMANDS, "predict", (summary, arguments, boom))
    assert main(["predict", "x", "--train-size", "1"]) == 2
    one_error_line(capsys, str(tmp_path / "f" / "g"), "Not a directory")


# ------------------------------------------------------------------ unreadable fits
@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_a_damaged_posterior_is_one_line(tmp_path, capsys, damage):
    good = tmp_path / "good.nc"
    xr.Dataset({"gamma1": (("chain", "draw"), np.ones((2, 50)))}).to_netcdf(good,
                                                                           group="posterior")
    broken = tmp_path / "fit"
    broken.mkdir()
    data = good.read_bytes()
    (broken / "posterior.nc").write_bytes({"truncated": data[:len(data) // 3],
                                           "garbage": b"\x00junk" * 100,
                                           "foreign": data}[damage])
    assert main(["predict", str(broken), "--train-size", "1000"]) == 2
    one_error_line(capsys, str(broken / "posterior.nc"), "Fix:")
    assert main(["report", str(broken), "--out", str(tmp_path / "r")]) == 2
    one_error_line(capsys, str(broken / "posterior.nc"))


def test_missing_fit_combined_after_no_loo_points_to_the_fix(tmp_path, capsys):
    (tmp_path / "check.json").write_text(json.dumps({"groups": []}))
    assert main(["predict", str(tmp_path / "fit-combined"), "--train-size", "1000"]) == 2
    one_error_line(capsys, "--no-loo", "--tie-convergence")


# ------------------------------------------------------------------ the predict table
def s(median, low, high):
    return {"mean": median, "median": median, "sd": (high - low) / 3.3, "q05": low, "q95": high}


def row(size, factor, eps, chance=0.9, region="extrapolation"):
    return {"architecture": "resnet18", "dataset": "cifar10", "name": "resnet18 / cifar10",
            "train_size": size,
            "region": region, "factor": factor, "law": "fitted convergence exponent gamma_conv",
            "eps_star": eps, "eps_star_run": eps, "log_lam_star": s(3.0, 2.0, 4.0),
            **_chance_flags(eps, chance)}


def test_chance_flags():
    assert _chance_flags(s(1.445, 1.267, 1.644), 0.9) == {
        "chance_error": 0.9, "above_chance": True, "reaches_chance": True}
    assert _chance_flags(s(0.8, 0.7, 0.95), 0.9)["above_chance"] is False
    assert _chance_flags(s(0.8, 0.7, 0.95), 0.9)["reaches_chance"] is True
    assert _chance_flags(s(0.1, 0.09, 0.11), 0.9) == {
        "chance_error": 0.9, "above_chance": False, "reaches_chance": False}


def test_predict_table_columns_never_run_together():
    rows = [row(100, 40.0, s(1.445, 1.267, 1.644)),
            row(1_000_000_000, 31_250.0, s(0.000259, 0.0001922, 0.0003493)),
            row(10_000, 1.0, s(0.8, 0.7, 0.95), region="interpolation")]
    text = prediction_table(rows)
    lines = text.splitlines()
    body = lines[2:5]
    assert "extrapolation x3.1e+04" in body[1]
    assert "x3.12e+040.000259" not in text and not re.search(r"e[+-]\d\d\d?\d", text)
    # seven cells on every line, at least two spaces apart, and the right-aligned ones
    # (P and the three intervals) end where their header ends
    def ends(line):
        cells = list(re.finditer(r"\S+(?: \S+)*", line))
        assert len(cells) == 7, line
        return [cells[i].end() for i in (1, 3, 4, 5)]

    assert all(ends(line) == ends(lines[0]) for line in body)
    assert "ABOVE CHANCE" in body[0] and "ABOVE CHANCE" not in body[1]
    assert "reaches it" in body[2]
    assert any(line.startswith("ABOVE CHANCE: ") and "meaningless" in line for line in lines)


def test_predict_table_without_flags_has_no_chance_note():
    text = prediction_table([row(64_000, 2.0, s(0.05, 0.04, 0.06))])
    assert "ABOVE CHANCE" not in text and "reaches it" not in text


# ------------------------------------------------------------------ check ↔ fit identity
def fake_fit(sha="aaaa", norm="spectral_complexity", groups=("cnn", "mlp")):
    return SimpleNamespace(
        meta={"table_sha256_16": sha},
        settings={"norm": norm, "group_by": ["architecture", "dataset"], "at_end": "bound",
                  "n_test": None},
        groups=[{"architecture": g, "dataset": "d"} for g in groups])


def check_content(sha="aaaa", tables=None, norm="spectral_complexity", groups=("cnn", "mlp")):
    settings = {"fit": {"norm": norm, "group_by": ["architecture", "dataset"],
                        "at_end": "bound", "n_test": None, "seed": 0}, "tolerance": 0.1}
    content = {"groups": [{"architecture": g, "dataset": "d", "name": f"{g} / d"}
                          for g in groups], "settings": settings}
    if sha is not None:
        settings["table_sha256_16"] = content["table_sha256_16"] = sha
        settings["fit_tables"] = tables or {"free": sha, "combined": sha, "heldout": "hhhh"}
    return content


def test_a_check_of_the_same_table_and_settings_is_accepted():
    check_matches(fake_fit(), check_content())
    check_matches(fake_fit(sha="cccc"), check_content(tables={"free": "aaaa",
                                                              "combined": "cccc"}))


@pytest.mark.parametrize(("fit", "content", "words"), [
    (fake_fit(sha="bbbb"), check_content(), "another table"),
    (fake_fit(sha="hhhh"), check_content(), "held-out refit"),
    (fake_fit(norm="l2"), check_content(), "norm="),
    (fake_fit(), check_content(sha=None), "no table_sha256_16"),
])
def test_a_check_of_other_data_is_refused(fit, content, words):
    with pytest.raises(ScalingfitError, match=words) as err:
        check_matches(fit, content, where="--check c")
    assert str(err.value).startswith("--check c") and "Fix:" in str(err.value)
    assert "\n" not in str(err.value)


def test_pareto_k_counts_are_per_model():
    loo = {"unit": "one size", "elpd_diff": 2.9, "se_diff": 0.9, "favours": "combined",
           "groups": {}, "combined": {"n_pareto_k_above_0.7": 4, "n_levels": 24},
           "free": {"n_pareto_k_above_0.7": 3, "n_levels": 24}}
    text = check_table({"groups": [], "loo": loo, "settings": {"tolerance": 0.1}})
    assert ("4 of the 24 left-out sizes in the combined model; 3 of the 24 left-out sizes "
            "in the free model") in text
    assert "7 left-out sizes" not in text


def test_refit_loo_is_a_check_option_only():
    parser = cli.build_parser()
    assert parser.parse_args(["check", "runs.csv", "--out", "o", "--refit-loo"]).refit_loo
    assert not parser.parse_args(["check", "runs.csv", "--out", "o"]).refit_loo
    with pytest.raises(SystemExit):
        parser.parse_args(["fit", "runs.csv", "--out", "o", "--refit-loo"])


def test_the_check_table_says_which_loo_terms_were_refitted():
    loo = {"unit": "u", "elpd_diff": 1.0, "se_diff": 0.5, "favours": "neither", "groups": {},
           "combined": {"n_pareto_k_above_0.7": 2, "n_levels": 12, "refitted": ["a", "b"]},
           "free": {"n_pareto_k_above_0.7": 1, "n_levels": 12, "refitted": []}}
    text = check_table({"groups": [], "loo": loo, "settings": {"tolerance": 0.1}})
    assert "refitted exactly (Pareto k > 0.7): 2 left-out sizes in the combined model" in text
    assert "1 of the 12 left-out sizes in the free model" in text  # still unreliable
    assert "0 of the 12 left-out sizes in the combined model" in text


@pytest.mark.parametrize("passed", [True, False])
def test_verdicts_of_an_unconverged_free_fit_are_marked(passed):
    delta = {"median": 0.01, "q05": -0.02, "q95": 0.04}
    content = {"groups": [{"architecture": "cnn", "dataset": "mnist", "name": "cnn / mnist",
                           "delta": delta, "verdict": "consistent", "heldout": []}],
               "settings": {"tolerance": 0.1, "diagnostics": {"free": {
                   "passed": passed, "rhat_max": 1.002 if passed else 1.3, "ess_bulk_min": 900,
                   "ess_tail_min": 800, "divergences": 0}}}}
    text = check_table(content)
    assert ("consistent (unconverged)" in text) is (not passed)
    assert ("do not rely on them" in text) is (not passed)


# ------------------------------------------------------------------ the check and fit tables
def test_the_verdict_table_shows_delta_its_parts_and_p_within_aligned():
    groups = [{"name": "cnn / mnist", "delta": s(0.012, -0.02, 0.044),
               "delta_envelope": s(-0.031, -0.06, 0.001), "delta_shape": s(0.043, 0.01, 0.08),
               "p_within_tolerance": 0.97, "verdict": "consistent", "heldout": []},
              {"name": "a much longer group name / cifar100", "delta": s(0.31, 0.2, 0.42),
               "delta_envelope": s(0.3, 0.21, 0.39), "delta_shape": s(0.01, -0.03, 0.05),
               "p_within_tolerance": 0.0, "verdict": "inconsistent", "heldout": []}]
    text = check_table({"groups": groups, "settings": {"tolerance": 0.1}})
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("group"))
    table = lines[header:header + 4]
    assert ["delta_envelope", "delta_shape", "P(|delta|<0.1)"] == [
        w for w in table[0].split() if w in ("delta_envelope", "delta_shape", "P(|delta|<0.1)")]
    assert "+0.012 [-0.020, +0.044]" in table[2] and "-0.031 [-0.060, +0.001]" in table[2]
    assert "0.97" in table[2] and "0.00" in table[3]

    # the right-aligned cells (the three intervals and the probability) end where their
    # header ends, on every row, and the verdicts start where theirs starts
    def ends(line):
        cells = list(re.finditer(r"\S+(?: \S+)*", line))
        return [c.end() for c in cells[-5:-1]], cells[-1].start()

    assert ends(table[2]) == ends(table[3]) == ends(table[0])


def test_an_old_check_without_the_parts_prints_n_a():
    content = {"groups": [{"name": "cnn / mnist", "delta": s(0.01, -0.02, 0.04),
                           "verdict": "consistent", "heldout": []}],
               "settings": {"tolerance": 0.1}}
    assert check_table(content).count("n/a") == 3


def test_the_fit_table_prints_a_line_per_group_on_its_runs():
    group = {"name": "cnn / mnist", "n_runs": 18, "n_censored": 1,
             "params": {p: s(0.5, 0.4, 0.6) for p in ("gamma1", "gamma2", "gamma_pred",
                                                       "gamma_conv")},
             "shapes": {"plateau_only": 0, "two_minima": 0, "no_optimum": 1, "optimum": 17},
             "point_coverage": 0.931, "n_runs_misfit": 0, "envelope_support": 0.7}
    odd = {**group, "name": "vit / cifar100", "n_censored": 0, "n_runs_misfit": 2,
           "shapes": {"plateau_only": 2, "two_minima": 1, "no_optimum": 0, "optimum": 17}}
    runs = [{"group": "vit / cifar100", "starts_below_chance": True},
            {"group": "vit / cifar100", "starts_below_chance": None}]
    text = fit_table({"norm": "l2", "groups": [group, odd], "runs": runs, "settings": {}})
    assert ("cnn / mnist: 18 runs, 17 with an optimum, 1 still improving; 93 % of points in "
            "their 90 % interval; envelope support 0.70") in text.splitlines()
    line = text.splitlines()[-1]
    assert line.startswith("vit / cifar100: 18 runs, 18 with an optimum, 0 still improving")
    assert "1 dips twice, 1 starts below chance, 2 never left the chance plateau" in line
    assert "(2 runs flagged misfit)" in line
