"""Where the trials of a run train: in this process or in worker processes (Ray: ray_executor.py).

Every executor receives the same thing — the run's pending `TrialJob`s, already without the finished
ones and ordered longest first by the driver — and reports each trial's end through the driver's
`Progress`. Each trial trains through `run_trial`, whose failure policy (`fails_only_its_trial`) is the
same everywhere. Which executor a run gets is executor_choice.py's job.

Why worker processes on a CPU: two single-threaded trials side by side beat one two-threaded trial
after another — measured here (2 cores, LeNet-5 and its BatchNorm variant, 30k images, batch 64)
2.48 s + 2.93 s sequential with 2 threads vs 3.72 s side by side with 1 thread each: small
convolutions do not use two threads well. Each worker trains with `threads` threads, so results do
not depend on how trials were scheduled.

How workers start: spawned (a fresh interpreter that imports torch and reloads the run's data, ~3 s of a
core each), or forked — copies of this process, torch and the run's data included — where the caller says its
process may be copied (`fork=True`: the `reportgen run` command, whose threads and state are reportgen's own;
never a notebook kernel or a user's script, whose threads and locks a copy would inherit) and the trials train
on the CPU (a copy of a process that touched CUDA cannot use it) on Linux. Either way a trial runs the same
code on the same data with the same threads, so the start changes no number.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from reportgen.errors import ReportgenError
from reportgen.isolation import children_without_current_folder
from reportgen.run.archive_writing import open_for_writing
from reportgen.run.progress import Progress
from reportgen.run.trial import PrintedOutput, TrialJob, on_device, run_trial
from reportgen.run.worker_start import start_worker
from reportgen.stopping import ctrl_c_held
from reportgen.train import select_device

if TYPE_CHECKING:
    from reportgen.data.datasets import Dataset


class Executor(Protocol):
    """Trains the given jobs (all of one run) and reports each through `progress.trial_done`.

    threads: torch threads per trial (None: this process's setting); the driver puts it in every job.
    """

    threads: int | None

    def map(self, jobs: list[TrialJob], progress: Progress) -> None: ...


def longest_first(jobs: list[TrialJob]) -> list[TrialJob]:
    """The order every executor starts trials in, so that the last trial to start is a short one."""
    return sorted(jobs, key=lambda job: -job.work)


class LocalExecutor:
    """Runs trials in this process, one after another: the only executor that puts data on this process's device."""

    threads = None

    def __init__(self) -> None:
        self._loaded: Dataset | None = None

    def reuse(self, data: Dataset) -> None:
        """The driver's copy of the run's data, decoded and verified a moment ago in this same process:
        trained on as it is instead of being read again (0.4 s for Fashion-MNIST, most of a tiny run)."""
        self._loaded = data

    def map(self, jobs: list[TrialJob], progress: Progress) -> None:
        run = open_for_writing(jobs[0].run_path)
        loaded, self._loaded = self._loaded, None
        data = on_device(loaded if loaded is not None else jobs[0].data.load(), torch.device(jobs[0].device))
        own_threads = torch.get_num_threads()
        try:
            for job in jobs:
                torch.set_num_threads(job.threads or own_threads)  # a resumed run's archived count
                progress.trial_done(job, run_trial(job, run, lambda: data, progress))
        finally:
            torch.set_num_threads(own_threads)


_worker_data: dict[tuple[str, str], Dataset] = {}
# The driver's copy of the run's data, in a forked worker: set in the driver only while it forks.
_inherited_data: Dataset | None = None


def run_job(job: TrialJob, inherited: bool = False) -> str:
    """A trial in a worker process (pool or Ray): returns its status.

    The worker reloads the data the run recorded (verifying checksums), so a trial trains on exactly
    what a local run would; a worker runs many trials of one run, so it does that once per run and device.
    `inherited`: the driver vouches that the data this worker was forked with is the run's own (the same
    object it recorded and checked a moment before), so it is used as it is (0.4 s of Fashion-MNIST).
    """
    device = select_device(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)

    def load_data() -> Dataset:
        key = (job.run_path, str(device))
        if key not in _worker_data:
            _worker_data.clear()
            data = _inherited_data if inherited and _inherited_data is not None else job.data.load()
            _worker_data[key] = on_device(data, device)
        return _worker_data[key]

    return run_trial(job, open_for_writing(job.run_path), load_data, PrintedOutput())


class WorkerError(ReportgenError):
    """A worker process could not start, or died: the run stops instead of replacing it."""


class ProcessExecutor:
    """Runs each trial in one of `workers` worker processes with `threads` threads each; `fork`: this process
    may be copied to start them (see the module's docstring), else they are spawned.

    A worker that dies — it could not import what a trial needs, or it was killed (out of memory) — stops the
    run with one line (concurrent.futures marks the pool broken): multiprocessing.Pool replaced such workers
    without end, and waited forever for the trial a killed worker had taken. Finished epochs are checkpointed,
    so `--resume` continues once the cause is fixed.
    """

    def __init__(self, workers: int = 2, threads: int = 1, fork: bool = False) -> None:
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ReportgenError(f"{name}: expected an integer ≥ 1, got {value!r}")
        self.workers, self.threads, self.fork = workers, threads, fork
        self._pool: ProcessPoolExecutor | None = None
        self._folder: tempfile.TemporaryDirectory | None = None  # where a worker that cannot start writes why
        self._forked_with: Dataset | None = None  # the data the workers were forked with, until `reuse`
        self._inherits = False  # the workers train on the data they were forked with

    def start_method(self, device: str) -> str:
        """How this executor's workers start for trials on `device` (resolved: "cpu", "cuda:0")."""
        forkable = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
        return "fork" if self.fork and forkable and device == "cpu" else "spawn"

    def start(self, trials: int, device: str = "cpu", data: Dataset | None = None) -> None:
        """Start the workers for `trials` trials on `device` now: spawned, they import what a trial needs while
        this process prepares the run (the pre-flight audit, the run folder); forked, they hold it already,
        and `data` (this run's, loaded here) too. Either way the first batch starts seconds sooner. `map`
        trains on them; `stop` ends them if the run never gets there."""
        if self._pool is not None:
            return
        global _inherited_data
        self._folder = tempfile.TemporaryDirectory(prefix="reportgen-workers-")
        workers = min(self.workers, trials)
        method = self.start_method(device)
        self._forked_with = data if method == "fork" else None
        _inherited_data = self._forked_with
        try:
            with _spawning():
                self._pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context(method),
                    initializer=start_worker,
                    initargs=(self._errors(),),
                )
                # a spawning pool starts a worker per task waiting for one, a forking pool all at its first
                for _ in range(workers):
                    self._pool.submit(_started)
        finally:
            _inherited_data = None  # the copies hold it; this process keeps no second reference

    def reuse(self, data: Dataset) -> None:
        """The driver's data for the run about to train: if it is the very object the workers were forked
        with, they train on their copy instead of reading it again."""
        self._inherits = data is self._forked_with and data is not None
        self._forked_with = None

    def map(self, jobs: list[TrialJob], progress: Progress) -> None:
        progress.count_trials()
        self.start(len(jobs), jobs[0].device)
        pool = self._pool
        assert pool is not None
        try:
            with _spawning():  # a worker that died is not replaced, but a pool may still be spawning one
                futures = {pool.submit(run_job, job, self._inherits): job for job in jobs}
            for future in as_completed(futures):
                try:
                    status = future.result()
                except BrokenProcessPool as exc:
                    raise WorkerError(_why_workers_died(self._errors(), pool, futures[future])) from exc
                progress.trial_done(futures[future], status)
        except BaseException:
            self.stop()  # Ctrl-C or a stopping error: stop the workers; finished epochs are checkpointed
            raise
        pool.shutdown(wait=True)
        self._forget()

    def stop(self) -> None:
        """End every worker now and reap it (the run stopped, or never reached `map`); none is left running."""
        if self._pool is not None:
            _stop(self._pool)
        self._forget()

    def _errors(self) -> str:
        assert self._folder is not None
        return os.path.join(self._folder.name, "start-errors")

    def _forget(self) -> None:
        self._pool, self._forked_with, self._inherits = None, None, False
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


def _started() -> None:
    """The task that makes a pool spawn a worker before there is a trial for it."""


@contextlib.contextmanager
def _spawning() -> Iterator[None]:
    """Workers spawned meanwhile (multiprocessing's resource tracker too, `python -c …`) inherit the path with the
    user's folders last, and Ctrl-C blocked until start_worker ignores it (a terminal's Ctrl-C reaches the
    whole group)."""
    with children_without_current_folder(), ctrl_c_held():
        yield


def _why_workers_died(errors: str, pool: ProcessPoolExecutor, job: TrialJob) -> str:
    """The one line a dead worker leaves: the import error it wrote, else how it ended."""
    if os.path.exists(errors):
        with open(errors, encoding="utf-8") as lines:
            first = lines.readline().strip()
        if first:
            return f"a worker process could not start: {first}"
    codes = sorted({p.exitcode for p in getattr(pool, "_processes", {}).values() if p.exitcode not in (None, 0)})
    how = ", ".join(f"killed by signal {-c}" if c < 0 else f"exit code {c}" for c in codes) or "no exit code"
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    hint = (
        f'; if {os.path.basename(main)} starts the run, do it under `if __name__ == "__main__":` (worker '
        "processes import that script again)"
        if main and "reportgen" not in Path(main).parts and not main.endswith(("reportgen", "pytest"))
        else " (out of memory? its error, if any, is printed above)"
    )
    return f"a worker process died while training trial {job.trial.trial_id} ({how}){hint}"


def _stop(pool: ProcessPoolExecutor) -> None:
    """End every worker now and reap it: none is left running, and none as a zombie."""
    processes = list(getattr(pool, "_processes", {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    if manager is not None:
        # The pool's own thread reaps the workers too. A worker it reaped first still looked alive here
        # (waitpid: no such child) until that thread, waiting for a core on a busy machine, wrote down its
        # exit code: multiprocessing.active_children() then listed a dead worker (2 CI runs of 2).
        manager.join(timeout=10)
