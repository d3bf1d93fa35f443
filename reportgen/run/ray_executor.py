"""The Ray executor: every trial of a run as one Ray task, on a private local instance or an existing cluster.

Ray is optional (`pip install .[ray]`): it is imported only when a RayExecutor is created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from reportgen.errors import ArchiveError, DataError, ReportgenError
from reportgen.isolation import user_folders
from reportgen.run.archive_writing import open_for_writing
from reportgen.run.executors import run_job
from reportgen.run.progress import Log, Progress
from reportgen.run.trial import TrialJob, fails_only_its_trial, record_failure

LOOPBACK = "127.0.0.1"


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
