"""Stage 2: the likelihood of the run estimates, checked against a brute-force Gaussian."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.stats import multivariate_normal

from scalingfit.fitting.likelihood import PARAMS, RunEstimates, level_loglik
from scalingfit.fitting.model import build_model


def fake_summaries(seed=0, censored=()):
    """Two groups, three P levels each, two runs per level, random SPD covariances."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1], 6)
    level = np.repeat(np.arange(6), 2)
    a = rng.normal(size=(12, 3, 3)) * 0.05
    cov = a @ a.transpose(0, 2, 1) + 1e-3 * np.eye(3)
    flags = np.zeros(12, bool)
    flags[list(censored)] = True
    return RunEstimates(
        groups=["a / x", "b / y"], run_ids=np.array([f"r{i}" for i in range(12)]),
        group=group, level=level, ell=np.tile(np.repeat([-0.5, 0.0, 0.5], 2), 2),
        z=rng.normal(size=(12, 3)), cov=cov, loading=rng.normal(size=(12, 3, 4)) * 0.02,
        censored=flags, x_last=rng.normal(size=12), y_last=rng.normal(size=12),
        y_last_sd=np.full(12, 0.05), x_scale=np.array([1.5, 3.0]),
        x_center=np.array([2.0, 300.0]), ell_center=np.array([9.0, 9.5]),
        seeded_levels=np.array([True, True]))


def draw(seed=1):
    rng = np.random.default_rng(seed)
    return dict(gamma1=rng.uniform(0.5, 2, 2), gamma2=rng.uniform(0.3, 1.5, 2),
                gamma_conv=rng.uniform(0.2, 1, 2), kappa=rng.normal(size=2),
                nu=rng.normal(size=2), tau_gamma=rng.uniform(0.01, 0.1, 2),
                sigma_x=rng.uniform(0.01, 0.1, 2), sigma_y=rng.uniform(0.01, 0.1, 2),
                omega_x=rng.uniform(0.01, 0.2, 2), omega_y=rng.uniform(0.01, 0.2, 2),
                shape_error=rng.normal(size=(2, 4)))


def brute_force(data, p):
    """Each level's runs jointly normal, the level effects in the covariance."""
    g = data.group
    common = (data.loading * p["shape_error"][g][:, None, :]).sum(axis=2)
    mean = np.stack([p["gamma1"][g] * data.x_scale[g],
                     p["kappa"][g] + p["gamma2"][g] / data.x_scale[g] * data.ell,
                     p["nu"][g] - p["gamma_conv"][g] * data.ell], axis=1) + common
    out = []
    for level in range(data.level.max() + 1):
        runs = np.flatnonzero(data.level == level)
        n = len(runs)
        cov = np.zeros((3 * n, 3 * n))
        load = np.zeros((3 * n, 2))
        for i, r in enumerate(runs):
            k = g[r]
            cov[3 * i:3 * i + 3, 3 * i:3 * i + 3] = data.cov[r] + np.diag(
                [p["tau_gamma"][k] ** 2, p["sigma_x"][k] ** 2, p["sigma_y"][k] ** 2])
            load[3 * i + 1, 0], load[3 * i + 2, 1] = p["omega_x"][k], p["omega_y"][k]
        out.append(multivariate_normal(mean[runs].ravel(), cov + load @ load.T)
                   .logpdf(data.z[runs].ravel()))
    return np.array(out)


def test_integrating_out_the_level_effects_is_exact():
    data, p = fake_summaries(), draw()
    np.testing.assert_allclose(level_loglik(data, p), brute_force(data, p), rtol=1e-10)


def test_the_model_evaluates_the_same_likelihood():
    data = fake_summaries(censored=[3])
    model = build_model(data)
    names = PARAMS
    outputs = model.replace_rvs_by_values([model["loglik"]] + [model[k] for k in names])
    potential, *values = model.compile_fn(outputs, inputs=model.value_vars,
                                          on_unused_input="ignore")(model.initial_point())
    p = dict(zip(names, values))
    assert float(potential) == pytest.approx(level_loglik(data, p).sum(), rel=1e-9)


def test_a_censored_run_only_bounds_its_optimum():
    data, p = fake_summaries(censored=[0]), draw()
    base = level_loglik(data, p)
    moved = fake_summaries(censored=[0])
    moved.z[0, 1:] += 5.0  # its own (unreliable) optimum estimate is not used ...
    np.testing.assert_allclose(level_loglik(moved, p), base)
    moved.x_last[0] += 3.0  # ... but how far it got is
    assert level_loglik(moved, p)[0] < base[0]


def test_tying_the_convergence_exponent_removes_it_from_the_free_parameters():
    data = fake_summaries()
    free = {v.name for v in build_model(data).free_RVs}
    tied = {v.name for v in build_model(data, tie_convergence=True).free_RVs}
    assert "gamma_conv" in free | {n.removeprefix("offset_") for n in free}
    assert not any("gamma_conv" in name for name in tied)


def test_pooling_prior_is_the_compound_symmetric_normal():
    from scalingfit.fitting.model import _compound_normal_logp

    d, a, b = np.array([0.3, -0.1, 0.25, 0.05]), 0.2**2, 1.5**2
    expected = multivariate_normal(np.zeros(4), a * np.eye(4) + b * np.ones((4, 4))).logpdf(d)
    assert float(_compound_normal_logp(pt.as_tensor(d), a, b).eval()) == pytest.approx(expected)
