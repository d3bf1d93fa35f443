"""The user's code in its own lane (reportgen/isolation.py): files of a student's folder named like the
standard-library and dependency modules reportgen imports are never executed, by the command, the report
process, worker processes or Ray workers; a worker that cannot start stops the run in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import idx_run_args, one_error_line, write_idx_dataset

REPORTGEN = str(Path(sys.executable).parent / "reportgen")  # the console script a student runs
# Module names reportgen (or what it imports) loads, which students also give their own files.
SHADOWS = (
    "statistics", "random", "queue", "secrets", "tempfile", "textwrap", "json", "socket", "typing", "copy",
    "torch", "torchinfo", "numpy", "jinja2", "matplotlib", "pandas", "scipy", "tqdm", "weasyprint",
)  # fmt: skip
MARKER = """import os, sys
open(os.path.join({folder!r}, "executed-{name}-%d" % os.getpid()), "w").write(" ".join(sys.argv))
raise SystemExit("{name}.py of the user's folder was executed")
"""
MODELS = """from torch import nn
from helpers import HIDDEN  # a sibling module of the student's: still importable


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))

    def forward(self, x):
        return self.net(x)
"""


def _student_folder(tmp_path: Path) -> tuple[Path, Path]:
    """project/ (the current folder) with nets/models.py; every shadowing name in both folders."""
    project = tmp_path / "project"
    nets = project / "nets"
    nets.mkdir(parents=True)
    (nets / "models.py").write_text(MODELS, "utf-8")
    (nets / "helpers.py").write_text("HIDDEN = 16\n", "utf-8")
    for folder in (project, nets):
        for name in SHADOWS:
            (folder / f"{name}.py").write_text(MARKER.format(folder=str(tmp_path), name=name), "utf-8")
    return project, write_idx_dataset(tmp_path / "idx", n_train=300, n_test=60)


def _reportgen(project: Path, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [REPORTGEN, *argv], cwd=project, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def _executed(tmp_path: Path) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.glob("executed-*"))


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "process", "ray"])
def test_no_file_of_the_users_folders_shadows_what_reportgen_imports(tmp_path, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    project, idx = _student_folder(tmp_path)
    args = [str(a) for a in idx_run_args(idx)]
    args[args.index("--executor") + 1] = executor
    argv = ["run", "--models", "nets/models.py:Small,mlp", "--run-id", "lane", "--format", "md", *args]
    # timeout: on the old code a worker importing statistics.py died on start and was replaced forever
    done = _reportgen(project, *argv, "--workers", "2")
    assert _executed(tmp_path) == [], done.stderr
    assert done.returncode == 0, done.stderr
    assert (project / "output" / "lane" / "report.md").is_file()


@pytest.mark.slow
def test_params_uses_the_real_torchinfo_beside_a_stub_of_the_users(tmp_path):
    project, _idx = _student_folder(tmp_path)
    done = _reportgen(project, "params", "nets/models.py:Small", timeout=120)
    assert _executed(tmp_path) == [], done.stderr
    assert done.returncode == 0, done.stderr
    assert "torchinfo failed" not in done.stdout and "12,730" in done.stdout, done.stdout


@pytest.mark.slow
def test_a_helper_hidden_by_a_standard_module_is_named_with_the_fix(tmp_path):
    """`from statistics import mean_std` in the student's models.py: Python's statistics wins; say so."""
    (tmp_path / "statistics.py").write_text("def mean_std(values):\n    return 0.0, 0.0\n", "utf-8")
    (tmp_path / "models.py").write_text("from statistics import mean_std\nfrom torch import nn\n", "utf-8")
    (tmp_path / "models.py").write_text(
        "from statistics import mean_std\nfrom torch import nn\n\n\nclass Net(nn.Linear):\n    pass\n", "utf-8"
    )
    done = _reportgen(tmp_path, "params", "models.py:Net", timeout=120)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "your statistics.py is hidden" in line and "rename" in line, line


UNGUARDED = """import reportgen

# no `if __name__ == "__main__":` guard: every spawned worker imports this script again and dies
reportgen.compare(["nets/models.py:Small", "mlp"], dataset="mnist", data_dir={idx!r}, epochs=1,
                  batch_size=50, executor="process", workers=2, pdf=False, run_id="unguarded")
"""


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_run_in_one_line_instead_of_a_loop(tmp_path):
    project, idx = _student_folder(tmp_path)
    for name in SHADOWS:  # only the student's mistake is left in this folder
        (project / f"{name}.py").unlink()
    (project / "train.py").write_text(UNGUARDED.format(idx=str(idx)), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=project, capture_output=True, text=True, timeout=240, check=False, env=env
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "a worker process died" in last and 'if __name__ == "__main__":' in last and "train.py" in last, last
    status = (project / "runs" / "unguarded" / "status.json").read_text("utf-8")
    assert '"failed"' in status, status


def test_a_start_error_in_a_worker_is_one_line_naming_the_file(tmp_path, monkeypatch):
    """A worker whose own imports fail — here a broken numpy.py in a folder the driver put first on its path
    after it had imported the real one — writes its cause for the driver, which stops the run."""
    from reportgen.run.executors import ProcessExecutor, WorkerError
    from reportgen.run.runner import run_experiment
    from reportgen.spec import load_spec

    broken = tmp_path / "site" / "numpy.py"  # a trial needs numpy (run/trial.py): a worker imports it on start
    broken.parent.mkdir()
    broken.write_text("raise ImportError('this numpy is broken on purpose')\n", "utf-8")
    idx = write_idx_dataset(tmp_path / "idx")
    (tmp_path / "spec.toml").write_text(
        f'[data]\ndataset = "custom"\ndata_dir = "{idx}"\n[train]\nepochs = 1\nlr = [0.1, 0.01]\n'
        '[[models]]\nname = "mlp"\n',
        "utf-8",
    )
    spec = load_spec(tmp_path / "spec.toml")
    monkeypatch.syspath_prepend(str(broken.parent))
    with pytest.raises(WorkerError) as stopped:
        run_experiment(spec, tmp_path / "runs", "broken", log=lambda line: None, executor=ProcessExecutor(workers=2))
    line = str(stopped.value)
    assert "could not start: ImportError: this numpy is broken on purpose" in line and str(broken) in line, line
    assert "\n" not in line and "marked failed" in line
