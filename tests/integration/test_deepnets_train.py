"""Training on the real digits dataset, end to end, on the CPU."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from reference_runs.__main__ import main  # noqa: E402
from reference_runs.train import resolve_config, train  # noqa: E402
from scalingfit.errors import ScalingfitError  # noqa: E402
from scalingfit.ingest.table import validate  # noqa: E402
from scalingfit.norms import log_spaced_steps  # noqa: E402

torch.set_num_threads(1)
# Columns that depend on the computation only (train_seconds is a wall-clock time).
RESULTS = ["run_id", "step", "test_error", "train_error", "test_loss", "train_loss",
           "lognorm_spectral_complexity", "lognorm_spectral_product", "lognorm_frobenius",
           "lognorm_l1", "lognorm_group21"]
TINY = {"epochs": 5, "batch_size": 16, "lr": 5e-3, "device": "cpu", "checkpoint_every_s": 0}


def config(tmp_path, **kw):
    overrides = {"arch": "cnn", "dataset": "digits", "train_size": 64, "seeds": [0],
                 **TINY, "out": str(tmp_path / "run.csv"), **kw}
    return resolve_config(overrides=overrides)


def test_train_command_writes_a_canonical_table(tmp_path, capsys):
    out = tmp_path / "run.csv"
    code = main(["train", "--arch", "cnn", "--dataset", "digits", "--train-size", "64",
                 "--seed", "3", "--epochs", "6", "--optimizer", "adamw", "--lr", "5e-3",
                 "--weight-decay", "1e-4", "--init-scale", "0.5", "--batch-size", "16",
                 "--device", "cpu", "--out", str(out), "--model.hidden=[32]",
                 "--norm_convention=paper"])
    assert code == 0
    table = pd.read_csv(out)
    validate(table, source=str(out))
    assert table["step"].tolist() == log_spaced_steps(6) == [0, 1, 2, 3, 4, 5, 6]
    assert (table["run_id"] == "cnn_digits_P64_seed3").all()
    assert (table["n_test"] == 500).all() and (table["train_size"] == 64).all()
    assert {"optimizer", "lr", "weight_decay", "init_scale"} <= set(table.columns)
    assert table["train_error"].iloc[-1] < table["train_error"].iloc[0]
    assert table.filter(like="lognorm_").notna().all().all()
    resolved = (tmp_path / "run.config.yaml").read_text()
    assert "hidden:\n  - 32" in resolved and "norm_convention: paper" in resolved
    assert not (tmp_path / "run.ckpt").exists()
    assert "wrote" in capsys.readouterr().out


def test_an_interrupted_run_resumes_to_identical_rows(tmp_path):
    dropout = {"model": {"hidden": [32], "dropout": 0.3}}  # RNG state must be restored too
    whole = train(config(tmp_path / "a", **dropout), log=lambda line: None)

    def stop_at_epoch_3(line):
        if line.startswith("epoch    3"):
            raise KeyboardInterrupt  # after the epoch-3 row, before its checkpoint

    resumed_config = config(tmp_path / "b", **dropout)
    with pytest.raises(KeyboardInterrupt):
        train(resumed_config, log=stop_at_epoch_3)
    assert (tmp_path / "b" / "run.ckpt").exists() and not (tmp_path / "b" / "run.csv").exists()
    lines = []
    resumed = train(resumed_config, log=lines.append)
    assert any("after epoch 2 (3 rows)" in line for line in lines)
    pd.testing.assert_frame_equal(resumed[RESULTS].reset_index(drop=True),
                                  whole[RESULTS].reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
def test_stacked_seeds_match_separate_runs(tmp_path, arch):
    stacked = train(config(tmp_path / "s", arch=arch, seeds=[0, 1], epochs=3),
                    log=lambda line: None)
    for seed in (0, 1):
        alone = train(config(tmp_path / f"a{seed}", arch=arch, seeds=[seed], epochs=3),
                      log=lambda line: None)
        mine = stacked[stacked["seed"] == seed]
        for column in ("test_loss", "train_loss"):
            np.testing.assert_allclose(mine[column], alone[column], rtol=1e-4)
        for column in (c for c in RESULTS if c.startswith("lognorm_")):
            np.testing.assert_allclose(mine[column], alone[column], atol=1e-4)
        # A prediction may flip on a near tie, not more.
        assert np.abs(mine["test_error"].to_numpy() - alone["test_error"].to_numpy()).max() \
            <= 2 / 500


def test_a_line_between_evaluations_says_the_run_is_alive(tmp_path, monkeypatch):
    from reference_runs import train as training

    monkeypatch.setattr(training, "HEARTBEAT_S", 0.0)
    lines = []
    train(config(tmp_path, epochs=6, n_evals=2), log=lines.append)
    evaluated = [line for line in lines if "test error" in line]
    alive = [line for line in lines if ": training, " in line and "images/s" in line]
    assert len(evaluated) == len(log_spaced_steps(6, 2))
    assert len(alive) == 6 + 1 - len(evaluated)  # every other epoch


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    def stop(line):
        if line.startswith("epoch    2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(tmp_path), log=stop)
    with pytest.raises(ScalingfitError, match="lr: 0.005 -> 0.001"):
        train(config(tmp_path, lr=1e-3), log=lambda line: None)


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", "cifar10", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "data_batch_1" in err and "--download" in err
    assert main(["train", "--bogus=1", "--out", str(tmp_path / "x.csv")]) == 2
    assert "unknown setting(s) bogus" in capsys.readouterr().err
    assert main(["train", "--train-size", "5000", "--epochs", "1",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "between 1 and 1297" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", "s.yaml", "--bogus=1"])  # sweep takes no overrides


@pytest.mark.parametrize("flags, message", [
    (["--device", "gpu"], "device 'gpu' is not one torch knows"),
    (["--batch-size", "0"], "batch_size = 0: it must be at least 1"),
    (["--epochs", "-3"], "epochs = -3: it must be at least 0"),
    (["--lr", "0"], "the learning rate must be positive"),
    (["--norm_convention=foo"], "norm_convention 'foo': choose bft or paper"),
    (["--model.kernel_size=2.5"], "'kernel_size' = 2.5 should be a int"),
    (["--arch", "vit", "--model.patch_size=3"], "do not fit 8×8 inputs: patch_size 3"),
    (["--dataset", "mnist"], "mnist needs a data folder: --data-root DIR"),
], ids=["device", "batch-size", "epochs", "lr", "convention", "model-type", "model-shape",
        "data-root"])
def test_bad_settings_are_one_line_errors(tmp_path, capsys, flags, message):
    code = main(["train", "--epochs", "1", "--out", str(tmp_path / "x.csv"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_asking_for_cuda_without_one_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "x.csv")]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err


def test_a_single_number_for_a_list_option_is_a_list_of_one(tmp_path):
    table = train(config(tmp_path, epochs=1, model={"channels": 8}), log=lambda line: None)
    assert len(table) == 2 * 1  # steps 0 and 1 of one run


def test_without_torch_the_message_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from reference_runs.__main__ import main\n"
            "sys.exit(main(['train', '--help']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2 and "pip install 'scalingfit[torch]'" in out.stderr
