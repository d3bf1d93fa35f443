"""Bad input is refused before torch or the data load: one line, exit 2, nothing under runs/ or output/.

Each case runs `reportgen run` in a fresh interpreter and asks it afterwards whether torch was imported:
a mistake found only after the data load (or after training) fails here even when its message is right.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--train-subset", "600", "--test-subset", "200", "--epochs", "1", "--no-pdf"]
NETS = "import torch\nfrom torch import nn\n\nclass LeNet(nn.Module):\n    pass\n"
CHECKLIST = '[[items]]\ntext = "MLP as large as LeNet-5"\ncheck = "mlp_matches_lenet"\ntolerance_percnt = 3\n'
PROBE = """import sys
from reportgen.cli import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
sys.exit(code)
"""

CASES = [
    ("registry-typo", ["--models", "lenet6"], "unknown model 'lenet6': did you mean lenet5"),
    ("file-class-typo", ["--models", "nets.py:LeNett"], "has no attribute 'LeNett': did you mean LeNet?"),
    ("file-name-typo", ["--models", "nest.py:LeNet"], "nest.py: not found: did you mean nets.py?"),
    ("module-typo", ["--models", "nest:LeNet"], "cannot import module 'nest': no such module; did you mean nets?"),
    ("checklist-missing", ["--models", "mlp", "--checklist", "/nonexistent.toml"], "/nonexistent.toml: cannot read"),
    (
        "checklist-parameter",
        ["--models", "mlp", "--checklist", "checklist.toml"],
        "unknown parameter of check 'mlp_matches_lenet'; did you mean 'tolerance_percent'?",
    ),
    (  # an item that is not a table: load_checklist itself refuses it (it was an AttributeError traceback)
        "checklist-item-not-a-table",
        ["--models", "mlp", "--checklist", "items.toml"],
        "key 'items[0].text': expected the item's text, got 1",
    ),
    ("output-in-runs", ["--models", "mlp", "--output-dir", "runs/report"], "is inside the runs folder runs"),
    ("author-empty", ["--models", "mlp", "--author", ":"], "--author: key 'report.authors[0].name'"),
    ("address-without-ray", ["--models", "mlp", "--address", "10.0.0.5:6379"], "needs executor 'ray'"),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mistake_is_refused_before_torch_loads(tmp_path: Path, argv: list[str], message: str):
    (tmp_path / "nets.py").write_text(NETS, "utf-8")
    (tmp_path / "checklist.toml").write_text(CHECKLIST, "utf-8")
    (tmp_path / "items.toml").write_text('title = "x"\nitems = [1]\n', "utf-8")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", *argv, *TINY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error.startswith("reportgen: error:") and message in error, error
    assert probe == "torch not imported"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()
