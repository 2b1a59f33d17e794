"""``render(result, out)``: the report's files, written atomically into one directory."""

from __future__ import annotations

import io
from pathlib import Path

from ..atomic import atomic_path, make_dir
from .figures import FIGURES
from .page import html_page, markdown_page

__all__ = ["render", "make_figures"]

DPI = 110


def make_figures(result, check=None) -> dict:
    """Every figure of the report: name → (matplotlib Figure, caption)."""
    return {name: (draw(result, check), caption) for name, (draw, caption) in FIGURES.items()}


def render(result, out, *, check: dict | None = None,
           check_name: str = "the check") -> list[Path]:
    """Write the report for ``result`` into the directory ``out``.

    A ``check`` (the content of ``check.json``) must be of the same table and fit settings
    as ``result`` (:func:`scalingfit.checking.pipeline.check_matches`), or a
    ScalingfitError, naming it ``check_name``, says so before anything is drawn.

    Returns
    -------
    list of Path
        ``report.html``, ``report.md``, then the PNG and SVG of each figure.
    """
    if check:
        from ..checking.pipeline import check_matches

        check_matches(result, check, where=check_name)
    out = make_dir(out, "report directory")
    pngs, files, figure_paths = {}, {}, []
    for name, (figure, caption) in make_figures(result, check).items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
        pngs[name] = (buffer.getvalue(), caption)
        files[name] = (f"{name}.png", caption)
        with atomic_path(out / f"{name}.png") as tmp:
            tmp.write_bytes(buffer.getvalue())
        with atomic_path(out / f"{name}.svg") as tmp:
            figure.savefig(tmp, format="svg")
        figure_paths += [out / f"{name}.png", out / f"{name}.svg"]
    page, markdown = out / "report.html", out / "report.md"
    with atomic_path(page) as tmp:
        tmp.write_text(html_page(result, pngs, check), encoding="utf-8")
    with atomic_path(markdown) as tmp:
        tmp.write_text(markdown_page(result, files, check), encoding="utf-8")
    return [page, markdown, *figure_paths]

