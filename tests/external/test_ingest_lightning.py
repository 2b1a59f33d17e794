"""PyTorch Lightning: a tiny model trained for a few epochs on CPU by the real
``lightning.Trainer``, with :class:`scalingfit.norms.LightningNormCallback` and three
loggers at once (``CSVLogger``, ``TensorBoardLogger``, ``WandbLogger`` offline); each
logger's files ingest with no mapping, to the same values."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import scalingfit
from scalingfit.cli import main

pytest.importorskip("lightning")
pytest.importorskip("torch")
pytest.importorskip("tensorboard")

pytestmark = pytest.mark.slow  # a real training run (10-30 s)

NAME = "mlp_toy_P64_seed0"
EPOCHS = 3
NORMS = ["lognorm_spectral_complexity", "lognorm_spectral_product", "lognorm_frobenius",
         "lognorm_l1", "lognorm_group21"]
HAS_WANDB = importlib.util.find_spec("wandb") is not None


def train(root):
    """3 epochs of 4 batches, a validation after each; the hyperparameters (a tuple among
    them, which Lightning writes to hparams.yaml with a Python tag) describe the run."""
    loggers = [f"CSVLogger({str(root / 'csv')!r}, name={NAME!r})",
               f"TensorBoardLogger({str(root / 'tb')!r}, name={NAME!r})"]
    if HAS_WANDB:
        loggers.append(f"WandbLogger(name={NAME!r}, save_dir={str(root)!r}, offline=True, "
                       "project='scaling')")
    script = textwrap.dedent(f"""
        import torch, lightning as L
        from torch import nn
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
        from scalingfit.norms import LightningNormCallback

        class Tiny(L.LightningModule):
            def __init__(self, P=64, architecture="mlp", dataset="toy", seed=0, widths=(16,)):
                super().__init__()
                self.save_hyperparameters()
                self.net = nn.Sequential(nn.Linear(4, widths[0]), nn.ReLU(),
                                         nn.Linear(widths[0], 2))

            def training_step(self, batch, index):
                x, y = batch
                loss = nn.functional.cross_entropy(self.net(x), y)
                self.log("train_loss", loss, on_step=True, on_epoch=True)
                return loss

            def validation_step(self, batch, index):
                x, y = batch
                logits = self.net(x)
                self.log("val_loss", nn.functional.cross_entropy(logits, y))
                self.log("val_error", (logits.argmax(1) != y).float().mean())

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.5)

        L.seed_everything(0)
        x = torch.randn(64, 4)
        data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
        loader = torch.utils.data.DataLoader(data, batch_size=16)
        trainer = L.Trainer(max_epochs={EPOCHS}, logger=[{", ".join(loggers)}],
                            callbacks=[LightningNormCallback()], log_every_n_steps=1,
                            enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, accelerator="cpu")
        trainer.fit(Tiny(), loader, loader)
    """)
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true",
               WANDB_DISABLE_CODE="true")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=600,
                   capture_output=True)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lightning")
    train(root)
    return root


def test_the_csv_logger_reads_with_no_mapping(logs):
    table, (report,) = scalingfit.load(logs / "csv", return_report=True)
    assert report.reader == "lightning" and table["run_id"].eq(NAME).all()
    assert len(table) == EPOCHS and table["version"].eq(0).all()
    assert table["train_size"].eq(64).all() and table["architecture"].eq("mlp").all()
    assert table["widths"].eq("[16]").all()  # hparams.yaml's !!python/tuple, read as data
    for norm in NORMS:
        assert np.isfinite(table[norm]).all(), norm
    # the training rows (a step with only the training loss) are counted, not rows
    assert report.skipped == {"steps without 'val_error' logged": 4 * EPOCHS - EPOCHS}, (
        report.line())


def test_rows_of_one_step_merge_without_losing_or_inventing_values(logs):
    """Each kept value is the one cell of its column filled at its step; every filled cell
    of the evaluation's columns is in the table."""
    (file,) = (logs / "csv").rglob("metrics.csv")
    raw = pd.read_csv(file)
    table = scalingfit.load(logs / "csv")
    assert table["step"].tolist() == raw.loc[raw["val_error"].notna(), "step"].tolist()
    columns = {"val_error": "test_error", "val_loss": "test_loss",
               **{n.replace("lognorm_", "lognorm/"): n for n in NORMS},
               "train_loss_step": "train_loss_step", "train_loss_epoch": "train_loss_epoch"}
    for source, canonical in columns.items():
        cells = raw[raw[source].notna()].set_index("step")[source]
        assert cells.index.is_unique, source
        kept = table.set_index("step")[canonical].dropna()
        assert kept.index.isin(cells.index).all(), source
        np.testing.assert_array_equal(kept.to_numpy(), cells[kept.index].to_numpy(),
                                      err_msg=source)
        if source in ("val_error", "lognorm/l1"):
            assert len(kept) == len(cells) == EPOCHS, source


def test_tensorboard_and_wandb_loggers_give_the_same_values(logs):
    expected = scalingfit.load(logs / "csv")
    sources = {"tensorboard": logs / "tb"} | ({"wandb": logs / "wandb"} if HAS_WANDB else {})
    for kind, path in sources.items():
        table = scalingfit.load(path)
        assert len(table) == EPOCHS and table["train_size"].eq(64).all(), kind
        # Lightning logs 'epoch' beside the metrics: those loggers' rows are per epoch
        assert table["step"].tolist() == list(range(EPOCHS)), kind
        for column in ["test_error", "test_loss", *NORMS]:
            np.testing.assert_allclose(table[column], expected[column], rtol=2 ** -23,
                                       err_msg=f"{kind}: {column}")


def test_versions_under_one_name_are_runs_of_their_own(logs, tmp_path):
    copy = tmp_path / "csv"
    shutil.copytree(logs / "csv", copy)
    shutil.copytree(copy / NAME / "version_0", copy / NAME / "version_1")
    mapping = {"runs": {"template": "{architecture}_{dataset}_P{train_size}_seed{seed}"}}
    table, (report,) = scalingfit.load(copy, mapping, return_report=True)
    assert sorted(table["run_id"].unique()) == [f"{NAME}/version_0", f"{NAME}/version_1"]
    assert sorted(table["version"].unique()) == [0, 1] and "several versions" in report.line()


def test_the_files_need_no_lightning(logs, monkeypatch):
    expected = scalingfit.load(logs / "csv")
    for module in ("lightning", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, module, None)
    pd.testing.assert_frame_equal(scalingfit.load(logs / "csv"), expected)


def test_a_metrics_file_without_a_step_column_is_one_line(logs, tmp_path, capsys):
    copy = tmp_path / "csv"
    shutil.copytree(logs / "csv", copy)
    (file,) = copy.rglob("metrics.csv")
    pd.read_csv(file).drop(columns="step").to_csv(file, index=False)
    assert main(["ingest", str(copy), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {file}, column 'step': no 'step' column") and \
        err.count("\n") == 1 and "Fix:" in err
