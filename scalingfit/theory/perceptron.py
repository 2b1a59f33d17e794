r"""The fixed-norm logistic perceptron in the limit N → ∞: ε(λ; α), its optimum and limits.

The model (docs/design.md §2, *Perceptron*): a teacher w* with ‖w*‖² = N labels P = αN inputs
x_μ with i.i.d. zero-mean unit-variance entries, y_μ = sign(w*·x_μ/√N). A student w of
fixed norm ‖w‖ = λ√N minimises the training loss

.. math::  \sum_\mu g(\Delta_\mu), \quad g(\Delta) = \log(1 + e^{-2\Delta}),
           \quad \Delta_\mu = y_\mu\, w\cdot x_\mu/\sqrt N .

Its generalisation error is exact, ε = arccos(R)/π with R = w·w*/(‖w‖‖w*‖). Only the
first two moments of x enter as N → ∞ (universality of ERM for i.i.d. sub-Gaussian
features, Montanari & Saeed 2022), so ±1 and Gaussian inputs share the theory. Gradient
descent on the free-norm loss passes through these fixed-norm minimisers as its norm grows,
which is why ε(λ; α) is the theory curve the simulations (``reference_runs.perceptron``)
are compared with.

Equations
---------
Because a sign teacher makes the data linearly separable, the minimiser over the ball
‖w‖ ≤ λ√N lies on the sphere, and equals the ridge solution
argmin Σ g(Δ_μ) + (κ/2)‖w‖² for a unique κ(λ) > 0. In the limit N → ∞ at fixed α the
ridge problem is described by the replica-symmetric / state-evolution (equivalently
Gordon/CGMT) equations of convex empirical-risk minimisation in the teacher–student
generalised linear model (Aubin, Krzakala, Lu & Zdeborová 2020, arXiv:2006.06560, proved
there; Loureiro et al. 2021, arXiv:2102.08127; Salehi, Abbasi & Hassibi 2019,
arXiv:1906.03761). With overlaps m = w·w*/N, q = ‖w‖²/N = λ², teacher norm ρ = 1,
R = m/√q = cos θ and c = R/√(1−R²) = cot θ, and with the two label branches folded into
one (g depends on y·h only), they read, for ξ ~ N(0, 1):

.. math::

    \hat q &= \frac{\alpha}{V^2} \int d\xi\, 2\phi(\xi)\Phi(c\xi)\, d(\lambda\xi)^2, \\
    \hat m &= \frac{2\alpha}{V} \int d\xi\, \phi(\xi)\,
              \frac{\phi(c\xi)}{\sin\theta}\, d(\lambda\xi), \\
    \hat V &= \alpha \int d\xi\, 2\phi(\xi)\Phi(c\xi)\, \frac{g''(P)}{1 + V g''(P)}, \\
    V &= \frac{1}{\kappa + \hat V}, \quad m = \hat m V, \quad q = (\hat m^2 + \hat q) V^2,

where P(u) = argmin_Δ [(Δ−u)²/(2V) + g(Δ)] is the proximal operator of the loss and
d(u) = P(u) − u ≥ 0 its shift, the root of d = 2V σ(−2(u + d)) in [0, 2V]; g''(Δ) =
1/cosh²Δ. 2φ(ξ)Φ(cξ) is the (skew-normal) density of a training margin divided by λ, and
φ(cξ)/sin θ comes from the derivative of the teacher channel Φ(y R ξ/sin θ).

*Fixed-norm form.* Imposing q = λ² eliminates κ: writing M = V m̂ and Q = V² q̂ (which
are O(1) even when V → ∞),

.. math::  \cos\theta = \frac{M}{\sqrt{M^2 + Q}}, \qquad
           V_{\rm new} = \frac{\lambda V}{\sqrt{M^2 + Q}}, \qquad
           \kappa = 1/V - \hat V .

:func:`solve_fixed_norm` finds the fixed point of this map on (θ, log V), warm-started
along a λ path; ε(λ) comes out directly, with no root-finding on κ, which goes to 0 like
e^{−cλ} (κ ≈ 1e-9 at α = 5, λ = 40; pitfall 4 of ``docs/perceptron_theory.md``) and is
reported only as a diagnostic. Written in M, Q and log V, nothing overflows until
V ~ 1e308, so the logistic path stays usable to λ = 100 and beyond (at α = 2, λ = 200,
V = 6e80, a 4× finer quadrature changed ε by 1e-10).

Limits
------
* **Hebb** (λ → 0, κ → ∞): d → V, so M → αV√(2/π), Q → αV² and
  R → √(2α/π)/√(1 + 2α/π): ε_Hebb = arccos(...)/π (:func:`hebb_error`).
* **Max-margin** (λ → ∞): the loss becomes the hard-margin constraint Δ ≥ λk and the
  student the maximal-stability perceptron (Gardner 1988; Opper, Kinzel, Kleinz & Nehl
  1990). With t ~ 2φ(t)Φ(ct),

  .. math:: \sin^2\theta = \alpha \int 2\phi(t)\Phi(ct) (k - t)_+^2 dt, \qquad
            \cos\theta = 2\alpha \int \phi(t)\frac{\phi(ct)}{\sin\theta}(k - t)_+ dt,

  solved by nested root-finding (:func:`max_margin`); at large α, ε_MM ≈ 0.50/α.

Numerics
--------
* Quadrature: composite Gauss–Legendre (8 nodes per panel) on ξ ∈ [−12, 12], 800 panels,
  200 of them in the band |ξ| < min(2, 12 sin θ). Low-order Gauss–Hermite fails at large
  α or λ, where Φ(cξ) and φ(cξ) become sharp (c = cot θ ≈ 30 at α = 40, ≈ 600 at
  α = 4096) and d(λξ) develops a hinge-like kink of width ~1/λ; the band follows the
  first, the 0.04-wide panels resolve the second up to λ ≈ 100 (:data:`SAFE_LAM`). A 3×
  finer rule changes ε by < 1e-9 there (tested).
* Proximal shift: 60 vectorised bisection steps, then 6 bracketed Newton steps (plain
  Newton cycles between two points once V ≳ 3). The bracket is
  [0, min(2V, (−u)₊ + log(1 + 2V)/2 + 1)], so it stays O(|u| + log V) for astronomically
  large V. Solving for d rather than P keeps its relative precision when P ≈ u.
* Fixed point: Powell's hybrid root-finder on T(x) − x, ~15 map evaluations per λ from a
  warm start (the damped iteration x ← (x + T(x))/2 converges too, but needs ~1500
  iterations at λ = 40), with the damped iteration as fallback.

Predicted exponents
-------------------
The two laws of docs/design.md §2 are read off the theory curves (:func:`predicted_exponents`):
γ2 is the slope of log λ_opt(α) against log α, γ_conv minus the slope of log ε_opt(α),
and γ1 either minus the slope of the envelope log ε_opt against log λ_opt, or minus the
slope of log(ε/ε_opt) against log(λ/λ_opt) along the curves, before the optimum (the
collapse the paper fits). As α → ∞, λ_opt ≈ 0.88α and ε_opt ≈ 0.44/α, so γ2, γ_conv and
the envelope's γ1 all tend to 1; but along a curve, for 1 ≪ λ ≪ λ_opt,
ε(λ; α) ≈ 0.22/√(αλ): the curves of different α are parallel lines of slope 1/2, offset
by α^(−1/2), not one shared envelope. Over α from 1 to 32 the least-squares values are
γ2 = 0.93, γ_conv = 0.86, γ1(envelope) = 0.93 and γ1(along curves, λ/λ_opt in
[0.1, 0.5]) = 0.22 (0.05 at α = 1 rising to 0.33 at α = 32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

__all__ = [
    "FixedNormSolution",
    "MaxMargin",
    "Optimum",
    "generalisation_error",
    "hebb_error",
    "proximal_shift",
    "gauss_legendre",
    "solve_fixed_norm",
    "error_curve",
    "optimum",
    "max_margin",
    "PredictedExponents",
    "SAFE_LAM",
    "fixed_norm_path",
    "predicted_exponents",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def generalisation_error(R):
    """ε = arccos(R)/π: the probability that student and teacher disagree on a fresh input."""
    return np.arccos(np.clip(R, -1.0, 1.0)) / np.pi


def hebb_error(alpha):
    """The λ → 0 limit of ε(λ; α), the Hebb rule w ∝ Σ y_μ x_μ: arccos(√(2α/π)/√(1+2α/π))/π."""
    a = 2.0 * np.asarray(alpha, float) / np.pi
    return generalisation_error(np.sqrt(a / (1.0 + a)))


def gauss_legendre(lo=-12.0, hi=12.0, panels=600, order=8):
    """Nodes and weights of composite Gauss–Legendre quadrature on [lo, hi]."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    mid = 0.5 * (edges[1:] + edges[:-1])[:, None]
    return (mid + half * x).ravel(), (half * w).ravel()


def proximal_shift(u, V, *, bisections=60, newton=6):
    """Shift d = P(u) − u of the proximal operator of g(Δ) = log(1 + e^(−2Δ)).

    P(u) = argmin_Δ (Δ − u)²/(2V) + g(Δ) solves P = u + 2V σ(−2P), so d is the root of
    h(d) = d − 2V σ(−2(u + d)), increasing in d, in [0, 2V]. Bisection first, since plain
    Newton cycles between two points once V ≳ 3; then bracketed Newton steps polish it
    (h'(d) = 1 + V g''(P)).

    Parameters
    ----------
    u : array_like
        Arguments of the operator.
    V : float
        Its "variance" (> 0).

    Returns
    -------
    numpy.ndarray
        d ≥ 0, same shape as ``u``.
    """
    u = np.asarray(u, float)
    lo = np.zeros_like(u)
    # d ≤ 2V, and d ≤ (−u)₊ + log(1 + 2V)/2 + 1 (beyond it 2Vσ(−2(u + d)) < 1 < d): the
    # second bound keeps the bracket O(|u| + log V) when V is astronomically large.
    hi = np.minimum(2.0 * V, np.maximum(-u, 0.0) + 0.5 * math.log1p(2.0 * V) + 1.0)
    for _ in range(bisections):
        mid = 0.5 * (lo + hi)
        above = mid - 2.0 * V * special.expit(-2.0 * (u + mid)) > 0
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    d = 0.5 * (lo + hi)
    for _ in range(newton):
        s = special.expit(-2.0 * (u + d))
        h = d - 2.0 * V * s
        step = h / (1.0 + 4.0 * V * s * (1.0 - s))
        d = np.clip(d - step, lo, hi)
    return d


def _sech2(x):
    """g''(x) = 1/cosh²(x), without overflow at large |x|."""
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


@dataclass(frozen=True)
class FixedNormSolution:
    """The N → ∞ fixed-norm minimiser at one (α, λ).

    Attributes
    ----------
    alpha, lam : float
        α = P/N and the norm λ = ‖w‖/√N.
    theta : float
        Angle between student and teacher; R = cos θ.
    V : float
        Response ("variance") of the estimator; diverges as λ → ∞.
    kappa : float
        Ridge strength κ(λ) whose ridge solution is this one (a diagnostic; → 0 as λ → ∞,
        and it loses relative precision once it falls below ~1e-12 V̂).
    evaluations : int
        Evaluations of the fixed-point map used to solve it.
    """

    alpha: float
    lam: float
    theta: float
    V: float
    kappa: float
    evaluations: int

    @property
    def R(self):
        return math.cos(self.theta)

    @property
    def eps(self):
        return self.theta / math.pi


def _quadrature(theta, refine=1):
    """Composite Gauss–Legendre on ξ ∈ [−12, 12], refined near ξ = 0 where it must be.

    Φ(cξ) and φ(cξ) change over |ξ| ~ sin θ, which is ≈ πε and so tiny at large α; the
    band |ξ| < a = min(2, 12 sin θ) gets 200 panels and the rest 2 × 300, so that every
    panel is at most 0.04 wide and the band resolves the step of Φ(cξ) for any θ.
    ``refine`` multiplies every panel count (to check the rule).
    """
    a = min(2.0, 12.0 * math.sin(theta))
    parts = [gauss_legendre(-12.0, -a, 300 * refine), gauss_legendre(-a, a, 200 * refine),
             gauss_legendre(a, 12.0, 300 * refine)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _hats(alpha, lam, theta, V, refine=1):
    """M = V m̂, Q = V² q̂ and V̂ at (θ, V): the quadratures of the fixed point."""
    xi, w = _quadrature(theta, refine)
    sin, cos = math.sin(theta), math.cos(theta)
    c = cos / sin
    phi = np.exp(-0.5 * xi**2) / _SQRT_2PI
    margin_density = 2.0 * phi * special.ndtr(c * xi)
    teacher_slope = phi * np.exp(-0.5 * (c * xi) ** 2) / (_SQRT_2PI * sin)
    d = proximal_shift(lam * xi, V)
    M = 2.0 * alpha * np.dot(w, teacher_slope * d)
    Q = alpha * np.dot(w, margin_density * d**2)
    curvature = _sech2(lam * xi + d)
    V_hat = alpha * np.dot(w, margin_density * curvature / (1.0 + V * curvature))
    return M, Q, V_hat


def _fixed_point_map(alpha, lam, refine):
    """The fixed-norm map (θ, log V) → (θ', log V') of the module docstring, and κ."""

    def step(x):
        theta, logV = x
        V = math.exp(logV)
        M, Q, V_hat = _hats(alpha, lam, theta, V, refine)
        new = np.array([math.atan2(math.sqrt(Q), M),
                        logV + math.log(lam / math.hypot(M, math.sqrt(Q)))])
        return new, 1.0 / V - V_hat

    return step


def solve_fixed_norm(alpha, lam, *, start=None, tol=1e-12, max_iter=20000, refine=1):
    """Solve the fixed-norm equations at one (α, λ).

    The fixed point x = T(x) of the map on x = (θ, log V) is found as a root of T(x) − x
    by Powell's hybrid method (``scipy.optimize.root``, about 15 evaluations of T from a
    warm start at any λ), falling back to the plain damped iteration x ← (x + T(x))/2,
    which converges everywhere but slowly at large λ (hundreds of steps), if that fails.

    Parameters
    ----------
    alpha : float
        α = P/N > 0.
    lam : float
        λ = ‖w‖/√N > 0.
    start : FixedNormSolution, optional
        Warm start (the solution at a neighbouring λ); default: the Hebb solution.
    tol : float
        Largest accepted |T(x) − x| (θ in radians, V relative).
    max_iter : int
        Iterations of the fallback before giving up with a RuntimeError.
    refine : int
        Multiplies the number of quadrature panels (default 1: 6400 nodes); a check.

    Returns
    -------
    FixedNormSolution
    """
    if not (alpha > 0 and lam > 0):
        raise ValueError(f"alpha and lambda must be > 0, got alpha={alpha!r}, lambda={lam!r}")
    step = _fixed_point_map(alpha, lam, refine)
    if start is None:
        a = 2.0 * alpha / math.pi
        x = np.array([math.acos(math.sqrt(a / (1.0 + a))),
                      math.log(lam / math.sqrt(alpha * (1.0 + a)))])
    else:
        x = np.array([start.theta, math.log(start.V * lam / start.lam)])
    evaluations = 0

    def residual(y):
        nonlocal evaluations
        evaluations += 1
        return step(y)[0] - y

    root = optimize.root(residual, x, method="hybr", options={"xtol": 1e-14})
    if np.all(np.isfinite(root.x)) and np.abs(residual(root.x)).max() <= tol:
        x = root.x
    else:  # the slow, sure way
        for _ in range(max_iter):
            change = residual(x)
            x = x + 0.5 * change
            if np.abs(change).max() <= tol:
                break
        else:
            raise RuntimeError(f"fixed-norm equations did not converge at alpha={alpha:g}, "
                               f"lambda={lam:g} (last change {np.abs(change).max():.1e})")
    new, kappa = step(x)
    return FixedNormSolution(float(alpha), float(lam), float(new[0]), math.exp(new[1]),
                             kappa, evaluations)


#: Largest λ at which the logistic fixed-norm solution is trusted with the default
#: quadrature: the kink of d(λξ) has width ~1/λ in ξ against panels of width 0.04, and
#: refining the rule 4× changes ε by < 1e-10 at λ = 100 (α from 1 to 40) but by up to 5e-7 at
#: λ = 400. Beyond it (and before V = e^(2λk) overflows float64) the max-margin limit is used.
SAFE_LAM = 100.0


def fixed_norm_path(alpha, lams, *, refine=1, callback=None):
    """Fixed-norm solutions at every λ in ``lams``, warm-started along increasing λ.

    ``callback()``, if given, is called after each solution (for progress bars).

    Returns
    -------
    list of FixedNormSolution
        In the order of ``lams``.
    """
    lams = np.asarray(lams, float)
    solutions = [None] * len(lams)
    previous = None
    for i in np.argsort(lams, kind="stable"):
        previous = solve_fixed_norm(alpha, lams[i], start=previous, refine=refine)
        solutions[i] = previous
        if callback is not None:
            callback()
    return solutions


def error_curve(alpha, lams, *, callback=None):
    """ε(λ; α) at every λ in ``lams``; the max-margin limit ε_MM(α) where λ > SAFE_LAM.

    The logistic fixed-norm solution is used up to :data:`SAFE_LAM` (numerically exact
    there); beyond it the curve is replaced by its λ → ∞ limit, which it approaches from
    below (at α = 5: ε(100) = 0.09283, ε_MM = 0.09383).
    """
    lams = np.asarray(lams, float)
    safe = lams <= SAFE_LAM
    eps = np.empty_like(lams)
    eps[safe] = [s.eps for s in fixed_norm_path(alpha, lams[safe], callback=callback)]
    if (~safe).any():
        eps[~safe] = max_margin(alpha).eps
        if callback is not None:
            for _ in range(int((~safe).sum())):
                callback()
    return eps


@dataclass(frozen=True)
class Optimum:
    """The best fixed norm at one α: λ_opt, ε_opt = ε(λ_opt) and the ridge κ there."""

    alpha: float
    lam: float
    eps: float
    kappa: float


def optimum(alpha, *, xtol=1e-7):
    """λ_opt(α) = argmin_λ ε(λ; α) and ε_opt(α).

    A coarse log-spaced scan (warm-started) brackets the minimum; bounded Brent
    minimisation in log λ then refines it to ``xtol`` (relative in λ).
    """
    grid = np.geomspace(0.05, max(10.0, 3.0 * alpha), 24)
    path = fixed_norm_path(alpha, grid)
    best = int(np.argmin([s.eps for s in path]))
    if best in (0, len(grid) - 1):
        raise RuntimeError(f"no interior minimum of eps(lambda) on [{grid[0]:g}, "
                           f"{grid[-1]:g}] at alpha={alpha:g}")
    cache = {}

    def eps_at(log_lam):
        solution = solve_fixed_norm(alpha, math.exp(log_lam), start=path[best])
        cache[log_lam] = solution
        return solution.eps

    result = optimize.minimize_scalar(eps_at, bounds=(math.log(grid[best - 1]),
                                                      math.log(grid[best + 1])),
                                      method="bounded", options={"xatol": xtol})
    solution = cache.get(result.x) or solve_fixed_norm(alpha, math.exp(result.x),
                                                        start=path[best])
    return Optimum(float(alpha), solution.lam, solution.eps, solution.kappa)


@dataclass(frozen=True)
class MaxMargin:
    """The λ → ∞ limit at one α: the maximal-stability perceptron.

    Attributes
    ----------
    alpha, eps, R : float
        α, its generalisation error and overlap R = cos θ.
    k : float
        Stability (margin) in units of the student's norm: every training margin
        Δ_μ/λ ≥ k, the smallest ones at k.
    """

    alpha: float
    eps: float
    R: float
    k: float


def _hinge_moments(theta, k, alpha):
    """The two max-margin integrals at (θ, k), on composite Gauss–Legendre over [−14, k]."""
    sin, cos = math.sin(theta), math.cos(theta)
    c = cos / sin
    # Panels end at the kink t = k; as in _quadrature, a band |t| < a resolves Φ(ct).
    a = min(2.0, 12.0 * sin)
    if k > -a:
        parts = [gauss_legendre(-14.0, -a, 400), gauss_legendre(-a, k, 200)]
        t, w = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    else:
        t, w = gauss_legendre(-14.0, k, 400)
    phi = np.exp(-0.5 * t**2) / _SQRT_2PI
    gap = k - t
    second = alpha * np.dot(w, 2.0 * phi * special.ndtr(c * t) * gap**2)
    first = 2.0 * alpha * np.dot(w, phi * np.exp(-0.5 * (c * t) ** 2) / (_SQRT_2PI * sin)
                                 * gap)
    return second, first


def max_margin(alpha):
    """Solve the max-margin (λ → ∞) equations of the module docstring for (R, k).

    For each angle θ the first equation fixes k (its right side increases with k); the
    second is then a one-dimensional root in θ, bracketed by θ → 0 (residual > 0) and
    θ → π/2 (residual < 0).
    """

    def stability(theta):
        target = math.sin(theta) ** 2
        return optimize.brentq(lambda k: _hinge_moments(theta, k, alpha)[0] - target,
                               -13.0, 60.0, xtol=1e-15, rtol=1e-15)

    def mismatch(theta):
        return math.cos(theta) - _hinge_moments(theta, stability(theta), alpha)[1]

    theta = optimize.brentq(mismatch, 1e-6, 0.5 * math.pi - 1e-9, xtol=1e-15, rtol=1e-15)
    return MaxMargin(float(alpha), theta / math.pi, math.cos(theta), stability(theta))


@dataclass(frozen=True)
class PredictedExponents:
    """The exponents of the two laws that the N → ∞ theory predicts over a range of α.

    Least-squares slopes over the α values given (what a fit to a sweep over that range
    estimates), and the same slopes between the two largest α (``local_*``: the trend
    towards the large-α limits γ2 = γ_conv = γ1_envelope = 1, γ1_curve = 1/2).

    Attributes
    ----------
    alphas, lam_opt, eps_opt : numpy.ndarray
        α values and the optimum λ_opt(α), ε_opt(α) at each.
    gamma2 : float
        Law 2, λ_opt ∝ α^γ2.
    gamma_conv : float
        ε_opt ∝ α^(−γ_conv).
    gamma1_envelope : float
        Law 1 read from the optima: ε_opt ∝ λ_opt^(−γ1).
    gamma1_curve : float
        Law 1 read along each curve, as training sees it: minus the slope of
        log(ε/ε_opt) against log(λ/λ_opt), pooled over α, for λ/λ_opt in ``window``.
        It differs from ``gamma1_envelope``: at large α, ε(λ; α) ≈ 0.22/√(αλ) for
        1 ≪ λ ≪ λ_opt, so the curves of different α do not share one envelope.
    window : tuple of float
        The λ/λ_opt window of ``gamma1_curve``.
    gamma1_curve_by_alpha : numpy.ndarray
        The same slope for each α on its own.
    local_gamma2, local_gamma_conv, local_gamma1_envelope : float
        Slopes between the two largest α.
    """

    alphas: np.ndarray
    lam_opt: np.ndarray
    eps_opt: np.ndarray
    gamma2: float
    gamma_conv: float
    gamma1_envelope: float
    gamma1_curve: float
    window: tuple
    gamma1_curve_by_alpha: np.ndarray
    local_gamma2: float
    local_gamma_conv: float
    local_gamma1_envelope: float

    @property
    def gamma_pred_envelope(self):
        """γ1_envelope·γ2: equals γ_conv when the optima lie on one power law."""
        return self.gamma1_envelope * self.gamma2

    @property
    def gamma_pred_curve(self):
        """γ1_curve·γ2: the combination the laws predict when γ1 is read along curves."""
        return self.gamma1_curve * self.gamma2


def _slope(x, y):
    return float(np.polyfit(x, y, 1)[0])


def predicted_exponents(alphas, *, window=(0.1, 0.5), points=12):
    """The exponents of the two laws predicted by the theory over the α values given.

    Parameters
    ----------
    alphas : sequence of float
        At least two distinct α values (e.g. those of a simulated sweep).
    window : (float, float)
        Range of λ/λ_opt over which ``gamma1_curve`` is read (the power-law part).
    points : int
        λ values per α in that window.

    Returns
    -------
    PredictedExponents
    """
    alphas = np.unique(np.asarray(alphas, float))
    if len(alphas) < 2:
        raise ValueError("need at least two distinct alpha values for a slope")
    optima = [optimum(a) for a in alphas]
    lam_opt = np.array([o.lam for o in optima])
    eps_opt = np.array([o.eps for o in optima])
    log_a, log_l, log_e = np.log(alphas), np.log(lam_opt), np.log(eps_opt)
    ratios = np.geomspace(window[0], window[1], points)
    by_alpha, xs, ys = [], [], []
    for a, o in zip(alphas, optima, strict=True):
        eps = error_curve(a, o.lam * ratios)
        x, y = np.log(ratios), np.log(eps / o.eps)
        by_alpha.append(-_slope(x, y))
        xs.append(x)
        ys.append(y)
    return PredictedExponents(
        alphas=alphas, lam_opt=lam_opt, eps_opt=eps_opt,
        gamma2=_slope(log_a, log_l), gamma_conv=-_slope(log_a, log_e),
        gamma1_envelope=-_slope(log_l, log_e),
        gamma1_curve=-_slope(np.concatenate(xs), np.concatenate(ys)), window=tuple(window),
        gamma1_curve_by_alpha=np.array(by_alpha),
        local_gamma2=float((log_l[-1] - log_l[-2]) / (log_a[-1] - log_a[-2])),
        local_gamma_conv=float(-(log_e[-1] - log_e[-2]) / (log_a[-1] - log_a[-2])),
        local_gamma1_envelope=float(-(log_e[-1] - log_e[-2]) / (log_l[-1] - log_l[-2])))
