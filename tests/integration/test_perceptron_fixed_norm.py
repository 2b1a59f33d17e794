"""The theory against finite-N fixed-norm minimisers, computed independently (small N; the
N = 2000 version is benchmarks/perceptron_theory_check.py)."""

import numpy as np
import pytest

from reference_runs.perceptron_fixed_norm import (
    fixed_norm_errors,
    hebb_student,
    sphere_minimiser,
    teacher_student,
)
from scalingfit.theory import perceptron as theory


def test_finite_n_minimisers_follow_the_theory():
    # N = 300, alpha = 5, 4 seeds: the finite-N scatter of eps is ~0.005 per seed.
    lams = np.array([0.05, 0.5, 2.0, 4.5, 10.0, 20.0])
    runs = np.array([fixed_norm_errors(300, 5.0, lams, seed)[0] for seed in range(4)])
    gap = runs.mean(0) - theory.error_curve(5.0, lams)
    assert np.abs(gap).max() < 0.01
    # The wrong loss convention log(1+e^-Δ) moves the lambda axis by 2 (eps(λ/2)), and
    # would be told apart here: at lambda = 0.5 it is off by 0.019.
    wrong = theory.error_curve(5.0, lams[1:2] / 2)
    assert abs(runs.mean(0)[1] - wrong[0]) > 0.01


def test_sphere_minimiser_is_a_constrained_minimum():
    _, z = teacher_student(100, 300, seed=1)
    u = sphere_minimiser(z, 3.0)
    assert np.linalg.norm(u) == pytest.approx(1.0)

    def loss(v):
        return np.mean(np.logaddexp(0.0, -2.0 * 3.0 * z @ v / np.linalg.norm(v)))

    rng = np.random.default_rng(0)
    for _ in range(20):
        assert loss(u) <= loss(u + 1e-3 * rng.standard_normal(100))


def test_small_lambda_minimiser_is_hebb_and_hebb_error_matches_formula():
    teacher, z = teacher_student(400, 2000, seed=2, inputs="gaussian")
    assert sphere_minimiser(z, 1e-3) @ hebb_student(z) > 0.99999
    errors = [fixed_norm_errors(400, 5.0, [1e-3], seed)[1] for seed in range(3)]
    assert np.mean(errors) == pytest.approx(float(theory.hebb_error(5.0)), abs=0.01)
