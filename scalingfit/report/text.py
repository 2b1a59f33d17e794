"""Every plain-text table the commands print, and the number formats they share.

Formatting only: each function takes what a computation returned (``summary.json``,
``check.json``, :func:`scalingfit.predict`'s rows) and returns text.
"""

from __future__ import annotations

import html
import math

__all__ = ["exponent_text", "interval_text", "signed_interval_text", "log_interval_text",
           "format_log", "percent", "region_text", "columns", "fit_rows", "group_line",
           "fit_table", "fit_html", "diagnostics_line", "check_table", "prediction_table"]

EXPONENT_LABELS = {"gamma1": "γ1", "gamma2": "γ2", "gamma_pred": "γ1·γ2",
                   "gamma_conv": "γ_conv"}


def exponent_text(s: dict) -> str:
    """``median [q05, q95]`` of an exponent, to three decimals (exponents are of order 1)."""
    return f"{s['median']:.3f} [{s['q05']:.3f}, {s['q95']:.3f}]"


def _name_width(groups) -> int:
    return max([28] + [len(g["name"]) + 2 for g in groups])


def fit_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """The exponents of ``summary.json`` as (header, rows): group, runs, then each exponent's
    median and 90 % interval."""
    params = list(summary["groups"][0]["params"]) if summary["groups"] else []
    rows = [[g["name"], str(g["n_runs"])] + [exponent_text(g["params"][p]) for p in params]
            for g in summary["groups"]]
    return ["group", "runs", *params], rows


def percent(share) -> str:
    """A share in [0, 1] as a whole percentage, ``93 %`` (``n/a`` if unknown)."""
    if share is None or not math.isfinite(share):
        return "n/a"
    return f"{100 * share:.0f} %"


def _verb(count: int, verb: str) -> str:
    return verb + "s" if count == 1 else verb


def group_line(group: dict) -> str:
    """One line on a group's runs (an entry of ``summary.json``'s ``groups``): how many have
    an optimum in range, how many are still improving, odd shapes, and how well the fitted
    curves describe the points, e.g. ``cnn / mnist: 18 runs, 17 with an optimum, 1 still
    improving; 93 % of points in their 90 % interval; envelope support 0.70``."""
    n, censored = group["n_runs"], group["n_censored"]
    shapes = group.get("shapes") or {}
    parts = [f"{n} runs", f"{n - censored} with an optimum", f"{censored} still improving"]
    if shapes.get("two_minima"):
        parts.append(f"{shapes['two_minima']} {_verb(shapes['two_minima'], 'dip')} twice")
    if group.get("n_starts_below_chance"):
        below = group["n_starts_below_chance"]
        parts.append(f"{below} {_verb(below, 'start')} below chance")
    if shapes.get("plateau_only"):
        parts.append(f"{shapes['plateau_only']} never left the chance plateau (left out)")
    misfit = group.get("n_runs_misfit") or 0
    return (f"{group['name']}: " + ", ".join(parts)
            + f"; {percent(group['point_coverage'])} of points in their 90 % interval"
            + (f" ({misfit} runs flagged misfit)" if misfit else "")
            + f"; envelope support {group['envelope_support']:.2f}")


def _with_runs(summary: dict) -> list[dict]:
    """The summary's groups, each with its count of runs starting below chance."""
    below = {}
    for run in summary.get("runs", []):
        if run.get("starts_below_chance"):
            below[run["group"]] = below.get(run["group"], 0) + 1
    return [{**g, "n_starts_below_chance": below.get(g["name"], 0)} for g in summary["groups"]]


def fit_table(summary: dict) -> str:
    """What ``scalingfit fit`` prints: median and 90 % interval of every exponent per group
    (the level stated; a combined-law fit says so), then one line per group on its runs
    (:func:`group_line`)."""
    header, rows = fit_rows(summary)
    lines = [f"norm: {summary['norm']}; posterior median [90 % interval]"]
    if summary["settings"].get("tie_convergence"):
        lines.append("combined-law model (--tie-convergence): gamma_conv is tied to "
                     "gamma1*gamma2, so their columns are the same")
    lines += columns(header, rows)
    runs = [group_line(g) for g in _with_runs(summary)]
    if runs:
        lines += ["", "runs (shape of each fitted curve; share of the logged points inside "
                      "their 90 % predictive interval):", *runs]
    return "\n".join(lines)


def fit_html(summary: dict) -> str:
    """The exponents as an HTML table (a FitResult's notebook display), and each group's
    line on its runs."""
    header, rows = fit_rows(summary)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    runs = "".join(f"<li>{html.escape(group_line(g))}</li>" for g in _with_runs(summary))
    return (f"<p>FitResult, norm <code>{html.escape(summary['norm'])}</code>; "
            f"{html.escape(diagnostics_line(summary['diagnostics']))}</p>"
            f"<table><tr>{head}</tr>{body}</table>" + (f"<ul>{runs}</ul>" if runs else ""))


def diagnostics_line(d: dict) -> str:
    """One line: whether the sampler converged, with the numbers that say so."""
    verdict = "converged" if d["passed"] else "FAILED its diagnostics — do not trust it"
    return (f"sampler {verdict}: max R-hat {d['rhat_max']:.4f}, min bulk ESS "
            f"{d['ess_bulk_min']:.0f}, min tail ESS {d['ess_tail_min']:.0f}, "
            f"{d['divergences']} divergences ({d['chains']} chains x {d['draws']} draws)")


def format_log(log_value: float, digits: int = 3) -> str:
    """``e^log_value`` written as ``1.23e+130`` without computing it (it may overflow);
    plainly (``15.5``) when it lies between 1e-3 and 1e4."""
    decimal = log_value / math.log(10)
    if -3 <= decimal < 4:
        return f"{math.exp(log_value):.{max(digits, 3)}g}"
    exponent = math.floor(decimal)
    mantissa = 10 ** (decimal - exponent)
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f}e{exponent:+03d}"


def interval_text(s: dict) -> str:
    """``median [q05, q95]`` of a summary S."""
    return f"{s['median']:.4g} [{s['q05']:.4g}, {s['q95']:.4g}]"


def log_interval_text(s: dict) -> str:
    """``median [q05, q95]`` of a summary S of natural logs, written as the values."""
    return f"{format_log(s['median'])} [{format_log(s['q05'], 2)}, {format_log(s['q95'], 2)}]"


def region_text(row: dict) -> str:
    """``interpolation`` or ``extrapolation x2``, ``extrapolation x3.1e+04``."""
    if row["region"] == "interpolation":
        return "interpolation"
    factor = row["factor"]
    return f"extrapolation x{factor:.3g}" if factor < 1e4 else f"extrapolation x{factor:.2g}"


def columns(header: list[str], rows: list[list[str]], left=(0,)) -> list[str]:
    """Aligned text columns, two spaces apart: those in ``left`` aligned to the left, the
    rest to the right; every column as wide as its widest cell, so none runs into the next."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header)]
    out.append("-" * len(out[0]))
    return out + [line(r) for r in rows]


def prediction_table(rows: list[dict]) -> str:
    """A plain-text table of :func:`predict`'s rows: medians and 90 % intervals; rows at or
    near the group's chance error are marked, and a note says what that means."""
    header = ["group", "P", "where", "eps* (law)", "eps* (one run)", "lambda* (law)", "chance"]
    cells = []
    for r in rows:
        mark = ("ABOVE CHANCE" if r.get("above_chance")
                else "reaches it" if r.get("reaches_chance") else "")
        chance = f"{r['chance_error']:.3g}"
        cells.append([r["name"], str(r["train_size"]),
                      region_text(r), interval_text(r["eps_star"]),
                      interval_text(r["eps_star_run"]), log_interval_text(r["log_lam_star"]),
                      f"{chance} {mark}".rstrip()])
    lines = columns(header, cells, left=(0, 2, 6))
    if rows:
        lines.append(f"eps* law: {rows[0]['law']}; intervals: 90 %.")
    if any(r.get("above_chance") for r in rows):
        lines.append("ABOVE CHANCE: the law's median eps* is at or above the group's fitted "
                     "chance error (its plateau): the power laws do not hold there, so that "
                     "prediction is meaningless; expect about the chance error.")
    if any(r.get("reaches_chance") and not r.get("above_chance") for r in rows):
        lines.append("reaches it: the upper end of the 90 % interval is at or above the chance "
                     "error, where the laws stop holding.")
    return "\n".join(lines)


def signed_interval_text(s: dict, digits: int = 3) -> str:
    """``+median [+q05, +q95]`` of a quantity that may have either sign (Δ)."""
    return f"{s['median']:+.{digits}f} [{s['q05']:+.{digits}f}, {s['q95']:+.{digits}f}]"


def check_table(content: dict) -> str:
    """The check's plain-text table (what ``scalingfit check`` prints), from ``check.json``."""
    lines = []
    tolerance = content["settings"]["tolerance"]
    width = _name_width(content["groups"])
    lines += [f"verdict on delta = gamma_conv - gamma1*gamma2 (its 90 % interval; consistent: "
              f"inside +/-{tolerance:g}, inconsistent: wholly beyond it)",
              "delta = delta_envelope (the runs' offsets from their envelope drifting with P) "
              "+ delta_shape (the optimum's height above its envelope drifting with P)"]
    free_passed = content.get("settings", {}).get("diagnostics", {}).get(
        "free", {}).get("passed", True)
    mark = "" if free_passed else " (unconverged)"

    def part(g, key):  # a check.json written before delta was split has no parts
        return signed_interval_text(g[key]) if g.get(key) else "n/a"

    rows = [[g["name"].ljust(width - 2), signed_interval_text(g["delta"]),
             part(g, "delta_envelope"), part(g, "delta_shape"),
             f"{g['p_within_tolerance']:.2f}" if g.get("p_within_tolerance") is not None
             else "n/a", g["verdict"] + mark] for g in content["groups"]]
    lines += columns(["group", "delta", "delta_envelope",
                      "delta_shape", f"P(|delta|<{tolerance:g})", "verdict"], rows,
                     left=(0, 5))
    if not free_passed:
        lines.append("(unconverged): the free fit these verdicts come from failed its "
                     "diagnostics; do not rely on them before a rerun with more draws.")
    lines += ["", "held out (combined laws refitted without these sizes; 90 % predictive "
                  "intervals)"]
    header = (f"{'group':<{width}}{'P':>8}{'observed eps*':>15}{'predicted eps*':>34}{'in':>5}"
              f"{'observed lambda*':>18}{'predicted lambda*':>34}")
    lines += [header, "-" * len(header)]
    for g in content["groups"]:
        for h in g["heldout"]:
            p, lam = h["pred_eps_star"], h["pred_log_lam_star"]
            lines.append(
                f"{g['name']:<{width}}{h['train_size']:>8}{h['observed_eps_star']:>15.4g}"
                f"{interval_text(p):>34}"
                f"{'yes' if h['covered'] else 'no':>5}"
                f"{format_log(h['observed_log_lam_star']):>18}"
                f"{log_interval_text(lam):>34}")
    loo = content.get("loo")
    if loo:
        lines += ["", f"PSIS-LOO, {loo['unit']}; elpd(combined) - elpd(free):",
                  f"{'all groups':<{width}}{loo['elpd_diff']:>+10.2f} +/- {loo['se_diff']:.2f}  "
                  f"favours {loo['favours']}"]
        for name, d in loo["groups"].items():
            lines.append(f"{name:<{width}}{d['elpd_diff']:>+10.2f} +/- {d['se_diff']:.2f}  "
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
    header = f"{'group':<{width}}{'gamma1':>9}{'gamma2':>9}{'g1*g2':>9}{'g_conv':>9}{'delta':>9}"
    lines += [header, "-" * len(header)]
    for g in content["groups"]:
        r = g.get("paper_recipe")
        if r:
            lines.append(f"{g['name']:<{width}}" + "".join(
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
