"""The executors on real worker processes and real (tiny) training: the same archive as a local run, longest
trials first, finished trials never sent to a worker, one failure policy, and a clean shutdown."""

import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import thread_priorities, write_idx_dataset
from torch import nn

from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.executors import LocalExecutor, ProcessExecutor
from reportgen.run.runner import RunFailedError, resume_experiment, run_experiment
from reportgen.spec import load_spec
from reportgen.train import choose_threads

THREADS = choose_threads()  # a local run trains with this many threads; the workers get the same
EXPLODE = "REPORTGEN_TEST_EXPLODE"  # spawned workers inherit the environment the driver had when it started them


class Exploding(nn.Module):
    """Passes the pre-flight audit (eval mode); raises on its first training batch while EXPLODE is set."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and os.environ.get(EXPLODE):
            raise RuntimeError("exploded on purpose")
        return self.net(x)


THREAD_LOG = "REPORTGEN_TEST_THREAD_LOG"


def quiet(line: str) -> None:
    """A run's log, unread."""


class ThreadRecorder(Exploding):
    """Writes the torch thread count it trains with to the file named by THREAD_LOG, then acts as Exploding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            Path(os.environ[THREAD_LOG]).write_text(str(torch.get_num_threads()))
        return super().forward(x)


def spec_text(idx: Path, train: str, models: list[str]) -> str:
    entries = "".join(f'[[models]]\nname = "{name}"\n' for name in models)
    return (
        f'name = "executors"\n[data]\ndataset = "custom"\ndata_dir = "{idx}"\n'
        f"[train]\nbatch_size = 50\n{train}\n{entries}"
    )


@pytest.fixture
def make_spec(tmp_path: Path):
    idx = write_idx_dataset(tmp_path / "idx")

    def make(train: str, models: list[str]):
        path = tmp_path / "spec.toml"
        path.write_text(spec_text(idx, train, models), "utf-8")
        return load_spec(path)

    return make


def trial_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("trial ")]


def assert_same_trials(a: ArchiveReader, b: ArchiveReader) -> None:
    assert a.trial_ids() == b.trial_ids()
    for trial_id in a.trial_ids():
        metrics_a, metrics_b = (
            [{k: v for k, v in e.items() if k != "seconds"} for e in run.trial(trial_id)["epochs"]] for run in (a, b)
        )
        assert metrics_a == metrics_b  # exact: same data, same seeds, same thread count
        assert (a.trial_dir(trial_id) / "predictions.csv").read_bytes() == (
            b.trial_dir(trial_id) / "predictions.csv"
        ).read_bytes()
        weights_a, weights_b = (torch.load(run.trial_dir(trial_id) / "model.pt", weights_only=True) for run in (a, b))
        assert weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


@pytest.mark.slow
def test_two_worker_processes_archive_exactly_what_a_local_run_does(tmp_path, make_spec):
    spec = make_spec("epochs = 2\nlr = [0.1, 0.01]", ["mlp"])
    local = run_experiment(spec, tmp_path / "runs", "local", executor=LocalExecutor(), log=lambda line: None)
    lines: list[str] = []
    parallel = run_experiment(
        spec, tmp_path / "runs", "parallel", log=lines.append, executor=ProcessExecutor(workers=2, threads=THREADS)
    )
    for run in (local, parallel):
        assert run.status()["state"] == "complete" and run.verify() == []
    assert sorted(line.split(" (")[0] for line in trial_lines(lines)) == ["trial 000-mlp", "trial 001-mlp"]
    assert trial_lines(lines)[-1].endswith(": complete [2 done, 0 left, 0 failed]")
    assert_same_trials(local, parallel)


@pytest.mark.slow
def test_the_longest_trial_starts_first(tmp_path, make_spec):
    # mult-adds per image: lenet5 423,038 vs mlp 50,890, so lenet5 × 1 epoch outweighs mlp × 2 epochs
    spec = make_spec("epochs = [1, 2]", ["mlp", "lenet5"])
    lines: list[str] = []
    run = run_experiment(
        spec, tmp_path / "runs", "ordered", log=lines.append, executor=ProcessExecutor(workers=1)
    )  # one worker: trials end in the order they start
    assert run.status()["state"] == "complete"
    started = [line.split(" (")[0].removeprefix("trial ") for line in trial_lines(lines)]
    assert started == [
        "003-lenet5",
        "002-lenet5",
        "001-mlp",
        "000-mlp",
    ]  # (model, epochs): (l, 2), (l, 1), (m, 2), (m, 1)


@pytest.mark.slow
def test_a_raising_trial_fails_alone_and_resume_sends_only_it_to_a_worker(tmp_path, make_spec, monkeypatch):
    spec = make_spec("epochs = 1", ["mlp", "test_executors:Exploding"])
    monkeypatch.setenv(EXPLODE, "1")
    lines: list[str] = []
    run = run_experiment(
        spec, tmp_path / "runs", "failing", log=lines.append, executor=ProcessExecutor(workers=2, threads=1)
    )
    assert run.status()["state"] == "partial"
    assert run.status()["failed_trials"] == ["001-test_executors-Exploding"]
    assert run.trial_status("000-mlp") == "complete"
    failed = run.trial("001-test_executors-Exploding")
    assert failed["error"] == "RuntimeError: exploded on purpose" and "Traceback" in failed["traceback"]
    assert trial_lines(lines)[-1].endswith("[1 done, 0 left, 1 failed]")

    monkeypatch.delenv(EXPLODE)  # the cause is fixed
    finished = {p.name: p.stat().st_mtime_ns for p in run.trial_dir("000-mlp").iterdir()}
    lines.clear()
    resumed = run_experiment(
        spec, tmp_path / "runs", "failing", log=lines.append, executor=ProcessExecutor(workers=2, threads=1)
    )
    assert resumed.status()["state"] == "complete" and resumed.verify() == []
    # only the failed trial went to a worker: one trial line, counting one trial
    only = "trial 001-test_executors-Exploding (test_executors:Exploding): complete [1 done, 0 left, 0 failed]"
    assert trial_lines(lines) == [only]
    assert {p.name: p.stat().st_mtime_ns for p in run.trial_dir("000-mlp").iterdir()} == finished


def test_auto_trains_a_short_sweep_here_and_a_long_one_in_workers(tmp_path, make_spec):
    """Worker processes start in seconds (torch, the data): the automatic choice spends them only on a sweep
    whose estimated training (from the audited multiply-adds and batches) repays them, and records it."""
    from reportgen.data.datasets import load_dataset
    from reportgen.run.executor_choice import WORKER_START_S, AutoExecutor, choose_executor, estimated_seconds
    from reportgen.run.preflight import preflight
    from reportgen.train import select_device

    spec = make_spec("epochs = 1\nlr = [0.1, 0.01]", ["mlp", "lenet5"])
    run = run_experiment(spec, tmp_path / "runs", "short", log=lambda line: None, executor=choose_executor(spec))
    assert run.status()["state"] == "complete" and run.read("environment")["executor"] == "LocalExecutor"

    data = load_dataset(**dataclasses.asdict(spec.data))
    audits = preflight(spec, data, select_device("cpu"))
    short = estimated_seconds(spec.trials(), audits, len(data.train_labels))
    assert 0 < short < WORKER_START_S  # 4 trials × 4 batches of 50 images
    long = estimated_seconds(spec.trials(), audits, 60_000 * 10)  # Fashion-MNIST × 10 epochs' worth of batches
    assert long > 4 * WORKER_START_S and isinstance(AutoExecutor(2).choose(long), ProcessExecutor)
    mlp, _, lenet, _ = spec.trials()  # same batches; LeNet-5 does 8× the multiply-adds per image
    assert estimated_seconds([lenet], audits, 200) > estimated_seconds([mlp], audits, 200)


@pytest.mark.slow
def test_a_resumed_run_trains_with_the_thread_count_it_started_with(tmp_path, make_spec, monkeypatch):
    """Thread count changes the weights' low-order bits, so a run started by two-thread workers is resumed
    with two threads per trial even in this (one-thread) process, and this process's setting is restored."""
    spec = make_spec("epochs = 1", ["test_executors:ThreadRecorder"])
    used = tmp_path / "threads.txt"
    monkeypatch.setenv(THREAD_LOG, str(used))
    monkeypatch.setenv(EXPLODE, "1")
    with pytest.raises(RunFailedError):
        run_experiment(spec, tmp_path / "runs", "t", log=quiet, executor=ProcessExecutor(workers=1, threads=2))
    run = ArchiveReader(tmp_path / "runs" / "t")
    assert run.status()["state"] == "failed" and used.read_text() == "2"
    assert run.read("environment")["threads_per_trial"] == 2

    monkeypatch.delenv(EXPLODE)
    used.unlink()
    own = torch.get_num_threads()
    assert own != 2  # the test would prove nothing if this process already trained with two
    resumed = resume_experiment(run.path, LocalExecutor(), log=quiet)
    assert resumed.status()["state"] == "complete" and used.read_text() == "2"
    assert torch.get_num_threads() == own


@pytest.mark.slow
def test_a_process_run_from_the_command_line_shuts_down_cleanly(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx")
    (tmp_path / "spec.toml").write_text(spec_text(idx, "epochs = 1\nlr = [0.1, 0.01]", ["mlp", "lenet5"]), "utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reportgen",
            "run",
            "spec.toml",
            "--executor",
            "process",
            "--workers",
            "2",
            "--run-id",
            "four",
            "--no-pdf",
            "--format",
            "md",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads((tmp_path / "runs" / "four" / "status.json").read_text())
    assert status["state"] == "complete" and status["trials"]["complete"] == 4
    assert done.stdout.count("epoch 1/1:") == 4, done.stdout  # the workers' lines, flushed as they ended
    assert "leaked semaphore" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr
    environment = json.loads((tmp_path / "runs" / "four" / "environment.json").read_text())
    assert environment["worker_start"] == "fork"  # the command's own process is copied, not spawned again


@pytest.mark.slow
def test_forked_workers_train_on_the_data_they_were_forked_with_and_archive_what_spawned_ones_do(
    tmp_path, make_spec, monkeypatch
):
    """Where the caller allows it (the command does), workers are copies of the driver: they hold its data and
    never read it again, and every archived number is the same as with spawned workers."""
    from reportgen.run import executors
    from reportgen.run.trial import RecordedData

    spec = make_spec("epochs = 1\nlr = [0.1, 0.01]", ["mlp"])
    spawned = run_experiment(spec, tmp_path / "runs", "spawned", ProcessExecutor(workers=2, threads=THREADS), quiet)

    def read_again(self: RecordedData) -> None:
        raise AssertionError("a forked worker read the run's data again")

    def on_device(data, device):
        (tmp_path / f"copy-{os.getpid()}").touch()  # runs in a worker only if it is a copy of this process
        return data

    monkeypatch.setattr(RecordedData, "load", read_again)  # changes made here reach copies, not spawned workers
    monkeypatch.setattr(executors, "on_device", on_device)
    forked = run_experiment(
        spec, tmp_path / "runs", "forked", ProcessExecutor(workers=2, threads=THREADS, fork=True), quiet
    )
    assert forked.status()["state"] == "complete", forked.status()
    assert {p.name for p in tmp_path.glob("copy-*")} - {f"copy-{os.getpid()}"}  # the workers were copies
    assert [run.read("environment")["worker_start"] for run in (spawned, forked)] == ["spawn", "fork"]
    assert_same_trials(spawned, forked)


def test_workers_are_copies_only_where_the_caller_allows_it_and_only_for_the_cpu():
    assert ProcessExecutor().start_method("cpu") == "spawn"  # the Python API's default: a notebook's kernel
    assert ProcessExecutor(fork=True).start_method("cpu") == ("fork" if sys.platform == "linux" else "spawn")
    assert ProcessExecutor(fork=True).start_method("cuda:0") == "spawn"  # a copy cannot use CUDA


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux alone")
def test_auto_spends_workers_on_shorter_sweeps_where_they_start_as_copies():
    """A forked worker's start is cheap (torch and the data are there), so the automatic choice takes workers
    for sweeps that spawned ones would not repay; on a GPU workers are spawned, and the threshold stays."""
    from reportgen.run.executor_choice import FORKED_WORKER_START_S, WORKER_START_S, AutoExecutor

    seconds = FORKED_WORKER_START_S + WORKER_START_S  # two workers save half of it: between the two starts
    assert FORKED_WORKER_START_S < seconds / 2 < WORKER_START_S
    assert isinstance(AutoExecutor(2, fork=True).choose(seconds), ProcessExecutor)
    assert isinstance(AutoExecutor(2).choose(seconds), LocalExecutor)
    assert isinstance(AutoExecutor(2, fork=True).choose(seconds, 2, "cuda:0"), LocalExecutor)


def test_workers_start_before_the_preflight_only_where_the_run_surely_uses_them(make_spec):
    """`start_early` spawns the workers while the driver audits the models, but only where `settle` will choose
    them whatever the audit says (their training at the per-batch overhead alone repays their start); `settle`
    then hands on those same workers, or stops them."""
    from reportgen.data.datasets import load_dataset
    from reportgen.run.executor_choice import AutoExecutor, settle, start_early
    from reportgen.run.preflight import preflight
    from reportgen.train import select_device

    spec = make_spec("epochs = 1\nlr = [0.1, 0.01]", ["mlp", "lenet5"])
    trials = spec.trials()
    audits = preflight(spec, load_dataset(**dataclasses.asdict(spec.data)), select_device("cpu"))
    assert start_early(AutoExecutor(2), trials, 200, "cpu") is None  # 4 batches a trial: not known yet
    assert start_early(LocalExecutor(), trials, 60_000, "cpu") is None

    # this test's own workers: an earlier test's pool may still be reaping one on a loaded machine
    earlier = set(multiprocessing.active_children())
    started = start_early(AutoExecutor(2), trials, 60_000 * 10, "cpu")  # 1,200 batches a trial: surely
    try:
        assert isinstance(started, ProcessExecutor) and started.workers == 2
        assert len(_new_children(earlier)) == 2  # spawned already, before any trial exists
        assert settle(AutoExecutor(2), trials, audits, 60_000 * 10, torch.device("cpu"), started) is started
    finally:
        started.stop()
    assert not _new_children(earlier)

    again = start_early(ProcessExecutor(workers=2), trials, 200, "cpu")  # asked for workers: always
    assert again is not None and len(_new_children(earlier)) == 2
    assert isinstance(settle(LocalExecutor(), trials, audits, 200, torch.device("cpu"), again), LocalExecutor)
    assert not _new_children(earlier)  # settled elsewhere: the early workers were stopped


def _new_children(earlier: set) -> set:
    """This process's living child processes that were not among `earlier`."""
    return set(multiprocessing.active_children()) - earlier


class WrongShape(nn.Module):
    """Fails the pre-flight audit: its layer expects 10 inputs, an image has 784."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(10, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.slow
def test_a_run_that_fails_its_preflight_leaves_no_early_worker_behind(tmp_path, make_spec):
    """Workers asked for start before the pre-flight audit (the test above); a model that fails the audit ends
    the run, and them, before any run folder exists."""
    from reportgen.errors import ReportgenError

    spec = make_spec("epochs = 1", ["mlp", "test_executors:WrongShape"])
    earlier = set(multiprocessing.active_children())
    with pytest.raises(ReportgenError, match="WrongShape"):
        run_experiment(spec, tmp_path / "runs", "refused", ProcessExecutor(workers=2), log=lambda line: None)
    assert not _new_children(earlier)
    assert not (tmp_path / "runs" / "refused").exists()


class _WritesOnTeardown:
    """Writes its file when Python's teardown of the module holding it deletes it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __del__(self) -> None:
        Path(self.path).write_text("torn down", "utf-8")


def _leave_output_and_an_object(marker: str) -> int:
    global _left  # kept alive until the worker's teardown, if it has one
    _left = _WritesOnTeardown(marker)
    print("a line the worker never flushed", end="")
    return os.getpid()


def test_a_started_worker_ends_without_teardown_but_with_its_output(tmp_path, capfd):
    """A pool worker that started (reportgen/run/worker_start.py) ends at once when the pool shuts down: its
    printed output is flushed, Python's teardown (here an object's __del__ at module clean-up) never runs,
    and its exit code is 0."""
    from concurrent.futures import ProcessPoolExecutor

    from reportgen.run.worker_start import start_worker

    marker = tmp_path / "torn-down"
    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), start_worker, (str(tmp_path / "errors"),))
    pid = pool.submit(_leave_output_and_an_object, str(marker)).result(timeout=120)
    processes = list(pool._processes.values())
    pool.shutdown(wait=True)
    assert pid != os.getpid() and [p.exitcode for p in processes] == [0]
    assert "a line the worker never flushed" in capfd.readouterr().out
    assert not marker.exists()


def _imported_when_a_trial_starts() -> bool:
    from reportgen.run.worker_start import NEEDED

    return all(name in sys.modules for name in NEEDED)


@pytest.mark.skipif(sys.platform != "linux", reason="the priority is set per thread on Linux alone")
def test_a_worker_imports_at_the_lowest_priority_and_a_trial_starts_once_it_has(tmp_path):
    """Issue #38: a worker's imports (torch._dynamo: 1.2 CPU-seconds) must not take a core from the driver while
    it times the models' inference, nor wait behind the report's warm-up; its main thread, which trains, keeps
    the driver's priority."""
    from concurrent.futures import ProcessPoolExecutor

    from reportgen.run.worker_start import start_worker

    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), start_worker, (str(tmp_path / "errors"),))
    try:
        task = pool.submit(_imported_when_a_trial_starts)
        seen: set[tuple[int, int]] = set()
        meek, deadline = (19, os.SCHED_OTHER), time.monotonic() + 60  # a spawned worker imports torch: seconds
        while meek not in seen and not task.done() and time.monotonic() < deadline:
            for pid in list(pool._processes):
                threads = thread_priorities(pid)
                if pid in threads:  # the main thread, as this process
                    assert threads.pop(pid) == (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0))
                seen.update(threads.values())
            time.sleep(0.005)
        # the imports' thread: nice 19, outside the idle class, where the report process's warm-up waits for idle cores
        assert meek in seen
        assert task.result(timeout=120) is True  # the trial began once everything it needs was imported
    finally:
        pool.shutdown(wait=True)
