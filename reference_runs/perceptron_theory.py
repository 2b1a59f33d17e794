"""N → ∞ theory of the fixed-norm logistic perceptron: ε(λ; α) curves, optima and limits.

    python -m reference_runs perceptron-theory --alpha 2,5,10 --out theory.csv \\
        [--lam-min 0.01] [--lam-max 100] [--points 121] [--exponents]

Writes one row per (α, λ) grid point, λ log-spaced from ``--lam-min`` to ``--lam-max``,
with columns ``alpha, lam, eps`` and ``solution``, which says what the row is:

* ``fixed-norm``: the N → ∞ minimiser of the logistic loss on the sphere ‖w‖ = λ√N
  (:func:`scalingfit.theory.perceptron.solve_fixed_norm`), for λ ≤ 100, where it is
  numerically exact (a 3×-finer quadrature changes ε by < 1e-10);
* ``max-margin limit``: for λ > 100 (only with ``--lam-max`` above 100), where the
  logistic path would need a finer quadrature and V → ∞ overflows soon after, the row
  holds the λ → ∞ limit ε_MM(α) instead, which ε(λ) approaches from below (α = 5:
  ε(100) = 0.09283, ε_MM = 0.09383).

Also prints, per α, λ_opt, ε_opt, the Hebb (λ → 0) and max-margin (λ → ∞) errors, and
with ``--exponents`` the exponents of the two laws that the theory predicts over the α
values given (:func:`scalingfit.theory.perceptron.predicted_exponents`; it needs at least
two distinct α, checked before anything is solved).

Progress goes to stderr as for ``perceptron``: a bar on a terminal, plain lines otherwise
(at the start, about every 10 % of the points but at most every 30 s, and at the end);
``-q`` silences it, not the results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalingfit.errors import ScalingfitError
from scalingfit.theory.perceptron import (
    SAFE_LAM,
    error_curve,
    hebb_error,
    max_margin,
    optimum,
    predicted_exponents,
)

from .config import float_list

__all__ = ["theory_table", "add_arguments", "run"]


def theory_table(alphas, lams, *, callback=None) -> pd.DataFrame:
    """ε(λ; α) on the grid ``lams`` for each α: columns alpha, lam, eps, solution."""
    frames = []
    for alpha in alphas:
        eps = error_curve(alpha, lams, callback=callback)
        frames.append(pd.DataFrame({
            "alpha": alpha, "lam": lams, "eps": eps,
            "solution": np.where(lams <= SAFE_LAM, "fixed-norm", "max-margin limit")}))
    return pd.concat(frames, ignore_index=True)


def add_arguments(parser):
    parser.add_argument("--alpha", type=float_list, required=True, metavar="A,B,...",
                        help="alpha = P/N values")
    parser.add_argument("--lam-min", type=float, default=0.01, help="smallest lambda (0.01)")
    parser.add_argument("--lam-max", type=float, default=100.0, help="largest lambda (100)")
    parser.add_argument("--points", type=int, default=121,
                        help="log-spaced lambda values per alpha (default 121)")
    parser.add_argument("--exponents", action="store_true",
                        help="also print the exponents the theory predicts over these alphas")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output (the results are still printed)")


def run(args):
    from scalingfit.atomic import atomic_path
    from scalingfit.progress import Progress

    if min(args.alpha) <= 0 or not 0 < args.lam_min < args.lam_max or args.points < 2:
        raise ScalingfitError("need alpha > 0, 0 < --lam-min < --lam-max and --points ≥ 2.")
    alphas = sorted(set(args.alpha))
    if args.exponents and len(alphas) < 2:
        raise ScalingfitError("--exponents needs at least two alpha values, got "
                              f"{', '.join(f'{a:g}' for a in alphas)}.")
    lams = np.geomspace(args.lam_min, args.lam_max, args.points)
    with Progress("perceptron theory", "", len(alphas) * len(lams), "point",
                  quiet=args.quiet) as progress:
        table = theory_table(alphas, lams, callback=progress.advance)
        progress.note(f"optima and limits of {len(alphas)} alpha"
                      f"{'s' if len(alphas) > 1 else ''}")
        optima = [optimum(a) for a in alphas]
        limits = [max_margin(a) for a in alphas]
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"wrote {len(table)} rows ({len(alphas)} alphas x {len(lams)} lambdas) to {args.out}")
    print(f"{'alpha':>8} {'lambda_opt':>11} {'eps_opt':>9} {'eps_Hebb':>9} {'eps_MM':>9}")
    for alpha, best, limit in zip(alphas, optima, limits, strict=True):
        print(f"{alpha:8.4g} {best.lam:11.4f} {best.eps:9.5f} {float(hebb_error(alpha)):9.5f} "
              f"{limit.eps:9.5f}")
    if args.exponents:
        e = predicted_exponents(alphas)
        print(f"exponents over alpha in [{alphas[0]:g}, {alphas[-1]:g}] (least squares; "
              f"local slope between the two largest alphas in brackets):")
        print(f"  gamma2     (lambda_opt ~ alpha^g2)        {e.gamma2:.4f} "
              f"({e.local_gamma2:.4f})")
        print(f"  gamma_conv (eps_opt ~ alpha^-g)            {e.gamma_conv:.4f} "
              f"({e.local_gamma_conv:.4f})")
        print(f"  gamma1, envelope (eps_opt ~ lambda_opt^-g1) {e.gamma1_envelope:.4f} "
              f"({e.local_gamma1_envelope:.4f});  gamma1*gamma2 = "
              f"{e.gamma_pred_envelope:.4f}")
        print(f"  gamma1, along curves (lambda/lambda_opt in {e.window[0]:g}-{e.window[1]:g})"
              f" {e.gamma1_curve:.4f};  gamma1*gamma2 = {e.gamma_pred_curve:.4f}")
        print("    per alpha: " + ", ".join(f"{a:g}: {g:.3f}" for a, g in
                                          zip(e.alphas, e.gamma1_curve_by_alpha, strict=True)))
    return 0
