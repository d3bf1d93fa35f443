"""Which executor trains a run: the policy of `reportgen run` (`choose_executor`), and `--executor auto`'s
choice between this process and worker processes once each model's cost and the device are known (`settle`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import torch

from reportgen.run.executors import Executor, LocalExecutor, ProcessExecutor
from reportgen.run.ray_executor import RayExecutor
from reportgen.run.trial import trial_batches
from reportgen.run.validation import check_executor
from reportgen.train import resolved_device

if TYPE_CHECKING:
    from reportgen.data.datasets import Dataset
    from reportgen.experiment import ExperimentSpec, Trial
    from reportgen.measure.params import ModelAudit

# Worker processes pay off only once training outlasts their start: a spawned worker imports torch and
# reloads the run's data before its first batch. Measured here: a 4-trial sweep of 1-epoch MLPs on 6,000
# images took 13.3-15.6 s with two workers and 9.7 s in this process, 16 such trials 17.3-18.8 vs 13.5 s.
WORKER_START_S = 4.0
# A forked worker (ProcessExecutor.start_method) holds torch and the data already and imports torch._dynamo
# meanwhile: the same 4-trial sweep (no PDF, 2026-12-07) took 6.1-6.5 s with two forked workers, 5.2 s here.
FORKED_WORKER_START_S = 1.5
BATCH_OVERHEAD_S = 0.0012  # per training batch beyond its arithmetic (MLP, batch 64, one thread)
FLOP_RATE = 13.8e9  # fp32 FLOP/s of one training thread (benchmarks/train_speed.py, LeNet-5: 13.8-16.0)


def estimated_seconds(trials: list[Trial], audits: dict[str, ModelAudit], train_size: int) -> float:
    """Training time of `trials` one after another in one thread, roughly: per-batch overhead plus
    forward and backward arithmetic (3 × the forward pass, 2 FLOPs per multiply-add)."""
    return sum(
        trial_batches(trial, train_size)
        * (BATCH_OVERHEAD_S + 6 * audits[trial.model.label].mult_adds * trial.config.batch_size / FLOP_RATE)
        for trial in trials
    )


# On a GPU a step of these small models is bound by launching its kernels from Python, not by arithmetic:
# LeNet-5 at batch 64 took 3.5 ms a step on an H200 (eager, docs/speed.md), whatever the model's size here.
# A captured step (reportgen/cuda_graph.py) is faster, by a figure not measured yet: this bounds it from above.
CUDA_STEP_S = 0.0035
# Trials training at once on one GPU, each in its own process with a core of its own to launch from: the
# trials are launch-bound, so several keep the device busy where one leaves it idle between kernels.
CUDA_WORKERS = 4


def estimated_cuda_seconds(trials: list[Trial], train_size: int) -> float:
    """Training time of `trials` one after another on one GPU, roughly: launch-bound steps."""
    return sum(trial_batches(trial, train_size) * CUDA_STEP_S for trial in trials)


def cuda_workers(trials: int, cores: int | None = None) -> int:
    """How many trials train at once on one GPU: a plan from the trial count and the machine's cores (each
    worker launches from one), never from the load, so a run's executor repeats."""
    return max(1, min(trials, CUDA_WORKERS, cores if cores is not None else os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class AutoExecutor:
    """`--executor auto` with several trials: decided by `settle` once the pre-flight audit knows each model's
    cost and the device is chosen — worker processes when the sweep trains long enough to repay their start,
    this process otherwise. On the CPU `workers` single-threaded processes; on a GPU `cuda_workers` processes
    sharing the device. Every trial trains alike either way (one thread, its own seeds, deterministic
    kernels), so the choice changes no number."""

    workers: int
    fork: bool = False  # ProcessExecutor's: this process may be copied to start workers
    threads = 1

    def choose(self, seconds: float, workers: int | None = None, device: str = "cpu") -> Executor:
        """Workers (`workers`, else this plan's) when `seconds` of training on `device` one after another
        outlast their start, else this process."""
        workers = workers or self.workers
        process = ProcessExecutor(workers=workers, fork=self.fork)
        # sequential s vs s / workers + the workers' start
        if workers > 1 and seconds - seconds / workers > worker_start_seconds(process, device):
            return process
        return LocalExecutor()


def worker_start_seconds(executor: ProcessExecutor, device: str) -> float:
    """What starting `executor`'s workers for trials on `device` costs before their first batch, roughly."""
    return FORKED_WORKER_START_S if executor.start_method(device) == "fork" else WORKER_START_S


def settle(
    executor: Executor | AutoExecutor,
    trials: list[Trial],
    audits: dict[str, ModelAudit],
    train_size: int,
    device: torch.device | None = None,
    started: ProcessExecutor | None = None,
) -> Executor:
    """The executor that trains the run on `device` (None: the CPU): an AutoExecutor becomes the one it stands
    for, any other is itself. `started`: `start_early`'s workers, which it is when it stands for them (and
    which are stopped when it does not)."""
    if not isinstance(executor, AutoExecutor):
        chosen: Executor = executor
    elif device is not None and device.type == "cuda":
        chosen = executor.choose(estimated_cuda_seconds(trials, train_size), cuda_workers(len(trials)), str(device))
    else:
        chosen = executor.choose(estimated_seconds(trials, audits, train_size))
    if started is None or chosen is started:
        return chosen
    if isinstance(chosen, ProcessExecutor) and (chosen.workers, chosen.threads) == (started.workers, started.threads):
        return started
    started.stop()
    return chosen


def start_early(
    executor: Executor | AutoExecutor, trials: list[Trial], train_size: int, device: str, data: Dataset | None = None
) -> ProcessExecutor | None:
    """The worker processes, started now, where the run will surely train on them: a ProcessExecutor, or an
    AutoExecutor on the CPU whose training already outlasts the workers' start at the per-batch overhead alone
    (a lower bound of `estimated_seconds`, so `settle` chooses them too). None where that is not yet known.

    Why: a worker spends seconds starting before its first batch (spawned: torch, reportgen, the data; forked:
    torch._dynamo); started here, that overlaps the pre-flight audit and the run folder's creation in this
    process (`settle` then hands them on). Forked workers get `data`, the run's, as it is
    (`ProcessExecutor.reuse`)."""
    if isinstance(executor, AutoExecutor) and resolved_device(device) == "cpu":
        overhead_only = sum(trial_batches(trial, train_size) * BATCH_OVERHEAD_S for trial in trials)
        chosen = executor.choose(overhead_only)
        early = chosen if isinstance(chosen, ProcessExecutor) else None
    else:
        early = executor if isinstance(executor, ProcessExecutor) else None
    if early is not None:
        early.start(len(trials), resolved_device(device), data)
    return early


def choose_executor(
    spec: ExperimentSpec, executor: str = "auto", workers: int = 2, address: str | None = None, fork: bool = False
) -> Executor | AutoExecutor:
    """Where the trials of `spec` run — the policy of `reportgen run`, for the CLI and the Python API.

    executor: "auto" (several trials: worker processes when their training outlasts the workers' start, see
    AutoExecutor — on the CPU `workers` single-threaded ones, on a GPU `cuda_workers` sharing it), "local"
    (this process, one trial after another), "process" (worker processes), "ray" (`address` of an existing
    cluster or None for a private local instance). `fork`: the caller's process may be copied to start worker
    processes (ProcessExecutor).
    Everything is checked here, before any data is read or any run folder created.
    """
    check_executor(executor, workers, address)
    if executor == "ray":
        return RayExecutor(address)  # the runs folder must be on storage that every node sees
    if executor == "process":
        return ProcessExecutor(workers=workers, fork=fork)
    may_use_cuda = resolved_device(spec.device).startswith("cuda")  # auto: the run may still choose the CPU
    if executor == "auto" and spec.trial_count() > 1 and (workers > 1 or may_use_cuda):
        return AutoExecutor(workers, fork)
    return LocalExecutor()
