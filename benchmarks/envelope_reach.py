"""How γ1 fares as curves lose their straight stretch: envelope reach against γ1's error.

Curves are drawn from the model itself (:func:`scalingfit.simulate`, one group, γ1 = 1,
γ2 = 0.5, 4 sizes × 3 seeds, binomial noise on 10,000 test examples), with the departure
made softer and softer (``sharpness``, in 1/log-norm units; the default is 3·γ1). For each
dataset it prints the group's ``envelope_reach`` from ``summary.json`` and the posterior of
γ1: median, 90 % interval, whether it holds the truth.

    python benchmarks/envelope_reach.py [--seeds 0 1 2] [--sharpness 3 0.5 0.3 0.2 0.1]
"""

from __future__ import annotations

import argparse
import warnings

import scalingfit as sf
from scalingfit.errors import ScalingfitWarning
from scalingfit.fitting.simulation import SimGroup, simulate
from scalingfit.report.text import exponent_text

TRUE_GAMMA1 = 1.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sharpness", type=float, nargs="+", default=[3.0, 0.5, 0.3, 0.2, 0.1])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ScalingfitWarning)
    print(f"{'sharpness':>9} {'seed':>4} {'reach':>6} {'γ1 median [90 %]':>24} "
          f"{'rel. error':>10} {'covered':>8} {'R-hat':>6}")
    for sharpness in args.sharpness:
        group = SimGroup("cnn", "mnist", gamma1=TRUE_GAMMA1, gamma2=0.5, sharpness=sharpness)
        for seed in args.seeds:
            table = simulate([group], train_sizes=(4000, 8000, 16000, 32000), n_seeds=3,
                             seed=seed)
            result = sf.fit(table, seed=seed, progress=False)
            entry = result.summary()["groups"][0]
            g1 = entry["params"]["gamma1"]
            covered = g1["q05"] <= TRUE_GAMMA1 <= g1["q95"]
            print(f"{sharpness:>9g} {seed:>4} {entry['envelope_reach']:>6.2f} "
                  f"{exponent_text(g1):>24} "
                  f"{g1['median'] / TRUE_GAMMA1 - 1:>+10.1%} {str(covered):>8} "
                  f"{result.diagnostics['rhat_max']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
