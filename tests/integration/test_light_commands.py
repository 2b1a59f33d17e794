"""Commands that only read a fit load no PyMC: predict and report start in seconds."""

from __future__ import annotations

import subprocess
import sys

RUN = """
import sys
from scalingfit.cli import main
status = main(sys.argv[1:])
print("loaded:", sorted(m for m in ("pymc", "pytensor") if m in sys.modules))
sys.exit(status)
"""


def _run(*argv):
    done = subprocess.run([sys.executable, "-c", RUN, *map(str, argv)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_predict_and_report_do_not_import_pymc(small_check_dir, tmp_path):
    out = _run("predict", small_check_dir / "fit-combined", "--train-size", "64000")
    assert "loaded: []" in out and "64000" in out
    out = _run("report", small_check_dir / "fit-free", "--check", small_check_dir, "--out",
               tmp_path / "report")
    assert "loaded: []" in out and (tmp_path / "report" / "report.html").exists()
