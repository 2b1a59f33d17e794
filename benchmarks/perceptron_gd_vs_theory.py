"""Gradient descent against the fixed-norm theory (issue 3, second done-when).

    PYTHONPATH=. python benchmarks/perceptron_gd_vs_theory.py [--n 2000] [--alpha 2,5,10]
        [--seeds 4] [--steps 2000] [--same-sample-seeds 2]

Trains plain GD (constant step, ``reference_runs.perceptron``) from a small initialisation
and compares its ε at each logged λ with the N → ∞ fixed-norm curve ε(λ; α), for λ up to
λ_opt(α). Prints the gap ε_GD − ε_theory (mean over seeds, and the largest single-run
one) at a few λ, and the largest for λ in [1, λ_opt] and over the whole range. To tell
the dynamics from finite-N effects it also minimises the loss on the sphere for the very
same samples (``reference_runs.perceptron_fixed_norm``) at a few λ.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from reference_runs.perceptron import PerceptronConfig, _teacher_and_inputs, simulate
from reference_runs.perceptron_fixed_norm import sphere_minimiser
from scalingfit.theory import perceptron as theory


def _interpolate(lam, eps, at):
    """ε of one run at the norms ``at``, linear in log λ between logged steps."""
    order = np.argsort(lam)
    return np.interp(np.log(at), np.log(lam[order]), eps[order], left=np.nan, right=np.nan)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--alpha", default="2,5,10")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--same-sample-seeds", type=int, default=2)
    parser.add_argument("--out", help="also write the GD runs here (CSV)")
    parser.add_argument("--runs", help="analyse these GD runs (a CSV written by --out with "
                                       "the same settings) instead of training again")
    args = parser.parse_args()
    alphas = tuple(float(a) for a in args.alpha.split(","))
    config = PerceptronConfig(n=args.n, alphas=alphas, seeds=args.seeds, steps=args.steps,
                              log_points=80, device="cpu")
    start = time.perf_counter()
    table = pd.read_csv(args.runs) if args.runs else simulate(config)
    print(f"GD: N = {args.n}, alpha = {alphas}, {args.seeds} seeds, {args.steps} steps, "
          f"step sizes {np.round(config.step_sizes(), 3).tolist()}: "
          f"{time.perf_counter() - start:.0f} s" + (f" (read from {args.runs})"
                                                    if args.runs else ""), flush=True)
    if args.out:
        table.to_csv(args.out, index=False)
    probes = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    for size, runs in table.groupby("train_size"):
        alpha = size / args.n
        best = theory.optimum(alpha)
        runs = runs[runs.step > 0]
        lam_all = runs.norm_l2.to_numpy()
        predicted = theory.error_curve(alpha, lam_all)
        gap = runs.test_error.to_numpy() - predicted
        upto = lam_all <= best.lam
        print(f"\nalpha = {alpha:g}: lambda_opt = {best.lam:.3f}, eps_opt = {best.eps:.5f}; "
              f"GD reaches lambda = {runs.groupby('seed').norm_l2.max().min():.2f} "
              f"(step 1: lambda = {runs[runs.step == 1].norm_l2.mean():.2f})")
        grid = np.geomspace(max(runs[runs.step == 1].norm_l2.max(), 0.3), best.lam, 25)
        per_seed = np.array([_interpolate(g.norm_l2.to_numpy(), g.test_error.to_numpy(), grid)
                             for _, g in runs.groupby("seed")])
        mean_gap = np.nanmean(per_seed, 0) - theory.error_curve(alpha, grid)
        worst = int(np.nanargmax(np.abs(mean_gap)))
        late = grid >= 1.0
        print(f"  mean over seeds of eps_GD - eps_theory, lambda in [{grid[0]:.2f}, "
              f"{best.lam:.2f}]: largest {mean_gap[worst]:+.5f} at lambda = {grid[worst]:.2f};"
              f" for lambda >= 1: largest |gap| {np.nanmax(np.abs(mean_gap[late])):.5f}")
        print(f"  single runs, all logged steps up to lambda_opt: largest |gap| "
              f"{np.abs(gap[upto]).max():.5f}; beyond lambda_opt: "
              f"{np.abs(gap[~upto]).max() if (~upto).any() else float('nan'):.5f}")
        shown = probes[(probes <= best.lam) & (probes >= grid[0])]
        means = np.nanmean([_interpolate(g.norm_l2.to_numpy(), g.test_error.to_numpy(), shown)
                            for _, g in runs.groupby("seed")], 0)
        for lam, eps, pred in zip(shown, means, theory.error_curve(alpha, shown), strict=True):
            print(f"    lambda {lam:4.1f}: GD {eps:.5f}  theory {pred:.5f}  gap {eps - pred:+.5f}")
        # The same samples' own fixed-norm minimisers: finite-N effect vs dynamics.
        lams = np.array([lam for lam in (0.5, 1.0, 2.0, best.lam)
                         if grid[0] <= lam <= best.lam])
        for seed in range(min(args.same_sample_seeds, args.seeds)):
            t0 = time.perf_counter()
            teacher, z = _teacher_and_inputs(config, seed, int(size), torch, torch.float64)
            z, direction = z.numpy(), (teacher / teacher.norm()).numpy()
            u, fixed = None, []
            for lam in lams:
                u = sphere_minimiser(z, lam, u)
                fixed.append(np.arccos(np.clip(u @ direction, -1, 1)) / np.pi)
            run = runs[runs.seed == seed]
            gd = _interpolate(run.norm_l2.to_numpy(), run.test_error.to_numpy(), lams)
            print(f"  seed {seed}, same sample ({time.perf_counter() - t0:.0f} s): " + "; ".join(
                f"lambda {lam:.2f}: GD {g:.5f} fixed-norm {f:.5f} ({g - f:+.5f})"
                for lam, g, f in zip(lams, gd, fixed, strict=True)), flush=True)


if __name__ == "__main__":
    main()
