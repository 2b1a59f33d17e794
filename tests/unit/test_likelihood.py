"""Stage 2: the likelihood of the run estimates, checked against a brute-force Gaussian, and
law 1's exponent read off the envelope."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy.stats import multivariate_normal

from scalingfit.fitting.laws import envelope
from scalingfit.fitting.likelihood import PARAMS, RunEstimates, envelope_slope, level_loglik
from scalingfit.fitting.model import build_model

SEGMENTS = 4


def fake_estimates(seed=0, censored=()):
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
        ell_range=np.array([[-0.5, 0.5], [-0.5, 0.5]]), seeded_levels=np.array([True, True]),
        log_slopes=np.log(rng.uniform(0.5, 2.0, (2, SEGMENTS))),
        slope_loading=rng.normal(size=(2, SEGMENTS, 4)) * 0.05,
        knots=np.tile(np.linspace(-2, 2, SEGMENTS + 1), (2, 1)), width=np.array([0.5, 0.5]))


def draw(seed=1):
    rng = np.random.default_rng(seed)
    return dict(gamma2=rng.uniform(0.3, 1.5, 2), gamma_conv=rng.uniform(0.2, 1, 2),
                kappa=rng.normal(size=2), nu=rng.normal(size=2), alpha=rng.normal(size=2),
                offset_slope=rng.normal(0, 0.1, 2), tau_offset=rng.uniform(0.01, 0.1, 2),
                sigma_x=rng.uniform(0.01, 0.1, 2), sigma_y=rng.uniform(0.01, 0.1, 2),
                rho_run=rng.uniform(-0.8, 0.8, 2), omega_offset=rng.uniform(0.01, 0.2, 2),
                omega_x=rng.uniform(0.01, 0.2, 2), omega_y=rng.uniform(0.01, 0.2, 2),
                rho_size=rng.uniform(-0.8, 0.8, 2), shape_error=rng.normal(size=(2, 4)))


def brute_force(data, p):
    """Each level's runs jointly normal, the level effects in the covariance."""
    g = data.group
    common = (data.loading * p["shape_error"][g][:, None, :]).sum(axis=2)
    mean = np.stack([p["alpha"][g] + p["offset_slope"][g] * data.ell,
                     p["kappa"][g] + p["gamma2"][g] / data.x_scale[g] * data.ell,
                     p["nu"][g] - p["gamma_conv"][g] * data.ell], axis=1) + common
    out = []
    for level in range(data.level.max() + 1):
        runs = np.flatnonzero(data.level == level)
        k = g[runs[0]]
        sd = np.array([p["tau_offset"][k], p["sigma_x"][k], p["sigma_y"][k]])
        corr = np.eye(3)
        corr[1, 2] = corr[2, 1] = p["rho_run"][k]
        omega = np.array([p["omega_offset"][k], p["omega_x"][k], p["omega_y"][k]])
        corr_size = np.eye(3)
        corr_size[1, 2] = corr_size[2, 1] = p["rho_size"][k]
        run_cov = np.outer(sd, sd) * corr
        size_cov = np.outer(omega, omega) * corr_size
        n = len(runs)
        cov = np.kron(np.ones((n, n)), size_cov)
        for i, r in enumerate(runs):
            cov[3 * i:3 * i + 3, 3 * i:3 * i + 3] += data.cov[r] + run_cov
        out.append(multivariate_normal(mean[runs].ravel(), cov).logpdf(data.z[runs].ravel()))
    return np.array(out)


def test_integrating_out_the_level_effects_is_exact():
    data, p = fake_estimates(), draw()
    np.testing.assert_allclose(level_loglik(data, p), brute_force(data, p), rtol=1e-10)


def test_the_model_evaluates_the_same_likelihood():
    data = fake_estimates(censored=[3])
    model = build_model(data, at_end="bound")
    outputs = model.replace_rvs_by_values([model["loglik"]] + [model[k] for k in PARAMS])
    potential, *values = model.compile_fn(outputs, inputs=model.value_vars,
                                          on_unused_input="ignore")(model.initial_point())
    p = dict(zip(PARAMS, values))
    expected = level_loglik(data, p, at_end="bound").sum()
    assert float(potential) == pytest.approx(expected, rel=1e-9)


_COMPILED_KEY = """
import sys
import pytensor
from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key
sys.path.insert(0, {here!r})
from test_likelihood import fake_estimates
from scalingfit.fitting.model import build_model
model = build_model(fake_estimates(seed={seed}))
logp = model.logp()
fn = pytensor.function(model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)],
                       mode="NUMBA")
print(numba_funcify_and_cache_key(fn.maker.fgraph)[1])
"""


def test_the_compiled_model_is_the_same_for_all_data_of_one_structure():
    """numba caches the compiled log density under a key of its graph: the data must enter
    as inputs, not constants, and the graph must not change from one process to the next,
    or every fit compiles anew (39 s of the 7,680-row speed benchmark's 68)."""
    import subprocess
    import sys
    from pathlib import Path

    keys = [subprocess.run([sys.executable, "-c", _COMPILED_KEY.format(
                here=str(Path(__file__).parent), seed=seed)],
                capture_output=True, text=True, check=True).stdout.split()[-1]
            for seed in (0, 3)]
    assert keys[0] == keys[1] and len(keys[0]) == 64


def test_a_run_without_an_optimum_is_a_bound_or_its_last_point():
    data, p = fake_estimates(censored=[0]), draw()
    base = level_loglik(data, p, at_end="bound")
    moved = fake_estimates(censored=[0])
    moved.z[0, 1:] += 5.0  # with bounds its own (last-point) estimate is not used ...
    np.testing.assert_allclose(level_loglik(moved, p, at_end="bound"), base)
    moved.x_last[0] += 3.0  # ... but how far it got is
    assert level_loglik(moved, p, at_end="bound")[0] < base[0]
    # taken as the optimum, it is a run like the others
    np.testing.assert_allclose(level_loglik(data, p, at_end="optimum"), brute_force(data, p),
                               rtol=1e-10)


def test_gamma1_is_the_envelope_s_mean_slope_where_the_optima_lie():
    data, p = fake_estimates(), draw()
    gamma1 = envelope_slope(data, p["kappa"], p["gamma2"], p["shape_error"])
    for g in range(2):
        slopes = data.log_slopes[g] - data.slope_loading[g] @ p["shape_error"][g]
        lo, hi = (p["kappa"][g] + p["gamma2"][g] / data.x_scale[g] * data.ell_range[g])
        ends = envelope(np.array([lo, hi]), slopes, data.knots[g], data.width[g])
        secant = -(ends[1] - ends[0]) / (hi - lo) / data.x_scale[g]
        assert gamma1[g] == pytest.approx(secant, rel=1e-6)
    # the same in PyTensor, and with a leading axis of draws
    symbolic = envelope_slope(data, pt.as_tensor(p["kappa"]), pt.as_tensor(p["gamma2"]),
                              pt.as_tensor(p["shape_error"]), xp=pt).eval()
    np.testing.assert_allclose(symbolic, gamma1, rtol=1e-9)
    stacked = envelope_slope(data, np.stack([p["kappa"]] * 3), np.stack([p["gamma2"]] * 3),
                             np.stack([p["shape_error"]] * 3))
    np.testing.assert_allclose(stacked, np.stack([gamma1] * 3), rtol=1e-12)


def test_tying_the_convergence_exponent_removes_it_from_the_free_parameters():
    data = fake_estimates()
    free = {v.name for v in build_model(data).free_RVs}
    tied = {v.name for v in build_model(data, tie_convergence=True).free_RVs}
    assert "gamma_conv" in free
    assert not any("gamma_conv" in name for name in tied)


def test_pooling_prior_is_the_compound_symmetric_normal():
    from scalingfit.fitting.model import _compound_normal_logp

    d, a, b = np.array([0.3, -0.1, 0.25, 0.05]), 0.2**2, 1.5**2
    expected = multivariate_normal(np.zeros(4), a * np.eye(4) + b * np.ones((4, 4))).logpdf(d)
    assert float(_compound_normal_logp(pt.as_tensor(d), a, b).eval()) == pytest.approx(expected)
