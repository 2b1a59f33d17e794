"""The fit at its defaults on every set of the project's real-curve corpus.

Real training logs bend, stop early, plateau and start below chance; the corpus
(``reference_runs/data/corpus/``) holds such curves, trained here. For each set this fits
the free-exponent model (``sf.fit``, default sampling) and prints one Markdown row: the
sampler diagnostics, the raw-point predictive coverage, the envelope's support, the run
shapes, the exponents with their 90 % intervals, the verdict on Δ with its two parts, and
γ_conv beside a plain log–log slope of the best errors (median over seeds of each run's
lowest logged error, least squares on log P) — the yardstick a notebook would use.

    python benchmarks/corpus_fits.py [--only digits-cnn digits-vit ...]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import scalingfit as sf
from scalingfit.checking.verdict import consistency

CORPUS = Path(__file__).resolve().parents[1] / "reference_runs" / "data" / "corpus"


def best_error_slope(table) -> float:
    """−d log ε*/d log P of the runs' lowest logged errors (median over seeds per P)."""
    best = table.groupby(["train_size", "run_id"])["test_error"].min()
    per_size = best.groupby("train_size").median()
    return float(-np.polyfit(np.log(per_size.index), np.log(per_size.to_numpy()), 1)[0])


def signed(value: float, plus: str = "", minus: str = "−") -> str:
    return f"{plus if value >= 0 else minus}{abs(value):.2f}"


def interval(summary: dict) -> str:
    return f"{summary['median']:.3g} [{summary['q05']:.3g}, {summary['q95']:.3g}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="set names (default: every set)")
    args = parser.parse_args()
    names = args.only or sorted(p.name.removesuffix(".csv.gz")
                                for p in CORPUS.glob("*.csv.gz"))
    warnings.simplefilter("ignore")
    print("| set | s | R-hat / ESS / div. | points covered | misfit runs | envelope support "
          "| optimum / no optimum / two minima / plateau | γ1 | γ2 | γ1·γ2 | γ_conv "
          "| log–log slope | verdict | Δ (envelope + shape) |")
    print("|---" * 14 + "|")
    for name in names:
        table = sf.load(CORPUS / f"{name}.csv.gz")
        start = time.perf_counter()
        result = sf.fit(table, progress=False)
        seconds = time.perf_counter() - start
        d = result.diagnostics
        for group, check in zip(result.summary()["groups"], consistency(result)):
            p, shapes = group["params"], group["shapes"]
            print(f"| {name} | {seconds:.0f} | {d['rhat_max']:.3f} / {d['ess_bulk_min']:.0f}"
                  f" / {d['divergences']} | {group['point_coverage']:.2f} "
                  f"| {group['n_runs_misfit']} | {group['envelope_support']:.2f} "
                  f"| {shapes['optimum']} / {shapes['no_optimum']} / {shapes['two_minima']}"
                  f" / {shapes['plateau_only']} | {interval(p['gamma1'])} "
                  f"| {interval(p['gamma2'])} | {interval(p['gamma_pred'])} "
                  f"| {interval(p['gamma_conv'])} | {best_error_slope(table):.3f} "
                  f"| {check['verdict']} | {signed(check['delta']['median'])} "
                  f"({signed(check['delta_envelope']['median'])}"
                  f"{signed(check['delta_shape']['median'], ' + ', ' − ')}) |", flush=True)


if __name__ == "__main__":
    main()
