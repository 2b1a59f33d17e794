"""Statistical suite for ``scalingfit check`` on data from the independent generator.

Done-when of issue 6, measured here rather than in CI (each dataset takes minutes):

- data where the combined law holds (``law="combined"``): every group's verdict should be
  ``consistent``;
- data whose ε*(P) falls as P^−(γ1γ2 + 0.2) (``law="inconsistent"``): every group's
  verdict should be ``inconsistent``;
- leaving the largest P out, the 90 % predictive interval of ε* from the combined laws
  should cover the observed value in at least 80 % of the held-out cases of the
  combined-law datasets.

Usage::

    python benchmarks/check_suite.py --seeds 0 1 2 3 --shapes smooth kink \\
        --laws combined inconsistent --out suite.jsonl

Each dataset's outcome is appended to ``--out`` as one JSON line as soon as it is known, so
a long run can be read while it goes; the summary is printed at the end (or with
``--summarise FILE`` alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(law, shape, seed, *, draws, tune, chains):
    from scalingfit.checking.pipeline import check
    from tests.support.independent_generator import generate

    table, truth = generate(law=law, shape=shape, seed=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = check(table, compare=False, progress=False, draws=draws, tune=tune,
                        chains=chains, seed=seed)
    groups = []
    for g in outcome.groups:
        true = truth[(g["architecture"], g["dataset"])]
        groups.append({"group": f"{g['architecture']} / {g['dataset']}",
                       "verdict": g["verdict"], "delta": g["delta"],
                       "true_delta": true["gamma_conv"] - true["gamma_pred"],
                       "paper_delta": g["paper_recipe"]["delta"],
                       "heldout": [{k: h[k] for k in ("train_size", "observed_eps_star",
                                                      "pred_eps_star", "covered",
                                                      "lam_covered", "n_censored")}
                                   for h in g["heldout"]]})
    return {"law": law, "shape": shape, "seed": seed, "seconds": time.perf_counter() - start,
            "diagnostics": outcome.settings["diagnostics"], "groups": groups}


def summarise(records):
    lines = []
    for law in ("combined", "inconsistent"):
        mine = [r for r in records if r["law"] == law]
        if not mine:
            continue
        verdicts = [g["verdict"] for r in mine for g in r["groups"]]
        counts = {v: verdicts.count(v) for v in ("consistent", "inconsistent", "inconclusive")}
        cases = [h for r in mine for g in r["groups"] for h in g["heldout"]]
        covered = sum(h["covered"] for h in cases)
        lam = sum(h["lam_covered"] for h in cases)
        lines.append(f"law={law}: {len(mine)} datasets, {len(verdicts)} group verdicts: "
                     + ", ".join(f"{k} {v}" for k, v in counts.items()))
        lines.append(f"  held out (largest P): eps* covered in {covered}/{len(cases)} "
                     f"({covered / max(len(cases), 1):.0%}); lambda* covered in "
                     f"{lam}/{len(cases)}")
        widths = sorted(g["delta"]["q95"] - g["delta"]["q05"] for r in mine for g in r["groups"])
        lines.append(f"  width of the 90 % interval of delta: median "
                     f"{widths[len(widths) // 2]:.3f}, max {widths[-1]:.3f}")
        seconds = sorted(r["seconds"] for r in mine)
        failed = {name: sum(not r["diagnostics"][name]["passed"] for r in mine)
                  for name in mine[0]["diagnostics"]}
        lines.append("  fits failing their diagnostics: " + ", ".join(
            f"{name} {n} of {len(mine)}" for name, n in failed.items())
            + f"; median seconds per dataset {seconds[len(seconds) // 2]:.0f}")
        for r in mine:
            for g in r["groups"]:
                d = g["delta"]
                lines.append(f"    {r['shape']:<7}seed {r['seed']}  {g['group']:<28}"
                             f"delta {d['median']:+.3f} [{d['q05']:+.3f}, {d['q95']:+.3f}] "
                             f"(true {g['true_delta']:+.2f}, paper {g['paper_delta']:+.3f})  "
                             f"{g['verdict']:<13}"
                             + " ".join("eps* " + ("in" if h["covered"] else "OUT")
                                        for h in g["heldout"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--shapes", nargs="+", default=["smooth", "kink"])
    parser.add_argument("--laws", nargs="+", default=["combined", "inconsistent"])
    parser.add_argument("--draws", type=int, help="default: the package's (scalingfit.rc)")
    parser.add_argument("--tune", type=int, help="default: the package's")
    parser.add_argument("--chains", type=int, help="default: the package's")
    parser.add_argument("--out", default="check_suite.jsonl")
    parser.add_argument("--summarise", metavar="FILE", help="only summarise a previous run")
    args = parser.parse_args(argv)
    if args.summarise:
        records = [json.loads(line) for line in Path(args.summarise).read_text().splitlines()]
        print(summarise(records))
        return
    records = []
    for seed in args.seeds:  # seeds outermost: every law and shape is seen early
        for shape in args.shapes:
            for law in args.laws:
                record = run_one(law, shape, seed, draws=args.draws, tune=args.tune,
                                 chains=args.chains)
                records.append(record)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{law} {shape} seed {seed}: "
                      + ", ".join(g["verdict"] for g in record["groups"])
                      + f" ({record['seconds']:.0f} s)", flush=True)
    print(summarise(records))


if __name__ == "__main__":
    main()
