"""A machine that cannot make the PDF (WeasyPrint without Pango, as on the GPU image of benchmarks/gpu_check.sh)
is told so in one line before training, and --no-pdf still gives every other document.

Pango cannot be uninstalled for one test, so a `weasyprint` module that fails to import the way WeasyPrint does
without it (an OSError naming the library, after a banner on stdout) stands first on the child's PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import idx_run_args, one_error_line, write_idx_dataset

from reportgen.report.documents import chosen_documents, pdf_problem

NO_PANGO = """print("-----\\n\\nWeasyPrint could not import some external libraries.\\n\\n-----")
raise OSError("cannot load library 'libgobject-2.0-0': libgobject-2.0-0: cannot open shared object file: "
              "No such file or directory.  Additionally, ctypes.util.find_library() did not manage to locate "
              "a library called 'libgobject-2.0-0'")
"""


@pytest.fixture
def no_pango(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "no-pango"
    folder.mkdir()
    (folder / "weasyprint.py").write_text(NO_PANGO)
    return os.environ | {"PYTHONPATH": str(folder)}


def reportgen(*args, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "reportgen", *map(str, args)]
    return subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a `reportgen run` subprocess
def test_a_run_asking_for_the_pdf_without_pango_stops_before_training_with_one_line(tmp_path, no_pango):
    idx = write_idx_dataset(tmp_path / "idx")
    done = reportgen(
        "run", "--models", "mlp", *(a for a in idx_run_args(idx) if a != "--no-pdf"), cwd=tmp_path, env=no_pango
    )
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "libgobject-2.0-0" in line and "apt-get install libpango-1.0-0" in line and "--no-pdf" in line
    assert "WeasyPrint could not import" not in done.stdout + done.stderr  # the banner is not shown
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()


@pytest.mark.slow
def test_without_the_pdf_the_same_machine_writes_every_other_document(tmp_path, no_pango):
    idx = write_idx_dataset(tmp_path / "idx")
    done = reportgen("run", "--models", "mlp", *idx_run_args(idx), "--run-id", "r", cwd=tmp_path, env=no_pango)
    assert done.returncode == 0, done.stderr
    written = {path.name for path in (tmp_path / "output" / "r").iterdir()}
    assert {"report.html", "report.md", "tables.tex", "summary.json"} <= written and "report.pdf" not in written

    again = reportgen("render", tmp_path / "runs" / "r", "--output-dir", tmp_path / "again", cwd=tmp_path, env=no_pango)
    assert again.returncode == 2 and "the PDF cannot be made here" in one_error_line(again.stderr)
    assert not (tmp_path / "again").exists()


def test_pdf_problem_names_the_missing_library(tmp_path, monkeypatch):
    (tmp_path / "weasyprint.py").write_text(NO_PANGO)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    problem = pdf_problem()
    assert problem is not None and problem.startswith("WeasyPrint cannot load the system library libgobject-2.0-0")
    monkeypatch.undo()
    assert pdf_problem() is None  # the real WeasyPrint of this machine loads


def test_the_documents_of_a_render():
    assert chosen_documents(None, True) == {"html", "pdf", "md"}
    assert chosen_documents(None, False) == {"html", "md"}
    assert chosen_documents(["md"], True) == {"md"}
