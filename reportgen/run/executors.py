"""Where the trials of a run train: in this process, in worker processes, or as Ray tasks.

Every executor receives the same thing — the run's pending `TrialJob`s, already without the finished
ones and ordered longest first by the driver — and reports each trial's end through the driver's
`Progress`. Each trial trains through `run_trial`, whose failure policy (`fails_only_its_trial`) is the
same everywhere.

Why worker processes on a CPU: two single-threaded trials side by side beat one two-threaded trial
after another — measured here (2 cores, LeNet-5 and its BatchNorm variant, 30k images, batch 64)
2.48 s + 2.93 s sequential with 2 threads vs 3.72 s side by side with 1 thread each: small
convolutions do not use two threads well. Each worker trains with `threads` threads, so results do
not depend on how trials were scheduled.

Ray is optional (`pip install .[ray]`): it is imported only when a RayExecutor is created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from reportgen.errors import ArchiveError, DataError, ReportgenError
from reportgen.isolation import children_without_current_folder, user_folders
from reportgen.run.archive_writing import open_for_writing
from reportgen.run.trial import (
    PrintedOutput,
    TrialJob,
    fails_only_its_trial,
    on_device,
    record_failure,
    run_trial,
    trial_batches,
)
from reportgen.run.validation import check_executor
from reportgen.run.worker_start import start_worker
from reportgen.states import FINISHED_TRIALS
from reportgen.stopping import ctrl_c_held
from reportgen.train import resolved_device, select_device

if TYPE_CHECKING:
    from tqdm import tqdm

    from reportgen.data.datasets import Dataset
    from reportgen.experiment import ExperimentSpec, Trial
    from reportgen.measure.params import ModelAudit

LOOPBACK = "127.0.0.1"

Log = Callable[[str], None]


class Progress:
    """The driver's progress bar and log: the only object of the driver an executor touches.

    Training in this process advances the bar batch by batch (Progress is a TrialOutput); executors
    that train elsewhere call `count_trials` to make it count finished trials instead.
    """

    def __init__(self, bar: tqdm, log: Log, trials: int) -> None:
        self.bar, self._log, self.trials = bar, log, trials
        self.done = self.failed = 0
        self._per_trial = False

    def batches(self, count: int) -> None:
        if not self._per_trial:
            self.bar.update(count)

    def epoch(self, line: str) -> None:
        self.bar.write(line)  # above the bar, not through it

    def log(self, line: str) -> None:
        self._log(line)

    def count_trials(self) -> None:
        self._per_trial = True
        self.bar.unit = "trial"
        self.bar.reset(total=self.trials)

    def trial_done(self, job: TrialJob, status: str) -> None:
        if status in FINISHED_TRIALS:
            self.done += 1
        else:
            self.failed += 1
        left = self.trials - self.done - self.failed  # queued or training: not every executor can tell which
        if self._per_trial:
            self.bar.update(1)
        self.bar.set_postfix(done=self.done, left=left, failed=self.failed)
        self._log(
            f"trial {job.trial.trial_id} ({job.trial.model.label}): {status} "
            f"[{self.done} done, {left} left, {self.failed} failed]"
        )


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


def run_job(job: TrialJob) -> str:
    """A trial in a worker process (pool or Ray): returns its status.

    The worker reloads the data the run recorded (verifying checksums), so a trial trains on exactly
    what a local run would; a worker runs many trials of one run, so it does that once per run and device.
    """
    device = select_device(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)

    def load_data() -> Dataset:
        key = (job.run_path, str(device))
        if key not in _worker_data:
            _worker_data.clear()
            _worker_data[key] = on_device(job.data.load(), device)
        return _worker_data[key]

    return run_trial(job, open_for_writing(job.run_path), load_data, PrintedOutput())


class WorkerError(ReportgenError):
    """A worker process could not start, or died: the run stops instead of replacing it."""


class ProcessExecutor:
    """Runs each trial in one of `workers` spawned processes with `threads` threads each.

    A worker that dies — it could not import what a trial needs, or it was killed (out of memory) — stops the
    run with one line (concurrent.futures marks the pool broken): multiprocessing.Pool replaced such workers
    without end, and waited forever for the trial a killed worker had taken. Finished epochs are checkpointed,
    so `--resume` continues once the cause is fixed.
    """

    def __init__(self, workers: int = 2, threads: int = 1) -> None:
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ReportgenError(f"{name}: expected an integer ≥ 1, got {value!r}")
        self.workers, self.threads = workers, threads

    def map(self, jobs: list[TrialJob], progress: Progress) -> None:
        progress.count_trials()
        with tempfile.TemporaryDirectory(prefix="reportgen-workers-") as folder:
            errors, pool = os.path.join(folder, "start-errors"), None
            try:
                # The pool's queues start multiprocessing's resource tracker (`python -c …`) and its workers
                # start during submit: with the user's folders last on the path they inherit, and with Ctrl-C
                # blocked until start_worker ignores it (a terminal's Ctrl-C reaches the whole group).
                with children_without_current_folder(), ctrl_c_held():
                    pool = ProcessPoolExecutor(
                        max_workers=min(self.workers, len(jobs)),
                        mp_context=multiprocessing.get_context("spawn"),  # fork would copy threads and locks
                        initializer=start_worker,
                        initargs=(errors,),
                    )
                    futures = {pool.submit(run_job, job): job for job in jobs}
                for future in as_completed(futures):
                    try:
                        status = future.result()
                    except BrokenProcessPool as exc:
                        raise WorkerError(_why_workers_died(errors, pool, futures[future])) from exc
                    progress.trial_done(futures[future], status)
            except BaseException:
                if pool is not None:
                    _stop(pool)  # Ctrl-C or a stopping error: stop the workers; finished epochs are checkpointed
                raise
            pool.shutdown(wait=True)


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
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


# --- Ray ---------------------------------------------------------------------------------------


class RayExecutorError(ReportgenError):
    """Ray is missing, or the cluster cannot run the sweep as asked."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayExecutorError("Ray is not installed: pip install .[ray]") from exc
    return ray


class RayExecutor:
    """Runs every trial as one Ray task (`run_job`), on a local Ray instance or a cluster.

        run_experiment(spec, Path("runs"), executor=RayExecutor())                    # local Ray, 127.0.0.1 only
        run_experiment(spec, Path("/shared/runs"), executor=RayExecutor("10.0.0.5:6379"))  # existing cluster

    Storage: a worker opens the run folder by its path and writes its trial's files there itself, so
    the runs directory must be on storage that every node of the cluster sees at the same path (a local
    disk for a one-machine cluster; NFS, Lustre, a mounted bucket… for several machines). The dataset
    files must be readable at the same path on every node too: each worker reloads the data the run
    recorded (so give a spec's `data_dir` as an absolute path) and refuses files whose checksums differ.

    - `address=None` starts a private Ray instance bound to 127.0.0.1 only (no dashboard, no usage
      stats) and stops it when the sweep ends; `address="host:port"` (or "auto", "ray://…") connects
      to a running cluster and disconnects at the end, leaving the cluster up. A cluster on this
      machine started with `ray start --head --node-ip-address=127.0.0.1` is reached as
      "127.0.0.1:PORT". A cluster with token authentication needs RAY_AUTH_MODE=token (and the
      token) in this process's environment, as Ray documents. A Ray already initialized in this
      process is used as it is (its runtime_env included) and left running.
    - Each task asks for `cpus_per_trial` CPUs (and uses that many torch threads) and one GPU when the
      run's device is CUDA.
    - A task whose worker process dies (killed, out of memory, node lost) is retried up to
      `max_retries` times; the retry resumes from the trial's last epoch checkpoint. Failures are
      classified as for every executor (`fails_only_its_trial`): a trial that raises is recorded as
      failed (traceback in its trial.json) and the sweep goes on; a worker that cannot open the run or
      its data (a ReportgenError, e.g. storage not shared) stops the sweep.
    - `runtime_env` is passed to `ray.init` (e.g. `{"env_vars": {"PYTHONPATH": ...}}` so workers can
      import `module:Class` models); `num_cpus` and `temp_dir` apply only to a local instance.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_trial: int = 1,
        max_retries: int = 3,
        *,
        runtime_env: dict[str, Any] | None = None,
        num_cpus: int | None = None,
        temp_dir: str | None = None,
    ) -> None:
        if isinstance(cpus_per_trial, bool) or not isinstance(cpus_per_trial, int) or cpus_per_trial < 1:
            raise RayExecutorError(f"cpus_per_trial: expected an integer ≥ 1, got {cpus_per_trial!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise RayExecutorError(f"max_retries: expected an integer ≥ 0, got {max_retries!r}")
        if num_cpus is not None and num_cpus < cpus_per_trial:
            raise RayExecutorError(
                f"num_cpus={num_cpus} is less than cpus_per_trial={cpus_per_trial}: no trial could ever be scheduled"
            )
        _import_ray()  # fail now, before any data is loaded, when Ray is missing
        self.address, self.cpus_per_trial, self.max_retries = address or None, cpus_per_trial, max_retries
        self.runtime_env, self.num_cpus, self.temp_dir = runtime_env, num_cpus, temp_dir

    @property
    def threads(self) -> int:
        return self.cpus_per_trial

    def _connect(self, ray: Any) -> bool:
        """Initialize Ray; True when map started or connected it and must shut it down (disconnect) at the end."""
        if ray.is_initialized():
            return False
        with _no_user_folders_for_ray():
            self._init(ray)
        return True

    def _init(self, ray: Any) -> None:
        common: dict[str, Any] = {"runtime_env": self.runtime_env, "logging_level": "WARNING"}
        if self.address and not _is_loopback(self.address):
            ray.init(address=self.address, **common)
        elif self.address:  # a cluster on this machine started with --node-ip-address=127.0.0.1
            with _loopback_only():
                ray.init(address=self.address, **common)
        else:
            with _loopback_only():
                ray.init(
                    address="local",
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    _node_ip_address=LOOPBACK,
                    _temp_dir=self.temp_dir,
                    **common,
                )

    def _check_resources(self, ray: Any, gpus: int, log: Log) -> None:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        fits = any(r.get("CPU", 0) >= self.cpus_per_trial and r.get("GPU", 0) >= gpus for r in nodes)
        if not fits:
            need = f"{self.cpus_per_trial} CPU(s)" + (f" and {gpus} GPU" if gpus else "")
            have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
            message = f"no Ray node has {need} for one trial (nodes: {have})"
            if not self.address:
                raise RayExecutorError(message + "; lower cpus_per_trial or raise num_cpus")
            log(f"warning: {message}; trials wait until the cluster grows")

    def map(self, jobs: list[TrialJob], progress: Progress) -> None:
        ray = _import_ray()
        owned = self._connect(ray)
        try:
            self._run(ray, jobs, progress)
        finally:
            if owned:
                ray.shutdown()

    def _run(self, ray: Any, jobs: list[TrialJob], progress: Progress) -> None:
        from ray.exceptions import RayError, RayTaskError

        gpus = 1 if torch.device(jobs[0].device).type == "cuda" else 0
        self._check_resources(ray, gpus, progress.log)
        progress.count_trials()
        run = open_for_writing(jobs[0].run_path)
        task = ray.remote(run_job)
        pending: dict[Any, TrialJob] = {}
        for job in jobs:
            if gpus:
                job = dataclasses.replace(job, device="cuda")  # Ray shows each task only its own GPU
            ref = task.options(
                num_cpus=self.cpus_per_trial,
                num_gpus=gpus,
                max_retries=self.max_retries,
                retry_exceptions=False,
                name=f"reportgen-trial-{job.trial.trial_id}",
            ).remote(job)
            pending[ref] = job
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    trial_id = job.trial.trial_id
                    try:
                        status = ray.get(ref)
                    except RayTaskError as exc:
                        cause = getattr(exc, "cause", None)
                        if cause is not None and not fails_only_its_trial(cause):
                            raise _stopping_error(job, cause) from exc
                        status = record_failure(run, trial_id, f"{type(exc).__name__}: {exc}")
                    except RayError as exc:  # worker or node died more often than max_retries allows
                        status = record_failure(
                            run, trial_id, f"Ray gave up after {self.max_retries} retries: {type(exc).__name__}: {exc}"
                        )
                    progress.trial_done(job, status)
        finally:
            for ref in pending:  # Ctrl-C or an abort: stop the remaining trials (they keep their checkpoints)
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


def _stopping_error(job: TrialJob, cause: BaseException) -> BaseException:
    """A worker's error that stops the sweep, as the same kind of error, saying which trial and where."""
    message = f"trial {job.trial.trial_id} (Ray worker): {cause}{_hint(cause)}"
    try:
        return type(cause)(message)
    except Exception:  # noqa: BLE001 — a subclass with another constructor: the generic kind
        return RayExecutorError(message)


def _hint(error: BaseException) -> str:
    if isinstance(error, ArchiveError):
        return " — is the runs directory on storage that every Ray node sees at the same path?"
    if isinstance(error, DataError):
        return " — are the same dataset files at the same path on every Ray node?"
    return ""


@contextlib.contextmanager
def _no_user_folders_for_ray() -> Iterator[None]:
    """ray.init tells every worker to put the driver's current folder (and its script's folder, when on
    sys.path) at sys.path[1], ahead of the standard library: a student's statistics.py or torch.py there was
    imported by every Ray worker. Connected from an empty folder, with the user's folders off the path for
    the moment, the workers get neither; a model file's folder is still added, last, where it is imported."""
    script = os.path.dirname(os.path.realpath(sys.argv[0])) if sys.argv and sys.argv[0] else ""
    saved, users = list(sys.path), user_folders() | {script}
    # kept, not deleted afterwards: the local instance's processes start in it and must find it there
    empty = Path(tempfile.gettempdir()) / f"reportgen-ray-{os.getuid()}"
    empty.mkdir(mode=0o700, exist_ok=True)
    with contextlib.chdir(empty):
        sys.path[:] = [entry for entry in saved if entry not in users]
        try:
            yield
        finally:
            sys.path[:] = saved


def _is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Keep Ray on 127.0.0.1 (and offline) while a local instance starts or a driver connects to one.

    Ray swaps a loopback node or cluster address for the machine's external IP unless it is told this
    is a one-machine instance: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which Ray reads at import (so the
    module constant is switched as well) and which the processes ray.init starts inherit. Usage stats
    are off unless the user turned them on. Both are restored afterwards.
    """
    from ray._private import ray_constants

    env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": os.environ.get("RAY_USAGE_STATS_ENABLED", "0"),
    }
    saved_env = {key: os.environ.get(key) for key in env}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(env)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the policy ------------------------------------------------------------------------------

# Worker processes pay off only once training outlasts their start: a spawned worker imports torch and
# reloads the run's data before its first batch. Measured here: a 4-trial sweep of 1-epoch MLPs on 6,000
# images took 13.3-15.6 s with two workers and 9.7 s in this process, 16 such trials 17.3-18.8 vs 13.5 s.
WORKER_START_S = 4.0
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
    threads = 1

    def choose(self, seconds: float, workers: int | None = None) -> Executor:
        workers = workers or self.workers
        # sequential s vs s / workers + the workers' start
        if workers > 1 and seconds - seconds / workers > WORKER_START_S:
            return ProcessExecutor(workers=workers)
        return LocalExecutor()


def settle(
    executor: Executor | AutoExecutor,
    trials: list[Trial],
    audits: dict[str, ModelAudit],
    train_size: int,
    device: torch.device | None = None,
) -> Executor:
    """The executor that trains the run on `device` (None: the CPU): an AutoExecutor becomes the one it stands
    for, any other is itself."""
    if not isinstance(executor, AutoExecutor):
        return executor
    if device is not None and device.type == "cuda":
        return executor.choose(estimated_cuda_seconds(trials, train_size), cuda_workers(len(trials)))
    return executor.choose(estimated_seconds(trials, audits, train_size))


def choose_executor(
    spec: ExperimentSpec, executor: str = "auto", workers: int = 2, address: str | None = None
) -> Executor | AutoExecutor:
    """Where the trials of `spec` run — the policy of `reportgen run`, for the CLI and the Python API.

    executor: "auto" (several trials: worker processes when their training outlasts the workers' start, see
    AutoExecutor — on the CPU `workers` single-threaded ones, on a GPU `cuda_workers` sharing it), "local"
    (this process, one trial after another), "process" (worker processes), "ray" (`address` of an existing
    cluster or None for a private local instance).
    Everything is checked here, before any data is read or any run folder created.
    """
    check_executor(executor, workers, address)
    if executor == "ray":
        return RayExecutor(address)  # the runs folder must be on storage that every node sees
    if executor == "process":
        return ProcessExecutor(workers=workers)
    may_use_cuda = resolved_device(spec.device).startswith("cuda")  # auto: the run may still choose the CPU
    if executor == "auto" and spec.trial_count() > 1 and (workers > 1 or may_use_cuda):
        return AutoExecutor(workers)
    return LocalExecutor()
