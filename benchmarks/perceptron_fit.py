"""`scalingfit fit` on perceptron sweeps, beside what the N → ∞ theory predicts.

Each table is one optimiser's sweep from `python -m reference_runs perceptron`; the four of
docs/perceptron.md (section 3) are in reference_runs/data/perceptron_N500/, with the
commands that made them. Each is fitted on its own with the default
two-stage model and sampler, and its posterior medians and 90 % intervals are printed
under the theory's exponents for the same α values: γ2 and γ_conv from the optima
λ_opt(α), ε_opt(α), and γ1 both along the curves (what the fit's per-run slope measures)
and from the envelope of the optima.

    PYTHONPATH=. python benchmarks/perceptron_fit.py reference_runs/data/perceptron_N500/*.csv.gz
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import scalingfit as sf
from scalingfit.errors import ScalingfitWarning
from scalingfit.theory import perceptron as theory

PARAMS = ("gamma1", "gamma2", "gamma_pred", "gamma_conv")


def interval(p):
    return f"{p['median']:.3f} [{p['q05']:.3f}, {p['q95']:.3f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, alphas = [], None
    for path in args.sweeps:
        table = sf.load([path])
        alphas = sorted(table["train_size"].unique() / table["n"].iloc[0])
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ScalingfitWarning)
            result = sf.fit(table, seed=args.seed, progress=False)
        elapsed = time.perf_counter() - start
        for w in caught:
            if issubclass(w.category, ScalingfitWarning):
                print(f"  {path.name}: warning: {w.message}")
        params = result.summary()["groups"][0]["params"]
        rows.append((path.name.split(".")[0], [interval(params[name]) for name in PARAMS]))
        print(f"{path.name}: {elapsed:.0f} s, {result.diagnostics_line()}", flush=True)
    predicted = theory.predicted_exponents(alphas)
    print(f"\n| sweep | {' | '.join(PARAMS)} |\n|---|{'---|' * len(PARAMS)}")
    for name, cells in rows:
        print(f"| {name} | {' | '.join(cells)} |")
    print(
        f"| theory, γ1 along curves | {predicted.gamma1_curve:.3f} | {predicted.gamma2:.3f} | "
        f"{predicted.gamma_pred_curve:.3f} | {predicted.gamma_conv:.3f} |"
    )
    print(
        f"| theory, γ1 of the optima's envelope | {predicted.gamma1_envelope:.3f} | "
        f"{predicted.gamma2:.3f} | {predicted.gamma_pred_envelope:.3f} | "
        f"{predicted.gamma_conv:.3f} |"
    )


if __name__ == "__main__":
    main()
