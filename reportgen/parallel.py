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

from .runner import run_trial_in_worker

if TYPE_CHECKING:
    from .runner import TrialRunner
    from .spec import Trial

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
