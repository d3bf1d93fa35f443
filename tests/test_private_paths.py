"""Nothing private in what a student publishes or hands in: no home folder, user name or host name in the report
(HTML, PDF, Markdown, LaTeX, CSV, summary.json), the notebook's inline view, or the archive under runs/<id>.

The runs happen as the student's would: a model file in a project folder under a home folder named after its
user (HOME=…/home/kimminji), the command run from there; then every file written is read back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import write_idx_dataset
from nbclient import NotebookClient

from reportgen.privacy import command_line, portable_path, resolved_path, tilde

USER = "kimminji"
MODELS = """from pathlib import Path

from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x):
        return self.body(x)


class Flaky(Net):
    \"\"\"Fails on its first training batch while a file `fail` lies beside it, naming its own absolute path.\"\"\"

    def forward(self, x):
        if self.training and Path(__file__).with_name("fail").exists():
            raise RuntimeError(f"cannot train: {__file__} says so")
        return super().forward(x)
"""
TINY = ["--epochs", "1", "--batch-size", "50", "--dataset", "mnist", "--data-dir", "~/data"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder named after its user, with a project (models.py) and a small dataset; the environment of
    this test, and of every process it starts, says that user is running it."""
    home = tmp_path / "home" / USER
    (home / "hw").mkdir(parents=True)
    (home / "hw" / "models.py").write_text(MODELS, "utf-8")
    write_idx_dataset(home / "data")
    for name in ("HOME", "USER", "LOGNAME"):
        monkeypatch.setenv(name, str(home) if name == "HOME" else USER)
    return home


def reportgen(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reportgen", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def private_words(home: Path) -> list[str]:
    return sorted({str(home), str(home.resolve()), str(home.parent.parent), USER})


def leaks(folders: list[Path], home: Path) -> list[str]:
    """`file: word` for each private word found in a text file under `folders`, and in each PDF's text."""
    host = socket.gethostname()
    # a short host name ("vm") is looked for as a word, outside base64 figures where any two letters occur
    host_word = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w-])") if host else None
    found = []
    for path in sorted(p for folder in folders for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".pdf":
            text = subprocess.run(["pdftotext", path, "-"], check=True, capture_output=True, text=True).stdout
            text += subprocess.run(["pdfinfo", path], check=True, capture_output=True, text=True).stdout  # metadata
            # links and other uncompressed strings, for the long private words only: a two-letter host name
            # ("vm") occurs by chance in compressed streams (the tagged PDF's structure made it happen)
            raw = path.read_bytes().decode("latin-1")
            found += [f"{path}: {word} (raw)" for word in private_words(home) if word in raw]
        else:
            try:
                text = path.read_text("utf-8")
            except UnicodeDecodeError:  # weights, images, npz
                continue
        found += [f"{path}: {word}" for word in private_words(home) if word in text]
        if host_word and host_word.search(re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+", "", text)):
            found.append(f"{path}: host name {host}")
    return found


@pytest.mark.slow  # three commands, one with a worker process and the PDF: about 60 s here
def test_a_run_resume_and_render_from_a_home_folder_name_no_one(home: Path):
    project = home / "hw"
    (project / "fail").touch()
    done = reportgen(
        "run", "--models", "models.py:Net,models.py:Flaky", *TINY, "--run-id", "r1", "--no-pdf", cwd=project
    )
    assert done.returncode == 1, done.stderr  # Flaky failed: the run is partial, its error archived
    run = project / "runs" / "r1"
    trial = json.loads((run / "trials" / "001-models.py-Flaky" / "trial.json").read_text("utf-8"))
    assert "~/hw/models.py says so" in trial["error"] and "~/hw/models.py" in trial["traceback"]
    assert leaks([project / "output", project / "runs"], home) == []

    # The archive names its files relative to itself: the moved project still resumes (the model file and the
    # data are found again, in a worker process too), and the re-rendered report still names nobody.
    moved = home / "hw-moved"
    project.rename(moved)
    (moved / "fail").unlink()
    done = reportgen("run", "--resume", "runs/r1", "--executor", "process", "--workers", "1", "--no-pdf", cwd=moved)
    assert done.returncode == 0, done.stderr
    done = reportgen("render", "runs/r1", cwd=moved)  # with the PDF
    assert done.returncode == 0, done.stderr
    output = moved / "output" / "r1"
    assert (output / "report.pdf").is_file()
    assert leaks([moved / "output", moved / "runs"], home) == []

    spec = json.loads((moved / "runs" / "r1" / "spec.json").read_text("utf-8"))
    assert [m["name"] for m in spec["models"]] == ["../../models.py:Net", "../../models.py:Flaky"]
    assert spec["data"]["data_dir"] == "../../../data"
    environment = json.loads((moved / "runs" / "r1" / "environment.json").read_text("utf-8"))
    assert environment["command"].startswith("reportgen run --models models.py:Net,models.py:Flaky")
    assert "--data-dir ~/data" in environment["command"]  # as typed: home as ~, where a path is unavoidable
    markdown = (output / "report.md").read_text("utf-8")
    assert "`models.py:Net`" in markdown and "| Command | `reportgen run --models" in markdown


NOTEBOOK_CELLS = [
    """import reportgen
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x):
        return self.body(x)""",
    """report = reportgen.compare({"Net": Net}, dataset="mnist", data_dir="~/data", epochs=1, batch_size=50,
                           pdf=False, executor="local", run_id="nb")
report""",
    "print(repr(report))",
]


@pytest.mark.slow  # a Jupyter kernel that imports torch and trains: about 7 s here
def test_a_notebook_shows_and_records_no_path_of_the_user(home: Path):
    """A real Jupyter kernel started under that home (its own command line names a connection file there)."""
    project = home / "hw"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS])
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    ).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], outputs
    saved = project / "notebook.ipynb"  # what the student commits, outputs included
    nbformat.write(notebook, saved)
    text = saved.read_text("utf-8")
    assert "reportgen-inline" in text and "output/nb/report.html" in text and "runs/nb" in text
    assert [word for word in private_words(home) if word in text] == []
    assert leaks([project / "output", project / "runs"], home) == []
    environment = json.loads((project / "runs" / "nb" / "environment.json").read_text("utf-8"))
    assert environment["command"] == "reportgen.compare() in a notebook"  # not the kernel's launcher and its file


def test_an_archived_path_is_relative_to_the_run_folder_and_resolves_back(home: Path, tmp_path: Path):
    run = home / "hw" / "runs" / "r1"
    for path, archived in (
        (home / "hw" / "models.py", "../../models.py"),
        (home / "data" / "idx", "../../../data/idx"),
        (Path("/usr/share/datasets/fashion-mnist"), "/usr/share/datasets/fashion-mnist"),  # nobody's
    ):
        assert portable_path(path, run) == archived
        assert resolved_path(archived, run) == str(path.resolve())
    elsewhere = tmp_path / "scratch" / "runs" / "r1"  # the run outside home: a file under home is `~/…`
    assert portable_path(home / "hw" / "models.py", elsewhere) == "~/hw/models.py"
    assert resolved_path("~/hw/models.py", elsewhere) == str(home / "hw" / "models.py")


def test_home_becomes_tilde_only_where_it_is_the_whole_folder_name(home: Path):
    assert tilde(f'File "{home}/hw/models.py", line 3') == 'File "~/hw/models.py", line 3'
    assert tilde(f"{home}berly/x and {home}.old") == f"{home}berly/x and {home}.old"  # another user's folders


def test_the_command_row_names_the_command_not_where_it_is_installed(home: Path, monkeypatch: pytest.MonkeyPatch):
    script = shutil.which("reportgen") or "/opt/venv/bin/reportgen"
    assert command_line([script, "run", "--data-dir", f"{home}/data"]) == "reportgen run --data-dir ~/data"
    module = str(Path(os.path.dirname(json.__file__)).parent / "site-packages" / "reportgen" / "__main__.py")
    assert command_line([module, "render", "runs/a"]) == "reportgen render runs/a"
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert command_line([f"{home}/hw/train.py", "--fast"]) == "reportgen.compare() in train.py"
