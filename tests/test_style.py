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
