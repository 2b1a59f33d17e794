"""Describe perceptron sweeps against the theory: where each run's optimum lies.

    PYTHONPATH=. python benchmarks/perceptron_sweep_summary.py runs.csv [more.csv ...]

For each table (one optimiser each) and each α: the median over seeds of λ*/λ_opt (λ* the
norm at the lowest error along the run, as the fitting core defines it), how many runs
have their optimum at the last logged step (no rise after it), the mean ε* against the
theory's ε_opt, and whether the runs went past λ_opt. Then plain least-squares slopes over
the runs' optima: λ* ∝ P^γ2 and ε* ∝ P^(−γ_conv). These are descriptive numbers, not the
Bayesian fit (``scalingfit fit``), which also uses the curves before the optimum.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from scalingfit.theory import perceptron as theory


def summarise(path):
    table = pd.read_csv(path)
    n = int(table.n.iloc[0])
    best = table.loc[table.groupby("run_id").test_error.idxmin()]
    last = table.groupby("run_id").step.max()
    at_end = best.set_index("run_id").step == last
    ends = table.loc[table.groupby("run_id").step.idxmax()].set_index("run_id").norm_l2
    print(f"\n{path}: {table.optimizer.iloc[0]} (schedule {table.lr_schedule.iloc[0]}), "
          f"N = {n}, {table.run_id.nunique()} runs, {last.max()} steps")
    print(f"{'alpha':>7} {'lam_opt':>8} {'lam*/lam_opt':>12} {'lam_end/lam_opt':>15} "
          f"{'optimum at end':>14} {'eps*':>8} {'eps_opt':>8}")
    for size, runs in best.groupby("train_size"):
        alpha = size / n
        opt = theory.optimum(alpha)
        ids = runs.run_id
        print(f"{alpha:7.3g} {opt.lam:8.2f} {np.median(runs.norm_l2) / opt.lam:12.2f} "
              f"{np.median(ends[ids]) / opt.lam:15.2f} "
              f"{int(at_end[ids].sum()):>10}/{len(ids):<3} {runs.test_error.mean():8.5f} "
              f"{opt.eps:8.5f}")
    log_p = np.log(best.train_size)
    gamma2 = np.polyfit(log_p, np.log(best.norm_l2), 1)[0]
    gamma_conv = -np.polyfit(log_p, np.log(best.test_error), 1)[0]
    print(f"least squares over runs' optima: gamma2 = {gamma2:.3f}, gamma_conv = "
          f"{gamma_conv:.3f}, ratio gamma_conv/gamma2 = {gamma_conv / gamma2:.3f}")
    # Along the curves: log(eps/eps*) against log(lambda/lambda*) of each run, pooled, in
    # the window lambda/lambda* in [0.1, 0.5] (as theory.predicted_exponents does).
    star = best.set_index("run_id")[["norm_l2", "test_error"]]
    ratio = table.norm_l2 / star.norm_l2.loc[table.run_id].to_numpy()
    window = table[(ratio >= 0.1) & (ratio <= 0.5)]
    x = np.log(window.norm_l2 / star.norm_l2.loc[window.run_id].to_numpy())
    y = np.log(window.test_error / star.test_error.loc[window.run_id].to_numpy())
    print(f"gamma1 along curves (lambda/lambda* in [0.1, 0.5], {len(window)} points): "
          f"{-np.polyfit(x, y, 1)[0]:.3f}")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        summarise(argument)
