"""reportgen as a user installs it: the built wheel, installed alone, run from a folder with no checkout.

The wheel is built from this checkout and installed (without dependencies, which the test venv
already has) into a private folder that goes first on PYTHONPATH, so nothing from the source tree
can leak in: the commands run in an empty temporary folder, as subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from conftest import requires_fashion

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--train-subset", "300", "--test-subset", "100", "--epochs", "1"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (built,) = out.glob("reportgen-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def reportgen(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(installed), "PYTHONSAFEPATH": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reportgen", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_wheel_installs_only_reportgen_with_its_templates_and_models(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"reportgen"}
    for needed in (
        "reportgen/templates/report.html.j2",
        "reportgen/templates/report.css",
        "reportgen/templates/notebook.html.j2",
        "reportgen/templates/i18n/ko.json",
        "reportgen/checklists/assignment.toml",
        "reportgen/default_spec.toml",
        "reportgen/models/lenet.py",
        "reportgen/models/mlp.py",
    ):
        assert needed in names, needed


def test_installed_package_is_the_one_imported(installed, tmp_path):
    env = os.environ | {"PYTHONPATH": str(installed), "PYTHONSAFEPATH": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import reportgen; print(reportgen.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed)


def test_params_from_an_empty_folder(installed, tmp_path):
    result = reportgen(installed, tmp_path, "params", "lenet5", "--expect", "61706")
    assert result.returncode == 0, result.stderr
    assert "61,706" in result.stdout


@requires_fashion
def test_run_and_render_from_an_empty_folder_with_a_students_models_py(installed, tmp_path):
    """The student's folder: its own models.py, a spec naming it and a built-in; HTML and PDF render."""
    (tmp_path / "models.py").write_text(
        textwrap.dedent("""
        import torch.nn as nn


        class LeNet5(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                         nn.Flatten(), nn.Linear(6 * 14 * 14, 10))

            def forward(self, x):
                return self.net(x)
    """),
        "utf-8",
    )
    (tmp_path / "spec.toml").write_text(
        textwrap.dedent("""
        name = "Student project"
        [[models]]
        name = "models.py:LeNet5"
        label = "mine"
        [[models]]
        name = "lenet5_c5"
    """),
        "utf-8",
    )
    result = reportgen(installed, tmp_path, "run", "spec.toml", *TINY, "--run-id", "wheel", "--no-pdf")
    assert result.returncode == 0, result.stderr
    result = reportgen(installed, tmp_path, "render", "runs/wheel")
    assert result.returncode == 0, result.stderr
    report = tmp_path / "output" / "wheel"
    assert (report / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (report / "report.css").stat().st_size > 0
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    assert [row["model"] for row in summary["comparison"]] == ["mine", "lenet5_c5"]
    assert summary["parameters"]["mine"]["total"] == (25 + 1) * 6 + (6 * 14 * 14 + 1) * 10
