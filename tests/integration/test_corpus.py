"""The corpus of real learning curves (reference_runs/corpus.py) and what it is built on:
evaluation every k epochs, the MLP, the teacher–student data set, label noise; the
committed tables load, have the documented shapes, and match the census in the README."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import scalingfit as sf  # noqa: E402
from reference_runs import corpus, data  # noqa: E402
from reference_runs.__main__ import main  # noqa: E402
from reference_runs.train import resolve_config, train  # noqa: E402
from scalingfit.errors import DataError, ScalingfitError  # noqa: E402

torch.set_num_threads(1)
CORPUS = Path(corpus.__file__).parent / "data" / "corpus"
TRAINED = [name for name in corpus.SETS]
DERIVED = [name for name in corpus.DERIVED]
QUIET = {"device": "cpu", "checkpoint_every_s": 0}


def tiny(tmp_path, **kw):
    return resolve_config(overrides={"arch": "mlp", "dataset": "digits", "train_size": 32,
                                     "seeds": [0], "epochs": 6, "batch_size": 16, **QUIET,
                                     "out": str(tmp_path / "run.csv"), **kw})


# ----------------------------------------------------------- training additions

@pytest.mark.parametrize(("epochs", "every", "steps"), [(6, 2, [0, 2, 4, 6]),
                                                        (7, 3, [0, 3, 6, 7]),
                                                        (3, 1, [0, 1, 2, 3])])
def test_eval_every_evaluates_every_k_epochs_and_the_last(tmp_path, epochs, every, steps):
    table = train(tiny(tmp_path, epochs=epochs, eval_every=every), log=lambda line: None)
    assert table["step"].tolist() == steps


def test_eval_every_is_a_flag_and_is_checked(tmp_path):
    out = tmp_path / "run.csv"
    assert main(["train", "--arch", "mlp", "--train-size", "32", "--seed", "1", "--epochs",
                 "4", "--eval-every", "2", "--batch-size", "8", "--lr", "1e-2", "--device",
                 "cpu", "--out", str(out), "--model.hidden=[16]"]) == 0
    table = pd.read_csv(out)
    assert table["step"].tolist() == [0, 2, 4]
    assert (table["architecture"] == "mlp").all() and table["test_error"].iloc[-1] < 0.9
    with pytest.raises(ScalingfitError, match="eval_every = -1"):
        tiny(tmp_path, eval_every=-1)


def test_the_mlp_stacks_like_the_other_architectures(tmp_path):
    stacked = train(tiny(tmp_path / "s", seeds=[0, 1], epochs=3), log=lambda line: None)
    for seed in (0, 1):
        alone = train(tiny(tmp_path / f"a{seed}", seeds=[seed], epochs=3),
                      log=lambda line: None)
        mine = stacked[stacked["seed"] == seed]
        np.testing.assert_allclose(mine["train_loss"], alone["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(mine["lognorm_spectral_complexity"],
                                   alone["lognorm_spectral_complexity"], atol=1e-4)


def test_the_mlp_takes_the_papers_norm_convention(tmp_path):
    table = train(tiny(tmp_path, epochs=1, norm_convention="paper"), log=lambda line: None)
    assert table.filter(like="lognorm_").notna().all().all()


def test_the_teacher_is_the_same_everywhere_balanced_and_clean_on_test():
    clean = data.load("teacher", options={"n_train": 500, "n_test": 2000})
    again = data.load("teacher", options={"n_train": 500, "n_test": 2000})
    np.testing.assert_array_equal(clean.train_x, again.train_x)
    np.testing.assert_array_equal(clean.train_y, again.train_y)
    assert clean.shape == (1, 8, 8) and clean.train_x.dtype == np.float32
    counts = np.bincount(clean.test_y, minlength=10)
    assert counts.min() > 0.8 * 200 and counts.max() < 1.2 * 200  # chance error 0.9
    other = data.load("teacher", options={"n_train": 500, "n_test": 2000, "seed": 1})
    assert not np.array_equal(clean.train_y, other.train_y)
    noisy = data.load("teacher", options={"n_train": 500, "n_test": 2000,
                                          "label_noise": 0.2})
    np.testing.assert_array_equal(noisy.test_y, clean.test_y)  # the test set stays clean
    flipped = noisy.train_y != clean.train_y
    assert flipped.sum() == 100  # exactly 20 %, and a flipped label is never the same


def test_label_noise_works_on_digits_apart_from_the_runs_own_draws():
    clean, noisy = data.load("digits"), data.load("digits", options={"label_noise": 0.1})
    np.testing.assert_array_equal(noisy.test_y, clean.test_y)
    assert (noisy.train_y != clean.train_y).sum() == round(0.1 * 1297)
    # The flips have a random stream of their own: the run of seed 0 draws its P examples
    # with default_rng(0) too, and must not get a subset of flipped labels only.
    for seed in (0, 1):
        subset = data.draw_train_subset(1297, 200, seed)
        assert 0.03 < (noisy.train_y[subset] != clean.train_y[subset]).mean() < 0.2


@pytest.mark.parametrize(("name", "options", "message"), [
    ("teacher", {"depth": 2}, "unknown setting"),
    ("teacher", {"label_noise": 1.5}, "label_noise = 1.5"),
    ("teacher", {"classes": 1}, "classes = 1"),
    ("digits", {"side": 4}, "unknown setting"),
])
def test_bad_data_options_are_refused_before_training(tmp_path, name, options, message):
    with pytest.raises(DataError, match=message):
        data.load(name, options=options)
    with pytest.raises(DataError, match=message):
        resolve_config(overrides={"dataset": name, "data": options,
                                  "out": str(tmp_path / "x.csv")})


# ------------------------------------------------------------------ derivations

def toy(sizes=(10, 20), seeds=(0, 1, 2), steps=11):
    rows = []
    for P in sizes:
        for s in seeds:
            for t in range(steps):
                rows.append({"run_id": f"r{P}s{s}", "architecture": "a", "dataset": "d",
                             "train_size": P, "seed": s, "step": t, "n_test": 100,
                             "test_error": 0.9 / (1 + t) + 0.01 * s,
                             corpus.NORM: 0.1 * t + 0.01 * s,
                             "lognorm_frobenius": 2.0 + 0.05 * t})
    return pd.DataFrame(rows)


def test_wide_norm_is_one_increasing_affine_map_in_log_space():
    table = toy()
    wide = corpus.wide_norm(table, low=7.0, decades=50.0)
    x = wide[corpus.NORM] / math.log(10)
    assert x.min() == pytest.approx(7.0) and x.max() == pytest.approx(57.0)
    k = wide["norm_power"].iloc[0]
    for column in (corpus.NORM, "lognorm_frobenius"):
        d_in, d_out = np.diff(table[column]), np.diff(wide[column])
        np.testing.assert_allclose(d_out, k * d_in, atol=1e-9)
    np.testing.assert_array_equal(wide["test_error"], table["test_error"])
    assert wide["run_id"].str.endswith("-wide").all()


def test_below_chance_start_drops_only_the_early_points_of_large_runs():
    table = toy()
    late = corpus.below_chance_start(table, min_size=20, start_error=0.2)
    small = late[late["train_size"] == 10]
    assert len(small) == len(table[table["train_size"] == 10])
    for _, run in late[late["train_size"] == 20].groupby("run_id"):
        assert run["test_error"].iloc[0] <= 0.2 < run["test_error"].iloc[0] * 1.5
        assert run["step"].iloc[0] > 0


def test_seed_averaged_is_the_mean_over_seeds_on_a_common_grid():
    table = toy()
    mean = corpus.seed_averaged(table, points=30)
    assert "seed" not in mean and "n_test" not in mean
    assert mean["run_id"].nunique() == 2 and (mean["n_seeds"] == 3).all()
    grid = np.sort(mean[corpus.NORM].unique())
    assert np.allclose(np.diff(grid), np.diff(grid)[0])  # one evenly spaced grid
    row = mean[mean["train_size"] == 10].iloc[5]
    # Each seed s is error(x) = 0.9 / (1 + 10 (x - 0.01 s)) + 0.01 s between its points.
    expected = np.mean([np.interp(row[corpus.NORM], 0.1 * np.arange(11) + 0.01 * s,
                                  0.9 / (1 + np.arange(11)) + 0.01 * s) for s in range(3)])
    assert row["test_error"] == pytest.approx(expected)
    sf.validate(mean)


def test_seed_averaged_leaves_out_a_size_whose_seeds_share_no_norms():
    table = toy()
    apart = table["train_size"] == 20
    table.loc[apart, corpus.NORM] += 5.0 * table.loc[apart, "seed"]  # disjoint ranges
    with pytest.warns(UserWarning, match="a/d P=20 share less than two grid points"):
        mean = corpus.seed_averaged(table, points=60)
    assert mean["train_size"].unique().tolist() == [10]
    with pytest.raises(ScalingfitError, match="no training-set size"), \
            pytest.warns(UserWarning, match="left out"):
        corpus.seed_averaged(table[apart], points=60)


def test_write_set_gives_the_same_bytes_for_the_same_table(tmp_path):
    table = toy()
    a = corpus.write_set(table, tmp_path / "a.csv.gz").read_bytes()
    b = corpus.write_set(table, tmp_path / "b.csv.gz").read_bytes()
    assert a == b
    back = pd.read_csv(tmp_path / "a.csv.gz")
    np.testing.assert_allclose(back["test_error"], table["test_error"], rtol=1e-5)


def test_the_census_tells_a_rise_a_floor_and_a_run_still_improving():
    t = np.arange(101)
    base = {"n_test": 1000, corpus.NORM: 0.05 * t}
    rise = pd.DataFrame({**base, "test_error": 0.1 + 0.5 * (t / 100 - 0.4) ** 2})
    flat = pd.DataFrame({**base, "test_error": np.maximum(0.9 - 0.02 * t, 0.2)})
    falling = pd.DataFrame({**base, "test_error": 0.9 * np.exp(-t / 40)})
    assert corpus.run_shape(rise)["kind"] == "rise"
    assert corpus.run_shape(flat)["kind"] == "flat"
    # The floor starts at t = 35 (smoothing moves its edge by a point or two).
    assert corpus.run_shape(flat)["flat_decades"] == pytest.approx(0.05 * 65 / math.log(10),
                                                                    abs=0.05)
    assert corpus.run_shape(falling)["kind"] == "improving"


# ------------------------------------------------------------- the command

def test_corpus_quick_trains_a_set_and_its_derivation_end_to_end(tmp_path, capsys):
    assert main(["corpus", "--quick", "--only", "digits-mlp", "--only",
                 "digits-mlp-below-chance", "--out", str(tmp_path)]) == 0
    table = sf.load(tmp_path / "digits-mlp.csv.gz")
    assert table["train_size"].nunique() == 2 and table["seed"].nunique() == 3
    assert table["step"].tolist()[:3] == [0, 5, 10]
    derived = sf.load(tmp_path / "digits-mlp-below-chance.csv.gz")
    assert (derived["derived_from"] == "digits-mlp").all()
    readme = (tmp_path / "README.md").read_text()
    assert "| digits-mlp |" in readme and "| digits-mlp-below-chance |" in readme
    out = capsys.readouterr().out
    assert "digits-mlp: wrote" in out and "census written" in out


def test_corpus_refuses_an_unknown_set(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["corpus", "--only", "nope", "--out", str(tmp_path)])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(ScalingfitError, match="unknown corpus set 'nope'"):
        corpus.make_set("nope", tmp_path)


# ------------------------------------------------------ the committed corpus

def committed(name):
    path = CORPUS / f"{name}.csv.gz"
    assert path.exists(), f"{path} is missing: python -m reference_runs corpus --out {CORPUS}"
    return sf.load(path)


@pytest.mark.parametrize("name", TRAINED)
def test_each_trained_set_is_a_canonical_table_of_sizes_by_seeds(name):
    table = committed(name)
    spec = corpus.SETS[name]
    assert table["train_size"].nunique() >= 5 and sorted(table["train_size"].unique()) == \
        sorted(spec.sizes)
    per_size = table.groupby("train_size")["seed"].nunique()
    assert (per_size >= 3).all()
    every = spec.settings["eval_every"]
    for run_id, run in table.groupby("run_id"):
        steps = run["step"].to_numpy()
        assert steps[0] == 0 and steps[-1] == spec.settings["epochs"], run_id
        assert (np.diff(steps) == every).all(), f"{run_id}: steps not evenly spaced"
    assert {"n_test", "train_error", "lognorm_frobenius", corpus.NORM,
            "weight_decay"} <= set(table.columns)


@pytest.mark.parametrize("name", DERIVED)
def test_each_derived_set_says_what_it_is(name):
    table = committed(name)
    spec = corpus.DERIVED[name]
    assert (table["derived_from"] == spec.source).all()
    assert (table["derivation"] == spec.derivation).all()
    if spec.derive == "seed_averaged":
        assert "n_test" not in table and "seed" not in table
        assert 9 <= table["train_size"].nunique() <= 13
        assert table.groupby("train_size")["run_id"].nunique().eq(1).all()
    elif spec.derive == "wide_norm":
        decades = (table[corpus.NORM].max() - table[corpus.NORM].min()) / math.log(10)
        assert decades == pytest.approx(spec.options["decades"], abs=1e-3)  # 6 digits
    elif spec.derive == "below_chance_start":
        first = table.groupby("run_id").first()
        large = first[first["train_size"] >= spec.options["min_size"]]
        assert len(large) and (large["test_error"] <= spec.options["start_error"]).all()


def test_the_readme_census_is_the_files_census():
    readme = (CORPUS / "README.md").read_text()
    block = re.search(re.escape(corpus.CENSUS_START) + ".*?" + re.escape(corpus.CENSUS_END),
                      readme, re.S)
    assert block, "README.md has no census block"
    assert block.group(0) == corpus.readme_block(CORPUS), (
        "the README's census differs from the files': python -m reference_runs corpus "
        f"--census --out {CORPUS}")
    census = corpus.census_markdown(CORPUS)
    for name in [*TRAINED, *DERIVED]:
        assert f"| {name} |" in census


def test_the_corpus_is_small():
    total = sum(p.stat().st_size for p in CORPUS.glob("*.csv.gz"))
    assert total < 2 * 2**20, f"the corpus takes {total / 2**20:.2f} MiB"
