"""The walkthrough notebook runs from top to bottom (nbclient), so it cannot rot."""

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_notebook_executes(tmp_path, monkeypatch):
    # the kernel runs in tmp_path: it must import this checkout even where the package is
    # not installed, and relative entries of PYTHONPATH would point into tmp_path
    entries = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *entries]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "consistent" in text and "held out" in text and "extrapolation" in text
    out = tmp_path / "walkthrough-output"
    content = json.loads((out / "check" / "check.json").read_text())
    assert [g["verdict"] for g in content["groups"]] == ["consistent", "consistent"]
    assert (out / "report" / "report.html").exists()
    assert (out / "fit" / "table.parquet").exists()
