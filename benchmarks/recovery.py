"""Issue 2's done-when, over many datasets: does `scalingfit fit` recover the exponents?

Each dataset comes from the independent generator in tests/support (4 groups × 8 P from
6k to 48k × 6 seeds × 40 epochs, binomial noise on 10k test examples, one group with
norms near 1e130), for smooth and kinked departures from the envelope, with the combined
law holding (`combined`) or broken by +0.2 (`inconsistent`). Per dataset: the wall time
of `fit` (stage 1, compilation and sampling, default sampler and draws), how many of the
16 truths (γ1, γ2, γ1γ2, γ_conv × 4 groups) lie in their 90 % intervals, the worst
|median − truth|/sd, the largest relative error of γ1 and γ2, the largest error of γ1γ2,
and the diagnostics. The criteria: rel. error ≤ 7 %, γ1γ2 within 0.03, |z| ≤ 3,
≥ 9 of the 12 truths of γ1, γ2, γ1γ2 in their 90 % intervals, R-hat ≤ 1.01, 0 divergences.

    PYTHONPATH=. python benchmarks/recovery.py [--seeds 0 1 2] [--shapes smooth kink]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scalingfit as sf  # noqa: E402
from tests.support.independent_generator import generate  # noqa: E402

PARAMS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")


def score(result, truth):
    inside = inside12 = 0
    worst_z = rel = pred = 0.0
    for group in result.summary()["groups"]:
        true = truth[(group["architecture"], group["dataset"])]
        for name in PARAMS:
            p, t = group["params"][name], true[name]
            covered = p["q05"] <= t <= p["q95"]
            inside += covered
            inside12 += covered and name != "gamma_conv"
            worst_z = max(worst_z, abs(p["median"] - t) / p["sd"])
            if name in ("gamma1", "gamma2"):
                rel = max(rel, abs(p["median"] / t - 1))
            if name == "gamma_pred":
                pred = max(pred, abs(p["median"] - t))
    return inside, inside12, worst_z, rel, pred


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--shapes", nargs="+", default=["smooth", "kink"])
    parser.add_argument("--laws", nargs="+", default=["combined", "inconsistent"])
    args = parser.parse_args()
    print(f"{'data':28s}{'wall s':>7s}{'in 90%':>8s}{'(of 12)':>8s}{'max|z|':>8s}"
          f"{'rel err':>8s}{'γ1γ2 err':>9s}  diagnostics (ESS bulk/tail)")
    totals = [0, 0, 0]
    for shape in args.shapes:
        for law in args.laws:
            for seed in args.seeds:
                table, truth = generate(shape=shape, law=law, seed=seed)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = sf.fit(table, seed=seed, progress=False)
                elapsed = time.perf_counter() - start
                inside, inside12, z, rel, pred = score(result, truth)
                d = result.diagnostics
                totals = [totals[0] + inside, totals[1] + 16, totals[2] + (not d["passed"])]
                print(f"{shape + ' ' + law + ' seed ' + str(seed):28s}{elapsed:7.1f}"
                      f"{inside:5d}/16{inside12:5d}/12{z:8.2f}{rel:8.3f}{pred:9.3f}  "
                      f"R-hat {d['rhat_max']:.3f}, ESS {d['ess_bulk_min']:.0f}/"
                      f"{d['ess_tail_min']:.0f}, {d['divergences']} div.", flush=True)
    print(f"truths in their 90 % intervals: {totals[0]}/{totals[1]} "
          f"({totals[0] / totals[1]:.1%}); fits failing diagnostics: {totals[2]}")


if __name__ == "__main__":
    main()
