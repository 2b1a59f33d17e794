"""Do the two dynamical laws, combined, predict the best test error at each P?

Three answers per group, and the paper's recipe beside them (:mod:`scalingfit.paper_recipe`):

1. **Verdict on Δ = γ_conv − γ1·γ2**, from the fit with a free convergence exponent:

   - ``consistent``: the 90 % interval of Δ contains 0 *and* lies inside
     ``[−tolerance, +tolerance]``, i.e. the data exclude any discrepancy larger than the
     tolerance;
   - ``inconsistent``: the 90 % interval excludes 0;
   - ``inconclusive``: neither — the interval holds 0 but also discrepancies larger than the
     tolerance (too few runs, too short a range of P, too much noise).

   The default tolerance, :data:`TOLERANCE` = 0.1, is absolute, in units of an exponent of
   P. Why absolute: Δ is itself an exponent of P (γ1·γ2 and γ_conv are unchanged when the
   norm is replaced by a power of it), and a discrepancy Δ makes the combined laws misjudge
   ε* by a factor ``(P₂/P₁)^Δ`` between two sizes: 0.1 is 7 % per doubling of P, 26 % per
   decade. Typical sweeps span one decade of P with seed scatter of a few per cent in ε*,
   so discrepancies well below 0.1 are beyond what they can resolve, and a discrepancy of
   0.1 or more is one a user predicting ε* would care about. For exponents γ1·γ2 much
   smaller than 0.5, pass a smaller tolerance (e.g. a quarter of γ1·γ2).

2. **Out of sample**: the data are refitted without the largest P of each group (or the
   sizes given as ``holdout``), with the combined-law model (``γ_conv = γ1·γ2``), and
   ε*(P) and λ*(P) are predicted at the held-out sizes with 90 % predictive intervals
   (:mod:`scalingfit.prediction`: the mean of as many new runs as were held out at that P,
   plus the measurement error of the observed value, below).

   **Observed ε*(P)** of a held-out size is the geometric mean, over its runs (seeds), of
   each run's stage-1 optimum — the minimum of the curve fitted to the run on the full
   data (:mod:`scalingfit.summaries`), the same quantity the model's ``y*`` describes, and
   less biased by noise than the lowest logged error. A run still improving at its last
   step contributes its fitted error there (an upper bound on its ε*); such runs are
   counted (``n_censored``). Observed λ*(P) likewise: geometric mean of the runs' fitted
   optima (the last point, a lower bound, for runs still improving).

3. **PSIS-LOO** (:mod:`scalingfit.comparison`): the combined-law model against the free one,
   leaving one (group, P) level out at a time, with standard errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path, make_dir
from .errors import DataError, ScalingfitError
from .prediction import format_log, interval_text, log_interval_text, predictive_draws
from .result import stat_summary

__all__ = ["check", "CheckResult", "consistency", "verdict", "observed_optima",
           "heldout_predictions", "default_holdout", "TOLERANCE"]

TOLERANCE = 0.1  # largest |Δ| a "consistent" verdict allows; see the module docstring


# ------------------------------------------------------------------------- verdict
def verdict(delta: dict, tolerance: float = TOLERANCE) -> str:
    """The verdict on the summary ``S`` of Δ's draws (its 90 % interval ``q05``–``q95``)."""
    if not tolerance > 0:
        raise ScalingfitError(f"the tolerance must be positive, got {tolerance}.")
    low, high = delta["q05"], delta["q95"]
    if low > 0 or high < 0:
        return "inconsistent"
    if -tolerance <= low and high <= tolerance:
        return "consistent"
    return "inconclusive"


def consistency(result, tolerance: float = TOLERANCE) -> list[dict]:
    """Δ = γ_conv − γ1·γ2 per group, and its verdict, from a free-exponent fit."""
    if result.settings.get("tie_convergence"):
        raise ScalingfitError("this fit ties γ_conv to γ1·γ2 (tie_convergence=True), so Δ is 0 "
                              "by construction; the verdict needs a fit with a free γ_conv.")
    delta = result.draws("gamma_conv") - result.draws("gamma_pred")
    out = []
    for g in range(len(result.groups)):
        s = stat_summary(delta[:, g])
        out.append({"delta": s, "verdict": verdict(s, tolerance), "tolerance": tolerance,
                    "gamma_pred": stat_summary(result.draws("gamma_pred")[:, g]),
                    "gamma_conv": stat_summary(result.draws("gamma_conv")[:, g])})
    return out


# ------------------------------------------------------------------------- held out
def observed_optima(result) -> pd.DataFrame:
    """Each run's optimum in raw units (natural logs), as the check defines "observed".

    The stage-1 optimum for a run that reached it; its last point (fitted error, logged
    norm) for a run still improving at its last step (``censored``).
    """
    c = result.idata.constant_data
    g = c["group_index"].to_numpy()
    z = c["z"].to_numpy()
    censored = c["censored"].to_numpy().astype(bool)
    x_std = np.where(censored, c["x_last"].to_numpy(), z[:, 1])
    y = np.where(censored, c["y_last"].to_numpy(), z[:, 2])
    scale, center = c["x_scale"].to_numpy()[g], c["x_center"].to_numpy()[g]
    cov, loading = c["z_cov"].to_numpy(), c["loading"].to_numpy()
    return pd.DataFrame({
        "run_id": c["run"].to_numpy(), "group_index": g,
        "train_size": c["train_size"].to_numpy().astype(int), "censored": censored,
        "log_lam_star": center + scale * x_std, "log_eps_star": y,
        # measurement error of the stage-1 optimum: its own variance, and its loadings on
        # the group's shared-shape error (common to all runs, so not averaged away)
        "var_log_eps": np.where(censored, c["y_last_sd"].to_numpy() ** 2, cov[:, 2, 2]),
        "var_log_lam": np.where(censored, 0.0, scale**2 * cov[:, 1, 1]),
    }).assign(load_eps=list(loading[:, 2, :]), load_lam=list(scale[:, None] * loading[:, 1, :]))


def default_holdout(result) -> dict[int, list[int]]:
    """The largest P of each group (by group index)."""
    optima = observed_optima(result)
    return {g: [int(rows["train_size"].max())] for g, rows in optima.groupby("group_index")}


def _observed_mean(runs: pd.DataFrame) -> dict:
    """Geometric means over runs, and the variance of their logs' measurement error."""
    n = len(runs)
    load_eps = np.mean(np.stack(runs["load_eps"].to_list()), axis=0)
    load_lam = np.mean(np.stack(runs["load_lam"].to_list()), axis=0)
    return {"log_eps_star": float(runs["log_eps_star"].mean()),
            "log_lam_star": float(runs["log_lam_star"].mean()),
            "var_log_eps": float(runs["var_log_eps"].sum() / n**2 + load_eps @ load_eps),
            "var_log_lam": float(runs["var_log_lam"].sum() / n**2 + load_lam @ load_lam),
            "n_runs": n, "n_censored": int(runs["censored"].sum())}


def heldout_predictions(refit, full, holdout: dict[int, list[int]], *,
                        seed: int | None = None) -> list[list[dict]]:
    """Predictions of the held-out sizes by ``refit``, beside what ``full`` observed.

    Parameters
    ----------
    refit : FitResult
        Fitted without the held-out sizes (normally with ``tie_convergence=True``).
    full : FitResult
        Fitted to all the data; gives the observed optima (:func:`observed_optima`).
    holdout : dict
        Group index → held-out sizes.

    Returns
    -------
    list (per group of ``full``) of lists of dict
        ``train_size``, ``observed_eps_star``, ``pred_eps_star`` (S), ``covered``,
        ``observed_log_lam_star``, ``pred_log_lam_star`` (S, natural log), ``n_runs``,
        ``n_censored``, ``extrapolation_factor``.
    """
    optima = observed_optima(full)
    full_names = list(full.idata.constant_data["group"].to_numpy())
    refit_names = list(refit.idata.constant_data["group"].to_numpy())
    rng = np.random.default_rng(refit.settings.get("seed", 0) if seed is None else seed)
    out = []
    for g, name in enumerate(full_names):
        entries = []
        if name not in refit_names:
            raise ScalingfitError(f"group {name} is missing from the refit.")
        r = refit_names.index(name)
        refit_sizes = refit.idata.constant_data["train_size"].to_numpy()[
            refit.idata.constant_data["group_index"].to_numpy() == r]
        for size in holdout.get(g, []):
            runs = optima[(optima["group_index"] == g) & (optima["train_size"] == size)]
            if runs.empty:
                continue
            obs = _observed_mean(runs)
            draws = predictive_draws(refit, size, n_runs=obs["n_runs"],
                                     seed=int(rng.integers(2**31)))
            noise = rng.standard_normal((2, len(draws["log_eps_star"])))
            log_eps = draws["log_eps_star"][:, r] + math.sqrt(obs["var_log_eps"]) * noise[0]
            log_lam = draws["log_lam_star"][:, r] + math.sqrt(obs["var_log_lam"]) * noise[1]
            pred = stat_summary(np.exp(log_eps))
            observed = math.exp(obs["log_eps_star"])
            entries.append({
                "train_size": int(size), "observed_eps_star": observed, "pred_eps_star": pred,
                "covered": bool(pred["q05"] <= observed <= pred["q95"]),
                "observed_log_lam_star": obs["log_lam_star"],
                "pred_log_lam_star": stat_summary(log_lam),
                "lam_covered": bool(np.quantile(log_lam, 0.05) <= obs["log_lam_star"]
                                    <= np.quantile(log_lam, 0.95)),
                "n_runs": obs["n_runs"], "n_censored": obs["n_censored"],
                "extrapolation_factor": float(size / refit_sizes.max()) if size
                > refit_sizes.max() else float(refit_sizes.min() / size) if size
                < refit_sizes.min() else 1.0})
        out.append(entries)
    return out


# ------------------------------------------------------------------------- the whole check
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
        """A plain-text table: verdicts, held-out predictions, LOO and the paper's recipe."""
        return format_check(self.to_dict())


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
    "verdict": "consistent: the 90 % interval of delta contains 0 and lies within "
               "[-tolerance, tolerance]; inconsistent: it excludes 0; else inconclusive",
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


def _group_names(groups) -> list[str]:
    return [f"{g['architecture']} / {g['dataset']}" for g in groups]


def check_matches(result, content: dict, where="the check") -> None:
    """Refuse to put a check beside a fit of other data, or of the same data fitted otherwise.

    ``check.json`` records the hash of the table it checked (``table_sha256_16``, as in a
    fit's ``summary.json``), the hash of every fit it made (``settings.fit_tables``) and the
    fit settings (``settings.fit``). The fit must be of that table (the check's own fit-free
    or fit-combined, or any fit of the same data), with the same :data:`IDENTITY_SETTINGS`.
    A ``check.json`` written before the hash was recorded is matched on its groups only.

    Raises
    ------
    ScalingfitError
        One line, naming ``where`` and the fix.
    """
    settings = content.get("settings") or {}
    fix = ("Fix: report the fit the check was made from (or the check's own fit-free/), or "
           "rerun scalingfit check on this fit: scalingfit check FIT_DIR --out DIR.")
    checked = content.get("table_sha256_16") or settings.get("table_sha256_16")
    mine = result.meta.get("table_sha256_16")
    if checked and mine:
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
    elif _group_names(content.get("groups", [])) != _group_names(result.groups):
        raise ScalingfitError(
            f"{where} judged the groups {_group_names(content.get('groups', []))}, this fit has "
            f"{_group_names(result.groups)}: they are not of the same data. {fix}")
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
            raise DataError(f"group {' / '.join(str(info[k]) for k in group_by)}: holding out "
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
    from .fitting import fit
    from .paper_recipe import paper_recipe

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
    names = list(free.idata.constant_data["group"].to_numpy())
    groups = []
    for g, (info, verdict_g) in enumerate(zip(free.groups, consistency(free, tolerance),
                                                          strict=True)):
        entry = {"architecture": str(info["architecture"]), "dataset": str(info["dataset"]),
                 "group": {k: str(v) for k, v in info.items()}, **verdict_g,
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


# ------------------------------------------------------------------------- printing
def _interval(s: dict, digits: int = 3) -> str:
    return f"{s['median']:+.{digits}f} [{s['q05']:+.{digits}f}, {s['q95']:+.{digits}f}]"


def format_check(content: dict) -> str:
    """The check's plain-text table (what ``scalingfit check`` prints)."""
    lines = []
    tolerance = content.get("settings", {}).get("tolerance", TOLERANCE)
    header = f"{'group':<28}{'delta = gamma_conv - gamma1*gamma2':>36}  {'verdict':<14}"
    lines += [f"verdict (90 % interval of delta; consistent: inside +/-{tolerance:g})", header,
              "-" * len(header)]
    free_passed = content.get("settings", {}).get("diagnostics", {}).get(
        "free", {}).get("passed", True)
    mark = "" if free_passed else " (unconverged)"
    for g in content["groups"]:
        name = f"{g['architecture']} / {g['dataset']}"
        lines.append(f"{name:<28}{_interval(g['delta']):>36}  {g['verdict'] + mark:<14}")
    if not free_passed:
        lines.append("(unconverged): the free fit these verdicts come from failed its "
                     "diagnostics; do not rely on them before a rerun with more draws.")
    lines += ["", "held out (combined laws refitted without these sizes; 90 % predictive "
                  "intervals)"]
    header = (f"{'group':<28}{'P':>8}{'observed eps*':>15}{'predicted eps*':>34}{'in':>5}"
              f"{'observed lambda*':>18}{'predicted lambda*':>34}")
    lines += [header, "-" * len(header)]
    for g in content["groups"]:
        name = f"{g['architecture']} / {g['dataset']}"
        for h in g["heldout"]:
            p, lam = h["pred_eps_star"], h["pred_log_lam_star"]
            lines.append(
                f"{name:<28}{h['train_size']:>8}{h['observed_eps_star']:>15.4g}"
                f"{interval_text(p):>34}"
                f"{'yes' if h['covered'] else 'no':>5}"
                f"{format_log(h['observed_log_lam_star']):>18}"
                f"{log_interval_text(lam):>34}")
    loo = content.get("loo")
    if loo:
        lines += ["", f"PSIS-LOO, {loo['unit']}; elpd(combined) - elpd(free):",
                  f"{'all groups':<28}{loo['elpd_diff']:>+10.2f} +/- {loo['se_diff']:.2f}  "
                  f"favours {loo['favours']}"]
        for name, d in loo["groups"].items():
            lines.append(f"{name:<28}{d['elpd_diff']:>+10.2f} +/- {d['se_diff']:.2f}  "
                         f"favours {d['favours']} ({d['n_levels']} sizes)")
        models = ("combined", "free")
        refitted = {m: len(loo[m].get("refitted", [])) for m in models}
        high = {m: loo[m]["n_pareto_k_above_0.7"] - refitted[m] for m in models}
        if any(refitted.values()):
            lines.append("  refitted exactly (Pareto k > 0.7): " + "; ".join(
                f"{refitted[m]} left-out sizes in the {m} model" for m in models) + ".")
        if any(high.values()):
            lines.append(
                "  Pareto k > 0.7 (those LOO terms are unreliable; --refit-loo refits them): "
                + "; ".join(f"{high[m]} of the {loo[m]['n_levels']} left-out sizes in the {m} "
                            "model" for m in models) + ".")
    lines += ["", "paper recipe (log-log least squares on windows), for reference:"]
    header = f"{'group':<28}{'gamma1':>9}{'gamma2':>9}{'g1*g2':>9}{'g_conv':>9}{'delta':>9}"
    lines += [header, "-" * len(header)]
    for g in content["groups"]:
        r = g.get("paper_recipe")
        if r:
            name = f"{g['architecture']} / {g['dataset']}"
            lines.append(f"{name:<28}" + "".join(
                f"{r[k]:>9.3f}" if r[k] is not None and math.isfinite(r[k]) else f"{'n/a':>9}"
                for k in ("gamma1", "gamma2", "gamma_pred", "gamma_conv", "delta")))
    failed = [f"{name} (max R-hat {d['rhat_max']:.3f}, min ESS "
              f"{min(d['ess_bulk_min'], d['ess_tail_min']):.0f}, {d['divergences']} divergences)"
              for name, d in content.get("settings", {}).get("diagnostics", {}).items()
              if not d.get("passed", True)]
    if failed:
        lines += ["", "warning: these fits failed their convergence diagnostics, so their "
                      "intervals are not to be trusted; rerun with more draws: "
                  + "; ".join(failed)]
    return "\n".join(lines)
