"""The paper's recipe, for reference: log-log least squares on windows.

D'Amico, Bocchi & Negri read the exponents off straight lines in log-log plots:

- per run, ``λ*`` and ``ε*`` are the norm and the test error at the run's lowest logged
  test error;
- **γ1**: the curves are collapsed as ``ε/ε*`` against ``λ/λ*`` and a line is fitted to
  the collapsed points inside a window (the paper picks windows by hand);
- **γ2**: the slope of ``log λ*`` against ``log P``;
- the convergence exponent: minus the slope of ``log ε*`` against ``log P``.

We replace the hand-picked window by a documented rule, the same for every run: the
window holds the points logged *before* the run's lowest error whose log error lies
between ``lower`` and ``upper`` of the way from that lowest error up to the plateau (the
highest error logged before it) — by default the middle half, 25 % to 75 %, which keeps
clear of both the chance plateau and the bend into the optimum. A run with fewer than
three such points adds none.

These are point estimates without intervals. Where they differ from the posterior, the
usual reasons are the bend near the optimum (it flattens a windowed slope), the noise in
the lowest logged error (it biases ε* down, more so at small P), and runs that end before
their optimum (the paper takes their last point).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ingest.table import GROUP_KEYS, log_norm

__all__ = ["paper_recipe", "WINDOW"]

WINDOW = (0.25, 0.75)  # fraction of the way from the lowest error (0) to the plateau (1)


def _slope(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def run_optima(table: pd.DataFrame, norm: str) -> pd.DataFrame:
    """Per run: log λ* and log ε* at the lowest logged test error, as the paper takes them."""
    rows = table.assign(_x=log_norm(table, norm)).sort_values(["run_id", "step"])
    best = rows.loc[rows.groupby("run_id")["test_error"].idxmin()]
    return pd.DataFrame({"run_id": best["run_id"].to_numpy(),
                         "train_size": best["train_size"].to_numpy(),
                         "log_lam_star": best["_x"].to_numpy(),
                         "log_eps_star": np.log(np.maximum(best["test_error"].to_numpy(),
                                                           1e-12)),
                         "at_last_step": (best["step"].to_numpy()
                                          == rows.groupby("run_id")["step"].max()
                                          .loc[best["run_id"]].to_numpy())})


def _window_points(run: pd.DataFrame, window):
    """The collapsed points (log λ/λ*, log ε/ε*) of one run inside the window rule."""
    errors = run["test_error"].to_numpy(float)
    best = int(np.argmin(errors))
    y = np.log(np.maximum(errors[: best + 1], 1e-12))
    x = run["_x"].to_numpy(float)[: best + 1]
    y_best, y_top = y[-1], y.max()
    span = y_top - y_best
    inside = (y >= y_best + window[0] * span) & (y <= y_best + window[1] * span)
    if inside.sum() < 3 or span <= 0:
        return np.empty(0), np.empty(0)
    return x[inside] - x[-1], y[inside] - y_best


def paper_recipe(table: pd.DataFrame, *, norm: str, group_by=GROUP_KEYS,
                 window=WINDOW) -> list[dict]:
    """Point estimates of γ1, γ2, γ1γ2 and the convergence exponent, per group.

    Parameters
    ----------
    table : pandas.DataFrame
        A canonical table.
    norm : str
        Which norm (as in :func:`scalingfit.fit`).
    group_by : sequence of str
        The group columns.
    window : (float, float)
        The window rule: fractions of the way from each run's lowest error to its plateau.

    Returns
    -------
    list of dict
        Per group: its keys, ``gamma1``, ``gamma2``, ``gamma_pred``, ``gamma_conv``,
        ``delta`` (= gamma_conv − gamma_pred), ``n_window_points``, ``n_runs_in_window``,
        ``n_at_last_step`` and ``window``.
    """
    table = table.assign(_x=log_norm(table, norm)).sort_values(["run_id", "step"])
    out = []
    for label, rows in table.groupby(list(group_by), sort=True):
        label = label if isinstance(label, tuple) else (label,)
        collapsed = [_window_points(run, window) for _, run in rows.groupby("run_id")]
        used = [c for c in collapsed if len(c[0])]
        u = np.concatenate([c[0] for c in used]) if used else np.empty(0)
        v = np.concatenate([c[1] for c in used]) if used else np.empty(0)
        optima = run_optima(rows, norm)
        ell = np.log(optima["train_size"].to_numpy(float))
        gamma1 = -_slope(u, v)
        gamma2 = _slope(ell, optima["log_lam_star"])
        gamma_conv = -_slope(ell, optima["log_eps_star"])
        out.append({**dict(zip(group_by, map(str, label), strict=True)), "gamma1": gamma1,
                    "gamma2": gamma2, "gamma_pred": gamma1 * gamma2, "gamma_conv": gamma_conv,
                    "delta": gamma_conv - gamma1 * gamma2, "n_window_points": int(len(u)),
                    "n_runs_in_window": len(used), "n_runs": int(len(collapsed)),
                    "n_at_last_step": int(optima["at_last_step"].sum()),
                    "window": list(window)})
    return out
