"""The N → ∞ fixed-norm perceptron theory against its limits and the reference values of
docs/perceptron_theory.md (seen with an independent solver)."""

import math

import numpy as np
import pytest
from scipy import special

from scalingfit.theory import perceptron as theory


@pytest.mark.parametrize("V", [1e-3, 0.3, 3.28, 30.0, 3e3, 1e12, 1e40])
def test_proximal_shift_solves_its_equation(V):
    # d = 2V σ(−2(u + d)) to rounding, including V = 3.28, where plain Newton cycles.
    u = np.linspace(-1200.0, 1200.0, 4001)
    d = theory.proximal_shift(u, V)
    residual = d - 2.0 * V * special.expit(-2.0 * (u + d))
    assert np.all(d >= 0) and np.all(d <= 2.0 * V)
    assert np.all(np.abs(residual) <= 1e-12 * (1.0 + np.abs(u) + d))
    assert np.all(np.diff(u + d) >= 0)  # the proximal operator is monotone


@pytest.mark.parametrize("alpha, lam_opt, eps_opt", [(2, 1.999, 0.17459), (5, 4.536, 0.08398)])
def test_optimum_matches_reference_values(alpha, lam_opt, eps_opt):
    best = theory.optimum(alpha)
    assert best.lam == pytest.approx(lam_opt, abs=6e-4)
    assert best.eps == pytest.approx(eps_opt, abs=6e-6)
    assert best.kappa > 0


def test_small_lambda_gives_the_hebb_error():
    assert float(theory.hebb_error(5)) == pytest.approx(0.16261, abs=5e-6)
    for alpha in (0.5, 5.0, 40.0):
        tiny = theory.solve_fixed_norm(alpha, 1e-5)
        assert tiny.eps == pytest.approx(float(theory.hebb_error(alpha)), abs=1e-4)


@pytest.mark.parametrize("alpha, eps_mm", [(5, 0.093827), (10, 0.049183)])
def test_max_margin_matches_reference_and_is_the_large_lambda_limit(alpha, eps_mm):
    limit = theory.max_margin(alpha)
    assert limit.eps == pytest.approx(eps_mm, abs=1e-6)
    assert limit.k > 0
    eps = theory.error_curve(alpha, [20.0, 40.0, 100.0])
    # Beyond lambda_opt, eps rises towards eps_MM from below.
    assert np.all(np.diff(eps) > 0) and eps[-1] < limit.eps < eps[-1] + 0.002


def test_max_margin_large_alpha_asymptote():
    # Opper et al. (1990): eps_MM ≈ 0.50/alpha at large alpha.
    assert theory.max_margin(4096).eps * 4096 == pytest.approx(0.5005, abs=2e-3)


def test_error_curve_uses_the_max_margin_limit_beyond_the_safe_range():
    eps = theory.error_curve(5, [50.0, theory.SAFE_LAM * 2])
    assert eps[1] == theory.max_margin(5).eps
    assert eps[0] < eps[1]


@pytest.mark.parametrize("alpha, lam", [(40, 30.0), (5, 100.0), (2, 0.05), (4096, 10.0)])
def test_quadrature_is_converged(alpha, lam):
    coarse = theory.solve_fixed_norm(alpha, lam)
    fine = theory.solve_fixed_norm(alpha, lam, start=coarse, refine=3)
    assert abs(fine.eps - coarse.eps) < 1e-9


def test_ridge_strength_is_positive_and_falls_with_lambda():
    path = theory.fixed_norm_path(5, [0.1, 1.0, 4.0, 10.0, 20.0])
    kappa = np.array([s.kappa for s in path])
    assert np.all(kappa > 0) and np.all(np.diff(kappa) < 0)
    # On separable data lambda grows only like log(1/kappa) (docs/perceptron_theory.md pitfall 4).
    assert path[3].kappa == pytest.approx(7e-4, rel=0.1)


def test_solution_is_a_fixed_point_of_the_equations():
    s = theory.solve_fixed_norm(10, 3.0)
    M, Q, V_hat = theory._hats(10, 3.0, s.theta, s.V)
    assert math.atan2(math.sqrt(Q), M) == pytest.approx(s.theta, rel=1e-10)
    assert 3.0 * s.V / math.hypot(M, math.sqrt(Q)) == pytest.approx(s.V, rel=1e-10)


def test_curves_along_training_fall_as_one_over_root_alpha_lambda():
    # At large alpha and 1 << lambda << lambda_opt, eps ≈ 0.22/sqrt(alpha*lambda): along a
    # curve the slope is 1/2, while the optima follow eps_opt ~ 1/lambda_opt.
    lams = np.array([3.0, 10.0])
    eps = theory.error_curve(1024, lams)
    slope = -np.diff(np.log(eps))[0] / np.diff(np.log(lams))[0]
    assert slope == pytest.approx(0.5, abs=0.02)
    assert eps * np.sqrt(1024 * lams) == pytest.approx([0.22, 0.22], abs=0.01)


@pytest.mark.slow
def test_predicted_exponents_tend_to_one():
    e = theory.predicted_exponents([8.0, 16.0, 32.0])
    for value, local in [(e.gamma2, e.local_gamma2), (e.gamma_conv, e.local_gamma_conv),
                         (e.gamma1_envelope, e.local_gamma1_envelope)]:
        assert 0.9 < value < local < 1.0
    assert e.gamma_pred_envelope == pytest.approx(e.gamma_conv, abs=0.01)
    assert np.all(np.diff(e.gamma1_curve_by_alpha) > 0) and e.gamma1_curve < 0.5
    with pytest.raises(ValueError):
        theory.predicted_exponents([4.0])
