"""ProcessExecutor: trials of one run in parallel worker processes on this machine.

On a small CPU two single-threaded trials side by side beat one two-threaded trial after another:
measured here (2 cores, LeNet-5 and its BatchNorm variant, 30k images, batch 64) 2.48 s + 2.93 s
sequential with 2 threads vs 3.72 s side by side with 1 thread each — small convolutions do not
use two threads well. Each worker trains with `threads` threads, so results do not depend on
how trials were scheduled.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from typing import TYPE_CHECKING

from reportgen.errors import ReportgenError
from reportgen.run.runner import run_trial_in_worker

if TYPE_CHECKING:
    from reportgen.run.runner import Executor, TrialRunner
    from reportgen.spec import ExperimentSpec, Trial

EXECUTORS = ("auto", "local", "process", "ray")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Workers must not outlive a killed driver: they would keep writing into the run folder."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: workers still end when the pool is terminated
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle


def _run(args: tuple) -> tuple[str, str]:
    run_path, trial, device, audits, threads = args
    return trial.trial_id, run_trial_in_worker(run_path, trial, device, audits, threads)


class ProcessExecutor:
    """Runs each trial in one of `workers` spawned processes with `threads` threads each."""

    def __init__(self, workers: int = 2, threads: int = 1) -> None:
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ReportgenError(f"{name}: expected an integer ≥ 1, got {value!r}")
        self.workers, self.threads = workers, threads

    def map(self, trials: list[Trial], runner: TrialRunner) -> None:
        bar, log = runner.bar, runner.log
        bar.unit = "trial"
        bar.reset(total=len(trials))
        # longest first (mult-adds × images × epochs), so the last trial to start is a short one
        ordered = sorted(trials, key=lambda t: -runner.audits[t.model.label].mult_adds * t.config.epochs)
        jobs = [(str(runner.run.path.resolve()), trial, str(runner.device), runner.audits, self.threads)
                for trial in ordered]
        context = multiprocessing.get_context("spawn")  # fork would copy the driver's threads and locks
        pool = context.Pool(processes=min(self.workers, len(trials)), initializer=_die_with_parent)
        try:
            for trial_id, status in pool.imap_unordered(_run, jobs):
                bar.update(1)
                log(f"trial {trial_id}: {status}")
            pool.close()
        finally:
            pool.terminate()  # on Ctrl-C or an error: stop workers; finished epochs are checkpointed
            pool.join()


def choose_executor(spec: ExperimentSpec, executor: str = "auto", workers: int = 2,
                    address: str | None = None) -> Executor:
    """Where the trials of `spec` run — the policy of `reportgen run`, for the CLI and the Python API.

    executor: "auto" (CPU: `workers` single-threaded worker processes when there are several trials;
    CUDA: this process), "local" (this process, one trial after another), "process"
    (worker processes), "ray" (reportgen.run.ray_executor; `address` of an existing cluster or None for
    a private local instance).
    Everything is checked here, before any data is read or any run folder created.
    """
    if executor not in EXECUTORS:
        raise ReportgenError(f"executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ReportgenError(f"workers: expected an integer ≥ 1, got {workers!r}")
    if executor == "ray":
        from reportgen.run.ray_executor import RayExecutor

        return RayExecutor(address)  # the runs folder must be on storage that every node sees
    if address:
        raise ReportgenError(f"address {address!r} (--address) needs executor 'ray' (--executor ray)")
    from reportgen.run.runner import LocalExecutor

    cuda = spec.device.startswith("cuda") or (spec.device == "auto" and _cuda_available())
    if executor == "process" or (executor == "auto" and not cuda and spec.trial_count() > 1
                                 and workers > 1):
        return ProcessExecutor(workers=workers)
    return LocalExecutor()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
