"""The same 12 runs, written by every client scalingfit reads, ingest to the same rows.

The runs are written as TensorBoard ``simple_value`` scalars (PyTorch's SummaryWriter),
as tensor-encoded scalars laid out as TF2's ``tf.summary.scalar`` writes them (with the
hyperparameters in the hparams plugin), by the ``wandb`` client offline, as a W&B line
panel CSV export, by the ``mlflow`` client into a file store, as a Hugging Face Trainer's
``trainer_state.json`` (written by ``transformers.TrainerState``), by PyTorch Lightning's
``CSVLogger``, as a canonical CSV table, and as the paper's ``.npy`` files (``np.save`` of
a dict). Each source gets its run metadata a different way (run-name template, hparams,
W&B config, MLflow params, Lightning's hparams.yaml, columns, the file name), and they
must all agree, values within float32 precision.
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


def _run_client(script, env=None):
    """A client's writing script, in a subprocess (its imports and threads stay there)."""
    payload = [(name, meta, {k: np.asarray(v).tolist() for k, v in logs.items()})
               for name, meta, logs in runs()]
    header = textwrap.dedent(f"""
        import json
        PAYLOAD = json.loads({json.dumps(json.dumps(payload))})
        TAGS, PERCENT = {TAGS!r}, {PERCENT!r}
        def fraction(key, value):
            return value / 100.0 if key in PERCENT else value
    """)
    subprocess.run([sys.executable, "-c", header + textwrap.dedent(script)],
                   env=dict(os.environ, **(env or {})), check=True, timeout=300)


def write_mlflow(root):
    """The mlflow client, offline, into a file store (mlruns/): params hold the metadata."""
    _run_client(f"""
        import mlflow
        mlflow.set_tracking_uri({root.as_uri()!r})
        mlflow.set_experiment("scaling")
        for name, meta, logs in PAYLOAD:
            with mlflow.start_run(run_name=name):
                mlflow.log_params(meta)
                for k, epoch in enumerate(logs["log_epochs"]):
                    mlflow.log_metrics({{tag: fraction(key, logs[key][k])
                                        for key, tag in TAGS.items()}}, step=epoch)
    """, env={"MLFLOW_ALLOW_FILE_STORE": "true"})


#: How a Trainer's compute_metrics would name them: the Trainer adds "eval_".
TRAINER_KEYS = {"val_error": "eval_error", "train_error": "eval_train_error",
                **{key: "eval_" + tag.replace("/", "_") for key, tag in TAGS.items()
                   if tag.startswith("norm/")}}


def write_trainer_state(root):
    """``transformers.TrainerState`` as the Trainer saves it in its checkpoints: training
    entries (loss, learning rate) between evaluations, an earlier checkpoint beside the
    last; the run is its output directory's name."""
    _run_client(f"""
        import os
        from transformers import TrainerState
        KEYS = {TRAINER_KEYS!r}
        for name, meta, logs in PAYLOAD:
            history = []
            for k, epoch in enumerate(logs["log_epochs"]):
                history.append({{"loss": logs["train_loss"][k], "learning_rate": 0.1,
                                 "grad_norm": 1.0, "epoch": float(epoch), "step": epoch}})
                entry = {{KEYS[key]: fraction(key, logs[key][k]) for key in KEYS}}
                history.append({{**entry, "eval_runtime": 0.5, "epoch": float(epoch),
                                 "step": epoch}})
            last = logs["log_epochs"][-1]
            for step, entries in ((last // 2, history[:len(history) // 2]), (last, history)):
                directory = os.path.join({str(root)!r}, name, f"checkpoint-{{step}}")
                os.makedirs(directory)
                TrainerState(global_step=step, log_history=entries).save_to_json(
                    os.path.join(directory, "trainer_state.json"))
    """)


def write_lightning_csv(root):
    """PyTorch Lightning's ``CSVLogger``: hyperparameters in hparams.yaml, the training
    loss and the evaluation on different rows of the same step, a training row alone."""
    _run_client(f"""
        from lightning.pytorch.loggers import CSVLogger
        for name, meta, logs in PAYLOAD:
            logger = CSVLogger({str(root)!r}, name=name)
            logger.log_hyperparams(meta)
            logger.log_metrics({{"train_loss_step": 2.5}}, step=0)
            for k, epoch in enumerate(logs["log_epochs"]):
                logger.log_metrics({{"train_loss_step": logs["train_loss"][k]}}, step=epoch)
                logger.log_metrics({{("val_error" if key == "val_error" else tag):
                                     fraction(key, logs[key][k])
                                     for key, tag in TAGS.items()}}, step=epoch)
            logger.save()
    """)


def write_canonical_csv(root):
    """The canonical table itself, one CSV (what NormLogger or a pandas script writes)."""
    root.mkdir()
    names = {"val_error": "test_error", "train_error": "train_error",
             **{key: tag.replace("/", "_") for key, tag in TAGS.items()
                if tag.startswith("norm/")}}
    frames = []
    for name, meta, logs in runs():
        frame = pd.DataFrame({"run_id": name, "architecture": meta["architecture"],
                              "dataset": meta["dataset"], "train_size": meta["P"],
                              "seed": meta["seed"], "step": logs["log_epochs"]})
        for key, column in names.items():
            frame[column] = fraction(key, logs[key])
        frames.append(frame)
    pd.concat(frames).to_csv(root / "runs.csv", index=False)


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
           "wandb-panel": write_wandb_panels, "mlflow": write_mlflow,
           "trainer-state": write_trainer_state, "lightning-csv": write_lightning_csv,
           "canonical-csv": write_canonical_csv, "paper-npy": write_paper_npy}
#: Beside the template: metric names that are not recognised without a mapping.
MAPPINGS = {"trainer-state": {"metrics": {"train_error": "eval_train_error"}}}
#: Rows that carry no evaluation, counted in the report: the Trainer's training entries,
#: Lightning's training row at step 0.
SKIPPED = {"trainer-state": 12 * len(EPOCHS), "lightning-csv": 12}


def mapping_for(kind):
    return {"runs": {"template": TEMPLATE}, **MAPPINGS.get(kind, {})}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    for client in ("tensorboard", "torch", "wandb", "mlflow", "transformers", "lightning"):
        pytest.importorskip(client)
    root = tmp_path_factory.mktemp("same_runs")
    for kind, write in WRITERS.items():
        write(root / kind)
    return root


def canonical(table):
    table = table[CANONICAL].sort_values(["run_id", "step"]).reset_index(drop=True)
    return table.astype({"train_size": "int64", "seed": "int64", "step": "int64"})


def test_every_format_gives_the_same_rows(sources):
    tables = {kind: canonical(scalingfit.load(sources / kind, mapping_for(kind)))
              for kind in WRITERS}
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
    for kind in WRITERS:
        _, reports = scalingfit.load(sources / kind, mapping_for(kind), return_report=True)
        (report,) = reports
        assert report.runs == 12 and report.rows_kept == 12 * len(EPOCHS), report.line()
        assert report.rows_skipped == SKIPPED.get(kind, 0), report.line()
    mapping = mapping_for("wandb-panel")
    _, (panel,) = scalingfit.load(sources / "wandb-panel", mapping, return_report=True)
    assert "bucketed" in panel.line()
    _, (trainer,) = scalingfit.load(sources / "trainer-state", mapping_for("trainer-state"),
                                    return_report=True)
    assert "training loop" in trainer.line() and "12 earlier checkpoints" in trainer.line()


def test_the_paper_files_need_no_mapping(sources):
    table = scalingfit.load(sources / "paper-npy")
    assert set(table["architecture"]) == {"CNN"} and set(table["train_size"]) == set(SIZES)
    assert table["weight_decay"].eq(0.0).all()


def test_hparams_give_the_metadata_without_a_template(sources):
    table = scalingfit.load(sources / "tensorboard-tf2")
    assert sorted(table["train_size"].unique()) == list(SIZES)
    assert set(table["dataset"]) == set(DATASETS)


def write_mapping(path, kind):
    path.write_text(json.dumps(mapping_for(kind)))  # JSON is YAML
    return path


def test_cli_ingests_each_format_into_one_table(sources, tmp_path, capsys):
    out = tmp_path / "table.parquet"
    # one source only, so that run ids stay unique; then every kind in turn
    for kind in WRITERS:
        mapping = write_mapping(tmp_path / f"{kind}.yaml", kind)
        assert main(["ingest", str(sources / kind), "--map", str(mapping), "--out",
                     str(out)]) == 0
        printed = capsys.readouterr().out
        skipped = SKIPPED.get(kind, 0)
        assert f"12 runs, {12 * len(EPOCHS)} rows kept, {skipped} skipped" in printed
        assert canonical(pd.read_parquet(out)).equals(
            canonical(scalingfit.load(sources / kind, mapping_for(kind))))


def test_the_command_prints_only_its_own_lines(sources, tmp_path):
    """A user's terminal: one process ingesting every format (the clients' protobufs and
    imports included) shows the report lines and nothing from another library."""
    calls = [["ingest", str(sources / kind), "--map",
              str(write_mapping(tmp_path / f"{kind}.yaml", kind)), "--out",
              str(tmp_path / f"{kind}.parquet")] for kind in WRITERS]
    script = ("import sys\nfrom scalingfit.cli import main\n"
              f"for argv in {calls!r}:\n    assert main(argv) == 0\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # once-a-day notices too
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 2 * len(WRITERS), done.stdout
    for kind, (report, wrote) in zip(WRITERS, zip(lines[::2], lines[1::2])):
        assert report.startswith(str(sources / kind)) and " runs" in report, (kind, report)
        assert wrote.startswith("wrote "), (kind, wrote)
