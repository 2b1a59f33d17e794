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

from ..errors import DataError, ScalingfitWarning
from ..ingest.table import GROUP_KEYS, validate
from ..progress import track
from ..settings import rc
from .groups import choose_norm, prepare, source_row
from .likelihood import RunEstimates
from .result import FitResult
from .run_curves import RUN_COVERAGE_MIN, fit_run_curves

__all__ = ["fit"]

#: A group whose points fall inside their 90 % predictive interval less often than this has
#: curves its stage-1 fit does not describe: said so (a run: below RUN_COVERAGE_MIN).
COVERAGE_WARN = 0.85
#: Below this share of the optima's stretch of log λ shown by points of runs still on the
#: envelope, γ1 rests on the envelope's shape more than on points: said so.
SUPPORT_WARN = 0.5


def fit(table: pd.DataFrame, *, norm: str | None = None, group_by=GROUP_KEYS,
        n_test: int | None = None, at_end: str = "optimum", tie_convergence: bool = False,
        sampler: str | None = None, draws: int | None = None,
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
    at_end : {"optimum", "bound"}
        A run with no optimum in its logged range (still improving at its last step): its
        last point is taken as the optimum (default; the paper's convention: it is still on
        its envelope there), or λ* is a lower bound and ε* an upper one.
    tie_convergence : bool
        Fit the combined-law model, in which ``γ_conv = γ1·γ2``.
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
    for message in _curve_notes(groups, curves, at_end):
        note(message)

    data = _stack(groups, curves)
    model = build_model(data, at_end=at_end, tie_convergence=tie_convergence)
    t0 = time.perf_counter()
    idata = sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                   progress=progress)
    timings["stage2_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    diag = diagnostics(idata)
    settings = dict(norm=norm, group_by=list(group_by), at_end=at_end,
                    tie_convergence=tie_convergence, n_test=n_test,
                    sampler=sampler or rc["sample.sampler"], seed=seed if seed is not None
                    else rc["sample.seed"])
    result = FitResult.build(idata, data=data, curves=curves, table=table,
                             groups=groups, settings=settings, diagnostics=diag,
                             timings=timings, notes=notes)
    if not diag["passed"]:
        warnings.warn(result.diagnostics_line(), ScalingfitWarning, stacklevel=2)
    return result


def _curve_notes(groups, curves, at_end):
    """What stage 1 found that a reader should know: runs left out, runs without an
    optimum, curves the fit does not describe, an envelope the points barely show."""
    for group, c in zip(groups, curves):
        name = group.name
        runs = group.runs.index
        stuck = list(runs[~c.fitted_runs])
        if stuck:
            yield (f"group {name}: {len(stuck)} runs never left the chance plateau and are "
                   f"left out of the laws ({_some(stuck)}).")
        fitted = c.fitted_runs
        censored = int(c.censored[fitted].sum())
        if censored:
            treated = ("its last point as the optimum" if at_end == "optimum" else
                       "a lower bound on λ* and an upper bound on ε*")
            yield (f"group {name}: {censored} of {int(fitted.sum())} runs have no optimum in "
                   f"their logged range (still improving at the last point); each gives "
                   f"{treated} (at_end={at_end!r}).")
            sizes = group.runs["train_size"].to_numpy()
            largest = fitted & (sizes == sizes[fitted].max())
            if at_end == "optimum" and c.censored[largest].all():
                yield (f"group {name}: no run of the largest P ({sizes.max()}) reaches its "
                       "optimum, so its λ* is a lower bound taken as the optimum: γ2 (and with "
                       "it γ1·γ2 and γ_conv) reads low when training stopped well before the "
                       "optimum; train those runs longer, or compare with at_end='bound'.")
            if at_end == "bound" and censored > fitted.sum() / 2:
                yield (f"group {name}: most runs end before their optimum, so γ2 and γ_conv "
                       "are weakly identified with at_end='bound'; train longer, or take "
                       "the last point as the optimum (the default).")
        twice = list(runs[c.shape == "two_minima"])
        if twice:
            yield (f"group {name}: {len(twice)} runs dip twice ({_some(twice)}); each "
                   "run's deeper minimum is its optimum.")
        coverage = c.point_coverage_group
        misfit = list(runs[fitted & (c.point_coverage < RUN_COVERAGE_MIN)])
        if coverage < COVERAGE_WARN or misfit:
            yield (f"group {name}: {coverage:.0%} of the points lie in their 90 % predictive "
                   f"interval; {len(misfit)} runs below {RUN_COVERAGE_MIN:.0%}"
                   + (f" ({_some(misfit)})" if misfit else "")
                   + ": the curve model does not describe them; see the curves figure "
                     "(scalingfit report) and point_coverage in summary.json.")
        support = c.envelope_support
        if support < SUPPORT_WARN:
            yield (f"group {name}: only {support:.0%} of the stretch of log λ where the "
                   "optima lie is shown by runs still on the envelope, so γ1 rests on the "
                   "envelope's shape there more than on points (envelope_support in "
                   "summary.json).")


def _some(names, n=5):
    return ", ".join(map(str, names[:n])) + (", ..." if len(names) > n else "")


def _stack(groups, curves) -> RunEstimates:
    """Stack the groups' run estimates into the arrays stage 2 reads (runs that never left
    the chance plateau are not among them)."""
    parts = {k: [] for k in RunEstimates.PER_RUN}
    per_group = {k: [] for k in ("x_scale", "x_center", "ell_center", "ell_range",
                                 "seeded_levels", "log_slopes", "slope_loading", "knots",
                                 "width")}
    level_offset = 0
    for g, (group, c) in enumerate(zip(groups, curves)):
        keep = c.fitted_runs
        runs = group.runs[keep]
        if runs["train_size"].nunique() < 2:
            raise DataError(f"group {group.name}: the runs that left the chance plateau have a "
                            "single train_size; law 2 needs two or more.",
                            column="train_size", fix="check those runs' logs, or add sizes.")
        ell = np.log(runs["train_size"].to_numpy(float))
        levels = pd.factorize(runs["train_size"], sort=True)[0]
        parts["run_ids"].append(runs.index.to_numpy(str))
        parts["group"].append(np.full(len(runs), g))
        parts["level"].append(levels + level_offset)
        parts["ell"].append(ell - ell.mean())
        parts["z"].append(np.column_stack([c.offset, c.x_star, c.y_star])[keep])
        parts["loading"].append(c.shared_loading[keep])  # (rotated below)
        for key in ("cov", "censored", "x_last", "y_last", "y_last_sd"):
            parts[key].append(getattr(c, key)[keep])
        level_offset += levels.max() + 1
        per_group["x_scale"].append(group.x_scale)
        per_group["x_center"].append(group.x_center)
        per_group["ell_center"].append(ell.mean())
        per_group["ell_range"].append([ell.min() - ell.mean(), ell.max() - ell.mean()])
        per_group["seeded_levels"].append(np.bincount(levels).max() > 1)
        for key in ("log_slopes", "slope_loading", "knots", "width"):
            per_group[key].append(getattr(c, key))
    _reduce_shape_errors(parts["loading"], per_group["slope_loading"])
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return RunEstimates(groups=[group.name for group in groups],
                        **{k: np.array(v) for k, v in per_group.items()}, **arrays)


def _reduce_shape_errors(loadings, slope_loadings, share=1e-4):
    """Rotate each group's shape error onto the directions its estimates respond to, and drop
    the rest (in place); the offsets keep none (below).

    Stage 2 samples the shape error ``u ~ N(0, I)`` through ``B u`` (the runs' estimates)
    and ``S u`` (the envelope's slopes); any rotation of ``u`` is the same prior, so
    ``[B; S] = U Σ Vᵀ`` gives ``u' = Vᵀ u`` with loadings ``U Σ``, and directions whose
    singular value carries less than ``share`` of the total variance change nothing the
    likelihood sees. Fewer, uncorrelated directions sample faster. Groups are padded to
    the same number of directions with zero loadings.
    """
    kept = []
    for g, (loading, slope) in enumerate(zip(loadings, slope_loadings)):
        # the offsets are read off the envelope, so a shape error moves them all together:
        # as much as α, s and the run scatter τ_a can absorb, and u moving them too makes
        # ridges NUTS crawls along (R-hat 1.05, 48 divergences on the ResNet corpus set);
        # the offsets' law takes that variation, u only what it does to x*, y* and γ1
        loading = loading.copy()
        loading[:, 0, :] = 0.0
        stacked = np.concatenate([loading.reshape(-1, loading.shape[-1]), slope])
        _, sv, vt = np.linalg.svd(stacked, full_matrices=False)
        k = max(1, int(np.sum(sv**2 > share * np.sum(sv**2))))
        loadings[g] = loading @ vt[:k].T
        slope_loadings[g] = slope @ vt[:k].T
        kept.append(k)
    width = max(kept)
    for g, k in enumerate(kept):
        loadings[g] = np.pad(loadings[g], ((0, 0), (0, 0), (0, width - k)))
        slope_loadings[g] = np.pad(slope_loadings[g], ((0, 0), (0, width - k)))
