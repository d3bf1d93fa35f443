"""Kill and resume, Ctrl-C, concurrent runs, bad run ids and folders — with real processes."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import LOCAL_RUN, as_in_a_terminal, requires_fashion, write_idx_dataset

from reportgen.errors import ArchiveError
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.archive_writing import RunArchive

pytestmark = requires_fashion

SPEC = """
name = "resume check"
[data]
train_subset = 12000
test_subset = 500
[train]
epochs = 3
batch_size = 64
[[models]]
name = "lenet5_regularized"
label = "reg"
"""


def reportgen(*args, cwd: Path, ctrl_c_blocked: bool = False) -> subprocess.Popen:
    """`reportgen …` as a child; ctrl_c_blocked: started with SIGINT blocked, as a child inherits its parent's
    blocked signals across exec (a parent that blocked it: a test runner's worker, a tool's job runner)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT} if ctrl_c_blocked else set())
    try:
        return subprocess.Popen(
            as_in_a_terminal([sys.executable, "-m", "reportgen", *map(str, args)]),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def wait_for_epochs(metrics: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists() and len(json.loads(metrics.read_text() or "[]")) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the expected epoch in time")


def without_seconds(path: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads(path.read_text())]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, spec):
    whole = reportgen("run", spec, "--run-id", "whole", "--no-pdf", cwd=tmp_path)
    assert whole.wait(300) == 0, whole.communicate()

    killed = reportgen("run", spec, "--run-id", "killed", "--no-pdf", cwd=tmp_path)
    trial = tmp_path / "runs" / "killed" / "trials" / "000-reg"
    wait_for_epochs(trial / "metrics.json", 1, killed)
    time.sleep(0.3)  # inside epoch 2
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    assert json.loads((tmp_path / "runs" / "killed" / "status.json").read_text())["state"] == "running"
    assert len(json.loads((trial / "metrics.json").read_text())) < 3

    resumed = reportgen("run", "--resume", tmp_path / "runs" / "killed", "--no-pdf", cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resuming after epoch" in out + err
    reference = tmp_path / "runs" / "whole" / "trials" / "000-reg"
    assert without_seconds(trial / "metrics.json") == without_seconds(reference / "metrics.json")
    a = torch.load(trial / "model.pt", weights_only=True)
    b = torch.load(reference / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (trial / "predictions.csv").read_bytes() == (reference / "predictions.csv").read_bytes()
    assert ArchiveReader(tmp_path / "runs" / "killed").verify() == []


@pytest.mark.slow
@pytest.mark.parametrize("ctrl_c_blocked", [False, True], ids=["plain", "started-with-ctrl-c-blocked"])
def test_ctrl_c_checkpoints_says_how_to_resume_and_exits_130(tmp_path, spec, ctrl_c_blocked):
    process = reportgen("run", spec, "--run-id", "stopped", "--no-pdf", cwd=tmp_path, ctrl_c_blocked=ctrl_c_blocked)
    wait_for_epochs(tmp_path / "runs" / "stopped" / "trials" / "000-reg" / "metrics.json", 1, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "reportgen run --resume" in out + err
    status = json.loads((tmp_path / "runs" / "stopped" / "status.json").read_text())
    assert status["state"] == "stopped" and "Ctrl-C" in status["error"]  # stopping is not failing
    code = subprocess.run(
        [sys.executable, "-m", "reportgen", "render", "runs/stopped", "--no-pdf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert code.returncode == 2 and "refusing to render" in code.stderr


@pytest.mark.slow
def test_concurrent_runs_never_share_a_folder(tmp_path):
    """Two `reportgen run`s started together in one folder, in the same second: each gets its own run id."""
    # Training long enough (LeNet-5, 4 epochs of 4,000 images: seconds) that the two runs overlap even when
    # one process starts a second late on a busy machine; with 200 images each run trained in a fraction
    # of a second and the overlap check below failed now and then.
    idx = write_idx_dataset(tmp_path / "idx", n_train=4000, n_test=100)
    spec = f'[data]\ndataset = "custom"\ndata_dir = "{idx}"\n[[models]]\nname = "lenet5"\n'
    (tmp_path / "spec.toml").write_text(spec)
    args = [
        "run",
        "spec.toml",
        "--epochs",
        "4",
        *LOCAL_RUN,
        "--format",
        "md",
    ]
    runs = [reportgen(*args, cwd=tmp_path), reportgen(*args, cwd=tmp_path)]
    assert all(run.poll() is None for run in runs)  # both started before either could finish
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    archived = [next(line for line in out.splitlines() if line.startswith("archived run: ")) for out, _ in outputs]
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(set(archived)) == 2 and [f"archived run: runs/{f.name}" for f in folders] == sorted(archived)
    statuses = [json.loads((folder / "status.json").read_text()) for folder in folders]
    assert [s["state"] for s in statuses] == ["complete", "complete"]
    assert all(ArchiveReader(folder).verify() == [] for folder in folders)
    first, second = statuses
    assert first["started"] <= second["finished"] and second["started"] <= first["finished"]  # they overlapped
    with pytest.raises(ArchiveError, match="already exists"):  # an id is never reused, even when asked for
        RunArchive.create(tmp_path / "runs", folders[0].name, {})


def test_a_run_being_written_cannot_be_resumed_by_another_process(tmp_path):
    run = RunArchive.create(tmp_path, "busy", {})
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            (f"from reportgen.run.archive_writing import open_for_writing; open_for_writing({str(run.path)!r}).lock()"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode != 0 and "another reportgen process" in child.stderr


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "..", ".hidden", ""])
def test_run_ids_with_path_tricks_are_rejected(workdir, cli, run_id):
    code, _out, err = cli("run", "--run-id", run_id, "--epochs", "1")
    assert code == 2 and "run id" in err and err.count("\n") == 1
    assert not any(p for p in workdir.rglob("*") if p.name not in ("runs", "output"))


def test_unwritable_output_folder_fails_before_training(workdir, cli):
    (workdir / "blocker").write_text("a file, not a folder")
    code, _out, err = cli("run", "--output-dir", workdir / "blocker" / "out", "--epochs", "1")
    assert code == 2 and "not writable" in err
    assert not (workdir / "runs").exists() or not any((workdir / "runs").iterdir())
