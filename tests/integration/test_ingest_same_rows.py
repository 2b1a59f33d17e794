"""The same 12 runs, written by five different clients, ingest to the same canonical rows.

The runs are written as TensorBoard ``simple_value`` scalars (PyTorch's SummaryWriter),
as tensor-encoded scalars laid out as TF2's ``tf.summary.scalar`` writes them (with the
hyperparameters in the hparams plugin), by the ``wandb`` client offline, as a W&B line
panel CSV export, and as the paper's ``.npy`` files (``np.save`` of a dict). Each source
gets its run metadata a different way (run-name template, hparams, W&B config, the file
name), and they must all agree, values within float32 precision.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import scalingfit
from scalingfit.cli import main

pytestmark = pytest.mark.slow

ARCHITECTURES = ("CNN",)
DATASETS = ("CIFAR10", "MNIST")
SIZES = (1000, 2000, 4000)
SEEDS = (0, 1)
EPOCHS = np.unique(np.logspace(0, 2, 15, dtype=int))  # as the paper's code logs them
#: metric in the paper's files -> tag/metric name in TensorBoard and W&B
TAGS = {"val_error": "test/error", "train_error": "train/error",
        "model_norm": "norm/spectral_complexity", "spectral": "norm/spectral_product",
        "l1": "norm/l1", "fro": "norm/frobenius", "g_2_1": "norm/group21"}
PERCENT = ("val_error", "train_error")
TEMPLATE = "{architecture}_{dataset}_P{train_size}_seed{seed}_WD{weight_decay}"
CANONICAL = ["run_id", "architecture", "dataset", "train_size", "seed", "step", "test_error",
             "train_error", "norm_spectral_complexity", "norm_spectral_product", "norm_l1",
             "norm_frobenius", "norm_group21"]


def runs():
    """12 runs: name, metadata and the paper's dict of logs (errors in percent)."""
    out = []
    for i, (arch, data, size, seed) in enumerate(
            (a, d, p, s) for a in ARCHITECTURES for d in DATASETS for p in SIZES for s in SEEDS):
        rng = np.random.default_rng(i)
        t = EPOCHS.astype(float)
        norm = 5.0 * t ** 0.4 * size ** 0.1 * (1 + 0.01 * rng.standard_normal(len(t)))
        logs = {"log_epochs": EPOCHS,
                "val_error": 90.0 * norm ** -0.6 + rng.uniform(0, 0.5, len(t)),
                "train_error": 80.0 * norm ** -0.9,
                "val_loss": 2.3 * norm ** -0.3, "train_loss": 2.0 * norm ** -0.5,
                "model_norm": norm ** 3, "spectral": norm ** 2, "l1": 1e4 * norm,
                "fro": 30 * norm, "g_2_1": 300 * norm}
        meta = {"architecture": arch, "dataset": data, "P": size, "seed": seed}
        out.append((f"{arch}_{data}_P{size}_seed{seed}_WD0.0", meta, logs))
    return out


def fraction(key, values):
    return np.asarray(values) / 100.0 if key in PERCENT else np.asarray(values)


def write_paper_npy(root):
    root.mkdir()
    for name, _, logs in runs():
        np.save(root / f"{name}.npy", logs)


def write_tensorboard_simple(root):
    from torch.utils.tensorboard import SummaryWriter

    for name, _, logs in runs():
        with SummaryWriter(str(root / name)) as writer:
            for k, epoch in enumerate(logs["log_epochs"]):
                for key, tag in TAGS.items():
                    writer.add_scalar(tag, fraction(key, logs[key])[k], int(epoch))


def write_tensorboard_tf2(root):
    """Tensor-encoded scalars exactly as TF2's summary writer lays them out.

    ``tf.summary.scalar`` casts to float32 and its C++ writer stores the value with
    ``AsProtoTensorContent`` (dtype DT_FLOAT, an empty shape, 4 bytes of tensor_content),
    with the scalars plugin's metadata on every event; hyperparameters go through the
    hparams plugin's ``hparams_pb``. TensorFlow is not installed, so the protobufs are
    built with the classes the tensorboard package ships.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.hparams import summary_v2 as hparams
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for name, meta, logs in runs():
        writer = EventFileWriter(str(root / name))
        writer.add_event(event_pb2.Event(wall_time=1.0, step=0,
                                         summary=hparams.hparams_pb(meta, trial_id=name)))
        for k, epoch in enumerate(logs["log_epochs"]):
            for key, tag in TAGS.items():
                tensor = tensor_pb2.TensorProto(
                    dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                    tensor_content=struct.pack("<f", fraction(key, logs[key])[k]))
                value = summary_pb2.Summary.Value(
                    tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(None, None))
                writer.add_event(event_pb2.Event(wall_time=2.0, step=int(epoch),
                                                 summary=summary_pb2.Summary(value=[value])))
        writer.close()


def write_wandb_offline(root):
    """The wandb client, offline, in a subprocess (it starts its own service)."""
    payload = [(name, meta, {k: np.asarray(v).tolist() for k, v in logs.items()})
               for name, meta, logs in runs()]
    script = textwrap.dedent(f"""
        import json, wandb
        for name, meta, logs in json.loads({json.dumps(json.dumps(payload))}):
            run = wandb.init(project="scaling", name=name, config=meta)
            for k, epoch in enumerate(logs["log_epochs"]):
                row = {{tag: logs[key][k] / (100.0 if key in {PERCENT!r} else 1.0)
                       for key, tag in {TAGS!r}.items()}}
                run.log(row, step=epoch)
            run.finish()
    """)
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(root), WANDB_SILENT="true",
               WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true")
    root.mkdir()
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)


def write_wandb_panels(root):
    """Two line-panel CSV exports in W&B's documented layout (one per chart)."""
    root.mkdir()
    panels = {"errors": ["val_error", "train_error"],
              "norms": ["model_norm", "spectral", "l1", "fro", "g_2_1"]}
    for panel, keys in panels.items():
        table = pd.DataFrame({"Step": EPOCHS})
        for name, _, logs in runs():
            for key in keys:
                values = fraction(key, logs[key])
                table[f"{name} - {TAGS[key]}"] = values
                if panel == "errors":  # the UI adds these when it buckets points
                    table[f"{name} - {TAGS[key]}__MIN"] = values
                    table[f"{name} - {TAGS[key]}__MAX"] = values
        table.to_csv(root / f"{panel}.csv", index=False)


WRITERS = {"tensorboard-simple": write_tensorboard_simple,
           "tensorboard-tf2": write_tensorboard_tf2, "wandb-offline": write_wandb_offline,
           "wandb-panel": write_wandb_panels, "paper-npy": write_paper_npy}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    pytest.importorskip("tensorboard")
    pytest.importorskip("torch")
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("same_runs")
    for kind, write in WRITERS.items():
        write(root / kind)
    return root


def canonical(table):
    table = table[CANONICAL].sort_values(["run_id", "step"]).reset_index(drop=True)
    return table.astype({"train_size": "int64", "seed": "int64", "step": "int64"})


def test_five_formats_give_the_same_rows(sources):
    mapping = {"runs": {"template": TEMPLATE}}
    tables = {kind: canonical(scalingfit.load(sources / kind, mapping)) for kind in WRITERS}
    expected = tables["paper-npy"]
    assert len(expected) == 12 * len(EPOCHS)
    assert expected["run_id"].nunique() == 12
    for kind, table in tables.items():
        assert table[["run_id", "architecture", "dataset", "train_size", "seed", "step"]].equals(
            expected[["run_id", "architecture", "dataset", "train_size", "seed", "step"]]), kind
        for column in CANONICAL[6:]:
            np.testing.assert_allclose(table[column], expected[column], rtol=2 ** -23,
                                       err_msg=f"{kind}: {column}")


def test_each_format_reports_what_it_read(sources):
    mapping = {"runs": {"template": TEMPLATE}}
    for kind in WRITERS:
        _, reports = scalingfit.load(sources / kind, mapping, return_report=True)
        (report,) = reports
        assert report.runs == 12 and report.rows_kept == 12 * len(EPOCHS), report.line()
        assert report.rows_skipped == 0, report.line()
    _, (panel,) = scalingfit.load(sources / "wandb-panel", mapping, return_report=True)
    assert "bucketed" in panel.line()


def test_the_paper_files_need_no_mapping(sources):
    table = scalingfit.load(sources / "paper-npy")
    assert set(table["architecture"]) == {"CNN"} and set(table["train_size"]) == set(SIZES)
    assert table["weight_decay"].eq(0.0).all()


def test_hparams_give_the_metadata_without_a_template(sources):
    table = scalingfit.load(sources / "tensorboard-tf2")
    assert sorted(table["train_size"].unique()) == list(SIZES)
    assert set(table["dataset"]) == set(DATASETS)


def test_cli_ingests_all_five_into_one_table(sources, tmp_path, capsys):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f'runs:\n  template: "{TEMPLATE}"\n')
    out = tmp_path / "table.parquet"
    # one source only, so that run ids stay unique; then every kind in turn
    for kind in WRITERS:
        assert main(["ingest", str(sources / kind), "--map", str(mapping), "--out",
                     str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"12 runs, {12 * len(EPOCHS)} rows kept, 0 skipped" in printed
        assert canonical(pd.read_parquet(out)).equals(
            canonical(scalingfit.load(sources / kind, {"runs": {"template": TEMPLATE}})))
