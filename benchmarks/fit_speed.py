"""How long `scalingfit fit` takes on issue 2's reference problem, per sampler.

The data: 4 groups × 8 P × 6 seeds × 40 epochs = 7,680 rows from the independent generator
in tests/support (one group with norms near 1e130); ``--copies 4`` stacks four such
datasets (other seeds, groups renamed): 16 groups, 768 runs, 30,720 rows. Each fit runs as
a user would run it — a fresh `python -m scalingfit fit data.csv --out DIR` process, so
imports and compilation count — alternating the samplers, and the medians and their ratio
are printed. The compiled model is cached on disk (``~/.pytensor``) and reused by later fits
of a table of the same structure; ``--cold`` gives every fit an empty cache instead, as the
first fit on a machine has.

    python benchmarks/fit_speed.py [--repeats 3] [--samplers nutpie,pymc] [--copies 1] [--cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from tests.support.independent_generator import generate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samplers", default="nutpie,pymc")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--cold", action="store_true",
                        help="every fit with an empty PyTensor/numba cache")
    args = parser.parse_args()
    samplers = args.samplers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "runs.csv"
        copies = []
        for copy in range(args.copies):
            part, _ = generate(seed=copy)
            copies.append(part.assign(architecture=part["architecture"] + f"-{copy}",
                                      run_id=part["run_id"] + f"-{copy}"))
        table = pd.concat(copies, ignore_index=True)
        table.to_csv(data, index=False)
        print(f"{len(table)} rows, {table['run_id'].nunique()} runs, "
              f"{table.groupby(['architecture', 'dataset']).ngroups} groups")
        times = {s: [] for s in samplers}
        for repeat in range(args.repeats):
            for sampler in samplers:
                env = dict(os.environ)
                if args.cold:
                    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}/cache-{sampler}{repeat}"
                start = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "scalingfit", "fit", str(data), "--out",
                     f"{tmp}/{sampler}{repeat}", "--sampler", sampler, "-q"],
                    capture_output=True, text=True, cwd=ROOT, env=env)
                elapsed = time.perf_counter() - start
                if done.returncode:
                    sys.exit(f"{sampler} failed:\n{done.stderr}")
                diagnostics = done.stdout.strip().splitlines()[-2]
                times[sampler].append(elapsed)
                print(f"  {sampler:7s} run {repeat + 1}: {elapsed:6.1f} s  ({diagnostics})",
                      flush=True)
    print(f"median wall time, {len(table)} rows (import + stage 1 + compile + 4 chains x "
          f"1000 draws; {'empty' if args.cold else 'warm'} compile cache):")
    medians = {s: statistics.median(v) for s, v in times.items()}
    for sampler, value in medians.items():
        print(f"  {sampler:7s} {value:6.1f} s")
    if len(medians) == 2:
        a, b = samplers
        print(f"  ratio {b}/{a}: {medians[b] / medians[a]:.2f}")


if __name__ == "__main__":
    main()
