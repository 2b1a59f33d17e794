"""`scalingfit report`: every figure, labelled log axes where the quantities are power laws,
and one self-contained HTML page (no external resource) with its Markdown twin."""

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
    return [ax for ax in figure.axes if ax.get_visible()]


def test_every_figure_is_made(figures):
    assert list(figures) == list(FIGURES) == ["curves", "collapse", "optimal_norm",
                                              "best_error", "exponents", "diagnostics", "ppc"]


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
    for name in ("exponents", "diagnostics", "ppc"):
        for ax in visible_axes(figures[name][0]):
            assert ax.get_xlabel().strip(), name
    ppc = visible_axes(figures["ppc"][0])
    assert all(ax.get_xscale() == "log" for ax in ppc)  # against P
    diagnostics = visible_axes(figures["diagnostics"][0])
    assert diagnostics[1].get_yscale() == "log"  # effective sample sizes span decades
    exponents = visible_axes(figures["exponents"][0])
    assert [ax.get_xlabel().split(" (")[0] for ax in exponents] == [
        "γ1", "γ2", "γ1·γ2", "γ_conv", "Δ = γ_conv − γ1·γ2"]


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
def noted_fit(tmp_path_factory):
    """A fit whose summary.json has notes: one run logged too few steps to be fitted."""
    import warnings

    from scalingfit.errors import ScalingfitWarning
    from scalingfit.fitting.simulation import EXAMPLE_GROUPS, simulate

    base = tmp_path_factory.mktemp("noted")
    table = simulate(EXAMPLE_GROUPS[:1], train_sizes=(4000, 8000, 16000), n_seeds=2,
                     n_steps=14, seed=1)
    first = table["run_id"].iloc[0]
    short = table[table["run_id"] == first].head(3).assign(run_id=f"{first}-short")
    pd.concat([table, short]).to_csv(base / "runs.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingfitWarning)
        assert main(["fit", str(base / "runs.csv"), "--out", str(base / "fit"), "--draws",
                     "200", "--tune", "300", "--chains", "2", "-q"]) == 0
    return base / "fit"


def test_report_shows_the_fits_notes(noted_fit, tmp_path):
    notes = json.loads((noted_fit / "summary.json").read_text())["notes"]
    short = [n for n in notes if "fewer than" in n and "-short" in n]
    assert short, notes
    assert main(["report", str(noted_fit), "--out", str(tmp_path)]) == 0
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


def test_report_refuses_a_check_of_other_data(noted_fit, small_check_dir, tmp_path, capsys):
    """The small check judged two other groups' table: its verdicts must not sit beside
    this fit's exponents; nor beside its own held-out refit's (a subset of the table)."""
    for fit in (noted_fit, small_check_dir / "fit-heldout"):
        out = tmp_path / fit.name
        assert main(["report", str(fit), "--check", str(small_check_dir), "--out",
                     str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --check ") and err.count("\n") == 1, err
        assert "Fix:" in err and not out.exists()
    with pytest.raises(ScalingfitError, match="another table"):
        render(FitResult.load(noted_fit), tmp_path / "api",
               check=json.loads((small_check_dir / "check.json").read_text()))
    # the check's own combined-law fit is of the same table: accepted
    assert main(["report", str(small_check_dir / "fit-combined"), "--check",
                 str(small_check_dir), "--out", str(tmp_path / "ok")]) == 0
