"""Runs an experiment: spec → data → models (pre-flight audit) → run folder → trials on an executor → sealed run.

Everything that can be checked is checked before the run folder exists, so bad input never
leaves a half-written run behind. The driver only plans and records: it turns every trial into a
`TrialJob` and hands the unfinished ones, longest first, to the executor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from reportgen.data.datasets import Dataset, load_dataset
from reportgen.errors import ArchiveError, ReportgenError
from reportgen.experiment import ExperimentSpec, Trial
from reportgen.measure.params import ModelAudit
from reportgen.run.archive_layout import MANIFEST_FILE, SPEC_FILE, STATUS_FILE, TEST_IMAGES, validate_run_id
from reportgen.run.archive_writing import RunArchive, open_for_writing
from reportgen.run.device_choice import choose_device, resumed_device
from reportgen.run.environment import data_record, environment, test_images_file
from reportgen.run.executor_choice import AutoExecutor, settle, start_early
from reportgen.run.executors import Executor, LocalExecutor, ProcessExecutor, longest_first
from reportgen.run.preflight import preflight
from reportgen.run.progress import Progress
from reportgen.run.trial import RecordedData, TrialJob, trial_batches
from reportgen.spec import parse_spec
from reportgen.states import FINISHED_TRIALS, RunState
from reportgen.train import select_device

Log = Callable[[str], None]


class RunFailedError(ArchiveError):
    """The run ended `failed` (no trial finished, or the environment failed); it can be resumed."""


def run_experiment(
    spec: ExperimentSpec,
    runs_root: Path,
    run_id: str | None = None,
    executor: Executor | AutoExecutor | None = None,
    log: Log = print,
) -> RunArchive:
    """Run every trial of the spec and return the completed archive.

    Re-running with the run id of an unfinished run continues that run instead.
    """
    if run_id and (Path(runs_root) / validate_run_id(run_id) / STATUS_FILE).exists():
        return resume_experiment(Path(runs_root) / run_id, executor, log)
    data = load_dataset(**asdict(spec.data))  # subsets drawn with the data seed, not the training seeds
    trials = spec.trials()  # built once: the executor's estimate and the jobs both use them
    executor = executor or LocalExecutor()
    started = start_early(executor, trials, len(data.train_labels), spec.device, data)
    try:
        run, jobs, executor = _prepare(spec, run_id, runs_root, data, trials, executor, started, log)
    except BaseException:
        if started is not None:
            started.stop()  # the run never began: its early workers end with it
        raise
    _hand_over(data, executor)
    del data
    return _train_all(run, jobs, executor, log)


def _prepare(
    spec: ExperimentSpec,
    run_id: str | None,
    runs_root: Path,
    data: Dataset,
    trials: list[Trial],
    executor: Executor | AutoExecutor,
    started: ProcessExecutor | None,
    log: Log,
) -> tuple[RunArchive, list[TrialJob], Executor]:
    """The device, the pre-flight audit, the executor and the run folder with its jobs: all that is checked before
    a trial trains."""
    choice = choose_device(spec, data, executor, log)  # auto: CPU or GPU, by estimated time
    device = select_device(choice.device)
    audits = preflight(spec, data, device)
    settled = settle(executor, trials, audits, len(data.train_labels), device, started)
    env = (
        environment(device)
        | {
            "executor": type(settled).__name__,
            "workers": getattr(settled, "workers", 1),
            "threads_per_trial": settled.threads or torch.get_num_threads(),
        }
        | ({"worker_start": settled.start_method(str(device))} if isinstance(settled, ProcessExecutor) else {})
        | choice.record()
    )
    run = RunArchive.create(
        runs_root,
        run_id,
        {"spec": spec.to_dict(), "environment": env, "data": data_record(data)},
        files={TEST_IMAGES: test_images_file(data)},
    )
    return run, _plan(run, trials, data, device, audits, settled.threads, log), settled


def resume_experiment(path: Path, executor: Executor | AutoExecutor | None = None, log: Log = print) -> RunArchive:
    """Continue an unfinished run (running, stopped, partial or failed) with the archived spec and data: finished
    trials are kept, failed and interrupted ones are trained again (from their last checkpoint if any)."""
    run = open_for_writing(path)
    if run.state() == RunState.COMPLETE and (run.path / MANIFEST_FILE).exists():
        raise ArchiveError(f"{run.path}: the run is already complete (render it with `reportgen render`)")
    run.lock()
    try:
        spec = parse_spec(run.resolved_spec(), str(run.path / SPEC_FILE))
        data = RecordedData.of(run).load()
        device = select_device(resumed_device(spec.device, run.read("environment")))  # the device it started on
        audits = preflight(spec, data, device)
        trials = spec.trials()
        unfinished = [t for t in trials if run.trial_status(t.trial_id) not in FINISHED_TRIALS]
        executor = settle(executor or LocalExecutor(), unfinished, audits, len(data.train_labels), device)
        log(
            f"resuming {run.path} with its archived settings: {spec.trial_count() - len(unfinished)} of "
            f"{spec.trial_count()} trial(s) finished, the others are trained"
        )
        run.reopen()
        jobs = _plan(run, trials, data, device, audits, _resumed_threads(run, device, executor), log)
    except BaseException:
        run.unlock()
        raise
    _hand_over(data, executor)
    del data
    return _train_all(run, jobs, executor, log)


def _resumed_threads(run: RunArchive, device: torch.device, executor: Executor) -> int | None:
    """On the CPU a resumed trial trains with the thread count the run started with, whatever executor
    resumes it: the count changes the low-order bits of the weights, and a resumed run must match the
    uninterrupted one bit for bit."""
    if device.type != "cpu":
        return executor.threads
    env = run.read("environment")
    return env.get("threads_per_trial", env.get("threads"))  # runs of format 1 recorded only `threads`


def _hand_over(data: Dataset, executor: Executor) -> None:
    """Only the executor holds data while trials train: a local one keeps the driver's copy (it trains in
    this process), forked workers keep theirs if they were forked with this very copy, the others reload it
    where they train; the driver's copy is dropped."""
    if isinstance(executor, (LocalExecutor, ProcessExecutor)):
        executor.reuse(data)


def _plan(
    run: RunArchive,
    trials: list[Trial],
    data: Dataset,
    device: torch.device,
    audits: dict[str, ModelAudit],
    threads: int | None,
    log: Log,
) -> list[TrialJob]:
    """Every trial of the spec as a job for the executor; `threads`: torch threads per trial (None: the
    training process's own setting)."""
    log(
        f"{len(trials)} trial(s) on {data.name} ({len(data.train_labels)} train / {len(data.test_labels)} "
        f"test images), device {device}, {threads or torch.get_num_threads()} thread(s) per trial"
    )
    recorded, run_path = RecordedData.of(run), str(run.path.resolve())
    return [
        TrialJob(
            trial=trial,
            run_path=run_path,
            data=recorded,
            device=str(device),
            threads=threads,
            audit=audits[trial.model.label],
            batches=trial_batches(trial, len(data.train_labels)),
        )
        for trial in trials
    ]


def _train_all(run: RunArchive, jobs: list[TrialJob], executor: Executor, log: Log) -> RunArchive:
    """Train every unfinished trial, then seal the run: complete, partial (some trials failed) or failed.

    A failure of the driver or the environment (disk full while writing a trial's files, a
    worker that cannot open the run) ends the run `failed` with the error, keeping every checkpoint,
    so `reportgen run --resume` continues once the cause is fixed. A Ctrl-C ends it `stopped`, resumable
    the same way. The run is never sealed complete then.
    """
    # Decided here, once, for every executor: finished trials are never sent anywhere, long ones start first.
    pending = longest_first([job for job in jobs if run.trial_status(job.trial.trial_id) not in FINISHED_TRIALS])
    resume_hint = f"resume with: reportgen run --resume {run.path}"
    try:
        with tqdm(
            total=sum(job.batches for job in pending),
            unit="batch",
            desc=run.run_id,
            dynamic_ncols=True,
            mininterval=0.5,
            disable=None,
        ) as bar:  # disable=None: no progress bar when stderr is not a terminal
            if pending:
                executor.map(pending, Progress(bar, log, len(pending)))
        state = run.seal([job.trial.trial_id for job in jobs])
    except KeyboardInterrupt:  # stopping is not failing: recorded as the user's decision, resumable
        _mark(run, RunState.STOPPED, "stopped by Ctrl-C")
        log(f"stopped: completed epochs are checkpointed; {resume_hint}")
        raise
    except ReportgenError as exc:  # same type (ModelError, ArchiveWriteError…), message says what became of the run
        _mark_failed(run, str(exc))
        raise _same_kind(
            exc,
            f"{exc} — run {run.path} is marked failed and keeps its checkpoints; "
            f"fix the cause (e.g. free disk space) and {resume_hint}",
        ) from exc
    except (OSError, MemoryError) as exc:  # the driver's own environment (processes, files, memory)
        _mark_failed(run, f"{type(exc).__name__}: {exc}")
        raise RunFailedError(
            f"run {run.path} failed: {type(exc).__name__}: {exc} — it keeps its checkpoints; "
            f"fix the cause and {resume_hint}"
        ) from exc
    except BaseException as exc:
        _mark_failed(run, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        run.unlock()  # written: another process (or a later call in this one) may resume or render it
    status = run.status()
    if state == RunState.FAILED:
        raise RunFailedError(
            f"{run.path}: every trial failed ({status.get('error', 'no trial finished')}); "
            f"tracebacks are in trials/*/trial.json — fix the cause and {resume_hint}"
        )
    if state == RunState.PARTIAL:
        log(
            f"warning: {status['error']} (tracebacks in their trial.json); the run is partial — retrain the "
            f"failed trials with: reportgen run --resume {run.path}"
        )
    return run


def _same_kind(exc: ReportgenError, message: str) -> ReportgenError:
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 — a subclass with another constructor: the generic kind
        return RunFailedError(message)


def _mark_failed(run: RunArchive, error: str) -> None:
    _mark(run, RunState.FAILED, error)


def _mark(run: RunArchive, state: RunState, error: str) -> None:
    """Best effort: status.json may be exactly what the full disk refuses; it then stays `running`,
    which is resumable too. Checkpoints are never touched here."""
    try:
        run.set_status(state, error=" ".join(error.split()))
    except (ReportgenError, OSError):
        pass
