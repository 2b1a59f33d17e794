"""How freely may the envelope's slope drift? Stage 1's γ1 against the truth.

Curves drawn from one power-law envelope (the embedded example's four groups, 8 sizes × 6
seeds, with or without realistic departures: size scatter, overfitting weakening with P,
early stops at the largest P, evenly spaced evaluations, a stuck run); stage 1 alone
(:func:`scalingfit.fitting.run_curves.fit_run_curves`) for each value of
``SLOPE_DRIFT_SD``; prints the relative error of γ1's plug-in value — the envelope's mean
slope between the smallest and largest optimum — per group and seed.

    python benchmarks/envelope_drift.py [--seeds 4] [--sd 0.2 0.1 0.05] [--realistic]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

import scalingfit.fitting.run_curves as stage1
from scalingfit.fitting.groups import prepare
from scalingfit.fitting.laws import envelope
from scalingfit.fitting.simulation import EXAMPLE_GROUPS, simulate
from scalingfit.ingest.table import validate

REALISTIC = dict(size_scatter=0.05, rise_decay=0.3, stop_early=0.15, even_steps=True,
                 stuck_runs=1)


def plug_in_gamma1(curves, group) -> float:
    fitted = curves.fitted_runs
    lo, hi = np.min(curves.x_star[fitted]), np.max(curves.x_star[fitted])
    ends = envelope(np.array([lo, hi]), curves.log_slopes, curves.knots, curves.width)
    return float(-(ends[1] - ends[0]) / (hi - lo) / group.x_scale)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--sd", type=float, nargs="+", default=[0.2, 0.1, 0.05])
    parser.add_argument("--realistic", action="store_true")
    args = parser.parse_args()
    groups = [replace(g, **(REALISTIC if args.realistic else {})) for g in EXAMPLE_GROUPS]
    truth = {g.architecture: g.gamma1 for g in groups}
    for sd in args.sd:
        stage1.SLOPE_DRIFT_SD = sd
        errors, start = {}, time.perf_counter()
        for seed in range(args.seeds):
            table = simulate(groups, n_seeds=6, n_steps=40, seed=seed)
            prepared, _ = prepare(validate(table), norm="spectral_complexity",
                                  group_by=("architecture", "dataset"))
            for group in prepared:
                name = group.keys["architecture"]
                estimate = plug_in_gamma1(stage1.fit_run_curves(group.curves), group)
                errors.setdefault(name, []).append(estimate / truth[name] - 1)
        worst = max(abs(e) for v in errors.values() for e in v)
        print(f"SLOPE_DRIFT_SD = {sd}: largest |error| {worst:.1%} "
              f"({time.perf_counter() - start:.0f} s)")
        for name, values in errors.items():
            print(f"  {name:10s} " + " ".join(f"{e:+.1%}" for e in values))


if __name__ == "__main__":
    main()
