"""The two-stage fit against the full point-level model, on the same simulated logs.

docs/design.md §2b accepts the two-stage fast path if it agrees with the full model (every
logged point in one NUTS posterior, `scalingfit.fitting.full_model`). This fits both to one
dataset from the independent generator (tests/support) and prints, per group and exponent,
the posterior median, sd and 90 % interval of each, the truth, and the wall time.

    python benchmarks/validate_two_stage.py [--seeds 3] [--sizes 6000,12000,24000,48000]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scalingfit as sf  # noqa: E402
from tests.support.independent_generator import DEFAULT_GROUPS, generate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="6000,12000,24000,48000")
    parser.add_argument("--groups", default="1,3", help="indices into the generator's groups")
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args()
    groups = [DEFAULT_GROUPS[int(i)] for i in args.groups.split(",")]
    sizes = tuple(int(p) for p in args.sizes.split(","))
    table, truth = generate(
        groups=groups, train_sizes=sizes, n_seeds=args.seeds, seed=args.data_seed
    )
    print(f"{len(table)} rows, {table['run_id'].nunique()} runs, {len(groups)} groups")
    results = {}
    for method in ("two-stage", "full"):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sf.fit(table, method=method, sampler="nutpie", seed=1, progress=False)
        results[method] = result.summary()
        print(
            f"{method:9s}: {time.perf_counter() - start:7.1f} s  {result.diagnostics_line()}",
            flush=True,
        )
    print(
        f"\n{'group':22s}{'param':11s}{'truth':>8s}  {'two-stage median ± sd [90%]':>32s}"
        f"  {'full median ± sd [90%]':>32s}  {'Δmedian/sd':>10s}"
    )
    for a, b in zip(results["two-stage"]["groups"], results["full"]["groups"]):
        true = truth[(a["architecture"], a["dataset"])]
        for name in ("gamma1", "gamma2", "gamma_pred", "gamma_conv"):
            s, f = a["params"][name], b["params"][name]
            cells = [
                f"{x['median']:.4f} ± {x['sd']:.4f} [{x['q05']:.3f}, {x['q95']:.3f}]"
                for x in (s, f)
            ]
            shift = (s["median"] - f["median"]) / f["sd"]
            print(
                f"{a['architecture'] + '/' + a['dataset']:22s}{name:11s}{true[name]:8.4f}  "
                f"{cells[0]:>32s}  {cells[1]:>32s}  {shift:10.2f}"
            )


if __name__ == "__main__":
    main()
