"""The report's pages: one self-contained HTML file and its Markdown twin.

The HTML embeds every figure as a base64 PNG and carries its own style: no script, no
font, no stylesheet or image is fetched from anywhere (the favicon too is an inline
``data:`` URI, so a browser opening the file makes no request at all). The Markdown links
the PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
import math

from .text import (
    EXPONENT_LABELS,
    exponent_text,
    format_log,
    interval_text,
    log_interval_text,
    percent,
    signed_interval_text,
)

__all__ = ["html_page", "markdown_page", "fit_notes", "sections", "runs_rows"]

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.3em}
.consistent{color:#1a7f37;font-weight:600}.inconsistent{color:#b3261e;font-weight:600}
.inconclusive{color:#8a6d00;font-weight:600}.note{color:#555;font-size:.9em}
code{background:#f5f5f5;padding:0 .2em}
"""


def _number(value) -> str:
    """Three decimals, or "n/a" for a value the recipe could not give (no points)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


NOTES_TITLE = "Notes"


def fit_notes(result) -> list[str]:
    """The fit's warnings as ``summary.json`` carries them (``notes``): runs left out, runs
    still improving, curves the fit does not describe, a low envelope support, failed
    diagnostics."""
    notes = result.summary().get("notes") or []
    return [" ".join(str(n).split()) for n in notes]


def _ids(runs, with_coverage=False) -> str:
    """A count and the runs' ids (with their point coverage), or "0"."""
    if not runs:
        return "0"
    names = [f"{r['run_id']} ({percent(r['point_coverage'])})" if with_coverage
             else r["run_id"] for r in runs]
    return f"{len(runs)}: " + ", ".join(names)


def runs_rows(summary: dict) -> list[list[str]]:
    """Per group: how many runs have each shape, start below chance, are flagged misfit
    (listed, with the share of their points in their 90 % interval) and were left out at
    the chance plateau (listed)."""
    rows = []
    for g in summary["groups"]:
        mine = [r for r in summary["runs"] if r["group"] == g["name"]]
        shapes = g["shapes"]
        misfit = [r for r in mine if r["point_check"] == "misfit"]
        stuck = [r for r in mine if r["shape"] == "plateau_only"]
        rows.append([g["name"], str(g["n_runs"] - g["n_censored"]), str(g["n_censored"]),
                     str(shapes.get("two_minima", 0)),
                     str(sum(bool(r["starts_below_chance"]) for r in mine)),
                     percent(g["point_coverage"]), _ids(misfit, with_coverage=True),
                     _ids(stuck)])
    return rows


def sections(result, check=None) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The report's tables, format-neutral: (title, header, rows, note)."""
    from ..fitting.run_curves import RUN_COVERAGE_MIN

    summary = result.summary()
    out = []
    rows = [[g["name"], str(g["n_runs"]), str(g["n_censored"]),
             f"{len(g['train_sizes'])}: {g['train_sizes'][0]:,} – {g['train_sizes'][-1]:,}",
             _number(g["envelope_support"]), percent(g["point_coverage"])]
            + [exponent_text(g["params"][p]) for p in EXPONENT_LABELS]
            for g in summary["groups"]]
    law = ("combined-law model: γ_conv is tied to γ1·γ2" if result.settings.get("tie_convergence")
           else "free convergence exponent γ_conv")
    out.append(("Exponents (posterior median and 90 % interval)",
                ["group", "runs", "runs still improving", "sizes P", "envelope support",
                 "points in 90 % interval", *EXPONENT_LABELS.values()],
                rows, f"Norm: {summary['norm']}; {law}; runs still improving at their last "
                      f"step are treated as at_end={result.settings.get('at_end')!r}. γ1 is "
                      "the envelope's mean slope over the stretch of λ where the optima lie. "
                      "Envelope support: the share of that stretch shown by points of runs "
                      "still on the envelope there; near 0, γ1 rests on the envelope's shape "
                      "between them more than on points. Points in 90 % interval: the share "
                      "of the logged points inside their 90 % predictive interval of the "
                      "fitted curves (about 90 % when the curve model describes them)."))
    out.append(("Runs",
                ["group", "with an optimum", "still improving", "dip twice",
                 "start below chance", "points in 90 % interval",
                 f"misfit (< {percent(RUN_COVERAGE_MIN)} of points inside)",
                 "left out: never left the chance plateau"],
                runs_rows(summary),
                "Each fitted run has an optimum in its logged range or none (still improving "
                "at its last point: "
                + ("a lower bound on λ* and an upper one on ε*"
                   if result.settings.get("at_end") == "bound" else
                   "its last point is taken as its optimum")
                + "); a run whose smoothed "
                "points dip twice takes the deeper minimum as its optimum; a run starts below "
                "chance when its first point is under half the chance error. A run is "
                f"flagged misfit when fewer than {percent(RUN_COVERAGE_MIN)} of its points "
                "lie in their 90 % predictive interval (the points figure shows where). Runs "
                "that never left the chance plateau are not fitted and not in the laws."))
    d = result.diagnostics
    out.append(("Sampler", ["max R-hat", "min bulk ESS", "min tail ESS", "divergences",
                            "chains × draws", "verdict"],
                [[f"{d['rhat_max']:.4f}", f"{d['ess_bulk_min']:.0f}", f"{d['ess_tail_min']:.0f}",
                  str(d["divergences"]), f"{d['chains']} × {d['draws']}",
                  "passed" if d["passed"] else "FAILED"]],
                "Limits: scalingfit.rc (diagnostics.rhat_max, diagnostics.ess_min)."))
    if not check:
        return out
    tolerance = check["settings"]["tolerance"]
    definitions = check.get("definitions", {})

    def signed(g, key):  # a check.json written before Δ was split has no parts
        return signed_interval_text(g[key]) if g.get(key) else "n/a"

    out.append(("Check: do the combined laws predict ε*(P)?",
                ["group", "Δ = γ_conv − γ1·γ2", "δ_envelope", "δ_shape", "verdict",
                 f"P(|Δ| < {tolerance:g})", "LOO: elpd(combined) − elpd(free)"],
                [[g["name"], signed(g, "delta"), signed(g, "delta_envelope"),
                  signed(g, "delta_shape"), g["verdict"],
                  f"{g['p_within_tolerance']:.2f}" if g.get("p_within_tolerance") is not None
                  else "n/a",
                  (f"{g['loo']['elpd_diff']:+.2f} ± {g['loo']['se_diff']:.2f} "
                   f"({g['loo']['favours']})") if g.get("loo") else "not run"]
                 for g in check["groups"]],
                f"consistent: the 90 % interval of Δ lies inside ±{tolerance:g}; "
                "inconsistent: it lies wholly beyond; otherwise inconclusive. Δ = δ_envelope "
                "+ δ_shape. δ_envelope: " + definitions.get(
                    "delta_envelope", "the part of Δ from envelopes of different P not "
                    "coinciding") + ". δ_shape: " + definitions.get(
                    "delta_shape", "the optimum's height above its envelope changing with P")
                + ". LOO leaves one training-set size out at a time."))
    rows = []
    for g in check["groups"]:
        for h in g["heldout"]:
            rows.append([g["name"], f"{h['train_size']:,}",
                         f"{h['observed_eps_star']:.4g}", interval_text(h["pred_eps_star"]),
                         "yes" if h["covered"] else "no",
                         format_log(h["observed_log_lam_star"]),
                         log_interval_text(h["pred_log_lam_star"]),
                         f"{h['n_runs']} ({h['n_censored']} still improving)"])
    out.append(("Check: held-out sizes", ["group", "P", "observed ε*", "predicted ε* (90 %)",
                                          "covered", "observed λ*", "predicted λ* (90 %)",
                                          "runs"], rows,
                "Predicted by the combined laws refitted without these sizes. Observed ε*: "
                + check.get("definitions", {}).get("observed_eps_star", "") + "."))
    rows = [[g["name"]]
            + [_number(g["paper_recipe"][k]) for k in ("gamma1", "gamma2", "gamma_pred",
                                                        "gamma_conv", "delta")]
            + [str(g["paper_recipe"]["n_window_points"])]
            for g in check["groups"] if g.get("paper_recipe")]
    out.append(("Paper recipe, for reference (log-log least squares, point estimates)",
                ["group", "γ1", "γ2", "γ1·γ2", "γ_conv", "Δ", "points in windows"], rows,
                "Paper recipe: " + check.get("definitions", {}).get("paper_recipe", "") + "."))
    return out


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            klass = f' class="{cell}"' if cell in ("consistent", "inconsistent",
                                                  "inconclusive") else ""
            cells.append(f"<td{klass}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_page(result, figures: dict, check=None) -> str:
    """The report as one self-contained HTML document.

    ``figures``: name → (PNG bytes, caption).
    """
    title = "scalingfit report"
    parts = [f"<h1>{title}</h1>",
             f"<p class=note>Fitted {html.escape(result.meta.get('created', ''))}; table "
             f"{result.meta.get('n_rows', '?')} rows (sha256 "
             f"{html.escape(str(result.meta.get('table_sha256_16', '')))}…); scalingfit "
             f"{html.escape(str(result.meta.get('versions', {}).get('scalingfit', '')))}.</p>"]
    for name, header, rows, note in sections(result, check):
        parts += [f"<h2>{html.escape(name)}</h2>", _html_table(header, rows),
                  f"<p class=note>{html.escape(note)}</p>"]
    notes = fit_notes(result)
    if notes:
        parts.append(f'<h2 id="notes">{NOTES_TITLE}</h2><ul class=notes>'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for name, (png, caption) in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure id="{name}"><img alt="{html.escape(name)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>'
                     f"{html.escape(caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f'<link rel=icon href="data:,"><title>{title}</title><style>{STYLE}</style>'
            "</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _md_table(header, rows) -> str:
    def esc(cell):
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in rows]
    return "\n".join(lines)


def markdown_page(result, figures: dict, check=None) -> str:
    """The report in Markdown; ``figures``: name → (PNG file name, caption)."""
    parts = ["# scalingfit report", ""]
    for name, header, rows, note in sections(result, check):
        parts += [f"## {name}", "", _md_table(header, rows), "", f"_{note}_", ""]
    notes = fit_notes(result)
    if notes:
        parts += [f"## {NOTES_TITLE}", "", *(f"- {n}" for n in notes), ""]
    parts += ["## Figures", ""]
    for name, (path, caption) in figures.items():
        parts += [f"![{name}]({path})", "", caption, ""]
    return "\n".join(parts)
