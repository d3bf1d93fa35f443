"""The code stays ruff clean (the version pinned in pyproject.toml, whose default rules are the standard)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_tree_is_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "reportgen", "tests", "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_drawing_report_figures_leaves_the_callers_matplotlib_settings_alone(tmp_path):
    """A notebook that imports reportgen keeps its backend and rcParams: the report's style applies only
    while its own figures are drawn."""
    code = f"""
import matplotlib
matplotlib.use("svg")
before = dict(matplotlib.rcParams)
from reportgen.report import plots
epochs = [{{"epoch": 1, "train_loss": 1.0, "test_loss": 1.1, "train_acc": 0.5, "test_acc": 0.4}}]
plots.curves_svg({{"MLP": epochs}}, "acc", {{"MLP": "#1f77b4"}}, str, __import__("pathlib").Path({str(tmp_path)!r}) / "c.svg")
after = dict(matplotlib.rcParams)
changed = sorted(k for k in before if before[k] != after[k])
assert changed == [], changed
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
svg = (__import__("pathlib").Path({str(tmp_path)!r}) / "c.svg").read_text()
assert "<text" in svg  # the report's style (svg.fonttype none) applied while drawing
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
