"""Synthetic learning curves with known exponents, in the canonical table's format.

Users check the method on their own settings with :func:`simulate`; the embedded example
(:func:`example_table`) is made by it. Per group, with ``x = log λ``:

- law 2: each run's optimum sits at ``x*_r = log k2 + γ2·log P + N(0, scatter_x)``;
- its error there: ``log ε*_r = log ε*_ref − γ_conv·log(P/P_ref) + N(0, scatter_y)``, with
  ``γ_conv = γ1·γ2 + violation`` (``violation=0``: the combined law holds);
- along training, the run follows :func:`scalingfit.fitting.laws.learning_curve`: a chance
  plateau, the envelope ``ε ∝ λ^(−γ1)`` (slope scattered by ``scatter_gamma`` between runs), the
  optimum, and a rise of slope ``rise``;
- the norm grows along ~log-spaced steps as ``log(1 + t/t0)``, from the plateau to past the
  optimum by a random 0.3–1.2 envelope e-folds (so most runs show their optimum), with
  small multiplicative jitter;
- the observed test error is ``Binomial(n_test, ε)/n_test``.

A norm near 1e130 is a group with ``log_k2`` near 300: everything stays in logs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from importlib import resources

import numpy as np
import pandas as pd

from .laws import learning_curve, uncapped_optimum

__all__ = ["SimGroup", "simulate", "example_table", "EXAMPLE_GROUPS"]

_PLATEAU_SHARPNESS = 10.0  # how sharply curves leave the chance plateau


@dataclass(frozen=True)
class SimGroup:
    """One architecture × dataset: its true exponents and curve shape."""

    architecture: str
    dataset: str
    gamma1: float
    gamma2: float
    log_k2: float = 0.0            # log λ* at P = 1
    eps_star_ref: float = 0.1      # ε* at the smallest P
    classes: int = 10              # chance error is 1 − 1/classes
    violation: float = 0.0         # γ_conv − γ1·γ2
    rise: float | None = None      # slope after the optimum (default 0.6·γ1)
    sharpness: float | None = None  # departure sharpness in 1/x (default 3·γ1)
    scatter_x: float = 0.03        # run-to-run sd of log λ*
    scatter_y: float = 0.03        # run-to-run sd of log ε*
    scatter_gamma: float = 0.01    # run-to-run relative sd of the envelope slope
    # departures from the laws that real sweeps show (all off by default):
    size_scatter: float = 0.0      # sd of a whole size's deviation of log λ* and of log ε*
    rise_decay: float = 0.0        # the rise after the optimum weakens as P^-rise_decay:
                                   # less overfitting with more data (its optimum then sits
                                   # higher above the shared envelope: Δ < 0, no violation)
    sharpening: float = 0.0        # departure sharpness grows as P^sharpening: the optimum
                                   # sits closer to the shared envelope at large P (ε* falls
                                   # faster than the envelope: Δ > 0 with no violation)
    stop_early: float = 0.0        # share of the sizes (the largest; at least this share,
                                   # in whole sizes) whose runs stop before their optimum,
                                   # still improving
    even_steps: bool = False       # evaluations evenly spaced in epochs, not log-spaced
    stuck_runs: int = 0            # runs of the smallest P that never leave chance

    @property
    def gamma_conv(self) -> float:
        """The convergence exponent of the laws (without the departure's drift)."""
        return self.gamma1 * self.gamma2 + self.violation


#: The groups of the embedded example: four architectures, one norm near 1e130.
EXAMPLE_GROUPS = (
    SimGroup("cnn", "mnist", gamma1=1.6, gamma2=0.45, log_k2=-1.0, eps_star_ref=0.03),
    SimGroup("resnet18", "cifar10", gamma1=0.9, gamma2=0.6, log_k2=-2.0, eps_star_ref=0.2),
    SimGroup("vit", "cifar100", gamma1=1.2, gamma2=0.35, log_k2=1.0, eps_star_ref=0.55,
             classes=100),
    SimGroup("mlp", "fashion-mnist", gamma1=0.3, gamma2=1.5, log_k2=285.0, eps_star_ref=0.12),
)


def simulate(groups=EXAMPLE_GROUPS, *, train_sizes=(6000, 9000, 12000, 18000, 24000, 32000,
                                                    40000, 48000),
             n_seeds: int = 6, n_steps: int = 40, n_test: int | None = 10_000, seed: int = 0,
             return_truth: bool = False):
    """Simulate training logs of several groups, runs and seeds.

    Parameters
    ----------
    groups : sequence of SimGroup
        True exponents and shapes per group.
    train_sizes : sequence of int
        The values of P.
    n_seeds : int
        Runs per (group, P).
    n_steps : int
        Logged steps per run (distinct epochs, roughly log-spaced, or evenly spaced for a
        group with ``even_steps``).
    n_test : int or None
        Test-set size of the binomial noise; ``None`` for noiseless errors.
    seed : int
        Seed of the random generator: the same seed gives the same table.
    return_truth : bool
        Also return the true values: ``{(architecture, dataset): {...}, "runs": DataFrame}``;
        a group's ``gamma_conv`` is the slope of its runs' true log ε* against log P, the
        departure's drift (``rise_decay``, ``sharpening``) included, and ``delta_envelope`` /
        ``delta_shape`` split ``gamma_conv − gamma1·gamma2`` as the check does.

    Returns
    -------
    pandas.DataFrame, or (pandas.DataFrame, dict)
        A canonical table with ``norm_spectral_complexity`` (and ``n_test``).
    """
    rng = np.random.default_rng(seed)
    log_steps = np.unique(np.round(np.geomspace(1, 20 * n_steps, n_steps * 3)).astype(int))
    log_steps = log_steps[np.linspace(0, len(log_steps) - 1, n_steps).round().astype(int)]
    frames, runs, truth = [], [], {}
    sizes = np.asarray(train_sizes)
    for group in groups:
        g = _with_defaults(group)
        steps = (np.unique(np.linspace(1, 20 * n_steps, n_steps).round().astype(int))
                 if g.even_steps else log_steps)
        p_ref = min(train_sizes)
        log_chance = np.log(1 - 1 / g.classes)
        sharpness = g.sharpness * (sizes / p_ref) ** g.sharpening
        rise = g.rise * (sizes / p_ref) ** -g.rise_decay
        # the optimum's height above the (shared) envelope; a sharper departure, or a
        # steeper rise, sits lower
        height = (g.gamma1 + rise) / sharpness * np.log((g.gamma1 + rise) / rise)
        drift = height - height[0]
        slope = np.polyfit(np.log(sizes), drift, 1)[0] if len(sizes) > 1 else 0.0
        truth[(g.architecture, g.dataset)] = {
            **asdict(g), "gamma_pred": g.gamma1 * g.gamma2, "gamma_conv": g.gamma_conv - slope,
            "delta_envelope": g.violation, "delta_shape": -slope}
        # the largest sizes, as many as make at least that share of them, by count whatever
        # their spacing (a quantile of the values stopped 3 of the 8 default sizes at 0.4)
        n_stopped = int(np.ceil(g.stop_early * len(sizes) - 1e-9))
        stopped = (np.argsort(np.argsort(sizes)) >= len(sizes) - n_stopped if n_stopped
                   else np.zeros(len(sizes), bool))
        for k, size in enumerate(train_sizes):
            deviation = (rng.normal(0, g.size_scatter, 2) if g.size_scatter else np.zeros(2))
            for s in range(n_seeds):
                x_star = (g.log_k2 + g.gamma2 * np.log(size) + deviation[0]
                          + rng.normal(0, g.scatter_x))
                y_star = (np.log(g.eps_star_ref) - g.gamma_conv * np.log(size / p_ref)
                          + drift[k] + deviation[1] + rng.normal(0, g.scatter_y))
                gamma = g.gamma1 * np.exp(rng.normal(0, g.scatter_gamma))
                # the plateau ends where the envelope reaches chance; start a little before
                x_plateau = x_star - (log_chance - y_star + height[k]) / gamma
                x_start = x_plateau - rng.uniform(0.3, 0.6) / gamma
                x_end = x_star + rng.uniform(0.3, 1.2) / gamma
                if stopped[k]:  # stopped before its optimum: still improving at the end
                    x_end = x_star - rng.uniform(0.2, 0.8) / sharpness[k]
                growth = np.log1p(steps / 3.0) * np.exp(rng.normal(0, 0.02, len(steps)))
                growth = np.maximum.accumulate(growth)
                x = x_start + (x_end - x_start) * (growth - growth[0]) / (growth[-1] - growth[0])
                y_min = uncapped_optimum(y_star, log_chance, _PLATEAU_SHARPNESS)
                log_eps = learning_curve(x, x_star, y_min, gamma, rise[k], sharpness[k],
                                         log_chance, _PLATEAU_SHARPNESS)
                if k == 0 and s < g.stuck_runs:  # never leaves chance
                    log_eps = np.full_like(x, log_chance)
                eps = np.exp(log_eps)
                observed = eps if n_test is None else rng.binomial(n_test, eps) / n_test
                run_id = f"{g.architecture}-{g.dataset}-P{size}-s{s}"
                frame = pd.DataFrame({
                    "run_id": run_id, "architecture": g.architecture, "dataset": g.dataset,
                    "train_size": size, "seed": s, "step": steps, "test_error": observed,
                    "norm_spectral_complexity": np.exp(x)})
                if n_test is not None:
                    frame["n_test"] = n_test
                frames.append(frame)
                runs.append({"run_id": run_id, "architecture": g.architecture,
                             "dataset": g.dataset, "train_size": size, "seed": s,
                             "log_lam_star": x_star, "log_eps_star": y_star, "gamma": gamma,
                             "censored": x_star >= x[-1],
                             "stuck": bool(k == 0 and s < g.stuck_runs)})
    table = pd.concat(frames, ignore_index=True)
    truth["runs"] = pd.DataFrame(runs)
    return (table, truth) if return_truth else table


def _with_defaults(group: SimGroup) -> SimGroup:
    return replace(group, rise=group.rise if group.rise is not None else 0.6 * group.gamma1,
                   sharpness=group.sharpness if group.sharpness is not None
                   else 3.0 * group.gamma1)


def example_table() -> pd.DataFrame:
    """The embedded example, as :func:`make_example` makes it.

    It ships with the package (``scalingfit/data/example.csv.gz``), so
    ``scalingfit fit --example`` needs nothing else on disk; a test checks that the file is
    what the generator makes.
    """
    with resources.as_file(resources.files("scalingfit") / "data" / "example.csv.gz") as path:
        table = pd.read_csv(path)
    table.index = pd.RangeIndex(2, len(table) + 2)
    return table.assign(source="scalingfit example")


def make_example() -> pd.DataFrame:
    """The example table as the generator makes it (what ``example.csv.gz`` holds)."""
    return simulate(EXAMPLE_GROUPS, train_sizes=(4000, 8000, 12000, 16000, 24000, 32000),
                    n_seeds=3, n_steps=30, seed=2505)


if __name__ == "__main__":  # python -m scalingfit.fitting.simulation: rewrite the embedded example
    from pathlib import Path

    out = Path(__file__).parent.parent / "data" / "example.csv.gz"
    out.parent.mkdir(exist_ok=True)
    make_example().to_csv(out, index=False, float_format="%.10g")
    print(f"wrote {out}")
