"""Theory against finite-N fixed-norm minimisers (issue 3, first done-when).

    PYTHONPATH=. python benchmarks/perceptron_theory_check.py [--n 2000] [--alpha 5] [--seeds 3]

For each seed, draws a teacher and P = αN inputs (NumPy, independent of the theory and of
the torch simulator), minimises the logistic loss on the sphere ‖w‖ = λ√N by L-BFGS at
each λ of a grid in [0.05, 20] (``reference_runs.perceptron_fixed_norm``), and prints its
ε next to the N → ∞ theory's, with the largest deviation of the seed mean; then the Hebb
student's ε (the λ → 0 limit) against arccos(√(2α/π)/√(1 + 2α/π))/π.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reference_runs.perceptron_fixed_norm import fixed_norm_errors
from scalingfit.theory import perceptron as theory

LAMS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 14.0, 20.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--alpha", type=float, default=5.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    lams = np.array(LAMS)
    start = time.perf_counter()
    predicted = theory.error_curve(args.alpha, lams)
    print(f"theory: {time.perf_counter() - start:.1f} s for {len(lams)} values of lambda")
    runs, hebb = [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        eps, eps_hebb = fixed_norm_errors(args.n, args.alpha, lams, seed)
        runs.append(eps)
        hebb.append(eps_hebb)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    runs = np.array(runs)
    mean, sd = runs.mean(0), runs.std(0, ddof=1) if args.seeds > 1 else np.zeros(len(lams))
    print(f"\nN = {args.n}, alpha = {args.alpha:g}, {args.seeds} seeds")
    print(f"{'lambda':>7} {'theory':>9} {'finite-N mean':>14} {'sd':>7} {'mean-theory':>12}")
    for lam, p, m, s in zip(lams, predicted, mean, sd, strict=True):
        print(f"{lam:7.3g} {p:9.5f} {m:14.5f} {s:7.4f} {m - p:+12.5f}")
    worst = int(np.argmax(np.abs(mean - predicted)))
    print(f"largest |mean - theory| = {abs(mean - predicted)[worst]:.5f} at lambda = "
          f"{lams[worst]:g}; largest single-seed deviation "
          f"{np.abs(runs - predicted).max():.5f}")
    tiny = theory.solve_fixed_norm(args.alpha, 1e-4).eps
    print(f"Hebb: finite-N {np.mean(hebb):.5f} (sd {np.std(hebb):.4f}), formula "
          f"{float(theory.hebb_error(args.alpha)):.5f}, theory at lambda = 1e-4 {tiny:.5f}")


if __name__ == "__main__":
    main()
