"""The GPU paths: norms on the device with TF32 on, bf16 stacked training, resumption.

Skipped without CUDA. On a GPU machine:
``PYTHONPATH=. python3 -m pytest -q -m gpu tests/external/test_deepnets_gpu.py``.
"""

import math

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def tf32():
    """TF32 on, as a fast training script would leave it: the norms must not use it."""
    knobs = [torch.backends.cuda.matmul, torch.backends.cudnn.conv]
    if all(hasattr(k, "fp32_precision") for k in knobs):  # torch >= 2.9
        before = [k.fp32_precision for k in knobs]
        for k in knobs:
            k.fp32_precision = "tf32"
        yield
        for k, value in zip(knobs, before, strict=True):
            k.fp32_precision = value
    else:
        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        yield
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
def test_norms_on_the_gpu_match_float64_svd(arch, tf32):
    from reference_runs.models import build
    from reference_runs.train import _bundled
    from scalingfit.norms import NORMS, log_norms

    torch.manual_seed(0)
    model = build(arch, _bundled("cifar10", arch)["model"], in_channels=3, image_size=32,
                  num_classes=10).cuda()
    state = {}
    got = log_norms(model, state=state)
    with torch.no_grad():  # a training-sized step, then the warm-started call
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    warm = log_norms(model, state=state)
    want = log_norms(model.double().cpu(), exact=True)
    for name in NORMS:
        assert abs(math.exp(warm[name] - want[name]) - 1) <= 1e-4, name
    assert got != warm


def digits(tmp_path, **kw):
    pytest.importorskip("sklearn")
    from reference_runs.train import resolve_config

    return resolve_config(overrides={"arch": "cnn", "dataset": "digits", "train_size": 256,
                                     "epochs": 8, "device": "cuda", "checkpoint_every_s": 0,
                                     "out": str(tmp_path / "run.csv"), **kw})


@pytest.mark.parametrize("arch", ["cnn", "resnet", "vit"])
@pytest.mark.parametrize("seeds", [[0], [0, 1, 2, 3]], ids=["single", "stack"])
def test_bf16_training_on_the_gpu(tmp_path, arch, seeds):
    from reference_runs.train import train
    from scalingfit.ingest.table import validate

    table = train(digits(tmp_path, arch=arch, seeds=seeds), log=lambda line: None)
    validate(table, source="gpu run")
    for _, rows in table.groupby("run_id"):
        assert rows["train_loss"].iloc[-1] < rows["train_loss"].iloc[0]


def test_an_interrupted_gpu_run_resumes(tmp_path):
    from reference_runs.train import train
    from scalingfit.norms import log_spaced_steps

    config = digits(tmp_path, seeds=[0, 1])

    def stop(line):
        if line.startswith("epoch    4"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, log=stop)
    lines = []
    table = train(config, log=lines.append)
    assert any(line.startswith("resuming") for line in lines)
    for _, rows in table.groupby("run_id"):
        assert rows["step"].tolist() == log_spaced_steps(8)
    assert pd.read_csv(tmp_path / "run.csv").shape[0] == 2 * len(log_spaced_steps(8))
