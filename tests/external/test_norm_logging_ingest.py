"""What NormLogger/MetricWriter write is read by scalingfit.load with no mapping."""

import time

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import scalingfit  # noqa: E402
from scalingfit.errors import ScalingfitError  # noqa: E402
from scalingfit.norms import (  # noqa: E402
    NORMS,  # noqa: E402
    MetricWriter,
    NormLogger,
)
from tests.support.tensorboard_events import tensorboard_scalars  # noqa: E402


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def train_and_log(logger, net, epochs=4, per_iteration=None):
    opt = torch.optim.SGD(net.parameters(), 0.1)
    for epoch in range(epochs):
        for _ in range(5):
            loss = net(torch.randn(4, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if per_iteration is not None:
                per_iteration(loss.item())
        logger(epoch, test_error=0.5 - 0.1 * epoch)


def test_csv_is_ingested_with_no_mapping(tmp_path):
    folder = tmp_path / "norms"
    for seed, size in ((0, 100), (1, 200)):
        name = f"mlp_toy_P{size}_seed{seed}"
        with NormLogger(model(), every=1, csv=folder / f"{name}.csv",
                        run=dict(architecture="mlp", dataset="toy", train_size=size,
                                 seed=seed)) as logger:
            train_and_log(logger, logger.model)
    table = scalingfit.load([folder / "mlp_toy_P100_seed0.csv",
                             folder / "mlp_toy_P200_seed1.csv"])
    assert sorted(set(table["run_id"])) == ["mlp_toy_P100_seed0", "mlp_toy_P200_seed1"]
    assert sorted(set(table["train_size"])) == [100, 200]
    assert len(table) == 8 and sorted(set(table["step"])) == [0, 1, 2, 3]
    assert set(table["architecture"]) == {"mlp"}
    for name in NORMS:
        assert table[f"lognorm_{name}"].notna().all()


def test_csv_rerun_is_an_error_and_run_id_defaults_to_the_stem(tmp_path):
    path = tmp_path / "run_a.csv"
    MetricWriter(csv=path, run={"train_size": 10}).log(0, {"test_error": 0.5})
    MetricWriter(csv=path, run={"train_size": 10}).log(1, {"test_error": 0.4})  # resumed
    with pytest.raises(ScalingfitError, match="use a new file or delete"):
        MetricWriter(csv=path, run={"train_size": 10}).log(0, {"test_error": 0.5})
    table = pd.read_csv(path)
    assert table["run_id"].tolist() == ["run_a", "run_a"]
    assert table["step"].tolist() == [0, 1]


def test_tensorboard_tags_and_string_extras(tmp_path):
    pytest.importorskip("tensorboard")
    with NormLogger(model(), every=1, csv=tmp_path / "m.csv",
                    tensorboard=tmp_path / "tb") as logger:
        for step in range(2):
            logger(step, test_error=0.5, train_size=100, seed=0, note="mlp_P100_seed0")
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert set(scalars) == ({f"lognorm/{n}" for n in NORMS}
                            | {"test/error", "train_size", "seed"})
    assert pd.read_csv(tmp_path / "m.csv")["note"].tolist() == ["mlp_P100_seed0"] * 2
    table = scalingfit.load(tmp_path / "tb", mapping={"set": {"run_id": "r"}})
    assert set(table["train_size"]) == {100}
    assert len(table) == 2


@pytest.mark.slow  # starts W&B's service
def test_wandb_rows_survive_per_iteration_logging(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    net = model()
    run = wandb.init(mode="offline", dir=str(tmp_path), project="scalingfit-test",
                     name="mlp_toy_P100_seed0")
    try:
        logger = NormLogger(net, every=1, wandb=run,
                            run=dict(architecture="mlp", dataset="toy", train_size=100,
                                     seed=0))
        train_and_log(logger, net, per_iteration=lambda loss: run.log({"train/loss": loss}))
    finally:
        run.finish()
    deadline, table = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        try:
            table = scalingfit.load(tmp_path / "wandb")
            if len(table) == 4:
                break
        except Exception:  # noqa: BLE001 - the service may still be writing the file
            pass
        time.sleep(0.2)
    assert table is not None
    assert table["step"].tolist() == [0, 1, 2, 3]
    assert table["test_error"].tolist() == pytest.approx([0.5, 0.4, 0.3, 0.2])
    assert set(table["train_size"]) == {100}
    assert table["lognorm_spectral_complexity"].notna().all()
