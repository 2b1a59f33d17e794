r"""Calibrate a fit: simulate sweeps like the user's from the fit itself, refit each, and
count how often the intervals hold the truth and the verdict on Δ is right.

What is simulated
-----------------
Each replicate takes **one posterior draw** of the fit as its truth (so the truth varies
from replicate to replicate, as rank tests need), in the model's own terms
(:mod:`scalingfit.fitting.model`), keeping the user's sizes, seeds per size and each run's
logged norms:

- per group: the laws of the optima (``κ, γ2, ν``), their run-level scatter
  (``σ_x, σ_y, ρ_run``) and size-level scatter (``ω_x, ω_y, ρ_size``) and the
  **envelope** — stage 1's log slopes corrected for the draw's shape error through
  ``slope_loading``, and beyond the last run still on it, its drift
  (:class:`TrueEnvelope`); law 1's true exponent is that envelope's mean slope between the true
  law-2 optima (:func:`~scalingfit.fitting.likelihood.envelope_slope`, the model's own
  definition). The chance plateau, its sharpness, the departures' sharpness ``s`` and the
  extra noise ``σ0`` are stage 1's;
- per size: its deviation from the laws (``ω``, ``ρ_size``); per run: its scatter
  (``τ, σ, ρ_run``), giving the run's optimum and best error ``(x*, y*)``;
- the run's curve is stage 1's, ``cap(E(x) + a + (b/s)·softplus(s(x − d)))``, with ``d`` and
  ``b`` chosen so that its minimum is exactly ``(x*, y*)``, a height ``h`` above its
  envelope (:func:`departure_through`). How high: the offset ``a`` decides it, and not any
  offset will do. The minimum needs ``s·h/g > 1`` (``g`` the envelope's slope at ``x*``,
  ``s`` the group's departure sharpness), and a large ``s·h/g`` is a curve that barely rises
  after its optimum (:data:`RATIO_RANGE`). Fitted runs agree: their ``s·h/g`` lies in a
  narrow band (1.31–1.82 in the benchmark's sweep), because a run whose optimum sits
  higher also sits higher on the envelope. The model's run and size levels scatter the
  offset independently of the optimum, so offsets drawn from them spread ``s·h/g`` over
  0.4–3.3 and put a quarter of the runs out of range. So by default
  (``offsets="heights"``) a run's height is that of one of its group's fitted runs
  (resampled, as ``s·h/g``), and its offset follows from its optimum; its offsets' slope in
  log P is then the scenario's (−Δ, up to the envelope's curvature). ``offsets="model"``
  draws the offsets from the model instead and moves those out of range to its edge
  (counted; its offsets follow the draw's ``α``, the scenario's slope, ``τ_a`` and
  ``ω_a``). Either way ``x*`` and ``y*``, which the exponents are about, are the draw's;
  runs whose curve has a lower point elsewhere in their range are counted. (The
  calibration of ``offsets="model"``, in docs/check.md, shows why the default is the
  other);
- it is evaluated at the run's own logged norms, shifted by ``x*_sim − x*_fit``: runs keep
  their logging density, and a run that ended before its optimum ends about as far before
  it again (for such a run ``x*_fit`` is the later of its last point and where the fit's
  law 2 puts its optimum);
- noise: Gaussian ``σ0`` in log error, then binomial on the run's ``n_test`` where known;
- runs that never left the chance plateau (``meta["excluded_runs"]``) are simulated at
  chance, so the refit meets them again; runs too short to be fitted are copied as they are.

Two scenarios change the draw's Δ = γ_conv − γ1·γ2 before simulating:

- ``combined``: ``γ_conv = γ1·γ2`` and the offsets' slope 0 (one envelope for all P, Δ = 0):
  the share of groups the verdict calls ``inconsistent`` is its **false-alarm rate**;
- ``violated``: the offsets' slope ``−delta`` (the envelopes of larger P lie lower) and
  ``γ_conv = γ1·γ2 + delta``: the share called ``inconsistent`` is its **detection rate**
  (meaningful for ``delta`` beyond the verdict's tolerance).

What is measured
----------------
Each replicate is refitted with the fit's settings (norm, groups, ``at_end``, sampler,
draws, chains; overridable). Per quantity (γ1, γ2, γ1·γ2, γ_conv and Δ), pooling groups,
replicates and both scenarios, and per group: the share of truths inside the 50 % and
90 % central posterior intervals, the rank of each truth among :data:`RANK_DRAWS` evenly
thinned posterior draws with a χ² test of their uniformity, where the truths that fall
outside lie (below the 5 % quantile, above the 95 %: a one-sided excess is a bias, both an
interval too narrow), and the mean relative error of the posterior median. Every share
comes with its binomial 90 % interval (Clopper–Pearson): with a few dozen truths a 90 %
coverage is known to about ±0.1, no better. Refits that fail their diagnostics are kept
and counted; refits that raise are counted apart.

The truths are posterior draws, not prior draws, so this is not simulation-based
calibration in the strict sense (the fit's priors are weak and data-scaled, see
:mod:`scalingfit.fitting.model`): uniform ranks here say that the intervals are honest
for truths like the fit's.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from ..atomic import atomic_path, make_dir
from ..errors import ScalingfitError, ScalingfitWarning, first_line
from ..fitting.groups import group_name
from ..fitting.laws import cap, departure, envelope, uncapped_optimum
from ..fitting.likelihood import EXPONENTS, PARAMS, drift_factor, envelope_slope, laws_mean
from ..ingest.table import NORM_PATTERN, log_norm
from ..progress import Progress
from .verdict import TOLERANCE, delta_parts, verdict

__all__ = ["calibrate", "CalibrationResult", "posterior_draw", "with_scenario", "truth_of",
           "TrueEnvelope", "true_envelopes",
           "simulate_from_fit", "departure_through", "interval_hits", "truth_rank",
           "rank_test", "share", "calibration_table", "SCENARIOS", "QUANTITIES", "OFFSETS",
           "RANK_DRAWS", "RATIO_RANGE", "DEFINITIONS"]

#: The scenarios a calibration simulates (see the module docstring).
SCENARIOS = ("combined", "violated")
#: What coverage and ranks are measured for: the exponents, and Δ.
QUANTITIES = (*EXPONENTS, "delta")
#: Posterior draws a truth is ranked among (evenly thinned): ranks 0..99, 100 values, so
#: 10, 5, 4 or 2 equal bins.
RANK_DRAWS = 99
#: The range of ``s·h/g`` a simulated run is given (``h`` its optimum's height above its
#: envelope, ``g`` the envelope's slope there, ``s`` the group's departure sharpness). At 1
#: the departure would start at +∞ with an infinite rise; at 1.2 it starts ~0.8/s after the
#: optimum and its slope reaches ~3.2 times the envelope's. As the ratio grows the rise
#: flattens: at 2 the departure's slope is only 1.25 times the envelope's, and beyond, an
#: envelope that steepens a little after the optimum makes the curve fall again (its
#: minimum is then elsewhere). The runs stage 1 fitted in the benchmark's sweep
#: (benchmarks/calibration.py) had 1.31–1.82 (median 1.59) where they reached their optimum.
RATIO_RANGE = (1.2, 2.0)
#: Where a simulated run's offset comes from: ``heights`` (default), its optimum minus a
#: height above the envelope like one of the fitted runs' (the offset then follows the
#: optimum, as in the data); ``model``, the model's law and scatter of the offsets, which
#: are independent of the optimum's (moved where needed: :data:`RATIO_RANGE`).
OFFSETS = ("heights", "model")
#: Columns of measured quantities that a simulated table does not carry (they would be the
#: user's, not the simulation's).
_NOT_SIMULATED = ("train_error", "test_loss", "train_loss")

DEFINITIONS = {
    "truth": "one posterior draw of the fit per replicate; gamma1 is its envelope's mean "
             "slope between its law-2 optima of the smallest and largest P",
    "combined": "gamma_conv = gamma1*gamma2 and the offsets' slope 0: delta = 0",
    "violated": "the offsets' slope -delta and gamma_conv = gamma1*gamma2 + delta: "
                "delta_envelope = delta",
    "coverage50, coverage90": "share of truths inside the central 50 % / 90 % posterior "
                              "interval of the refit; [q05, q95]: binomial 90 % interval "
                              "(Clopper-Pearson)",
    "rank": f"number of {RANK_DRAWS} evenly thinned posterior draws below the truth (ties "
            "split at random); uniform on 0..99 for calibrated posteriors",
    "rank_p": "p-value of a chi-square test of uniformity of the ranks, in rank_bins equal "
              "bins (at least 5 truths expected per bin)",
    "below_q05, above_q95": "share of truths below the refit's 5 % quantile / above its 95 % "
                            "quantile (0.05 each when calibrated; one side in excess: a "
                            "bias, both: intervals too narrow)",
    "z": "(posterior median - truth) / posterior sd; z_sd near 1 when calibrated",
    "false_alarm": "share of (replicate, group) pairs of the combined scenario called "
                   "inconsistent",
    "detection": "share of (replicate, group) pairs of the violated scenario called "
                 "inconsistent",
}


# ----------------------------------------------------------------- the truth of a replicate
def posterior_draw(result, sample: int) -> dict[str, np.ndarray]:
    """One posterior draw of the fit's stage-2 parameters (:data:`PARAMS` and
    ``envelope_drift``), per group, with law 1's exponent ``gamma1`` of that draw's envelope
    and ``gamma_pred``."""
    draw = {name: np.asarray(result.draws(name)[sample], float) for name in PARAMS}
    # the envelope's drift beyond the last run still on it (zero in fits made before it)
    draw["envelope_drift"] = (np.asarray(result.draws("envelope_drift")[sample], float)
                              if "envelope_drift" in result.idata.posterior
                              else np.zeros_like(draw["gamma2"]))
    data = result.run_estimates()
    draw["gamma1"] = np.asarray(envelope_slope(data, draw["kappa"], draw["gamma2"],
                                               draw["shape_error"], draw["envelope_drift"]),
                                float)
    draw["gamma_pred"] = draw["gamma1"] * draw["gamma2"]
    return draw


def with_scenario(draw: dict, scenario: str, delta: float) -> dict:
    """The draw with the Δ of a scenario: ``combined`` (Δ = 0, offsets' slope 0) or
    ``violated`` (offsets' slope ``−delta``, Δ = ``delta``); see the module docstring."""
    if scenario not in SCENARIOS:
        raise ScalingfitError(f"scenario must be one of {SCENARIOS}, got {scenario!r}.")
    shift = 0.0 if scenario == "combined" else float(delta)
    out = dict(draw)
    out["offset_slope"] = np.full_like(draw["gamma2"], -shift)
    out["gamma_conv"] = draw["gamma1"] * draw["gamma2"] + shift
    return out


def truth_of(draw: dict) -> dict[str, np.ndarray]:
    """Per group, the true value of every quantity in :data:`QUANTITIES` and Δ's parts."""
    delta = draw["gamma_conv"] - draw["gamma1"] * draw["gamma2"]
    return {"gamma1": draw["gamma1"], "gamma2": draw["gamma2"],
            "gamma_pred": draw["gamma1"] * draw["gamma2"], "gamma_conv": draw["gamma_conv"],
            "delta": delta, "delta_envelope": -draw["offset_slope"],
            "delta_shape": delta + draw["offset_slope"]}


# ----------------------------------------------------------------- one run's curve
def _ratio(u):
    """``softplus(u)/σ(u)``: increasing from 1 (u → −∞) to ∞ (≈ u)."""
    return np.logaddexp(0.0, u) / expit(u)


def departure_through(slope, height, sharpness, x_star, *, iterations: int = 200):
    """The departure ``(d, b)`` whose curve ``E + a + (b/s)·softplus(s(x − d))`` has its
    minimum at ``x*``, ``height`` above the envelope there.

    With ``g = −E'(x*) > 0`` (``slope``) and ``h`` (``height``) the minimum needs
    ``b·σ(u) = g`` and ``(b/s)·softplus(u) = h`` at ``u = s(x* − d)``, so
    ``softplus(u)/σ(u) = s·h/g``: solvable (the ratio is increasing, from 1) iff
    ``s·h/g > 1``. Solved by bisection, vectorised.

    Returns
    -------
    d, b : numpy.ndarray
    """
    slope, height, sharpness, x_star = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (slope, height, sharpness, x_star)))
    target = sharpness * height / slope
    if np.any(~(target > 1)):
        raise ValueError("departure_through needs s·h/g > 1 for every run; got "
                         f"{np.min(target):.3g}")
    low = np.full(target.shape, -50.0)   # ratio(−50) − 1 ≈ 1e-22: below any target > 1
    high = target + 1.0                  # ratio(u) > u for every u, so ratio(target+1) > target
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        above = _ratio(mid) > target
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    u = 0.5 * (low + high)
    return x_star - u / sharpness, slope / expit(u)


@dataclass
class _Group:
    """A group's curve constants, from the fit's constant_data (standardised units)."""

    x_scale: float
    x_center: float
    knots: np.ndarray
    width: float
    sharpness: float
    log_chance: float
    plateau_sharpness: float
    sigma0: float


def _groups(result) -> list[_Group]:
    c = result.idata.constant_data
    return [_Group(*(float(c[k][g]) for k in ("x_scale", "x_center")),
                   c["knots"].to_numpy()[g], *(float(c[k][g]) for k in (
                       "width", "sharpness", "log_chance", "plateau_sharpness", "sigma0")))
            for g in range(c.sizes["group"])]


def _run_curves(draw, data, groups, rng, offsets="heights"):
    """Each stage-2 run's true ``(a, x*, y*)`` and its curve's departure ``(d, b, s)``:
    the optima drawn from the laws, the size level and the run level; the offsets from
    resampled heights, or from the model (``offsets``; the module docstring says why)."""
    if offsets not in OFFSETS:
        raise ScalingfitError(f"offsets must be one of {OFFSETS}, got {offsets!r}.")
    g = data.group
    level_group = data.level_group
    zs = rng.standard_normal((len(level_group), 3))
    rho = draw["rho_size"][level_group]
    omega_y = draw["omega_y"][level_group]
    size = np.column_stack([draw["omega_offset"][level_group] * zs[:, 0],
                            draw["omega_x"][level_group] * zs[:, 1],
                            omega_y * (rho * zs[:, 1] + np.sqrt(1 - rho**2) * zs[:, 2])])
    e = rng.standard_normal((len(g), 3))
    rho_run = draw["rho_run"][g]
    run = np.column_stack([draw["tau_offset"][g] * e[:, 0], draw["sigma_x"][g] * e[:, 1],
                           draw["sigma_y"][g] * (rho_run * e[:, 1]
                                                 + np.sqrt(1 - rho_run**2) * e[:, 2])])
    mean = np.column_stack(laws_mean(draw, data.x_scale, g, data.ell))
    a, x_star, y_star = (mean + size[data.level] + run).T

    envelopes = true_envelopes(draw, data)
    level, slope = np.empty(len(g)), np.empty(len(g))
    for k, env in enumerate(envelopes):
        mine = g == k
        level[mine], slope[mine] = env(x_star[mine]), -env.slope(x_star[mine])
    log_c = np.array([groups[k].log_chance for k in g])
    h_cap = np.array([groups[k].plateau_sharpness for k in g])
    sharpness = np.array([groups[k].sharpness for k in g])
    top = uncapped_optimum(y_star, log_c, h_cap) - level   # the optimum above E, a included
    if offsets == "heights":
        # each run's optimum as high above its envelope as one of its group's fitted runs'
        ratios = _fit_ratios(data, groups)
        ratio = np.array([rng.choice(ratios[k]) for k in g])
        height, moved = ratio * slope / sharpness, np.zeros(len(g))
        a = top - height
    else:
        # the model's offset; one too close to its optimum for the group's departure (or
        # above it), or so far below it that the curve would not rise after it, moves until
        # it is not (x*, y*, the laws' quantities, stay); see RATIO_RANGE
        low, high = (r * slope / sharpness for r in RATIO_RANGE)
        height = top - a
        moved = np.clip(height, low, high) - height
        a, height = a - moved, height + moved
    d, b = departure_through(slope, height, sharpness, x_star)
    return {"a": a, "x_star": x_star, "y_star": y_star, "departure": d, "rise": b,
            "sharpness": sharpness, "offset_moved": -moved}, envelopes


def _fit_ratios(data, groups) -> list[np.ndarray]:
    """Per group, ``s·h/g`` of the fitted runs that reached an optimum in their range
    (stage 1's estimates, clipped to :data:`RATIO_RANGE`); a group with fewer than three
    such runs borrows every group's."""
    g = data.group
    knots = np.stack([groups[k].knots for k in g])
    width = np.array([groups[k].width for k in g])[:, None]
    a, x_star, y_star = data.z.T
    log_slopes = data.log_slopes[g]
    log_c = np.array([groups[k].log_chance for k in g])
    h_cap = np.array([groups[k].plateau_sharpness for k in g])
    sharpness = np.array([groups[k].sharpness for k in g])
    height = (uncapped_optimum(y_star, log_c, h_cap) - envelope(x_star, log_slopes, knots, width)
              - a)
    slope = -envelope(x_star, log_slopes, knots, width, derivative=True)
    ratio = np.clip(sharpness * height / slope, *RATIO_RANGE)
    seen = ~data.censored
    pooled = ratio[seen] if seen.sum() >= 3 else np.array([np.mean(RATIO_RANGE)])
    return [ratio[seen & (g == k)] if (seen & (g == k)).sum() >= 3 else pooled
            for k in range(len(groups))]


@dataclass
class TrueEnvelope:
    """A group's true envelope in a draw, as
    :func:`~scalingfit.fitting.likelihood.envelope_slope` reads γ1 off it (a test holds the
    two together): stage 1's log slopes ``θ`` corrected for the draw's shape error ``u``
    (stage 1 estimated ``θ + S u``), and beyond the last knot, where stage 1 continues it
    straight, a slope multiplied by ``exp(η·b(x)/L)`` (``η`` the draw's ``envelope_drift``,
    ``b(x) = w·softplus((x − t_K)/w)``, ``L`` a segment's length). Call it for ``E(x)``."""

    log_slopes: np.ndarray
    knots: np.ndarray
    width: float
    drift: float = 0.0

    def _factor(self, x):
        return drift_factor(x, self.knots, self.width, self.drift)

    def slope(self, x):
        """``E'(x)``."""
        x = np.asarray(x, float)
        base = envelope(x, self.log_slopes, self.knots, self.width, derivative=True)
        return base * self._factor(x)

    def __call__(self, x):
        x = np.asarray(x, float)
        value = envelope(x, self.log_slopes, self.knots, self.width)
        if self.drift == 0 or x.size == 0:
            return value
        # the drift's extra fall, ∫ E'·(factor − 1) from where it is nil (40 widths below
        # the last knot: factor − 1 < 1e-17) to x, by the trapezoid rule on a fine grid
        start = self.knots[-1] - 40 * self.width
        grid = np.linspace(start, max(float(x.max()), start), 4001)
        extra = (envelope(grid, self.log_slopes, self.knots, self.width, derivative=True)
                 * (self._factor(grid) - 1))
        total = np.concatenate([[0.0], np.cumsum(0.5 * (extra[1:] + extra[:-1])
                                                 * np.diff(grid))])
        return value + np.interp(x, grid, total, left=0.0)


def true_envelopes(draw, data) -> list[TrueEnvelope]:
    """Each group's :class:`TrueEnvelope` in a draw."""
    log_slopes = (data.log_slopes
                  - (data.slope_loading * draw["shape_error"][:, None, :]).sum(-1))
    drift = draw.get("envelope_drift", np.zeros(len(log_slopes)))
    return [TrueEnvelope(log_slopes[k], data.knots[k], float(data.width[k]), float(drift[k]))
            for k in range(len(log_slopes))]


# ----------------------------------------------------------------- a simulated table
def simulate_from_fit(result, draw: dict, *, rng, noise: bool = True,
                      offsets: str = "heights"):
    """A canonical table like the fitted one, simulated from one draw of the fit.

    Parameters
    ----------
    result : FitResult
        A fit with its table (``table.parquet`` in its directory).
    draw : dict
        Per-group parameter values, as :func:`posterior_draw` (and :func:`with_scenario`)
        give them.
    rng : numpy.random.Generator
    noise : bool
        Add the fit's noise (Gaussian ``σ0`` in log error, binomial on ``n_test``); without
        it, each row's test error is its curve's.
    offsets : {"heights", "model"}
        Where the runs' offsets come from (:data:`OFFSETS`).

    Returns
    -------
    table : pandas.DataFrame
        The fitted table's rows (run ids, metadata, steps), with the simulated test error
        and ``lognorm_<norm>``; other norms and losses are dropped.
    runs : pandas.DataFrame
        Per simulated run: ``run_id``, ``group``, ``train_size``, its truth ``a``,
        ``log_lam_star`` and ``log_eps_star`` (natural logs), ``x_star`` (standardised),
        ``departure``, ``rise``, ``sharpness``, ``offset_moved`` (how far its offset was
        moved to give its optimum a height its departure can reach: see
        :data:`RATIO_RANGE`), ``minimum_elsewhere`` (its curve has a lower point in its
        range than its optimum), ``censored`` (ends before its optimum) and ``stuck`` (at
        chance).
    """
    table = result.fitted_table
    if table is None:
        raise ScalingfitError("this fit has no table (table.parquet beside posterior.nc): "
                              "calibration simulates each run at its own logged norms. Fix: "
                              "refit with scalingfit fit ... --out DIR, which saves it.")
    settings = result.settings
    norm, group_by = settings["norm"], list(settings["group_by"])
    data = result.run_estimates()
    groups = _groups(result)
    names = result.group_names
    c = result.idata.constant_data
    truth, envelopes = _run_curves(draw, data, groups, rng, offsets)

    # where each row is: its run (among stage 2's, or excluded, or neither) and its group
    x_raw = log_norm(table, norm)
    row_group = pd.Series(
        [group_name(v) for v in table[group_by].astype(str).itertuples(index=False)],
        index=table.index).map({n: k for k, n in enumerate(names)})
    run_ids = table["run_id"].astype(str).to_numpy()
    fitted = {r: k for k, r in enumerate(data.run_ids)}
    stuck = {str(r["run_id"]) for r in result.meta.get("excluded_runs", [])}
    n_test = _n_test(table, settings)

    # a run's reference optimum: its stage-1 optimum, or, when it ended before one, the
    # later of its last point and where the fit's law 2 puts it
    law_x = (result.draws("kappa").mean(0)[data.group]
             + result.draws("gamma2").mean(0)[data.group] / data.x_scale[data.group] * data.ell)
    reference = np.where(data.censored, np.maximum(data.x_last, law_x), data.z[:, 1])

    y_new = np.full(len(table), np.nan)
    x_new = x_raw.copy()
    censored = np.zeros(len(data.run_ids), bool)
    elsewhere = np.zeros(len(data.run_ids), bool)
    rows_of = pd.Series(np.arange(len(table))).groupby(run_ids).apply(np.asarray)
    for run_id, rows in rows_of.items():
        g = row_group.iloc[rows[0]]
        if pd.isna(g) or (run_id not in fitted and run_id not in stuck):
            continue  # not in the fit (too short): copied as it is
        grp = groups[int(g)]
        x = (x_raw[rows] - grp.x_center) / grp.x_scale
        if run_id in stuck:
            y_new[rows] = grp.log_chance
            continue
        r = fitted[run_id]
        x = x + truth["x_star"][r] - reference[r]
        env = envelopes[data.group[r]]
        f = (env(x) + truth["a"][r]
             + departure(x, truth["departure"][r], truth["rise"][r], truth["sharpness"][r]))
        y_new[rows] = cap(f, grp.log_chance, grp.plateau_sharpness)
        x_new[rows] = x * grp.x_scale + grp.x_center
        censored[r] = truth["x_star"][r] > x.max()
        elsewhere[r] = _lower_elsewhere(truth, r, env, x.min(), x.max())

    out = table.copy()
    simulated = np.isfinite(y_new)
    errors = out["test_error"].to_numpy(float).copy()
    if noise:
        sigma0 = np.array([groups[int(k)].sigma0 if not pd.isna(k) else 0.0 for k in row_group])
        y_noisy = y_new + sigma0 * rng.standard_normal(len(y_new))
        eps = np.exp(np.minimum(y_noisy, 0.0))
        if n_test is not None:
            n = np.where(np.isfinite(n_test), n_test, 0).astype(np.int64)
            drawn = rng.binomial(np.where(simulated, n, 0), np.where(simulated, eps, 0.0))
            eps = np.where(n > 0, drawn / np.maximum(n, 1), eps)
        errors[simulated] = eps[simulated]
    else:
        errors[simulated] = np.exp(y_new[simulated])
    out["test_error"] = errors
    drop = [k for k in out.columns if NORM_PATTERN.match(k) or k in _NOT_SIMULATED]
    out = out.drop(columns=drop)
    out[f"lognorm_{norm}"] = x_new

    xs, xc = data.x_scale[data.group], data.x_center[data.group]
    runs = pd.DataFrame({
        "run_id": data.run_ids, "group": [names[k] for k in data.group],
        "train_size": c["train_size"].to_numpy(), "a": truth["a"],
        "log_lam_star": truth["x_star"] * xs + xc, "log_eps_star": truth["y_star"],
        "x_star": truth["x_star"], "departure": truth["departure"], "rise": truth["rise"],
        "sharpness": truth["sharpness"], "offset_moved": truth["offset_moved"],
        "minimum_elsewhere": elsewhere, "censored": censored,
        "stuck": False})
    excluded = pd.DataFrame([{"run_id": str(r["run_id"]), "group": names[r["group_index"]],
                              "train_size": r["train_size"], "offset_moved": 0.0,
                              "minimum_elsewhere": False, "censored": False,
                              "stuck": True} for r in result.meta.get("excluded_runs", [])])
    return out, pd.concat([runs, excluded], ignore_index=True) if len(excluded) else runs


def _lower_elsewhere(truth, r, env, low, high, points=512) -> bool:
    """Whether run ``r``'s curve goes lower somewhere in ``[low, high]`` than at its
    optimum (by more than 1e-6 in log error)."""
    x = np.linspace(low, high, points)

    def curve(x):
        return (env(x) + truth["a"][r]
                + departure(x, truth["departure"][r], truth["rise"][r], truth["sharpness"][r]))

    return bool(curve(x).min() < curve(np.array([truth["x_star"][r]]))[0] - 1e-6)


def _n_test(table, settings):
    """The test-set size of each row, or None when the fit had none (Gaussian noise)."""
    if "n_test" in table:
        return table["n_test"].to_numpy(float)
    if settings.get("n_test"):
        return np.full(len(table), float(settings["n_test"]))
    return None


# ----------------------------------------------------------------- the arithmetic
def interval_hits(draws, truth) -> dict:
    """Whether ``truth`` lies in the central 50 % and 90 % intervals of ``draws``, below
    the 5 % quantile or above the 95 %, and ``z = (median − truth)/sd``."""
    draws = np.asarray(draws, float)
    q05, q25, q50, q75, q95 = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95])
    sd = float(draws.std(ddof=1))
    return {"in50": bool(q25 <= truth <= q75), "in90": bool(q05 <= truth <= q95),
            "below_q05": bool(truth < q05), "above_q95": bool(truth > q95),
            "median": float(q50), "sd": sd, "q05": float(q05), "q95": float(q95),
            "z": float((q50 - truth) / sd) if sd > 0 else float("nan")}


def truth_rank(draws, truth, rng, n: int = RANK_DRAWS) -> int:
    """The rank of ``truth`` among ``n`` evenly thinned ``draws`` (0..n), ties split at
    random (a quantity fixed by construction would otherwise always rank 0)."""
    draws = np.asarray(draws, float)
    thinned = draws[np.linspace(0, len(draws) - 1, n).round().astype(int)]
    below, ties = int(np.sum(thinned < truth)), int(np.sum(thinned == truth))
    return below + int(rng.integers(0, ties + 1))


def rank_test(ranks, n: int = RANK_DRAWS) -> dict:
    """χ² test that ranks on ``0..n`` are uniform, in as many equal bins (10, 5, 4 or 2
    dividing ``n + 1``) as keep five ranks expected per bin."""
    ranks = np.asarray(ranks, int)
    values = n + 1
    bins = next((b for b in (10, 5, 4, 2) if values % b == 0 and len(ranks) >= 5 * b), None)
    if bins is None:
        return {"p": None, "bins": 0, "counts": []}
    counts = np.bincount(ranks * bins // values, minlength=bins)
    return {"p": float(stats.chisquare(counts).pvalue), "bins": bins,
            "counts": counts.tolist()}


def share(count: int, n: int, level: float = 0.9) -> dict:
    """``count`` of ``n`` as a rate with its Clopper–Pearson interval at ``level``."""
    if n == 0:
        return {"rate": None, "count": 0, "n": 0, "q05": None, "q95": None}
    tail = (1 - level) / 2
    low = 0.0 if count == 0 else float(stats.beta.ppf(tail, count, n - count + 1))
    high = 1.0 if count == n else float(stats.beta.ppf(1 - tail, count + 1, n - count))
    return {"rate": count / n, "count": int(count), "n": int(n), "q05": low, "q95": high}


def _aggregate(rows: list[dict]) -> dict:
    """Coverage, ranks, tails, z and relative errors of a list of per-truth scores."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    z = np.array([r["z"] for r in rows], float)
    rel = np.array([abs(r["median"] - r["truth"]) / abs(r["truth"]) for r in rows
                    if r["truth"] != 0], float)
    test = rank_test([r["rank"] for r in rows])
    return {"n": n, "coverage50": share(sum(r["in50"] for r in rows), n),
            "coverage90": share(sum(r["in90"] for r in rows), n),
            "below_q05": share(sum(r["below_q05"] for r in rows), n),
            "above_q95": share(sum(r["above_q95"] for r in rows), n),
            "rank_p": test["p"], "rank_bins": test["bins"], "rank_counts": test["counts"],
            "z_mean": float(np.nanmean(z)), "z_sd": float(np.nanstd(z, ddof=1)) if n > 1
            else None,
            "mean_abs_rel_error": float(rel.mean()) if rel.size else None,
            "mean_abs_error": float(np.mean([abs(r["median"] - r["truth"]) for r in rows]))}


# ----------------------------------------------------------------- the result
@dataclass
class CalibrationResult:
    """What :func:`calibrate` found; ``to_dict()`` is ``calibration.json``."""

    scores: list[dict]      # per (replicate, group, quantity): truth, rank, hits
    replicates: list[dict]  # per replicate: scenario, draw, verdicts, diagnostics, time
    settings: dict
    group_info: list[dict] = field(default_factory=list)

    def quantities(self, group: str | None = None) -> dict:
        """Per quantity, the aggregate over every truth (or one group's)."""
        return {q: _aggregate([s for s in self.scores if s["quantity"] == q
                               and (group is None or s["group"] == group)])
                for q in QUANTITIES}

    def verdicts(self) -> dict:
        """Per scenario: how often each verdict was given, and the rate that matters."""
        out = {}
        for scenario in self.settings["scenarios"]:
            calls = [v for r in self.replicates if r["scenario"] == scenario and r["ok"]
                     for v in r["verdicts"].values()]
            n = len(calls)
            entry = {"true_delta": 0.0 if scenario == "combined" else self.settings["delta"],
                     "n": n, **{k: share(calls.count(k), n) for k in
                                ("consistent", "inconclusive", "inconsistent")}}
            key = "false_alarm" if scenario == "combined" else "detection"
            entry[key] = entry["inconsistent"]
            out[scenario] = entry
        return out

    def refits(self) -> dict:
        done = [r for r in self.replicates if r["ok"]]
        failed = [r for r in done if not r["diagnostics"]["passed"]]
        runs = sum(r["runs"] for r in self.replicates)
        return {"n": len(self.replicates), "failed_diagnostics": len(failed),
                "errors": [{"replicate": r["replicate"], "error": r["error"]}
                           for r in self.replicates if not r["ok"]],
                "rhat_max": max((r["diagnostics"]["rhat_max"] for r in done), default=None),
                "divergences": sum(r["diagnostics"]["divergences"] for r in done),
                "runs_simulated": runs,
                "runs_offset_moved": sum(r["runs_offset_moved"] for r in self.replicates),
                "offset_moved_mean_abs": (
                    sum(r["offset_moved_abs_sum"] for r in self.replicates)
                    / max(sum(r["runs_offset_moved"] for r in self.replicates), 1)),
                "runs_minimum_elsewhere": sum(r["runs_minimum_elsewhere"]
                                              for r in self.replicates),
                "runs_censored": sum(r["runs_censored"] for r in self.replicates),
                "seconds_median": float(np.median([r["seconds"] for r in self.replicates]))
                if self.replicates else None,
                "seconds_total": float(sum(r["seconds"] for r in self.replicates))}

    def to_dict(self) -> dict:
        return {"settings": self.settings,
                "quantities": self.quantities(),
                "groups": [{**info, "quantities": self.quantities(info["name"])}
                           for info in self.group_info],
                "verdicts": self.verdicts(), "refits": self.refits(),
                "replicates": self.replicates, "scores": self.scores,
                "definitions": DEFINITIONS}

    def save(self, directory) -> Path:
        """Write ``calibration.json`` (strict JSON: a missing number is null)."""
        path = make_dir(directory) / "calibration.json"
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(_json_safe(self.to_dict()), indent=2, allow_nan=False)
                           + "\n")
        return path

    def table(self) -> str:
        """What ``scalingfit calibrate`` prints."""
        return calibration_table(self.to_dict())


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rate_text(s: dict) -> str:
    if s.get("rate") is None:
        return "-"
    return f"{s['rate']:.2f} [{s['q05']:.2f}, {s['q95']:.2f}]"


def _p_text(p) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def calibration_table(content: dict) -> str:
    """The plain-text table of ``calibration.json``: coverage and rank tests per quantity,
    then per group, then the verdict's rates and the refits' diagnostics."""
    from ..report.text import columns

    s = content["settings"]
    refits = content["refits"]
    lines = [f"calibration: {refits['n']} refits ({s['replicates']} per scenario) of sweeps "
             f"simulated from posterior draws of the fit; share of truths inside the "
             "posterior intervals [binomial 90 % interval], rank test of uniformity"]
    header = ["quantity", "truths", "50 % interval", "90 % interval", "below q05",
              "above q95", "rank p", "z sd", "|error|/truth"]

    def row(name, q):
        if not q.get("n"):
            return [name, "0"] + ["-"] * 7
        rel = q["mean_abs_rel_error"]
        return [name, str(q["n"]), _rate_text(q["coverage50"]), _rate_text(q["coverage90"]),
                f"{q['below_q05']['rate']:.2f}", f"{q['above_q95']['rate']:.2f}",
                _p_text(q["rank_p"]), "-" if q["z_sd"] is None else f"{q['z_sd']:.2f}",
                "-" if rel is None else f"{100 * rel:.1f} %"]

    lines += columns(header, [row(k, q) for k, q in content["quantities"].items()])
    if len(content["groups"]) > 1:
        lines += ["", "per group: 90 % interval coverage (rank p)"]
        rows = [[g["name"]] + [f"{q['coverage90']['rate']:.2f} ({_p_text(q['rank_p'])})"
                               if q.get("n") else "-" for q in g["quantities"].values()]
                for g in content["groups"]]
        lines += columns(["group", *QUANTITIES], rows)
    lines += ["", f"verdict on delta (tolerance {s['tolerance']:g}), per (replicate, group):"]
    for scenario, v in content["verdicts"].items():
        key = "false alarms" if scenario == "combined" else "detected"
        lines.append(f"  {scenario} (true delta {v['true_delta']:g}, {v['n']} calls): "
                     f"{key} {_rate_text(v['inconsistent'])}; consistent "
                     f"{_rate_text(v['consistent'])}; inconclusive "
                     f"{_rate_text(v['inconclusive'])}")
    lines.append(f"refits: {refits['n']}, {refits['failed_diagnostics']} failed their "
                 f"diagnostics (kept), {len(refits['errors'])} raised; max R-hat "
                 + ("-" if refits["rhat_max"] is None else f"{refits['rhat_max']:.3f}")
                 + f", {refits['divergences']} divergences; median "
                 f"{refits['seconds_median'] or 0:.0f} s per refit")
    lines.append(f"simulated runs: {refits['runs_simulated']}, of which "
                 f"{refits['runs_offset_moved']} had their offset moved (by "
                 f"{refits['offset_moved_mean_abs']:.3f} in log error on average) for their "
                 f"curve to reach its optimum, {refits['runs_minimum_elsewhere']} have a lower "
                 f"point elsewhere, {refits['runs_censored']} end before their optimum")
    return "\n".join(lines)


# ----------------------------------------------------------------- calibrate
def _refit_options(result, options: dict) -> dict:
    """The fit's settings (so each refit is made as the fit was), unless overridden."""
    s = result.settings
    posterior = result.idata.posterior
    base = {"norm": s["norm"], "group_by": tuple(s["group_by"]), "at_end": s["at_end"],
            "n_test": s.get("n_test"), "sampler": s.get("sampler"),
            "draws": int(posterior.sizes["draw"]), "chains": int(posterior.sizes["chain"])}
    return {**base, **{k: v for k, v in options.items() if v is not None}}


def calibrate(result, *, replicates: int = 10, delta: float = 0.2,
              tolerance: float = TOLERANCE, seed: int = 0, scenarios=SCENARIOS,
              offsets: str = "heights", progress: bool = True,
              **fit_options) -> CalibrationResult:
    """Simulate sweeps like the fitted one from the fit's posterior, refit each, and measure
    the intervals' coverage, the ranks of the truths and the verdict's error rates.

    Parameters
    ----------
    result : FitResult
        The fit to calibrate; it needs its table (``table.parquet`` in its directory).
    replicates : int
        Simulated sweeps per scenario; each is one refit (tens of seconds to minutes).
    delta : float
        Δ of the ``violated`` scenario (see the module docstring); the detection rate is
        about Δ = ``delta`` against the verdict's ``tolerance``.
    tolerance : float
        The verdict's tolerance (:mod:`scalingfit.checking.verdict`).
    seed : int
        Seeds the choice of draws, the simulation and the refits' samplers.
    scenarios : sequence of str
        Among :data:`SCENARIOS`.
    offsets : {"heights", "model"}
        Where the simulated runs' offsets come from (:data:`OFFSETS`).
    progress : bool
        A line per refit on stderr.
    **fit_options
        Override the fit's settings for the refits (``sampler``, ``draws``, ``tune``,
        ``chains``, ...).

    Returns
    -------
    CalibrationResult
    """
    from ..fitting.pipeline import fit

    if not (isinstance(replicates, int | np.integer) and replicates >= 1):
        raise ScalingfitError(f"replicates must be a positive whole number, got {replicates!r}.")
    if not delta > 0:
        raise ScalingfitError(f"delta must be positive, got {delta}.")
    if not tolerance > 0:
        raise ScalingfitError(f"the tolerance must be positive, got {tolerance}.")
    if offsets not in OFFSETS:
        raise ScalingfitError(f"offsets must be one of {OFFSETS}, got {offsets!r}.")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or not scenarios:
        raise ScalingfitError(f"scenarios must be among {SCENARIOS}, got {list(scenarios)}.")
    if result.fitted_table is None:
        raise ScalingfitError("this fit has no table (table.parquet beside posterior.nc): "
                              "calibration simulates each run at its own logged norms. Fix: "
                              "refit with scalingfit fit ... --out DIR, which saves it.")
    options = _refit_options(result, fit_options)
    options.update(tie_convergence=False, progress=False)
    names = result.group_names
    rng = np.random.default_rng(seed)
    n_samples = result.draws("gamma2").shape[0]
    plan = [(scenario, i) for scenario in scenarios for i in range(replicates)]
    samples = rng.choice(n_samples, size=len(plan), replace=len(plan) > n_samples)
    scores, records = [], []
    with Progress("calibrate", f"{len(plan)} refits", len(plan), "refit",
                  quiet=not progress) as bar:
        for k, ((scenario, i), sample) in enumerate(zip(plan, samples)):
            draw = with_scenario(posterior_draw(result, int(sample)), scenario, delta)
            truth = truth_of(draw)
            sim_rng = np.random.default_rng([seed, k])
            table, runs = simulate_from_fit(result, draw, rng=sim_rng, offsets=offsets)
            record = {"replicate": k, "scenario": scenario, "sample": int(sample), "ok": True,
                      "error": None, "runs": int((~runs["stuck"]).sum()),
                      "runs_offset_moved": int((runs["offset_moved"] != 0).sum()),
                      "offset_moved_abs_sum": float(runs["offset_moved"].abs().sum()),
                      "runs_minimum_elsewhere": int(runs["minimum_elsewhere"].sum()),
                      "runs_censored": int(runs["censored"].sum()),
                      "truth": {name: {q: float(v[g]) for q, v in truth.items()}
                                for g, name in enumerate(names)}}
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ScalingfitWarning)
                    refit = fit(table, **{**options, "seed": seed + 1 + k})
            except ScalingfitError as err:
                record.update(ok=False, error=first_line(err),
                              seconds=time.perf_counter() - start)
                records.append(record)
                bar.advance(event=f"{scenario} {i + 1}/{replicates}: refit failed "
                                  f"({first_line(err)})")
                continue
            record["seconds"] = time.perf_counter() - start
            record["diagnostics"] = dict(refit.diagnostics)
            record["notes"] = len(refit.meta.get("notes", []))
            record.update(_score(refit, truth, names, tolerance, sim_rng, k, scenario, scores))
            records.append(record)
            calls = ", ".join(f"{v}" for v in record["verdicts"].values())
            bar.advance(event=f"{scenario} {i + 1}/{replicates}: {record['seconds']:.0f} s, "
                              f"verdicts {calls}, sampler "
                              + ("ok" if refit.converged else "FAILED its diagnostics"))
    settings = {"replicates": replicates, "delta": delta, "tolerance": tolerance,
                "seed": seed, "scenarios": list(scenarios), "offsets": offsets,
                "rank_draws": RANK_DRAWS,
                "fit": {k: v for k, v in options.items() if k != "progress"},
                "table_sha256_16": result.meta.get("table_sha256_16")}
    group_info = [{**info, "name": name} for info, name in zip(result.groups, names)]
    return CalibrationResult(scores=scores, replicates=records, settings=settings,
                             group_info=group_info)


def _score(refit, truth, names, tolerance, rng, replicate, scenario, scores) -> dict:
    """Score a refit against its truth: one entry per (group, quantity) in ``scores``; the
    refit's verdicts and Δ per group returned."""
    parts = delta_parts(refit)
    index = {name: g for g, name in enumerate(refit.group_names)}
    verdicts, deltas = {}, {}
    for g_true, name in enumerate(names):
        g = index.get(name)
        if g is None:
            continue
        for q in QUANTITIES:
            draws = parts["delta"][:, g] if q == "delta" else refit.draws(q)[:, g]
            value = float(truth[q][g_true])
            hits = interval_hits(draws, value)
            scores.append({"replicate": replicate, "scenario": scenario, "group": name,
                           "quantity": q, "truth": value, "rank": truth_rank(draws, value, rng),
                           **hits})
        summary = {k: float(v) for k, v in zip(
            ("q05", "median", "q95"), np.quantile(parts["delta"][:, g], [0.05, 0.5, 0.95]))}
        verdicts[name] = verdict(summary, tolerance)
        deltas[name] = summary
    return {"verdicts": verdicts, "delta": deltas}
