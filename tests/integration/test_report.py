"""`scalingfit report`: every figure, labelled log axes where the quantities are power laws,
and one self-contained HTML page (no external resource) with its Markdown twin; every figure
renders for a normal fit, a combined-law fit, and a fit with runs still improving at their
last point and a run that never left the chance plateau."""

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from scalingfit.cli import main
from scalingfit.errors import ScalingfitError
from scalingfit.fitting.result import FitResult
from scalingfit.report import FIGURES, make_figures, render
from scalingfit.report.figures import RUN_GID

pytestmark = pytest.mark.slow

POWER_LAW_FIGURES = ("curves", "collapse", "optimal_norm", "best_error")


@pytest.fixture(scope="module")
def free(small_check_dir):
    return FitResult.load(small_check_dir / "fit-free")


@pytest.fixture(scope="module")
def check(small_check_dir):
    return json.loads((small_check_dir / "check.json").read_text())


@pytest.fixture(scope="module")
def figures(free, check):
    return make_figures(free, check)


def visible_axes(figure):
    """The figure's panels (not its colour bars)."""
    return [ax for ax in figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_every_figure_is_made(figures):
    assert list(figures) == list(FIGURES) == ["curves", "collapse", "points", "optimal_norm",
                                              "best_error", "exponents", "diagnostics", "ppc"]
    assert all(caption.strip() for _, caption in figures.values())


@pytest.mark.parametrize("name", POWER_LAW_FIGURES)
def test_power_law_figures_have_labelled_log_axes(figures, name):
    axes = visible_axes(figures[name][0])
    assert len(axes) == 2  # one panel per group
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip()
        assert ax.get_title()
        # tick labels are drawn (the axes are readable, not bare)
        figures[name][0].canvas.draw()
        assert any(t.get_text() for t in ax.get_xticklabels())
        assert any(t.get_text() for t in ax.get_yticklabels())


def test_axis_labels_name_quantities_and_units(figures):
    curves = visible_axes(figures["curves"][0])
    assert "norm λ" in curves[0].get_xlabel() and "spectral complexity" in curves[0].get_xlabel()
    assert "test error ε" in curves[0].get_ylabel()
    assert "P (training-set size" in visible_axes(figures["best_error"][0])[0].get_xlabel()
    assert "λ / λ*" in visible_axes(figures["collapse"][0])[0].get_xlabel()


def test_other_figures_are_labelled(figures):
    for name in ("points", "exponents", "diagnostics", "ppc"):
        for ax in visible_axes(figures[name][0]):
            assert ax.get_xlabel().strip(), name
    ppc = visible_axes(figures["ppc"][0])
    assert all(ax.get_xscale() == "log" for ax in ppc)  # against P
    assert [ax.get_title().split(":")[0] for ax in ppc] == [
        "offset from the envelope (log ε)", "optimal norm", "best error"]
    diagnostics = visible_axes(figures["diagnostics"][0])
    assert diagnostics[1].get_yscale() == "log"  # effective sample sizes span decades
    assert "gamma1" in [t.get_text() for t in diagnostics[0].get_xticklabels()]
    exponents = visible_axes(figures["exponents"][0])
    assert [ax.get_xlabel().split(" (")[0] for ax in exponents] == [
        "γ1", "γ2", "γ1·γ2", "γ_conv", "Δ = γ_conv − γ1·γ2", "δ_envelope", "δ_shape"]


def test_points_figure_checks_runs_against_the_threshold(figures, free):
    from scalingfit.fitting.pipeline import RUN_COVERAGE_MIN

    coverage, *residuals = visible_axes(figures["points"][0])
    assert len(residuals) == 2  # one panel per group
    levels = {round(line.get_ydata()[0], 6) for line in coverage.get_lines()
              if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2}
    assert {0.9, RUN_COVERAGE_MIN} <= levels
    plotted = sum(len(line.get_xdata()) for line in coverage.get_lines()
                  if line.get_marker() == "o")
    assert plotted == free.idata.constant_data.sizes["run"]  # one point per fitted run
    for ax in residuals:
        assert ax.get_xscale() == "log" and "λ / λ*" in ax.get_xlabel()
        assert "of its points inside" in ax.get_title()


def test_curves_draw_the_envelope_and_the_optima_stretch(figures, free):
    for ax, name in zip(visible_axes(figures["curves"][0]), free.group_names, strict=True):
        labels = ax.get_legend_handles_labels()[1]
        assert any("envelope" in label for label in labels)
        assert any("where the optima lie" in label for label in labels)
        notes = [t.get_text() for t in ax.texts]
        assert any(t.startswith("γ1 = ") and "mean slope over this stretch" in t
                   for t in notes), notes
        runs = [line for line in ax.get_lines() if str(line.get_gid()).startswith(RUN_GID)]
        assert len(runs) == int((free.idata.constant_data["group_index"]
                                 == free.group_names.index(name)).sum())


def test_huge_norms_are_plotted_without_overflow(figures):
    """The MLP's norm is near 1e130: the axis shows it, finite, on a log scale."""
    mlp = visible_axes(figures["curves"][0])[1]
    assert mlp.get_title() == "mlp / fashion-mnist"
    low, high = mlp.get_xlim()
    assert 1e120 < low < high < 1e140


def test_heldout_sizes_are_drawn(figures, check):
    best = visible_axes(figures["best_error"][0])[0]
    labels = [t.get_text() for t in best.get_legend().get_texts()]
    assert any("held out" in label for label in labels)


def test_report_is_one_self_contained_page(free, check, tmp_path):
    paths = render(free, tmp_path, check=check)
    page = (tmp_path / "report.html").read_text()
    assert paths[:2] == [tmp_path / "report.html", tmp_path / "report.md"]
    for name in FIGURES:
        assert f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,' in page
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ET.parse(tmp_path / f"{name}.svg").getroot().tag.endswith("svg")
    # nothing is fetched: every src/href is an inline data: URI; no scripts, no url()
    references = re.findall(r'(?:src|href)\s*=\s*"?([^"\s>]*)', page)
    assert references and all(r.startswith("data:") for r in references)
    assert not re.search(r"https?://|<script|url\(|@import", page, re.IGNORECASE)
    for verdict in (g["verdict"] for g in check["groups"]):
        assert f'class="{verdict}"' in page
    markdown = (tmp_path / "report.md").read_text()
    assert all(f"![{name}]({name}.png)" in markdown for name in FIGURES)
    assert "Paper recipe" in markdown and "held-out" in markdown


def test_report_of_a_combined_law_fit_without_check(small_check_dir, tmp_path, capsys):
    code = main(["report", str(small_check_dir / "fit-combined"), "--out", str(tmp_path)])
    assert code == 0
    assert "report.html" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert "γ_conv is tied to γ1·γ2" in page and "Check:" not in page


def test_report_cli_with_check(small_check_dir, tmp_path):
    assert main(["report", str(small_check_dir / "fit-free"), "--out", str(tmp_path),
                 "--check", str(small_check_dir)]) == 0
    assert "Check: held-out sizes" in (tmp_path / "report.html").read_text()


def test_report_opens_in_headless_chromium(free, check, tmp_path):
    """No console message while loading, and a screenshot is written (skips without it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    render(free, tmp_path, check=check)
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,3000", f"--screenshot={shot}",
         (tmp_path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


@pytest.fixture(scope="module")
def odd_fit(tmp_path_factory):
    """A fit of runs that are not all well behaved: one logged too few steps to be fitted
    (a note in summary.json), those of the largest P stop at 55 % of their steps (still
    improving: censored), and one never leaves the chance plateau (not fitted)."""
    import warnings

    import numpy as np

    from scalingfit.errors import ScalingfitWarning
    from scalingfit.fitting.simulation import EXAMPLE_GROUPS, simulate

    base = tmp_path_factory.mktemp("odd")
    table = simulate(EXAMPLE_GROUPS[:1], train_sizes=(4000, 8000, 16000), n_seeds=2,
                     n_steps=16, seed=1)
    steps = np.sort(table["step"].unique())
    table = table[(table["train_size"] < 16000) | (table["step"] <= steps[8])]
    first = table["run_id"].iloc[0]
    short = table[table["run_id"] == first].head(3).assign(run_id=f"{first}-short")
    stuck = table[table["run_id"] == first].assign(
        run_id=f"{first}-stuck",
        test_error=np.random.default_rng(0).binomial(10_000, 0.9, 16) / 10_000)
    pd.concat([table, short, stuck]).to_csv(base / "runs.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        assert main(["fit", str(base / "runs.csv"), "--out", str(base / "fit"), "--draws",
                     "200", "--tune", "300", "--chains", "2", "-q"]) == 0
    result = FitResult.load(base / "fit")
    runs = result.summary()["runs"]
    assert any(r["shape"] == "plateau_only" for r in runs), runs
    assert result.idata.constant_data["censored"].to_numpy().any(), runs
    return base / "fit"


def test_report_shows_the_fits_notes(odd_fit, tmp_path):
    notes = json.loads((odd_fit / "summary.json").read_text())["notes"]
    short = [n for n in notes if "fewer than" in n and "-short" in n]
    assert short, notes
    assert main(["report", str(odd_fit), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert '<h2 id="notes">Notes</h2>' in page
    assert all(f"<li>{n}</li>" in page for n in short)
    assert page.index('id="notes"') < page.index("<h2>Figures</h2>")
    markdown = (tmp_path / "report.md").read_text()
    assert "## Notes" in markdown and all(f"- {n}" in markdown for n in short)


def test_report_without_notes_has_no_notes_section(free, tmp_path):
    render(free, tmp_path)
    notes = free.summary()["notes"]
    assert ("## Notes" in (tmp_path / "report.md").read_text()) == bool(notes)


def test_report_refuses_a_check_of_other_data(odd_fit, small_check_dir, tmp_path, capsys):
    """The small check judged two other groups' table: its verdicts must not sit beside
    this fit's exponents; nor beside its own held-out refit's (a subset of the table)."""
    for fit in (odd_fit, small_check_dir / "fit-heldout"):
        out = tmp_path / fit.name
        assert main(["report", str(fit), "--check", str(small_check_dir), "--out",
                     str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --check ") and err.count("\n") == 1, err
        assert "Fix:" in err and not out.exists()
    with pytest.raises(ScalingfitError, match="another table"):
        render(FitResult.load(odd_fit), tmp_path / "api",
               check=json.loads((small_check_dir / "check.json").read_text()))
    # the check's own combined-law fit is of the same table: accepted
    assert main(["report", str(small_check_dir / "fit-combined"), "--check",
                 str(small_check_dir), "--out", str(tmp_path / "ok")]) == 0


@pytest.mark.parametrize("which", ["free", "combined", "odd"])
def test_every_figure_renders(which, small_check_dir, odd_fit, tmp_path):
    """A normal fit, a combined-law fit (no Δ, no fitted γ_conv) and the odd fit: every
    figure draws, and saves as PNG and SVG."""
    path = odd_fit if which == "odd" else small_check_dir / f"fit-{which}"
    result = FitResult.load(path)
    paths = render(result, tmp_path)
    assert {p.name for p in paths} >= {f"{name}.{ext}" for name in FIGURES
                                       for ext in ("png", "svg")}
    if which == "combined":
        exponents = make_figures(result)["exponents"][0]
        assert "Δ" not in " ".join(ax.get_xlabel() for ax in visible_axes(exponents))


@pytest.fixture(scope="module")
def odd(odd_fit):
    result = FitResult.load(odd_fit)
    return result, make_figures(result)


def test_collapse_draws_every_fitted_run_and_marks_the_censored(odd):
    """One series of points per fitted run (none left out); a run without an optimum in
    range is drawn with open markers, and the legend says it is rescaled by its last
    point."""
    result, figures = odd
    c = result.idata.constant_data
    figure = figures["collapse"][0]
    (ax,) = visible_axes(figure)
    series = {line.get_gid()[len(RUN_GID):]: line for line in ax.get_lines()
              if str(line.get_gid()).startswith(RUN_GID)}
    assert sorted(series) == sorted(c["run"].to_numpy().astype(str))
    censored = dict(zip(c["run"].to_numpy().astype(str), c["censored"].to_numpy()))
    assert any(censored.values()) and not all(censored.values())
    for run, line in series.items():
        assert (line.get_markerfacecolor() == "none") == bool(censored[run]), run
    legend = " ".join(t.get_text() for t in figure.legends[0].get_texts())
    assert "open" in legend and "rescaled by its last point" in legend
    assert "left out" not in ax.get_title() and "still improving" in ax.get_title()


def test_curves_draw_the_plateau_run_in_grey(odd):
    from scalingfit.report.figures import PLATEAU_GREY

    result, figures = odd
    (ax,) = visible_axes(figures["curves"][0])
    stuck = [r["run_id"] for r in result.meta["excluded_runs"]]
    assert stuck and stuck[0].endswith("-stuck")
    grey = [line for line in ax.get_lines() if line.get_color() == PLATEAU_GREY]
    assert len(grey) == len(stuck) and all(len(line.get_xdata()) == 16 for line in grey)
    fitted = [line for line in ax.get_lines() if str(line.get_gid()).startswith(RUN_GID)]
    assert len(fitted) == result.idata.constant_data.sizes["run"]
    legend = " ".join(t.get_text() for t in figures["curves"][0].legends[0].get_texts())
    assert "never left the chance plateau" in legend and "no optimum in range" in legend


def test_the_runs_section_lists_odd_runs(odd_fit, tmp_path):
    render(FitResult.load(odd_fit), tmp_path)
    page = (tmp_path / "report.md").read_text()
    section = page[page.index("## Runs"):page.index("## Sampler")]
    header, _, row = section.splitlines()[2:5]
    cells = dict(zip((c.strip() for c in header.split("|")[1:-1]),
                     (c.strip() for c in row.split("|")[1:-1]), strict=True))
    summary = FitResult.load(odd_fit).summary()
    group = summary["groups"][0]
    assert cells["still improving"] == str(group["n_censored"]) != "0"
    assert cells["with an optimum"] == str(group["n_runs"] - group["n_censored"])
    stuck = cells["left out: never left the chance plateau"]
    assert stuck.startswith("1: ") and stuck.endswith("-stuck")
    assert "envelope support" in page and "points in 90 % interval" in page
