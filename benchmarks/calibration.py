"""Are the two-stage fit's intervals honest? Coverage and ranks over many simulated sweeps.

Simulation-based calibration in the spirit of Talts et al. (2018): truths are drawn at
random (γ1 ~ U(0.3, 2.5), γ2 ~ U(0.3, 1.5), a violation γ_conv − γ1γ2 ~ U(−0.2, 0.2), norm
offsets up to 1e120), logs simulated with `scalingfit.simulate`, fitted, and the rank of
each truth among the posterior draws recorded. Calibrated intervals give uniform ranks,
50 % intervals that cover half the truths and 90 % intervals that cover 90 %. (The truths
are not drawn from the fit's own priors, which are weak and data-scaled, so this checks
coverage over a realistic range rather than strict SBC.)

    python benchmarks/calibration.py [--datasets 40] [--groups 2] [--out ranks.csv]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import scalingfit as sf
from scalingfit.fitting.simulation import SimGroup

PARAMS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")


def random_groups(rng, n):
    groups = []
    for k in range(n):
        gamma1, gamma2 = rng.uniform(0.3, 2.5), rng.uniform(0.3, 1.5)
        groups.append(
            SimGroup(
                f"arch{k}",
                "data",
                gamma1=gamma1,
                gamma2=gamma2,
                log_k2=rng.uniform(-3, 3) + (rng.uniform(0, 270) if k == 0 else 0.0),
                eps_star_ref=rng.uniform(0.02, 0.4),
                classes=int(rng.choice([10, 100])),
                violation=rng.uniform(-0.2, 0.2),
                scatter_x=rng.uniform(0.01, 0.06),
                scatter_y=rng.uniform(0.01, 0.06),
            )
        )
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", default=None, help="write every rank to this CSV")
    args = parser.parse_args()
    rng = np.random.default_rng(20261128)
    rows = []
    for k in range(args.datasets):
        groups = random_groups(rng, args.groups)
        table, truth = sf.simulate(
            groups, n_seeds=args.seeds, n_steps=30, seed=k, return_truth=True
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sf.fit(table, seed=k, progress=False)
        elapsed = time.perf_counter() - start
        for g, info in enumerate(result.groups):
            true = truth[(info["architecture"], info["dataset"])]
            for name in PARAMS:
                draws = result.draws(name)[:, g]
                rows.append(
                    {
                        "dataset": k,
                        "group": g,
                        "param": name,
                        "truth": true[name],
                        "rank": float(np.mean(draws < true[name])),
                        "in50": bool(
                            np.quantile(draws, 0.25) <= true[name] <= np.quantile(draws, 0.75)
                        ),
                        "in90": bool(
                            np.quantile(draws, 0.05) <= true[name] <= np.quantile(draws, 0.95)
                        ),
                        "z": (np.median(draws) - true[name]) / draws.std(),
                        "rhat_max": result.diagnostics["rhat_max"],
                        "divergences": result.diagnostics["divergences"],
                    }
                )
        print(
            f"dataset {k + 1:3d}/{args.datasets}: {elapsed:5.1f} s, {result.diagnostics_line()}",
            flush=True,
        )
    ranks = pd.DataFrame(rows)
    if args.out:
        ranks.to_csv(args.out, index=False)
    print(f"\n{len(ranks) // len(PARAMS)} (dataset, group) truths per exponent")
    print(f"{'param':12s}{'50% cover':>10s}{'90% cover':>10s}{'|z|>3':>7s}{'rank chi2 p':>13s}")
    for name, part in ranks.groupby("param", sort=False):
        counts = np.histogram(part["rank"], bins=10, range=(0, 1))[0]
        p = stats.chisquare(counts).pvalue
        print(
            f"{name:12s}{part['in50'].mean():10.2f}{part['in90'].mean():10.2f}"
            f"{int((part['z'].abs() > 3).sum()):7d}{p:13.3f}"
        )
    print(
        f"fits with divergences: {ranks.groupby('dataset')['divergences'].first().gt(0).sum()}"
        f", max R-hat {ranks['rhat_max'].max():.4f}"
    )


if __name__ == "__main__":
    main()
