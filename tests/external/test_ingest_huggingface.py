"""Hugging Face Trainer: a tiny model trained for a few steps on CPU by the real
``transformers.Trainer``, with :class:`scalingfit.norms.TransformersNormCallback`; its
output directory (``trainer_state.json``) and what its ``report_to`` loggers wrote
(TensorBoard, MLflow) ingest with the same rows, the first with no mapping at all."""

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

pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("torch")
pytest.importorskip("tensorboard")

pytestmark = pytest.mark.slow  # a real training run (10-30 s)

NAME = "mlp_toy_P64_seed0"
RUN = {"architecture": "mlp", "dataset": "toy", "train_size": 64, "seed": 0}
TEMPLATE = {"runs": {"template": "{architecture}_{dataset}_P{train_size}_seed{seed}"}}
EVAL_STEPS = [2, 4, 6, 8]
NORMS = ["lognorm_spectral_complexity", "lognorm_spectral_product", "lognorm_frobenius",
         "lognorm_l1", "lognorm_group21"]
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def train(root):
    """8 steps, an evaluation every 2, a checkpoint every 4; TensorBoard (and MLflow)."""
    report_to = ["tensorboard"] + (["mlflow"] if HAS_MLFLOW else [])
    script = textwrap.dedent(f"""
        import numpy as np, torch, transformers
        from torch import nn
        from scalingfit.norms import TransformersNormCallback

        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

            def forward(self, x, labels=None):
                logits = self.net(x)
                loss = nn.functional.cross_entropy(logits, labels) if labels is not None \\
                    else None
                return {{"loss": loss, "logits": logits}}

        def error(prediction):
            wrong = np.argmax(prediction.predictions, -1) != prediction.label_ids
            return {{"error": float(wrong.mean())}}

        torch.manual_seed(0)
        x = torch.randn(64, 4)
        data = [{{"x": x[i], "labels": int(x[i, 0] > 0)}} for i in range(64)]
        args = transformers.TrainingArguments(
            output_dir={str(root / "out" / NAME)!r}, run_name={NAME!r}, eval_strategy="steps",
            eval_steps=2, save_steps=4, logging_steps=1, max_steps=8, learning_rate=0.5,
            per_device_train_batch_size=16, report_to={report_to!r}, use_cpu=True, seed=0,
            disable_tqdm=True)
        trainer = transformers.Trainer(
            model=Tiny(), args=args, train_dataset=data, eval_dataset=data,
            compute_metrics=error, callbacks=[TransformersNormCallback(run={RUN!r})])
        trainer.train()
    """)
    env = dict(os.environ, TENSORBOARD_LOGGING_DIR=str(root / "tb" / NAME),
               MLFLOW_TRACKING_URI=(root / "mlruns").as_uri(), MLFLOW_ALLOW_FILE_STORE="true",
               MLFLOW_EXPERIMENT_NAME="scaling", HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=600,
                   capture_output=True)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("huggingface")
    train(root)
    return root


def test_the_output_directory_reads_with_no_mapping(logs):
    table, (report,) = scalingfit.load(logs / "out", return_report=True)
    assert report.reader == "huggingface" and table["run_id"].eq(NAME).all()
    assert table["step"].tolist() == EVAL_STEPS
    for key, value in RUN.items():  # the callback's run=, kept in trainer_state.json
        assert table[key].eq(value).all(), key
    assert table["test_error"].between(0, 1).all() and "test_loss" in table
    for norm in NORMS:
        assert np.isfinite(table[norm]).all(), norm
    # the training loop's entries: a loss at each of the 8 steps (the last checkpoint is
    # saved before the end-of-training summary is logged)
    assert report.skipped == {"Trainer log entries of the training loop (loss, "
                              "learning_rate: no evaluation)": 8}, report.line()
    assert "1 earlier checkpoints' trainer_state.json not read" in report.line()


def test_the_norms_are_those_of_the_model_at_each_evaluation(logs):
    """The last evaluation's norms are those of the saved final model."""
    import torch
    from safetensors.torch import load_file

    from scalingfit.norms import log_norms

    weights = load_file(logs / "out" / NAME / "checkpoint-8" / "model.safetensors")
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model.load_state_dict({k.removeprefix("net."): v for k, v in weights.items()})
    table = scalingfit.load(logs / "out")
    last = table.iloc[-1]
    for name, value in log_norms(model).items():
        assert last[f"lognorm_{name}"] == pytest.approx(value, rel=1e-5, abs=1e-5), name


def test_report_to_loggers_get_the_same_rows(logs):
    """The callback runs before the report_to loggers, so they log its norms too."""
    expected = scalingfit.load(logs / "out")
    columns = ["step", "test_error", "test_loss", *NORMS]
    sources = {"tensorboard": logs / "tb"} | ({"mlflow": logs / "mlruns"} if HAS_MLFLOW else {})
    for kind, path in sources.items():
        table = scalingfit.load(path, TEMPLATE)
        assert table["run_id"].eq(NAME).all() and table["train_size"].eq(64).all(), kind
        np.testing.assert_allclose(table[columns].to_numpy(float),
                                   expected[columns].to_numpy(float), rtol=2 ** -23,
                                   err_msg=kind)


def test_the_state_file_needs_no_transformers(logs, monkeypatch):
    expected = scalingfit.load(logs / "out")
    monkeypatch.setitem(sys.modules, "transformers", None)
    pd.testing.assert_frame_equal(scalingfit.load(logs / "out"), expected)


def test_a_truncated_state_is_one_line_naming_it(logs, tmp_path, capsys):
    copy = tmp_path / NAME
    shutil.copytree(logs / "out" / NAME, copy)
    state = copy / "checkpoint-8" / "trainer_state.json"
    state.write_text(state.read_text()[: len(state.read_text()) // 2])
    assert main(["ingest", str(copy), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {state}: not valid JSON") and err.count("\n") == 1
    assert "Fix: delete it" in err and "checkpoint" in err
