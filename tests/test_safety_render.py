"""Issue #12, render side: a render only ever replaces output/<run id> (never '..', '' or a user's folder),
every dataset renders (MNIST included), failed and diverged trials render without being ranked, user
text is escaped and never parsed (HTML, %-formats, mathtext), and `reportgen list` survives odd runs.

Everything goes through the real CLI with tiny real training on small IDX sets (and real Fashion-MNIST).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import idx_run_args, one_error_line, write_idx_dataset
from torch import nn

from reportgen.data import DATASETS

TESTS = Path(__file__).parent


class FailsAtOnce(nn.Module):
    """Passes the pre-flight forward (eval mode); raises on the first training batch: no epoch at all."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("boom on the first batch")
        return self.fc(x.flatten(1))


class Diverges(nn.Module):
    """Training loss NaN from the first batch (diverged), yet a near-perfect test accuracy on the small IDX
    set: evaluation scores each class by the brightness of its square (see conftest.write_idx_dataset).
    Were diverged trials ranked, this one would be named best."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)
        squares = torch.zeros(10, 28, 28)
        for label in range(10):
            row, col = divmod(label, 5)
            squares[label, 4 + row * 10 : 12 + row * 10, 2 + col * 5 : 7 + col * 5] = 1
        self.register_buffer("squares", squares.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.fc(x.flatten(1)) * float("nan")
        return x.flatten(1) @ self.squares.T


class NoParameters(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10]


def small_args(idx: Path, dataset: str = "mnist") -> list:
    return [
        *idx_run_args(idx, dataset),
    ]


def summary(output: Path) -> dict:
    return json.loads((output / "summary.json").read_text("utf-8"))


@pytest.fixture
def checkout(workdir: Path, cli, idx_dir: Path) -> Path:
    """A project folder (like a git checkout) with a sealed run `r`, another report, and the user's files."""
    project = workdir / "project"
    project.mkdir()
    (project / "precious.py").write_text("# the student's own work\n")
    (workdir / "beside.txt").write_text("next to the checkout\n")
    os.chdir(project)
    code, _out, err = cli("run", *small_args(idx_dir), "--models", "mlp", "--run-id", "r")
    assert code == 0, err
    (project / "output" / "other").mkdir()
    (project / "output" / "other" / "report.html").write_text("another run's report")
    return project


def assert_untouched(project: Path) -> None:
    assert (project / "precious.py").read_text() == "# the student's own work\n"
    assert (project.parent / "beside.txt").exists()
    assert (project / "output" / "other" / "report.html").read_text() == "another run's report"
    assert (project / "runs" / "r" / "status.json").exists()
    assert not [p.name for p in (project / "output").iterdir() if p.name.startswith(".") and "lock" not in p.name]


# ------------------------------------------------------------------ the output folder


def test_render_of_a_parent_path_writes_output_of_the_run_and_deletes_nothing(checkout, cli):
    code, out, err = cli("render", "runs/r/trials/..", "--no-pdf")
    assert code == 0, err
    assert f"report: {checkout / 'output' / 'r' / 'report.html'}" in out
    assert summary(checkout / "output" / "r")["run_id"] == "r"
    assert_untouched(checkout)


def test_render_of_dot_from_inside_the_run_deletes_no_other_report(checkout, cli):
    os.chdir(checkout / "runs" / "r")
    code, _out, err = cli("render", ".", "--no-pdf", "--output-dir", "../../output")
    assert code == 0, err
    assert summary(checkout / "output" / "r")["run_id"] == "r"
    assert_untouched(checkout)


def test_a_folder_that_is_not_a_report_is_never_replaced(checkout, cli):
    shutil.rmtree(checkout / "output" / "r")
    (checkout / "output" / "r").mkdir()
    (checkout / "output" / "r" / "thesis.docx").write_text("a user's file")
    code, _out, err = cli("render", "runs/r", "--no-pdf")
    assert code == 2 and "is not a reportgen report (no summary.json)" in one_error_line(err)
    assert (checkout / "output" / "r" / "thesis.docx").read_text() == "a user's file"
    assert_untouched(checkout)


def test_a_report_is_never_written_inside_its_run(checkout, cli):
    code, _out, err = cli("render", "runs/r", "--no-pdf", "--output-dir", "runs/r/trials")
    assert code == 2 and "cannot be written inside the run folder" in one_error_line(err)
    code, _out, err = cli("render", "runs/r", "--no-pdf")  # nothing was added to the sealed run
    assert code == 0, err


def test_a_run_folder_whose_name_is_not_a_run_id_is_refused(checkout, cli):
    shutil.copytree(checkout / "runs" / "r", checkout / "runs" / ".hidden run")
    code, _out, err = cli("render", "runs/.hidden run", "--no-pdf")
    assert code == 2 and "the run folder's name is not a run id" in one_error_line(err)
    assert_untouched(checkout)


@pytest.mark.slow
def test_concurrent_renders_of_one_run_both_succeed(checkout):
    env = os.environ | {"PYTHONPATH": str(TESTS.parent)}
    command = [sys.executable, "-m", "reportgen", "render", "runs/r", "--no-pdf"]
    renders = [
        subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in renders]
    for code, err in results:
        assert code == 0 and "Traceback" not in err, err
    assert summary(checkout / "output" / "r")["run_id"] == "r"
    assert (checkout / "output" / "r" / "report.html").stat().st_size > 10_000
    assert_untouched(checkout)


# ------------------------------------------------------------------ every dataset renders


@pytest.mark.slow
@pytest.mark.parametrize("dataset", [d for d in DATASETS if d != "cifar10"])  # CIFAR-10: tests/test_rgb.py
def test_every_dataset_renders(dataset, workdir, cli, tmp_path, request):
    if dataset == "fashion-mnist":
        request.getfixturevalue("fashion_mnist_dir")  # the packaged files and their published results
        args = [
            "--dataset",
            dataset,
            "--train-subset",
            "200",
            "--test-subset",
            "100",
            "--epochs",
            "1",
            "--executor",
            "local",
            "--no-pdf",
        ]
    else:
        args = small_args(write_idx_dataset(tmp_path / "idx"), dataset)
    code, _out, err = cli("run", *args, "--models", "mlp,lenet5", "--run-id", "d")
    assert code == 0, err
    html = (workdir / "output" / "d" / "report.html").read_text("utf-8")
    assert "Published results" in html if dataset in ("mnist", "fashion-mnist") else True
    if dataset == "mnist":  # the LeCun et al. (1998) rows, with what was done to the training images
        assert "LeNet-5 (LeCun et al. 1998)" in html and "distorted training images" in html
        assert "99.05%" in html
    assert summary(workdir / "output" / "d")["mcnemar"]


def test_an_mnist_report_renders_in_korean_too(workdir, cli, tmp_path):
    code, _out, err = cli(
        "run", *small_args(write_idx_dataset(tmp_path / "idx")), "--models", "mlp", "--run-id", "k", "--lang", "ko"
    )
    assert code == 0, err
    html = (workdir / "output" / "k" / "report.html").read_text("utf-8")
    assert "알려진 결과와 비교" in html and "LeNet-5 (LeCun et al. 1998)" in html


# ------------------------------------------------------------------ failed and diverged trials


@pytest.fixture
def troubled(workdir, cli, idx_dir) -> Path:
    """A run with a working MLP, a trial that failed before its first epoch and one that diverged."""
    code, _out, err = cli(
        "run",
        *small_args(idx_dir),
        "--epochs",
        "2",
        "--lr",
        "1e-6",
        "--run-id",
        "t",
        "--models",
        "mlp,test_safety_render:FailsAtOnce,test_safety_render:Diverges",
    )
    assert code == 1 and "partial" in err.splitlines()[-1], err
    return workdir / "output" / "t"


@pytest.mark.slow
def test_a_partial_run_renders_with_the_failure_shown(troubled, cli):
    html = troubled.joinpath("report.html").read_text("utf-8")
    assert "RuntimeError: boom on the first batch" in html
    assert "<small>failed</small>" in html and "<small>diverged at epoch 1</small>" in html
    code, _out, err = cli("render", "runs/t", "--allow-incomplete", "--no-pdf")
    assert code == 0, err
    code, _out, err = cli("render", "runs/t", "--no-pdf")
    assert code == 2 and "run state is 'partial'" in one_error_line(err)


def test_a_diverged_model_is_never_named_best(troubled):
    report = summary(troubled)
    first, *rest = report["conclusion"]
    assert first.startswith("mlp reached the highest final test accuracy"), report["conclusion"]
    accuracy = {row["model"]: row["final_test_acc"] for row in report["comparison"]}
    assert accuracy["test_safety_render:Diverges"] > accuracy["mlp"]  # it would win if it were ranked
    assert any(line.startswith("test_safety_render:Diverges diverged") for line in rest)
    assert not any("test_safety_render:Diverges" in line and "McNemar" in line for line in rest)
    statuses = [row["status"] for row in report["comparison"]]
    assert statuses == ["complete", "diverged", "failed"]  # ranked rows: finished models first


def test_resume_of_a_parent_path_renders_into_the_run_id(troubled, cli, workdir):
    (workdir / "keep.txt").write_text("mine")
    os.chdir(workdir / "runs" / "t" / "trials")
    code, _out, err = cli("run", "--resume", "..", "--no-pdf", "--executor", "local", "--output-dir", "../../output")
    assert code == 1 and "partial" in err.splitlines()[-1], err  # the failing model fails again
    assert summary(workdir / "output" / "t")["run_id"] == "t"
    assert (workdir / "keep.txt").exists() and (workdir / "runs" / "t" / "status.json").exists()


def test_list_survives_failed_unlabelled_and_null_trials(troubled, cli, workdir):
    trial = workdir / "runs" / "t" / "trials" / "001-test_safety_render-FailsAtOnce" / "trial.json"
    info = json.loads(trial.read_text())
    trial.write_text(json.dumps({k: v for k, v in info.items() if k not in ("label", "epochs")}))
    broken = workdir / "runs" / "broken"
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    code, out, err = cli("list")
    assert code == 0, err
    assert re.search(r"^t\s+partial\s+\S+\s+\d+\.\d\d%\s+mlp, ", out, re.MULTILINE), out
    assert re.search(r"^broken\s+unreadable", out, re.MULTILINE), out


def test_a_model_without_parameters_is_refused_before_training(workdir, cli, idx_dir):
    code, _out, err = cli("run", *small_args(idx_dir), "--models", "test_safety_render:NoParameters")
    assert code == 2 and "has no trainable parameters" in one_error_line(err)
    assert not (workdir / "runs").exists() or not any((workdir / "runs").iterdir())


# ------------------------------------------------------------------ user text is text


def test_checklist_and_status_text_are_escaped_and_never_formatted(workdir, cli, idx_dir):
    checklist = workdir / "mine.toml"
    checklist.write_text(
        'title = "Mine"\n[[items]]\ntext = "<img src=x onerror=alert(1)> 90% on test"\ncheck = "epoch_monitoring"\n',
        "utf-8",
    )
    code, _out, err = cli(
        "run", *small_args(idx_dir), "--models", "mlp", "--run-id", "x", "--checklist", str(checklist)
    )
    assert code == 0, err
    status = workdir / "runs" / "x" / "status.json"
    status.write_text(json.dumps(json.loads(status.read_text()) | {"state": "<script>alert(2)</script>"}))
    code, _out, err = cli("render", "runs/x", "--no-pdf", "--allow-incomplete", "--checklist", str(checklist))
    assert code == 0, err
    html = (workdir / "output" / "x" / "report.html").read_text("utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt; 90% on test" in html
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_templates_translate_only_literals():
    """`_()` marks its result safe and %-formats it: it must never see a value (use the `tr` filter)."""
    calls = [
        (path.name, text[m.end() : m.end() + 40])
        for path in (TESTS.parent / "reportgen" / "templates").glob("*.j2")
        for text in [path.read_text("utf-8")]
        for m in re.finditer(r"\b_\(\s*", text)
    ]
    assert ("report.md.j2", '"Run") }} `{{ report.header.run_id }}` ·') in calls  # the pattern finds a known call
    assert [(name, call) for name, call in calls if call[0] not in "\"'"] == []


def test_a_mathtext_label_is_plain_text_in_every_figure(workdir, cli, idx_dir):
    spec = workdir / "math.toml"
    spec.write_text('[[models]]\nname = "mlp"\nlabel = "$\\\\frac{1}$ net"\n[[models]]\nname = "lenet5"\n', "utf-8")
    code, _out, err = cli("run", spec, *small_args(idx_dir), "--run-id", "m")
    assert code == 0, err
    html = (workdir / "output" / "m" / "report.html").read_text("utf-8")
    assert "$\\frac{1}$ net" in html
