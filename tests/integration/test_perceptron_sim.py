"""The batched perceptron simulator: canonical output, the physics it must reproduce, the
optimisers and the command line."""

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from reference_runs.__main__ import main  # noqa: E402
from reference_runs.perceptron import PerceptronConfig, log_steps, simulate  # noqa: E402
from scalingfit.errors import ScalingfitError  # noqa: E402
from scalingfit.ingest.table import validate  # noqa: E402
from scalingfit.theory import perceptron as theory  # noqa: E402


def _small(**overrides):
    settings = dict(n=100, alphas=(1.0, 4.0), seeds=2, steps=200, log_points=20,
                    device="cpu")
    return PerceptronConfig(**{**settings, **overrides})


def test_table_is_canonical_and_complete():
    config = _small()
    table = simulate(config)
    assert validate(table, source="test") is not None
    assert table.run_id.nunique() == 4
    assert set(table.train_size) == {100, 400}
    expected_steps = log_steps(200, 20)
    assert expected_steps[0] == 0 and expected_steps[-1] == 200
    for _, run in table.groupby("run_id"):
        assert run.step.tolist() == expected_steps.tolist()
        assert run.norm_l2.iloc[0] == pytest.approx(1e-3, rel=0.3)   # the small init
        assert np.all(np.diff(run.norm_l2.iloc[1:]) > 0)            # GD's norm grows
    assert (table.architecture == "perceptron").all()
    assert (table.dataset == "teacher-student").all()
    assert "n_test" not in table
    for column in ("optimizer", "lr", "lr_schedule", "alpha", "train_error", "train_loss"):
        assert column in table


def test_first_step_is_the_hebb_rule():
    # From a tiny initialisation all margins are ~0, so step 1 moves w along Σ y x.
    table = simulate(_small(n=400, alphas=(5.0,), seeds=4, steps=1, log_points=2))
    first = table[table.step == 1].test_error
    assert first.mean() == pytest.approx(float(theory.hebb_error(5.0)), abs=0.01)


def test_a_run_does_not_depend_on_what_it_is_batched_with():
    together = simulate(_small(alphas=(1.0, 4.0)))
    alone = simulate(_small(alphas=(4.0,)))
    a = together[together.train_size == 400].reset_index(drop=True)
    b = alone.reset_index(drop=True)
    assert np.allclose(a.test_error, b.test_error, atol=1e-5)
    assert np.allclose(a.norm_l2, b.norm_l2, rtol=1e-5)


@pytest.mark.slow
def test_gd_converges_onto_the_fixed_norm_curve():
    # N = 300, alpha = 4, 4 seeds. GD starts at the Hebb rule and lags the N -> infinity
    # fixed-norm curve at first (its direction has not relaxed: gap 0.014 at lambda ≈ 1);
    # the gap shrinks monotonically and from lambda = 2 on it is within finite-N scatter.
    table = simulate(PerceptronConfig(n=300, alphas=(4.0,), seeds=4, steps=300,
                                      schedule="curvature", log_points=30, device="cpu"))
    lam_opt = theory.optimum(4.0).lam
    by_step = table[table.step > 0].groupby("step")[["norm_l2", "test_error"]].mean()
    gap = by_step.test_error - theory.error_curve(4.0, by_step.norm_l2.to_numpy())
    before = (by_step.norm_l2 <= lam_opt).to_numpy()
    assert np.all(gap[before] > 0) and np.all(np.diff(gap[before]) < 0)
    assert np.abs(gap[(by_step.norm_l2 >= 2.0).to_numpy()]).max() < 0.005
    assert by_step.norm_l2.max() > 2 * lam_opt


@pytest.mark.slow
def test_curvature_schedule_traces_the_same_path_as_constant_steps():
    constant = simulate(_small(alphas=(2.0,), steps=3000, log_points=40))
    adaptive = simulate(_small(alphas=(2.0,), steps=300, log_points=40, schedule="curvature"))
    for seed in (0, 1):
        a, b = constant[constant.seed == seed], adaptive[adaptive.seed == seed]
        top = min(a.norm_l2.max(), b.norm_l2.max())
        assert top > 4.0
        grid = np.geomspace(2.0, top, 20)
        eps_a = np.interp(np.log(grid), np.log(a.norm_l2.iloc[1:]), a.test_error.iloc[1:])
        eps_b = np.interp(np.log(grid), np.log(b.norm_l2.iloc[1:]), b.test_error.iloc[1:])
        assert np.abs(eps_a - eps_b).max() < 1e-3
    # ... and it gets there in 10x fewer steps.
    assert adaptive.norm_l2.max() > constant.norm_l2.max()


@pytest.mark.slow
def test_optimisers_behave_as_documented():
    gd = simulate(_small(alphas=(4.0,), steps=400))
    wd = simulate(_small(alphas=(4.0,), steps=400, optimizer="gd-wd", weight_decay=0.05))
    # Weight decay stops the norm at the ridge solution, whose kappa = alpha * wd.
    assert wd.norm_l2.iloc[-1] < 0.6 * gd.norm_l2.iloc[-1]
    last = wd.groupby("run_id").norm_l2.apply(lambda s: s.iloc[-1] / s.iloc[-5])
    assert np.all(np.abs(last - 1) < 0.01)

    ramp = simulate(_small(alphas=(4.0,), steps=400, optimizer="projected", radius=(0.1, 10)))
    for step, lam in zip(ramp.step, ramp.norm_l2, strict=True):
        assert lam == pytest.approx(0.1 * 100 ** (step / 400), rel=1e-4)
    assert set(np.diff(np.unique(ramp.step))) == {20}   # evenly spaced in log lambda
    fixed = simulate(_small(alphas=(4.0,), steps=400, optimizer="projected", radius=(3, 3)))
    assert np.allclose(fixed.norm_l2, 3.0, rtol=1e-4)
    assert (fixed.radius == "3").all()
    # At a fixed norm, projected GD converges to that norm's fixed-norm minimiser.
    final = fixed[fixed.step == 400].test_error.mean()
    assert final == pytest.approx(theory.error_curve(4.0, [3.0])[0], abs=0.03)

    adam = simulate(_small(alphas=(4.0,), steps=400, optimizer="adam"))
    assert np.all(np.diff(adam.groupby("step").norm_l2.mean().iloc[1:]) > 0)
    assert adam.test_error.iloc[-1] < 0.2


def test_gaussian_inputs_and_float64():
    table = simulate(_small(inputs="gaussian", dtype="float64", steps=50))
    assert (table.inputs == "gaussian").all()
    assert table[table.step == 50].train_error.max() < 0.3


@pytest.mark.parametrize("bad", [dict(alphas=(0.0,)), dict(optimizer="sgd"),
                                 dict(optimizer="adam", schedule="curvature"),
                                 dict(radius=(1.0, -1.0)), dict(lr=-1.0),
                                 dict(alphas=(1.0, 1.001))])
def test_bad_settings_are_one_clear_error(bad):
    with pytest.raises(ScalingfitError, match="invalid perceptron settings"):
        _small(**bad)


def test_command_line_writes_a_canonical_csv(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    code = main(["perceptron", "--n", "50", "--alpha", "1,2", "--seeds", "2", "--steps",
                 "30", "--optimizer", "gd-wd", "--out", str(out), "-q"])
    assert code == 0
    table = validate(pd.read_csv(out), source=str(out))
    assert table.run_id.nunique() == 4 and (table.optimizer == "gd-wd").all()
    assert list(tmp_path.iterdir()) == [out]      # no temporary file left behind

    code = main(["perceptron", "--n", "50", "--alpha", "0", "--out", str(out), "-q"])
    assert code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: invalid perceptron settings") and "\n" not in message


def test_theory_command_writes_the_curves(tmp_path):
    out = tmp_path / "theory.csv"
    assert main(["perceptron-theory", "--alpha", "5", "--points", "7", "--lam-max", "400",
                 "--out", str(out), "-q"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["alpha", "lam", "eps", "solution"]
    assert table.lam.iloc[0] == pytest.approx(0.01) and table.lam.iloc[-1] == 400
    assert (table.solution == np.where(table.lam <= 100, "fixed-norm",
                                       "max-margin limit")).all()
    assert table.eps.iloc[0] == pytest.approx(float(theory.hebb_error(5)), abs=0.002)


@pytest.mark.gpu
def test_gpu_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = simulate(_small(device="cpu"))
    gpu = simulate(_small(device="cuda"))
    assert np.allclose(cpu.test_error, gpu.test_error, atol=1e-4)
    assert np.allclose(cpu.norm_l2, gpu.norm_l2, rtol=1e-4)
    assert math.isfinite(gpu.train_loss.sum())
