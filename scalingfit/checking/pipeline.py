"""Do the two dynamical laws, combined, predict the best test error at each P?

Three answers per group, and the paper's recipe beside them
(:mod:`scalingfit.checking.paper_recipe`):

1. **the verdict on Δ = γ_conv − γ1·γ2** (:mod:`scalingfit.checking.verdict`), from the fit
   with a free convergence exponent;
2. **out of sample** (:mod:`scalingfit.checking.heldout`): the combined laws refitted
   without some sizes predict them;
3. **PSIS-LOO** (:mod:`scalingfit.checking.comparison`): the combined-law model against the
   free one, leaving one (group, P) level out at a time, with standard errors.

:func:`check` runs the fits they need and gathers them in a :class:`CheckResult`, whose
``to_dict()`` is ``check.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, make_dir
from ..errors import DataError, ScalingfitError
from .heldout import default_holdout, heldout_predictions, observed_optima
from .paper_recipe import paper_recipe
from .verdict import TOLERANCE, consistency

__all__ = ["check", "CheckResult", "check_matches", "load_check", "DEFINITIONS",
           "IDENTITY_SETTINGS"]


@dataclass
class CheckResult:
    """What :func:`check` found; ``to_dict()`` is the content of ``check.json``."""

    groups: list[dict]
    comparison: dict | None
    settings: dict
    fits: dict = field(default_factory=dict, repr=False)  # "free", "combined", "heldout"

    def to_dict(self) -> dict:
        out = {"groups": self.groups, "loo": self.comparison, "settings": self.settings,
               "definitions": DEFINITIONS}
        if "table_sha256_16" in self.settings:  # top level too, as in a fit's summary.json
            out["table_sha256_16"] = self.settings["table_sha256_16"]
        return out

    def save(self, directory) -> list[Path]:
        """Write ``check.json`` and, beside it, each fit it made (``fit-<name>/``)."""
        directory = make_dir(directory)
        path = directory / "check.json"
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(_json_safe(self.to_dict()), indent=2, allow_nan=False)
                           + "\n")
        paths = [path]
        for name, result in self.fits.items():
            if result is not None:
                paths.append(directory / f"fit-{name}")
                result.save(paths[-1])
        return paths

    def table(self) -> str:
        """A plain-text table: verdicts, held-out predictions, LOO and the paper's recipe
        (what ``scalingfit check`` prints)."""
        from ..report.text import check_table

        return check_table(self.to_dict())


def _json_safe(value):
    """NaN and infinities (a paper-recipe slope with no points) become null: strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


DEFINITIONS = {
    "delta": "gamma_conv - gamma1*gamma2, posterior of the fit with a free gamma_conv",
    "delta_envelope": "-(slope in log P of the runs' offsets from their group's envelope): "
                      "the part of delta from envelopes of different P not coinciding",
    "delta_shape": "delta - delta_envelope: the optimum's height above its own envelope "
                   "changing with P (and the envelope's curvature between the optima)",
    "verdict": "consistent: the 90 % interval of delta lies within [-tolerance, tolerance]; "
               "inconsistent: it lies wholly beyond; else inconclusive",
    "p_within_tolerance": "posterior probability that |delta| < tolerance",
    "observed_eps_star": "geometric mean over the held-out size's runs of each run's stage-1 "
                         "optimum (fitted curve minimum, full data); a run still improving at "
                         "its last step contributes its fitted error there (counted in "
                         "n_censored)",
    "pred_eps_star": "90 % predictive interval of observed_eps_star from the combined-law "
                     "model (gamma_conv = gamma1*gamma2) refitted without the held-out sizes: "
                     "the mean of n_runs new runs at a new P, plus the measurement error of "
                     "the observed value",
    "loo": "PSIS-LOO leaving out one (group, P) level; elpd_diff = combined - free",
    "paper_recipe": "log-log least squares; window: points before each run's lowest error "
                    "between 25 % and 75 % of the way from it up to the plateau",
}


def load_check(path) -> dict:
    """Read a ``check.json`` (or the directory holding it)."""
    path = Path(path)
    path = path / "check.json" if path.is_dir() else path
    if not path.exists():
        raise ScalingfitError(f"{path}: no check result there; run scalingfit check first.")
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ScalingfitError(f"{path}: not a readable check.json ({err}). Fix: rerun "
                              "scalingfit check ... --out DIR.") from err
    if not isinstance(content, dict) or not isinstance(content.get("groups"), list):
        raise ScalingfitError(f"{path}: not a check.json written by scalingfit check (no "
                              "'groups'). Fix: rerun scalingfit check ... --out DIR.")
    return content


#: fit settings that change what the exponents are: a check made with other values is a check
#: of other numbers (the sampler, its seed and the number of draws do not)
IDENTITY_SETTINGS = ("norm", "group_by", "at_end", "n_test")


def check_matches(result, content: dict, where="the check") -> None:
    """Refuse to put a check beside a fit of other data, or of the same data fitted otherwise.

    ``check.json`` records the hash of the table it checked (``table_sha256_16``, as in a
    fit's ``summary.json``), the hash of every fit it made (``settings.fit_tables``) and the
    fit settings (``settings.fit``). The fit must be of that table (the check's own fit-free
    or fit-combined, or any fit of the same data), with the same :data:`IDENTITY_SETTINGS`.

    Raises
    ------
    ScalingfitError
        One line, naming ``where`` and the fix.
    """
    settings = content.get("settings") or {}
    fix = ("Fix: report the fit the check was made from (or the check's own fit-free/), or "
           "rerun scalingfit check on this fit: scalingfit check FIT_DIR --out DIR.")
    checked, mine = content.get("table_sha256_16"), result.meta["table_sha256_16"]
    if not checked:
        raise ScalingfitError(f"{where} records no table_sha256_16: it was not written by "
                              f"scalingfit check. {fix}")
    tables = settings.get("fit_tables") or {}
    if mine == tables.get("heldout") and mine != checked:
        raise ScalingfitError(
            f"{where}: this fit is the check's held-out refit (fitted without the held-out "
            "sizes), not a fit of the table the check judged. Fix: report the check's "
            "fit-free/ (or fit-combined/) instead.")
    accepted = {checked} | {h for name, h in tables.items() if name != "heldout"}
    if mine not in accepted:
        raise ScalingfitError(
            f"{where} was made on another table (sha256 {checked}…) than this fit "
            f"(sha256 {mine}…): its verdicts are not about these exponents. {fix}")
    checked_fit = settings.get("fit") or {}
    for key in IDENTITY_SETTINGS:
        if key in checked_fit and key in result.settings:
            theirs, ours = checked_fit[key], result.settings[key]
            if isinstance(theirs, list | tuple) and isinstance(ours, list | tuple):
                theirs, ours = list(theirs), list(ours)
            if theirs != ours:
                raise ScalingfitError(
                    f"{where} was made with {key}={theirs!r}, this fit with {key}={ours!r}: "
                    f"its verdicts are about other exponents. {fix}")


def _fit_options(result, options: dict) -> dict:
    """The settings of ``result``, so that the other fits match it, unless overridden."""
    s = result.settings
    posterior = result.idata.posterior
    base = {"norm": s["norm"], "group_by": tuple(s["group_by"]), "at_end": s["at_end"],
            "n_test": s.get("n_test"), "sampler": s.get("sampler"), "seed": s.get("seed"),
            "draws": int(posterior.sizes["draw"]), "chains": int(posterior.sizes["chain"])}
    return {**base, **{k: v for k, v in options.items() if v is not None}}


def _without(table: pd.DataFrame, result, holdout: dict[int, list[int]]) -> pd.DataFrame:
    group_by = list(result.settings["group_by"])
    keep = np.ones(len(table), bool)
    for g, sizes in holdout.items():
        info = result.groups[g]
        mine = np.ones(len(table), bool)
        for key in group_by:
            mine &= table[key].astype(str).to_numpy() == str(info[key])
        keep &= ~(mine & table["train_size"].isin(sizes).to_numpy())
        left = table.loc[mine & keep, "train_size"].nunique()
        if left < 2:
            raise DataError(f"group {result.group_names[g]}: holding out "
                            f"P={sizes} leaves {left} training-set size(s); the laws need two.",
                            column="train_size", fix="hold out fewer sizes (--holdout).")
    return table[keep]


def check(table: pd.DataFrame, *, result=None, holdout=None, tolerance: float = TOLERANCE,
          compare: bool = True, refit_loo: bool = False, progress: bool = True,
          **fit_options) -> CheckResult:
    """Verdict, out-of-sample prediction, LOO comparison and paper recipe, per group.

    Parameters
    ----------
    table : pandas.DataFrame
        The canonical table (the one ``result`` was fitted to, if given).
    result : FitResult, optional
        A fit of ``table`` to reuse; the fits the check still needs copy its settings.
    holdout : sequence of int, optional
        Training-set sizes to leave out of the out-of-sample refit, in every group that has
        them; default: each group's largest P.
    tolerance : float
        Largest |Δ| a ``consistent`` verdict allows (see the module docstring).
    compare : bool
        Also fit the combined-law model to all the data and compare by PSIS-LOO.
    refit_loo : bool
        Replace the LOO terms with Pareto k > 0.7 by exact refits of stage 2 without that
        size (:func:`scalingfit.comparison.exact_level_elpd`; seconds each).
    progress : bool
        Show progress.
    **fit_options
        Passed to :func:`scalingfit.fit` (norm, group_by, at_end, sampler, draws, ...).

    Returns
    -------
    CheckResult
    """
    from ..fitting.pipeline import fit

    if not tolerance > 0:  # say so before minutes of fitting, not after
        raise ScalingfitError(f"the tolerance must be positive, got {tolerance}.")
    if holdout is not None:
        sizes = sorted({int(p) for p in holdout})
        if not set(sizes) & set(table["train_size"].astype(int)):
            raise ScalingfitError(f"no run has a held-out size {sizes}; the table has "
                                  f"{sorted(set(table['train_size'].astype(int)))}.")
    fits = {}
    free = combined = None
    if result is not None:
        fit_options = _fit_options(result, fit_options)
        if result.settings.get("tie_convergence"):
            combined = result
        else:
            free = result
    fit_options.setdefault("progress", progress)
    if free is None:
        free = fit(table, **{**fit_options, "tie_convergence": False})
        fit_options = _fit_options(free, fit_options)
    fits["free"] = free
    if compare and combined is None:
        combined = fit(table, **{**fit_options, "tie_convergence": True})
    if combined is not None:  # fitted for LOO, or given: saved either way (predict reads it)
        fits["combined"] = combined

    if holdout is None:
        chosen = default_holdout(free)
    else:
        present = {g: sorted(set(sizes) & set(rows["train_size"]))
                   for g, rows in observed_optima(free).groupby("group_index")}
        chosen = {g: s for g, s in present.items() if s}
        if not chosen:
            raise ScalingfitError(f"no group has runs at the held-out sizes {sizes}.")
    refit = fit(_without(table, free, chosen), **{**fit_options, "tie_convergence": True})
    fits["heldout"] = refit
    heldout = heldout_predictions(refit, free, chosen)

    comparison = None
    if compare:
        from .comparison import compare as loo_compare

        comparison = loo_compare(combined, free, refit=refit_loo, progress=progress)
    recipe = paper_recipe(table, norm=free.settings["norm"],
                          group_by=tuple(free.settings["group_by"]))
    names = free.group_names
    groups = []
    for g, (info, verdict_g) in enumerate(zip(free.groups, consistency(free, tolerance),
                                              strict=True)):
        entry = {**info, "name": names[g], "group": dict(info), **verdict_g,
                 "heldout": heldout[g]}
        if comparison is not None:
            entry["loo"] = comparison["groups"][names[g]]
        entry["paper_recipe"] = next(
            (r for r in recipe if all(str(r[k]) == str(info[k])
                                      for k in free.settings["group_by"])), None)
        groups.append(entry)
    settings = {"tolerance": tolerance, "interval": 0.9,
                "holdout": {names[g]: s for g, s in chosen.items()},
                "fit": _fit_options(free, {}),
                # what was checked: the hash of the table (a fit's table_sha256_16) and of
                # each fit's, so a report refuses a check of other data (check_matches)
                "table_sha256_16": free.meta.get("table_sha256_16"),
                "fit_tables": {name: f.meta.get("table_sha256_16") for name, f in fits.items()},
                "diagnostics": {name: f.diagnostics for name, f in fits.items()}}
    return CheckResult(groups=groups, comparison=comparison, settings=settings, fits=fits)
