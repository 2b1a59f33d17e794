"""Tiny logs saved from the real clients, read back to the canonical rows saved beside them.

The other tests write their logs with the clients installed now; these files keep what
older clients wrote (tensorboard 2.21 and torch 2.13's SummaryWriter, wandb 0.31 offline,
numpy 2.4's np.save), so that a change in the readers cannot quietly stop reading them.
Regenerate with ``python tests/external/test_ingest_golden.py`` (then check the diff).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingfit.ingest import load

GOLDEN = Path(__file__).with_name("ingest_golden")
MAPPING = {"runs": {"template": "{architecture}_{dataset}_P{train_size}_seed{seed}_WD{wd}"}}
CANONICAL = ["run_id", "architecture", "dataset", "train_size", "seed", "step", "test_error",
             "norm_spectral_complexity", "norm_l1"]
NAME = "CNN_MNIST_P100_seed0_WD0.0"
STEPS = [1, 2, 5]
ERRORS = [0.8, 0.5, 0.25]
NORMS = {"model_norm": [10.0, 100.0, 1000.0], "l1": [3.0, 4.0, 5.0]}
TAGS = {"model_norm": "norm/spectral_complexity", "l1": "norm/l1"}


@pytest.mark.parametrize("kind", ["tensorboard", "tensorboard-tf2", "wandb", "paper-npy"])
def test_golden_logs_read_to_their_saved_rows(kind):
    if kind.startswith("tensorboard"):
        pytest.importorskip("tensorboard")
    if kind == "wandb":
        pytest.importorskip("wandb")
    table = load(GOLDEN / kind, MAPPING)[CANONICAL].reset_index(drop=True)
    expected = pd.read_csv(GOLDEN / "expected.csv")
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-7)


def _regenerate():  # pragma: no cover - run by hand
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from torch.utils.tensorboard import SummaryWriter

    shutil.rmtree(GOLDEN, ignore_errors=True)
    GOLDEN.mkdir()
    with SummaryWriter(str(GOLDEN / "tensorboard" / NAME)) as writer:
        for k, step in enumerate(STEPS):
            writer.add_scalar("test/error", ERRORS[k], step)
            for key, tag in TAGS.items():
                writer.add_scalar(tag, NORMS[key][k], step)
    writer = EventFileWriter(str(GOLDEN / "tensorboard-tf2" / NAME))
    for k, step in enumerate(STEPS):
        values = {"test/error": ERRORS[k], **{t: NORMS[key][k] for key, t in TAGS.items()}}
        for tag, value in values.items():
            tensor = tensor_pb2.TensorProto(dtype=1,
                                            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                            tensor_content=struct.pack("<f", value))
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(None, None))])
            writer.add_event(event_pb2.Event(wall_time=1.0, step=step, summary=summary))
    writer.close()
    (GOLDEN / "paper-npy").mkdir()
    np.save(GOLDEN / "paper-npy" / f"{NAME}.npy",
            {"log_epochs": np.array(STEPS), "val_error": 100 * np.array(ERRORS),
             **{k: np.array(v) for k, v in NORMS.items()}})
    script = (f"import wandb\nrun = wandb.init(project='golden', name={NAME!r})\n"
              f"for k, step in enumerate({STEPS!r}):\n"
              f"    row = {{'test/error': {ERRORS!r}[k]}}\n"
              f"    row.update({{tag: {NORMS!r}[key][k] for key, tag in {TAGS!r}.items()}})\n"
              f"    run.log(row, step=step)\nrun.finish()\n")
    scratch = GOLDEN / "scratch"
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(
        os.environ, WANDB_MODE="offline", WANDB_DIR=str(scratch), WANDB_SILENT="true",
        WANDB_X_DISABLE_META="true", WANDB_X_DISABLE_STATS="true", WANDB_DISABLE_GIT="true",
        WANDB_DISABLE_CODE="true"))  # keep the machine it ran on out of the file
    (log,) = scratch.glob("wandb/offline-run-*/run-*.wandb")
    (GOLDEN / "wandb").mkdir()
    shutil.copy(log, GOLDEN / "wandb" / log.name)
    shutil.rmtree(scratch)
    expected = load(GOLDEN / "paper-npy", MAPPING)[CANONICAL]
    expected.to_csv(GOLDEN / "expected.csv", index=False)


if __name__ == "__main__":
    _regenerate()
