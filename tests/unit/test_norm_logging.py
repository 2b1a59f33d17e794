"""scalingfit.norms: log-spaced steps and norms logged to CSV from a training loop."""

import math

import pandas as pd
import pytest

from scalingfit.errors import ScalingfitError
from scalingfit.norms import MetricWriter, NormLogger, log_spaced_steps


def test_log_spaced_steps():
    steps = log_spaced_steps(500)
    assert steps[0] == 0 and steps[-1] == 500 and steps == sorted(set(steps))
    assert 35 <= len(steps) <= 51
    ratios = [b / a for a, b in zip(steps[-20:-1], steps[-19:], strict=True)]
    assert max(ratios) / min(ratios) < 1.2  # evenly spaced in log at the end
    assert log_spaced_steps(6) == [0, 1, 2, 3, 4, 5, 6]
    assert log_spaced_steps(0) == [0]


def test_norm_logger_writes_csv_at_chosen_steps(tmp_path):
    torch = pytest.importorskip("torch")
    from scalingfit.norms import log_norms

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    path = tmp_path / "norms.csv"
    with NormLogger(model, steps=[0, 2, 5], csv=path, exact=True) as logger:
        for step in range(7):
            logged = logger(step, test_error=0.5 / (step + 1))
            assert (logged is not None) == (step in (0, 2, 5))
            with torch.no_grad():
                model[0].weight.mul_(1.1)
    table = pd.read_csv(path)
    assert table["step"].tolist() == [0, 2, 5]
    assert table["test_error"].tolist() == pytest.approx([0.5, 0.5 / 3, 0.5 / 6])
    # The last row is the model as it was at step 5, two growths of 10% ago.
    with torch.no_grad():
        model[0].weight.div_(1.1 ** 2)
    want = log_norms(model, exact=True)
    for name, value in want.items():
        assert table[f"lognorm_{name}"].iloc[-1] == pytest.approx(value, rel=1e-6)
    assert math.isclose(table["lognorm_spectral_product"].diff().iloc[-1],
                        3 * math.log(1.1), rel_tol=1e-6)  # only the first layer grew


def test_csv_columns_must_not_change(tmp_path):
    writer = MetricWriter(csv=tmp_path / "m.csv")
    writer.log(0, {"a": 1.0})
    with pytest.raises(ScalingfitError, match="log the same values"):
        writer.log(1, {"a": 1.0, "b": 2.0})
    # An existing file is appended to, with its header kept.
    MetricWriter(csv=tmp_path / "m.csv").log(2, {"a": 3.0})
    assert pd.read_csv(tmp_path / "m.csv")["a"].tolist() == [1.0, 3.0]
