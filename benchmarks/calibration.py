"""Are the fit's intervals and verdict honest on sweeps that depart from the model as real
ones do? A base sweep with five realistic departures, fitted; then ``scalingfit calibrate``
on that fit.

The base sweep: the embedded example's four groups (:data:`EXAMPLE_GROUPS`: CNN, ResNet,
ViT and an MLP whose norm reaches 1e130), 8 sizes P = 6,000–48,000, 4 seeds, 30 evaluations
per run, binomial noise on 10,000 test examples, with every realistic departure of
:class:`~scalingfit.fitting.simulation.SimGroup` switched on (:data:`REALISTIC`):

- ``size_scatter=0.03``: each whole size sits off both power laws by 3 % (sd, in λ* and in
  ε*), as much as seeds scatter: a size's own learning-rate schedule, epochs or augmentation
  move all its seeds together;
- ``sharpening=0.1``: the departure sharpens as P^0.1, so the optimum sits ~19 % closer to
  the envelope at 8x the data (less overfitting with more data); it makes the true
  Δ = γ_conv − γ1γ2 +0.047 in every group (``delta_shape``), inside the verdict's
  tolerance of 0.1;
- ``stop_early=0.25``: the largest quarter of the sizes (the two largest of 8) stop
  0.2–0.8 departure widths before their optimum, still improving: the compute budget runs
  out first at large P;
- ``even_steps=True``: evaluations every N epochs rather than log-spaced, so with a norm
  that grows like log t the plateau and the early envelope get a few points and the end of
  training most of them;
- ``stuck_runs=1``: one seed of the smallest P never leaves chance.

It prints, per base seed, each group's γ1 and γ2 against the truth and the verdict (the
issue's done-when: consistent, and γ1, γ2 within 7 %), then calibrates the fit of the first
seed: coverage of the 50 % and 90 % intervals, rank tests, false-alarm and detection rates,
refits failing their diagnostics, timings.

    python benchmarks/calibration.py --replicates 12 --seeds 0 1 2 3 --out bench
    python benchmarks/calibration.py --replicates 8 --seeds 0 1 2 3 --at-end bound --out b2
    python benchmarks/calibration.py --replicates 8 --seeds 0 1 2 3 --without stop_early ...

(the figures they gave are in docs/check.md, under ``scalingfit calibrate``). Time: a fit
of the base sweep takes about 40 s (35–110 s) on 2 shared cores with the default sampling
(nutpie, 4 chains x 1000 draws), so ``--replicates N`` costs about 2·N such fits on top of
one per seed (the first command: 40 min); ``--replicates 0`` only fits the base sweeps.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import scalingfit as sf
from scalingfit.checking.calibration import calibrate
from scalingfit.checking.verdict import consistency
from scalingfit.errors import ScalingfitWarning
from scalingfit.fitting.simulation import EXAMPLE_GROUPS

#: The realistic departures of the base sweep (see the module docstring for why these).
REALISTIC = dict(size_scatter=0.03, sharpening=0.1, stop_early=0.25, even_steps=True,
                 stuck_runs=1)
#: The done-when's bound on the relative error of γ1 and γ2.
WITHIN = 0.07


#: Each departure switched off.
OFF = dict(size_scatter=0.0, sharpening=0.0, stop_early=0.0, even_steps=False, stuck_runs=0)


def base_sweep(seed: int, n_seeds: int, without=()):
    departures = {**REALISTIC, **{k: OFF[k] for k in without}}
    groups = [replace(g, **departures) for g in EXAMPLE_GROUPS]
    return sf.simulate(groups, n_seeds=n_seeds, n_steps=30, seed=seed, return_truth=True)


def fit_quietly(table, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        return sf.fit(table, progress=False, **options)


def base_rows(result, truth, seed):
    """Per group: the fit's exponents against the truth, and the verdict."""
    rows = []
    summary = result.summary()["groups"]
    for entry, verdict in zip(summary, consistency(result)):
        true = truth[(entry["architecture"], entry["dataset"])]
        row = {"seed": seed, "group": entry["name"], "verdict": verdict["verdict"],
               "delta": verdict["delta"], "true_delta": true["gamma_conv"] - true["gamma_pred"],
               "n_censored": entry["n_censored"]}
        for name in ("gamma1", "gamma2", "gamma_pred", "gamma_conv"):
            s = entry["params"][name]
            row[name] = {"median": s["median"], "q05": s["q05"], "q95": s["q95"],
                         "truth": float(true[name]),
                         "rel_error": s["median"] / float(true[name]) - 1}
        rows.append(row)
    return rows


def print_base(rows):
    print(f"{'seed':>4s}  {'group':22s}{'γ1 err':>8s}{'γ2 err':>8s}{'γ1γ2 err':>9s}"
          f"{'γconv err':>10s}  {'Δ median [90 %]':>24s}{'true Δ':>8s}  verdict")
    for r in rows:
        d = r["delta"]
        print(f"{r['seed']:4d}  {r['group']:22s}"
              + "".join(f"{100 * r[k]['rel_error']:+7.1f}%" for k in ("gamma1", "gamma2"))
              + f"{100 * r['gamma_pred']['rel_error']:+8.1f}%"
              + f"{100 * r['gamma_conv']['rel_error']:+9.1f}%"
              + f"  {d['median']:+.3f} [{d['q05']:+.3f}, {d['q95']:+.3f}]"
              + f"{r['true_delta']:+8.3f}  {r['verdict']}")
    n = len(rows)
    ok1 = sum(abs(r["gamma1"]["rel_error"]) <= WITHIN for r in rows)
    ok2 = sum(abs(r["gamma2"]["rel_error"]) <= WITHIN for r in rows)
    consistent = sum(r["verdict"] == "consistent" for r in rows)
    print(f"done-when: gamma1 within {WITHIN:.0%} in {ok1}/{n} groups, gamma2 in {ok2}/{n}, "
          f"verdict consistent in {consistent}/{n}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=10,
                        help="simulated sweeps per scenario (combined, violated), each "
                             "refitted (default 10; 0: base fits only)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds of the base sweeps; the first is calibrated")
    parser.add_argument("--n-seeds", type=int, default=4, help="runs per size (default 4)")
    parser.add_argument("--without", nargs="+", choices=sorted(REALISTIC), default=[],
                        help="switch these departures off (to see what each does)")
    parser.add_argument("--delta", type=float, default=0.2)
    parser.add_argument("--at-end", choices=("optimum", "bound"), default="optimum")
    parser.add_argument("--offsets", choices=("heights", "model"), default="heights",
                        help="where the calibration's simulated offsets come from")
    parser.add_argument("--draws", type=int, help="draws per chain of every fit (default 1000)")
    parser.add_argument("--chains", type=int, help="chains of every fit (default 4)")
    parser.add_argument("--out", help="directory for base.json, each base fit (fit-seed<N>/) "
                                      "and calibration.json")
    args = parser.parse_args()
    options = {k: v for k, v in (("draws", args.draws), ("chains", args.chains),
                                 ("at_end", args.at_end)) if v is not None}
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    print(f"realistic departures: {REALISTIC}"
          + (f", without {args.without}" if args.without else ""), flush=True)

    rows, fits = [], {}
    for seed in args.seeds:
        table, truth = base_sweep(seed, args.n_seeds, args.without)
        start = time.perf_counter()
        result = fit_quietly(table, seed=seed, **options)
        elapsed = time.perf_counter() - start
        fits[seed] = result
        if out:
            result.save(out / f"fit-seed{seed}")
        rows += base_rows(result, truth, seed)
        print(f"base seed {seed}: {len(table)} rows, {table['run_id'].nunique()} runs, "
              f"fitted in {elapsed:.0f} s; {result.diagnostics_line()}", flush=True)
    print_base(rows)
    if out:
        (out / "base.json").write_text(json.dumps(rows, indent=2) + "\n")
    if args.replicates < 1:
        return

    seed = args.seeds[0]
    print(f"\ncalibrating the fit of base seed {seed}: {args.replicates} replicates per "
          f"scenario, delta {args.delta}", flush=True)
    start = time.perf_counter()
    outcome = calibrate(fits[seed], replicates=args.replicates, delta=args.delta, seed=seed,
                        offsets=args.offsets, **{k: v for k, v in options.items()
                                                 if k != "at_end"})
    elapsed = time.perf_counter() - start
    print(outcome.table())
    print(f"calibration: {elapsed / 60:.1f} min in all")
    if out:
        print(f"wrote {outcome.save(out)}")
    content = outcome.to_dict()
    passed = [q for q, s in content["quantities"].items()
              if s.get("rank_p") is not None and s["rank_p"] > 0.05]
    print(f"rank tests with p > 0.05: {len(passed)} of {len(content['quantities'])} "
          f"({', '.join(passed) or 'none'})")


if __name__ == "__main__":
    main()
