"""Norms and metrics logged to TensorBoard and W&B (offline), read back from their files."""

import json
import struct
import time

import pytest

torch = pytest.importorskip("torch")

from scalingfit.norms import NORMS, MetricWriter, NormLogger, log_norms  # noqa: E402  # noqa: E402
from tests.support.tensorboard_events import tensorboard_scalars  # noqa: E402


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 3))


def test_tensorboard_events_hold_the_norms(tmp_path):
    pytest.importorskip("tensorboard")
    net = model()
    with NormLogger(net, every=2, tensorboard=tmp_path / "tb", exact=True) as logger:
        for step in range(5):
            logger(step, test_error=0.1 * step)
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert set(scalars) == {f"lognorm/{n}" for n in NORMS} | {"test/error"}
    spectral = scalars["lognorm/spectral_complexity"]
    assert [step for step, _ in spectral] == [0, 2, 4]
    assert spectral[0][1] == pytest.approx(  # events store float32
        log_norms(net, exact=True)["spectral_complexity"], rel=1e-6)


def wandb_history(path):
    """History rows of an offline W&B run: its .wandb file is a LevelDB-style log
    (32 KiB blocks, 7-byte record headers) of protobuf Records."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, chunk, rows = path.read_bytes(), 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                             for i in record.history.item})
    return rows


@pytest.mark.slow  # starts W&B's service
def test_wandb_offline_run_holds_the_norms(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    net = model()
    run = wandb.init(mode="offline", dir=str(tmp_path), project="scalingfit-test")
    try:
        logger = NormLogger(net, steps=[1, 3], wandb=run)
        for step in range(4):
            logger(step)
    finally:
        run.finish()
    path = next(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    deadline = time.monotonic() + 30
    while len(rows := wandb_history(path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # W&B's service writes the file after finish() returns
    assert [r["epoch"] for r in rows] == [1, 3]  # the step is a value, not W&B's step
    assert rows[0]["lognorm_group21"] == pytest.approx(log_norms(net)["group21"], rel=1e-9)


def test_wandb_without_a_run_is_a_clear_error():
    wandb = pytest.importorskip("wandb")
    if wandb.run is not None:
        pytest.skip("a W&B run is active in this process")
    with pytest.raises(Exception, match="no W&B run is active"):
        MetricWriter(wandb=True)


@pytest.mark.slow
def test_train_logs_to_tensorboard(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tensorboard")
    from reference_runs.train import resolve_config, train

    config = resolve_config(overrides={"arch": "cnn", "dataset": "digits", "train_size": 32,
                                       "epochs": 2, "device": "cpu",
                                       "tensorboard": str(tmp_path / "tb"),
                                       "out": str(tmp_path / "run.csv")})
    table = train(config, log=lambda line: None)
    errors = tensorboard_scalars(tmp_path / "tb" / "cnn_digits_P32_seed0")["test/error"]
    assert [step for step, _ in errors] == [0, 1, 2]
    assert [v for _, v in errors] == pytest.approx(table["test_error"].tolist(), rel=1e-6)
