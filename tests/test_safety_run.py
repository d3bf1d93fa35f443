"""Issue #12, run side: run states, a manifest that covers every file, bounded sweeps, one-line errors
for hostile or broken input, strict JSON, `--models` parsing and the executor policy.

Everything goes through the real CLI (`reportgen.cli.main`) with tiny real training on a small IDX set.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import itertools
import json
import shutil
import struct
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
import torch
from conftest import idx_run_args, one_error_line, write_idx
from PIL import Image
from torch import nn

from reportgen.cli import split_models
from reportgen.errors import ArchiveError, ReportgenError, SpecError
from reportgen.experiment import Trial
from reportgen.run import archive_files
from reportgen.run.archive_files import json_bytes
from reportgen.run.archive_layout import validate_run_id
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.executor_choice import AutoExecutor, choose_executor
from reportgen.run.executors import LocalExecutor, ProcessExecutor
from reportgen.run.runner import run_experiment
from reportgen.spec import load_spec
from reportgen.states import RunState, TrialState

# ------------------------------------------------------------------ test models (module:Class references)

FAIL = {"train": True}  # FailsInTraining raises while this is set


class FailsInTraining(nn.Module):
    """Passes the pre-flight forward (eval mode); in training mode raises in epoch 2 (after 4 batches of
    50 of the 200 training images, so epoch 1 is checkpointed): a trial failure, not bad input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.batches += 1
            if FAIL["train"] and self.batches > 4:
                raise RuntimeError("boom in training mode")
        return self.fc(x.flatten(1))


class TupleNet(nn.Module):
    """Returns (logits, features), as many tutorial models do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor):
        return self.fc(x.flatten(1)), x.flatten(1)


class NaNInTraining(nn.Module):
    """Training loss NaN from the first batch (diverged); evaluation is finite."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.training else out


# ------------------------------------------------------------------ helpers


def base_args(idx: Path) -> list:
    return idx_run_args(idx)


def train_args(workdir: Path, idx: Path) -> list:
    """A real run on the small IDX set, as a dataset of its own ("custom": class names from the labels)."""
    spec = workdir / "custom.toml"
    spec.write_text(f'[data]\ndataset = "custom"\ndata_dir = "{idx}"\n[[models]]\nname = "mlp"\n', "utf-8")
    return [spec, "--epochs", "1", "--batch-size", "50", "--executor", "local", "--no-pdf"]


PEAK_RSS_BOUND = 32 * 2**20  # a refused 5000×5000 PNG decoded anyway would take 25 MiB; the CLI itself needs under 8


def _vm_kib(field: str) -> int:
    return int(
        next(
            line.split()[1]
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith(field + ":")
        )
    )


def reset_peak_rss() -> int:
    """Linux resets this process's peak resident size (VmHWM) to its current size; returns that, in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _vm_kib("VmHWM") * 1024


def peak_rss() -> int:
    """The most resident memory this process has held since the last reset_peak_rss, in bytes."""
    return _vm_kib("VmHWM") * 1024


@contextlib.contextmanager
def counting_calls(function):
    """How many times `function` runs inside the block, seen through sys.setprofile: nothing is replaced."""
    code, calls = function.__code__, [0]

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code is code:
            calls[0] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def empty_or_absent(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())  # iterdir: hidden staging folders count too


def status(workdir: Path, run_id: str) -> dict:
    return json.loads((workdir / "runs" / run_id / "status.json").read_text("utf-8"))


def strict_json(path: Path):
    def refuse(token):
        raise AssertionError(f"{path}: bare {token} in JSON")

    return json.loads(path.read_text("utf-8"), parse_constant=refuse)


def nested_toml(depth: int) -> str:
    return "x = " + "[" * depth + "1" + "]" * depth + '\n[[models]]\nname = "mlp"\n'


def png(width: int = 28, height: int = 28) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 128).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    if (width, height) != (28, 28):  # a real PNG whose header claims another size (IDAT left as it is)
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def gzip_bomb(path: Path, claimed_images: int = 2, inflated: int = 2**30) -> Path:
    """An IDX .gz whose header claims two 28×28 images but which inflates to `inflated` bytes of zeros:
    gzip members of 16 MiB of zeros each (about 16 KB compressed), concatenated."""
    chunk = 16 * 2**20
    zeros = gzip.compress(b"\0" * chunk, compresslevel=1)
    header = struct.pack(">IIII", 0x803, claimed_images, 28, 28)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(header + b"\0" * chunk, compresslevel=1))
        handle.writelines(zeros for _ in range(inflated // chunk - 1))
    return path


# ------------------------------------------------------------------ bad input: one line, exit 2, nothing created


def _case_nested_toml(w: Path, idx: Path) -> list:
    (w / "deep.toml").write_text(nested_toml(5000), "utf-8")
    return ["run", w / "deep.toml", *base_args(idx)]


def _case_nested_parsable(w: Path, idx: Path) -> list:
    (w / "deep.toml").write_text(nested_toml(40), "utf-8")
    return ["run", w / "deep.toml", *base_args(idx)]


def _case_not_utf8(w: Path, idx: Path) -> list:
    (w / "latin1.toml").write_bytes('name = "café"\n[[models]]\nname = "mlp"\n'.encode("latin-1"))
    return ["run", w / "latin1.toml", *base_args(idx)]


def _case_spec(text: str):
    def make(w: Path, idx: Path) -> list:
        (w / "spec.toml").write_text(text, "utf-8")
        return ["run", w / "spec.toml", *base_args(idx)]

    return make


def _case_args(*extra: str, models: str | None = "mlp"):
    def make(w: Path, idx: Path) -> list:
        return ["run", *base_args(idx), *(["--models", models] if models else []), *extra]

    return make


def _case_idx(mutate):
    def make(w: Path, idx: Path) -> list:
        mutate(idx)
        return ["run", *base_args(idx), "--models", "mlp"]

    return make


def _zero_images(idx: Path) -> None:
    write_idx(idx / "train-images-idx3-ubyte", torch.zeros(0, 28, 28))
    write_idx(idx / "train-labels-idx1-ubyte", torch.zeros(0))


def _one_class(idx: Path) -> None:
    write_idx(idx / "train-labels-idx1-ubyte", torch.full((200,), 3))


def _bomb(idx: Path) -> None:
    (idx / "train-images-idx3-ubyte").unlink()
    gzip_bomb(idx / "train-images-idx3-ubyte.gz")


def _huge_header(idx: Path) -> None:
    (idx / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 3_000_000, 28, 28) + b"\0" * 784)


def _case_png_bomb(w: Path, idx: Path) -> list:
    write_tar(w / "train.tar", [("00000_0.png", png()), ("00001_1.png", png(5000, 5000)), ("00002_1.png", png())])
    write_tar(w / "test.tar", [("00000_0.png", png()), ("00001_1.png", png())])
    (w / "png.toml").write_text(
        '[data]\ndataset = "mnist"\nformat = "png_tar"\ntrain = "train.tar"\n'
        'test = "test.tar"\n[[models]]\nname = "mlp"\n',
        "utf-8",
    )
    return ["run", w / "png.toml", "--epochs", "1", "--executor", "local", "--no-pdf"]


LR_10K = "[" + ", ".join(f"{(i + 1) * 1e-6:.6g}" for i in range(10_000)) + "]"
WD_10K = "[" + ", ".join(f"{i * 1e-4:.4g}" for i in range(10_000)) + "]"
MLP = '[[models]]\nname = "mlp"\n'

BAD_INPUT = [
    ("nested-toml-recursion", _case_nested_toml, "nested too deeply"),
    ("nested-toml-depth", _case_nested_parsable, "nested more than 32 levels"),
    ("not-utf8", _case_not_utf8, "not UTF-8 text (byte 0xe9"),
    (
        "device-tpu",
        _case_spec('device = "tpu:7"\n' + MLP),
        "key 'device': expected auto, cpu, cuda or cuda:N, got 'tpu:7'",
    ),
    ("device-cuda-99", _case_args("--device", "cuda:99"), "device 'cuda:99'"),
    ("workers-0", _case_args("--workers", "0"), "argument --workers: expected an integer ≥ 1, got 0"),
    ("max-trials-0", _case_args("--max-trials", "0"), "argument --max-trials"),
    ("unknown-executor", _case_args("--executor", "gpu"), "argument --executor: invalid choice: 'gpu'"),
    (
        "forward-returns-tuple",
        _case_args(models="test_safety_run:TupleNet"),
        "forward returned a tuple of 2 (Tensor (2, 10), Tensor (2, 784)), expected one tensor of shape (batch, 10)",
    ),
    ("idx-zero-images", _case_idx(_zero_images), "train-images-idx3-ubyte: the IDX header says 0 images"),
    ("idx-gzip-bomb", _case_idx(_bomb), "more data than the IDX header promises ([2, 28, 28], 1584 bytes)"),
    (
        "idx-header-too-large",
        _case_idx(_huge_header),
        "the IDX header promises [3000000, 28, 28] (2,352,000,016 bytes)",
    ),
    ("one-class", _case_idx(_one_class), "the training split has only one class ('3')"),
    ("png-header-too-large", _case_png_bomb, "'00001_1.png' is 5000x5000 pixels (from its header)"),
    ("run-id-newline", _case_args("--run-id", "nl\n"), "run id 'nl\\n'"),
    (
        "label-control-chars",
        _case_spec('[[models]]\nname = "mlp"\nlabel = "MLP\\u001b[31m"\n'),
        "key 'models[0].label': expected a label without control characters (found U+001B)",
    ),
    ("label-bidi-override", _case_spec('[[models]]\nname = "mlp"\nlabel = "MLP\\u202e"\n'), "U+202E"),
    ("default-label-control-chars", _case_args(models="mlp\x07"), "without control characters (found U+0007)"),
    (
        "label-empty",
        _case_spec('[[models]]\nname = "mlp"\nlabel = ""\n'),
        "key 'models[0].label': expected a non-empty label",
    ),
    ("label-blank", _case_spec('[[models]]\nname = "mlp"\nlabel = "  "\n'), "expected a non-empty label"),
    ("models-unbalanced", _case_args(models="mlp?hidden=[75,32"), "unclosed bracket"),
    ("models-empty-item", _case_args(models="mlp,,lenet5"), "got an empty one"),
    (
        "sweep-10k",
        _case_spec(MLP + f"[train]\nlr = {LR_10K}\n"),
        "the sweep has 10,000 trials (1 model(s) × 10000 lr × 1 seed(s)), more than the limit of 1,000",
    ),
    (
        "sweep-10k-by-10k",
        _case_spec(MLP + f"[train]\nlr = {LR_10K}\nweight_decay = {WD_10K}\n"),
        "the sweep has 100,000,000 trials",
    ),
    ("sweep-over-cli-limit", _case_spec(MLP + "[train]\nlr = [0.1, 0.01, 0.001]\n"), None),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(workdir, cli, idx_dir, make, message):
    argv = make(workdir, idx_dir)
    if message is None:  # the CLI limit
        argv, message = [*argv, "--max-trials", "2"], "3 trials"
    before = reset_peak_rss()
    code, out, err = cli(*argv)
    growth = peak_rss() - before
    assert code == 2, (out, err)
    line = one_error_line(err)
    assert message in line, line
    # the bombs claim 1 GiB (gzip), 2.35 GB (IDX header), 25 MB (PNG header) and 100,000,000 trials: refused
    # from what they claim, so the process never held more than a small working set while refusing them
    assert growth < PEAK_RSS_BOUND, f"peak resident memory grew by {growth / 2**20:.0f} MiB"
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()  # not even empty folders


def test_sweep_limit_names_how_to_raise_it_and_raising_it_works(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(MLP + "[train]\nlr = [0.1, 0.01, 0.001]\n", "utf-8")
    with pytest.raises(SpecError, match=r"`max_trials = 3` in the spec or --max-trials 3"):
        load_spec(spec, {"max_trials": 2})
    assert load_spec(spec, {"max_trials": 3}).trial_count() == 3
    # 3,000 × 3,000 under a raised limit: counted arithmetically, expanded lazily, nothing built up front
    big = tmp_path / "big.toml"
    lrs = ", ".join(f"{(i + 1) * 1e-6:.6g}" for i in range(3000))
    decays = ", ".join(f"{i * 1e-4:.4g}" for i in range(3000))
    big.write_text(f"max_trials = 9000000\n{MLP}[train]\nlr = [{lrs}]\nweight_decay = [{decays}]\n", "utf-8")
    before = reset_peak_rss()
    with counting_calls(Trial.__init__) as built:
        large = load_spec(big)
        assert large.trial_count() == 9_000_000 and built == [0]  # counted from the list lengths
        first = list(itertools.islice(large.iter_trials(), 3))
        assert built == [3]  # expanded one trial at a time, as asked for
    growth = peak_rss() - before
    assert [t.trial_id for t in first] == ["000-mlp", "001-mlp", "002-mlp"]
    # 9,000,000 trials built up front would hold gigabytes; parsing the two lists holds well under a MiB
    assert growth < PEAK_RSS_BOUND, f"peak resident memory grew by {growth / 2**20:.0f} MiB"


def test_models_option_splits_only_on_top_level_commas(workdir, cli, idx_dir):
    assert split_models("mlp?hidden=[75,32],lenet5") == ["mlp?hidden=[75,32]", "lenet5"]
    assert split_models('m.py:Net?names=["a,b"], mlp') == ['m.py:Net?names=["a,b"]', "mlp"]
    assert split_models("O'Brien/nets.py:Net,mlp") == ["O'Brien/nets.py:Net", "mlp"]
    code, _out, err = cli("run", *train_args(workdir, idx_dir), "--models", "mlp?hidden=[32,16],mlp", "--run-id", "two")
    assert code == 0, err
    labels = [
        json.loads((p / "trial.json").read_text())["label"]
        for p in sorted((workdir / "runs" / "two" / "trials").iterdir())
    ]
    assert labels == ["mlp?hidden=[32,16]", "mlp"]


def test_executor_policy_is_one_public_function(tmp_path):
    spec = load_spec(None, {"models": [{"name": "mlp"}, {"name": "lenet5"}], "device": "cpu"})
    auto = choose_executor(spec, "auto", workers=2)  # decided once the models' costs are known (settle)
    assert isinstance(auto, AutoExecutor) and auto.workers == 2 and auto.threads == 1
    assert isinstance(auto.choose(seconds=60.0), ProcessExecutor)  # training outlasts the workers' start
    assert isinstance(auto.choose(seconds=2.0), LocalExecutor)
    assert isinstance(choose_executor(spec, "process", workers=2), ProcessExecutor)
    assert isinstance(choose_executor(spec, "auto", workers=1), LocalExecutor)
    assert isinstance(choose_executor(spec, "local"), LocalExecutor)
    for kwargs, message in [
        ({"workers": 0}, "workers: expected an integer ≥ 1, got 0"),
        ({"workers": True}, "workers"),
        ({"executor": "gpu"}, "executor 'gpu'"),
        ({"address": "10.0.0.5:6379"}, "needs executor 'ray'"),
    ]:
        with pytest.raises(ReportgenError, match=message):
            choose_executor(spec, **kwargs)


def test_run_id_regex_does_not_accept_a_trailing_newline():
    assert validate_run_id("ok-1.2_3") == "ok-1.2_3"
    for bad in ("nl\n", "a\nb", "x" * 101):
        with pytest.raises(ArchiveError, match="run id"):
            validate_run_id(bad)


# ------------------------------------------------------------------ run states


@pytest.mark.slow
def test_failed_trial_makes_the_run_partial_and_resume_retrains_only_it(workdir, cli, idx_dir, monkeypatch):
    monkeypatch.setitem(FAIL, "train", True)
    code, out, err = cli(
        "run",
        *train_args(workdir, idx_dir),
        "--models",
        "mlp,test_safety_run:FailsInTraining",
        "--run-id",
        "p",
        "--epochs",
        "2",
    )
    assert code == 1, err
    assert err.splitlines()[-1].startswith("reportgen: error: ") and "partial" in err.splitlines()[-1]
    assert "reportgen run --resume" in err.splitlines()[-1] and "Traceback" not in err
    state = status(workdir, "p")
    assert state["state"] == RunState.PARTIAL == "partial"
    assert state["failed_trials"] == ["001-test_safety_run-FailsInTraining"]
    assert state["trials"] == {"total": 2, "running": 0, "complete": 1, "diverged": 0, "failed": 1}
    assert "RuntimeError: boom in training mode" in state["error"]
    run = ArchiveReader(workdir / "runs" / "p")
    failed = run.trial("001-test_safety_run-FailsInTraining")
    assert failed["status"] == TrialState.FAILED and failed["error"] == "RuntimeError: boom in training mode"
    assert "Traceback" in failed["traceback"] and "\n" not in failed["error"]
    problems = run.verify()
    assert len(problems) == 1 and problems[0].startswith("run state is 'partial', not 'complete'")
    assert (workdir / "output" / "p" / "report.html").exists()  # rendered, marked partial
    kept = (run.path / "trials" / "000-mlp" / "metrics.json").read_bytes()

    monkeypatch.setitem(FAIL, "train", False)  # the cause is fixed
    code, out, err = cli("run", "--resume", run.path, "--no-pdf", "--executor", "local")
    assert code == 0, err
    assert "1 of 2 trial(s) finished" in out
    assert "test_safety_run:FailsInTraining: resuming after epoch 1" in out  # from the failed trial's checkpoint
    assert status(workdir, "p")["state"] == "complete" and run.verify() == []
    assert "failed_trials" not in status(workdir, "p") and "error" not in status(workdir, "p")
    assert run.trial_status("001-test_safety_run-FailsInTraining") == "complete"
    assert "error" not in run.trial("001-test_safety_run-FailsInTraining")
    assert not list(run.path.glob("trials/*/checkpoint.pt"))  # dropped once finished
    assert (run.path / "trials" / "000-mlp" / "metrics.json").read_bytes() == kept  # not retrained


def test_run_where_every_trial_failed_is_failed_and_guarded(workdir, cli, idx_dir, monkeypatch, tmp_path):
    monkeypatch.setitem(FAIL, "train", True)
    args = [
        *train_args(workdir, idx_dir),
        "--models",
        "test_safety_run:FailsInTraining",
        "--run-id",
        "f",
        "--epochs",
        "2",
    ]
    code, out, err = cli("run", *args)
    assert code == 2
    line = one_error_line(err)
    assert "every trial failed" in line and "RuntimeError: boom in training mode" in line
    assert "reportgen run --resume runs/f" in line
    assert status(workdir, "f")["state"] == "failed"
    assert not (workdir / "output" / "f").exists()

    # --run-id of this unfinished run with other settings: refused, nothing changes
    before = (workdir / "runs" / "f" / "status.json").read_bytes()
    code, out, err = cli("run", *args, "--epochs", "3")
    line = one_error_line(err)
    assert code == 2 and "already exists (failed) and is resumed with its archived settings" in line
    assert "train.epochs 2 → 3" in line and "override:" not in out
    code, out, err = cli("run", "--resume", "runs/f", "--epochs", "3")
    assert code == 2 and "--epochs cannot change them" in one_error_line(err)
    assert (workdir / "runs" / "f" / "status.json").read_bytes() == before

    # a .lock symlink planted in the run folder: refused, its target untouched
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", "utf-8")
    lock = workdir / "runs" / "f" / ".lock"
    lock.unlink()
    lock.symlink_to(victim)
    code, out, err = cli("run", "--resume", "runs/f", "--no-pdf", "--executor", "local")
    assert code == 2 and ".lock: is a symbolic link" in one_error_line(err)
    assert victim.read_text("utf-8") == "precious"
    lock.unlink()

    # the same command again, once the cause is fixed, resumes it
    monkeypatch.setitem(FAIL, "train", False)
    code, out, err = cli("run", *args)
    assert code == 0, err
    assert status(workdir, "f")["state"] == "complete"


@contextlib.contextmanager
def disk_full(should_fail):
    """Writes of the archive for which should_fail(path) is true fail as on a full disk (ENOSPC)."""
    real = archive_files.atomic_write

    def write(path: Path, fill) -> None:
        if should_fail(Path(path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, fill)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(archive_files, "atomic_write", write)
        yield


def test_disk_full_while_training_fails_the_run_keeps_checkpoints_and_resumes(workdir, cli, idx_dir):
    args = [*train_args(workdir, idx_dir), "--models", "mlp", "--epochs", "2"]
    assert cli("run", *args, "--run-id", "reference")[0] == 0
    checkpoints = itertools.count(1)
    with disk_full(lambda p: p.name == "checkpoint.pt" and next(checkpoints) == 2):
        code, _, err = cli("run", *args, "--run-id", "full")
    assert code == 2
    line = one_error_line(err)
    assert "checkpoint.pt: cannot write (No space left on device)" in line
    assert "marked failed and keeps its checkpoints" in line and "reportgen run --resume runs/full" in line
    state = status(workdir, "full")
    assert state["state"] == "failed" and "No space left on device" in state["error"]
    trial = workdir / "runs" / "full" / "trials" / "000-mlp"
    assert (trial / "checkpoint.pt").exists() and not (workdir / "runs" / "full" / "manifest.json").exists()
    assert not (workdir / "output" / "full").exists()

    # space freed
    code, _out, err = cli("run", "--resume", "runs/full", "--no-pdf", "--executor", "local")
    assert code == 0, err
    run = ArchiveReader(workdir / "runs" / "full")
    assert run.status()["state"] == "complete" and run.verify() == []

    def metrics(run_id: str) -> list:
        rows = json.loads((workdir / "runs" / run_id / "trials" / "000-mlp" / "metrics.json").read_text())
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert metrics("full") == metrics("reference")


def test_disk_full_while_writing_the_header_leaves_nothing_behind(workdir, cli, idx_dir):
    args = ["run", *train_args(workdir, idx_dir), "--models", "mlp", "--run-id", "header"]
    with disk_full(lambda p: p.name == "environment.json"):
        code, _, err = cli(*args)
    line = one_error_line(err)
    assert code == 2 and "runs/header: cannot create the run (No space left on device)" in line
    assert empty_or_absent(workdir / "runs") and empty_or_absent(workdir / "output")
    code, _out, err = cli(*args)  # the id is not blocked
    assert code == 0, err


# ------------------------------------------------------------------ the manifest covers every file


@pytest.fixture
def sealed(workdir, cli, idx_dir) -> ArchiveReader:
    code, _out, err = cli("run", *train_args(workdir, idx_dir), "--models", "mlp", "--run-id", "sealed")
    assert code == 0, err
    run = ArchiveReader(workdir / "runs" / "sealed")
    assert run.verify() == []  # the lock file is the only file left out
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["state"] == "complete" and "status.json" in manifest["files"]
    return run


def test_a_forged_extra_trial_is_reported_and_refused(sealed, cli, workdir):
    forged = sealed.path / "trials" / "001-mlp"
    shutil.copytree(sealed.path / "trials" / "000-mlp", forged)
    rows = json.loads((forged / "metrics.json").read_text())
    rows[-1]["test_acc"] = 0.999
    (forged / "metrics.json").write_text(json.dumps(rows))
    (sealed.path / "trials" / "000-mlp" / "model.pt").unlink()
    problems = sealed.verify()
    assert "trials/000-mlp/model.pt is missing" in problems
    assert "trials/001-mlp/metrics.json was added after the run was sealed (not in manifest.json)" in problems
    assert "trials/001-mlp/trial.json was added after the run was sealed (not in manifest.json)" in problems
    shutil.rmtree(workdir / "output")
    code, _out, err = cli("render", sealed.path, "--no-pdf")
    line = one_error_line(err)
    assert code == 2 and "refusing to render" in line and "001-mlp/metrics.json was added" in line
    assert empty_or_absent(workdir / "output")


def test_status_json_is_covered(sealed):
    path = sealed.path / "status.json"
    path.write_text(path.read_text().replace('"complete"', '"complete" ', 1))
    assert sealed.verify() == ["status.json does not match its sha256 in manifest.json"]
    edited = json.loads(path.read_text()) | {"state": "partial"}
    path.write_text(json.dumps(edited))
    problems = sealed.verify()
    assert "status.json says the run is 'partial', but it was sealed 'complete'" in problems
    assert "status.json does not match its sha256 in manifest.json" in problems


# ------------------------------------------------------------------ JSON never holds NaN


def test_diverged_trial_is_archived_with_null_not_nan(workdir, idx_dir):
    """Archive side only (rendering null metrics is the report's part): strict JSON everywhere."""
    spec = load_spec(
        train_args(workdir, idx_dir)[0],
        {
            "models": [{"name": "test_safety_run:NaNInTraining"}, {"name": "mlp"}],
            "train.epochs": 1,
            "train.batch_size": 50,
        },
    )
    run = run_experiment(spec, workdir / "runs", "nan", executor=LocalExecutor(), log=lambda line: None)
    trial = run.path / "trials" / "000-test_safety_run-NaNInTraining"
    assert run.trial_status(trial.name) == TrialState.DIVERGED
    rows = strict_json(trial / "metrics.json")
    assert rows[0]["train_loss"] is None  # NaN in the model, null in the archive
    for path in run.path.rglob("*.json"):
        strict_json(path)
    assert run.status()["state"] == "complete" and run.verify() == []
    assert (
        json_bytes({"a": [float("inf"), -float("inf"), float("nan"), 1.5]})
        == b'{\n  "a": [\n    null,\n    null,\n    null,\n    1.5\n  ]\n}\n'
    )
