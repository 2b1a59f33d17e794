"""``fit``: canonical table → stage 1 (each run's curve) → stage 2 (the laws) → :class:`FitResult`.

The two stages are described in :mod:`scalingfit.fitting.run_curves` and
:mod:`scalingfit.fitting.model`. This module runs them on the groups
:mod:`scalingfit.fitting.groups` prepares, and says loudly what deserves a second look.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from ..errors import ScalingfitWarning
from ..ingest.table import GROUP_KEYS, validate
from ..progress import track
from ..settings import rc
from .groups import choose_norm, prepare, source_row
from .likelihood import RunEstimates
from .result import FitResult
from .run_curves import fit_run_curves

__all__ = ["fit"]

#: Below this median reach (:mod:`scalingfit.fitting.run_curves`), γ1 is a third or more
#: steeper than any slope the group's curves show: say that it rests on the curve's shape.
#: On curves drawn from the model (benchmarks/envelope_reach.py), γ1 was within 4 % of the
#: truth and inside its 90 % interval down to a reach of 0.81; between 0.5 and 0.71 it
#: strayed by up to 16 % and missed its interval in 2 of 6 fits.
REACH_WARN = 0.75


def fit(table: pd.DataFrame, *, norm: str | None = None, group_by=GROUP_KEYS,
        n_test: int | None = None, at_end: str = "bound", tie_convergence: bool = False,
        method: str = "two-stage", sampler: str | None = None, draws: int | None = None,
        tune: int | None = None, chains: int | None = None, seed: int | None = None,
        progress: bool = True):
    """Fit both dynamical laws, hierarchically across groups.

    Parameters
    ----------
    table : pandas.DataFrame
        A canonical table (docs/design.md §3), e.g. from :func:`scalingfit.load`.
    norm : str, optional
        Which norm (``norm_<name>`` or ``lognorm_<name>``); default: see
        :data:`~scalingfit.fitting.groups.NORM_PREFERENCE`.
    group_by : sequence of str
        Columns whose combinations are the groups (default architecture × dataset).
    n_test : int, optional
        Test-set size when the table has no ``n_test`` column (for the binomial noise).
    at_end : {"bound", "optimum"}
        A run still improving at its last step: λ* is a lower bound (default) or the last
        point (the paper's convention).
    tie_convergence : bool
        Fit the combined-law model, in which ``γ_conv = γ1·γ2``.
    method : {"two-stage", "full"}
        The fast two-stage fit (default), or the full point-level model it was validated
        against (:mod:`scalingfit.fitting.full_model`; minutes, not seconds).
    sampler, draws, tune, chains, seed
        Sampling settings; ``None`` means :data:`scalingfit.rc`.
    progress : bool
        Show progress while fitting runs, compiling and sampling.

    Returns
    -------
    FitResult
    """
    from .model import build_model
    from .sampling import diagnostics, sample

    if method not in ("two-stage", "full"):
        raise ValueError(f"method must be 'two-stage' or 'full', got {method!r}")
    if method == "full" and at_end != "bound":
        raise ValueError("at_end does not apply to method='full': its runs' optima are "
                         "latent, extrapolated past the last point when need be.")
    timings = {}
    start = time.perf_counter()
    table = validate(table, source=source_row(table, table.index)[0] if len(table) else "<table>")
    norm = choose_norm(table, norm)
    group_by = tuple(group_by)
    groups, prepared = prepare(table, norm=norm, group_by=group_by, n_test=n_test)
    notes = []  # every warning about the data, printed now and kept in summary.json

    def note(message):
        notes.append(message)
        warnings.warn(message, ScalingfitWarning, stacklevel=3)

    for message in prepared:
        note(message)

    curves = [fit_run_curves(group.curves)
              for group in track(groups, "fitting run curves", show=progress, unit="group")]
    timings["stage1_s"] = time.perf_counter() - start

    data = _stack(groups, curves)
    censored = int(data.censored.sum())
    if censored:
        note(f"{censored} of {len(data.run_ids)} runs: fitted optimum at or beyond the last "
             f"logged point (still improving, or too flat to place a minimum before it); "
             f"their optimum is treated as "
             f"{'a lower bound on λ*' if at_end == 'bound' else 'the last point'} "
             f"(at_end={at_end!r}).")
    for g, (group, c) in enumerate(zip(groups, curves)):
        share = data.censored[data.group == g].mean()
        if at_end == "bound" and share > 0.5:
            note(f"group {group.name}: {share:.0%} of runs end before their optimum, so γ2 "
                 "and γ_conv are weakly identified; train longer, or take the last point as "
                 "the optimum (--at-end optimum; at_end='optimum' in Python: the paper's "
                 "convention).")
        reach = float(np.median(c.reach))
        if reach < REACH_WARN:
            note(f"group {group.name}: the fitted curves never fall as steeply as their "
                 f"envelope slope (the median run reaches {reach:.2f} of it): γ1 is the "
                 "asymptote of a bend, not a slope seen in the data, and is only as good as "
                 "the curve's shape; look at the fit figure (scalingfit report), and see "
                 "envelope_reach in summary.json.")

    if method == "full":
        from .full_model import build_full_model

        model = build_full_model(data, groups, curves, tie_convergence=tie_convergence)
    else:
        model = build_model(data, at_end=at_end, tie_convergence=tie_convergence)
    t0 = time.perf_counter()
    idata = sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                   progress=progress, jitter=method != "full")
    timings["stage2_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    diag = diagnostics(idata)
    settings = dict(method=method, norm=norm, group_by=list(group_by), at_end=at_end,
                    tie_convergence=tie_convergence, n_test=n_test,
                    sampler=sampler or rc["sample.sampler"], seed=seed if seed is not None
                    else rc["sample.seed"])
    result = FitResult.build(idata, data=data, curves=curves, table=table,
                             groups=groups, settings=settings, diagnostics=diag,
                             timings=timings, notes=notes)
    if not diag["passed"]:
        warnings.warn(result.diagnostics_line(), ScalingfitWarning, stacklevel=2)
    return result


def _stack(groups, curves) -> RunEstimates:
    """Stack the groups' run estimates into the arrays stage 2 reads."""
    parts = {k: [] for k in RunEstimates.PER_RUN}
    x_scale, x_center, ell_center, seeded = [], [], [], []
    level_offset = 0
    for g, (group, c) in enumerate(zip(groups, curves)):
        runs = group.runs
        ell = np.log(runs["train_size"].to_numpy(float))
        levels = pd.factorize(runs["train_size"], sort=True)[0]
        parts["run_ids"].append(runs.index.to_numpy(str))
        parts["group"].append(np.full(len(runs), g))
        parts["level"].append(levels + level_offset)
        parts["ell"].append(ell - ell.mean())
        parts["z"].append(np.column_stack([c.gamma, c.x_star, c.y_star]))
        parts["loading"].append(c.shared_loading)
        for key in ("cov", "censored", "x_last", "y_last", "y_last_sd"):
            parts[key].append(getattr(c, key))
        level_offset += levels.max() + 1
        x_scale.append(group.x_scale)
        x_center.append(group.x_center)
        ell_center.append(ell.mean())
        seeded.append(np.bincount(levels).max() > 1)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return RunEstimates(groups=[group.name for group in groups], x_scale=np.array(x_scale),
                        x_center=np.array(x_center), ell_center=np.array(ell_center),
                        seeded_levels=np.array(seeded), **arrays)
