"""Runs an experiment: spec → data → models (pre-flight audit) → train → archive.

Everything that can be checked is checked before the run folder exists, so bad input never
leaves a half-written run behind.
"""
from __future__ import annotations

import functools
import io
import os
import platform
import random
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reportgen import __version__
from reportgen.data.datasets import Dataset, load_dataset, load_recorded_dataset
from reportgen.errors import ArchiveError, ModelError, ReportgenError
from reportgen.measure.cost import measure_cost
from reportgen.measure.params import ModelAudit, audit_model
from reportgen.models.registry import create_model
from reportgen.run.archive import (
    FINISHED_TRIALS,
    TEST_IMAGES,
    RunArchive,
    RunState,
    TrialState,
    open_run,
    validate_run_id,
)
from reportgen.spec import ExperimentSpec, Trial, parse_spec
from reportgen.train import EpochMetrics, TrainResult, batches_per_epoch, make_optimizer, select_device, train_model

Log = Callable[[str], None]


class RunFailedError(ArchiveError):
    """The run ended `failed` (no trial finished, or the environment failed); it can be resumed."""


def environment(device: torch.device) -> dict[str, Any]:
    """What the reproducibility appendix needs to say about where the numbers came from."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "reportgen": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": _version("torchvision"), "torchinfo": _version("torchinfo"),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "git_commit": commit,
        "command": " ".join(sys.argv),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def data_record(data: Dataset) -> dict[str, Any]:
    return {"dataset": data.name, "source": data.source, "files": data.files, "classes": data.classes,
            "mean": data.mean, "std": data.std, "input_shape": list(data.input_shape),
            "train_size": len(data.train_labels), "test_size": len(data.test_labels),
            "validation_size": 0 if data.val_labels is None else len(data.val_labels)}


def test_images_file(data: Dataset) -> bytes:
    """The test split as it was evaluated (after subsetting), compressed: galleries render from it."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=data.test_images.numpy())
    return buffer.getvalue()


def preflight(spec: ExperimentSpec, data: Dataset, device: torch.device | None = None) -> dict[str, ModelAudit]:
    """Build every model once: forward on the dataset's shape, output size, loss compatibility; then
    (given the training device) its cost: MACs, inference latency and size, measured once per model
    before any training starts, so parallel workers cannot distort the timing."""
    audits: dict[str, ModelAudit] = {}
    losses = set(spec.train["loss"])
    for entry in spec.models:
        torch.manual_seed(0)
        model = create_model(entry.ref)
        audits[entry.label] = audit_model(model, data.input_shape, name=entry.label)
        if audits[entry.label].trainable == 0:
            raise ModelError(f"model {entry.label!r} has no trainable parameters: there is nothing to train")
        model.eval()
        try:
            with torch.no_grad():
                output = model(torch.zeros(2, *data.input_shape))
        except Exception as exc:  # the user's forward code: one line, not a traceback
            raise ModelError(f"model {entry.label!r}: forward on a batch of shape (2, "
                             f"{', '.join(map(str, data.input_shape))}) raised {type(exc).__name__}: {exc}") from exc
        expected = f"one tensor of shape (batch, {data.num_classes}) — logits or log-probabilities"
        if not isinstance(output, torch.Tensor):
            raise ModelError(f"model {entry.label!r}: forward returned {describe_output(output)}, expected "
                             f"{expected}; return only the class scores")
        if not output.is_floating_point():
            raise ModelError(f"model {entry.label!r}: forward returned a {output.dtype} tensor, expected {expected}")
        if output.shape != (2, data.num_classes):
            raise ModelError(f"model {entry.label!r}: output shape {tuple(output.shape[1:])}, expected "
                             f"({data.num_classes},) for the {data.num_classes} classes of {data.name}")
        is_log_probs = torch.allclose(output.exp().sum(1), torch.ones(2), atol=1e-4)
        if "nll" in losses and not is_log_probs:
            raise ModelError(f"{spec.source}: key 'train.loss': 'nll' needs log-probabilities, but model "
                             f"{entry.label!r} outputs logits — use 'cross_entropy' or a log-softmax model")
        if device is not None:
            audits[entry.label].cost = _cost(model, data, device, audits[entry.label].mult_adds)
    return audits


def _cost(model: nn.Module, data: Dataset, device: torch.device, mult_adds: int) -> dict[str, Any]:
    """The model's cost, or the one-line reason it could not be measured (it never stops a run)."""
    try:
        return measure_cost(model.to(device), data.input_shape, device, mult_adds or -1).to_dict()
    except (RuntimeError, ValueError, ReportgenError) as exc:
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}


def describe_output(output: Any) -> str:
    """What a forward returned, for an error message: `a tuple of 2 (Tensor (2, 10), Tensor (2, 84))`."""
    if isinstance(output, torch.Tensor):
        return f"Tensor {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        items = ", ".join(describe_output(o) for o in output[:4]) + (", …" if len(output) > 4 else "")
        return f"a {type(output).__name__} of {len(output)} ({items})"
    if isinstance(output, dict):
        return f"a dict with keys {list(output)[:6]}"
    return f"a {type(output).__name__}"


class Executor(Protocol):
    """Where trials run: in this process (LocalExecutor) or elsewhere (reportgen.run.ray_executor).

    An executor calls `runner(trial)` — or the equivalent in a worker, see `run_trial_in_worker` —
    for every trial; the runner writes each trial's results into the run archive.
    """

    def map(self, trials: list[Trial], runner: TrialRunner) -> None: ...


class LocalExecutor:
    """Runs trials in this process, one after another."""

    def map(self, trials: list[Trial], runner: TrialRunner) -> None:
        for trial in trials:
            runner(trial)


def epoch_line(label: str, metrics: EpochMetrics, epochs: int) -> str:
    return (f"{label} epoch {metrics.epoch}/{epochs}: train loss {metrics.train_loss:.4f} "
            f"acc {100 * metrics.train_acc:.2f}% | test loss {metrics.test_loss:.4f} "
            f"acc {100 * metrics.test_acc:.2f}% | {metrics.seconds:.1f} s")


class TrialRunner:
    """Trains one trial on the prepared data and writes everything it produces into the archive.

    A trial already finished in the archive is skipped; one with a checkpoint continues from it.
    """

    def __init__(self, run: RunArchive, data: Dataset, device: torch.device, audits: dict[str, ModelAudit],
                 bar: tqdm, log: Log) -> None:
        self.run, self.data, self.device, self.audits, self.bar, self.log = run, data, device, audits, bar, log
        self.tensors = [t.to(device) for t in (data.train_images, data.train_labels,
                                                 data.test_images, data.test_labels)]
        self.validation = None if data.val_labels is None else (data.val_images.to(device), data.val_labels.to(device))

    def __call__(self, trial: Trial) -> TrainResult | None:
        """Train one trial; an exception marks only this trial failed (with its traceback), the sweep goes on."""
        try:
            return self._train(trial)
        except (ReportgenError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 — a crash inside one trial (e.g. out of memory) must not sink the others
            # Writing the archive raises ArchiveWriteError (a ReportgenError, re-raised above): disk full
            # is the environment's failure, not the trial's, and stops the run.
            self.run.fail_trial(trial.trial_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            self.log(f"error: trial {trial.trial_id} failed ({type(exc).__name__}: {exc}); the others go on")
            return None

    def _train(self, trial: Trial) -> TrainResult | None:
        config = trial.config
        if self._finished(trial):
            return None
        torch.manual_seed(config.seed)  # same init for every model built with this seed
        model = create_model(trial.model.ref).to(self.device)
        optimizer = make_optimizer(config, model.parameters())
        history = self._restore(trial, model, optimizer)

        def on_epoch(epoch: int, metrics: EpochMetrics, *_: Any) -> None:
            history.append(metrics)
            self.run.write_epochs(trial.trial_id, history)
            self.run.save_checkpoint(trial.trial_id, {
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "history": [asdict(h) for h in history], **rng_states()})
            self.bar.write(epoch_line(trial.model.label, metrics, config.epochs))

        train_x, train_y, test_x, test_y = self.tensors
        result = train_model(model, train_x, train_y, test_x, test_y, self.data.mean, self.data.std, config,
                             on_epoch=on_epoch, optimizer=optimizer, history=list(history),
                             on_batch=self.bar.update, validation=self.validation)
        self._finish(trial, model, result)
        return result

    def _finished(self, trial: Trial) -> bool:
        if self.run.trial_status(trial.trial_id) in FINISHED_TRIALS:
            self.bar.update(batches_per_epoch(len(self.data.train_labels), trial.config.batch_size)
                            * trial.config.epochs)
            return True
        return False

    def _register(self, trial: Trial) -> None:
        self.run.start_trial(trial.trial_id, {
            "trial_id": trial.trial_id, "label": trial.model.label, "model": trial.model.ref.target,
            "kwargs": trial.model.ref.kwargs, "base": trial.model.base, "config": asdict(trial.config),
            "audit": self.audits[trial.model.label].to_dict(),
        })

    def _finish(self, trial: Trial, model: nn.Module, result: TrainResult) -> None:
        final, test_y = result.final, self.tensors[3]
        predictions = {"index": list(range(len(test_y))), "label": test_y.cpu().tolist(),
                       "prediction": final.predictions.tolist(),
                       "confidence": [round(c, 5) for c in final.confidences.tolist()]}
        self.run.finish_trial(trial.trial_id, result.status, predictions,
                              {k: v.cpu() for k, v in model.state_dict().items()})
        if result.status == TrialState.DIVERGED:
            self.log(f"warning: {trial.model.label} ({trial.trial_id}) diverged at epoch {len(result.history)}; "
                     "its trial is kept and flagged")

    def _restore(self, trial: Trial, model: nn.Module, optimizer: torch.optim.Optimizer) -> list[EpochMetrics]:
        """Fresh trial: register it. Interrupted trial: load its last complete epoch."""
        checkpoint = self.run.load_checkpoint(trial.trial_id)
        if checkpoint is None:
            self._register(trial)
            return []
        self.run.resume_trial(trial.trial_id)  # e.g. a failed trial retrained from its last epoch
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        restore_rng_states(checkpoint)
        history = [EpochMetrics(**h) for h in checkpoint["history"]]
        self.run.write_epochs(trial.trial_id, history)  # metrics files may be ahead of a torn checkpoint
        self.bar.update(batches_per_epoch(len(self.data.train_labels), trial.config.batch_size) * len(history))
        self.log(f"{trial.model.label}: resuming after epoch {checkpoint['epoch']}")
        return history


def rng_states() -> dict[str, Any]:
    """torch/numpy/python RNG states, in types that torch.load(weights_only=True) accepts.

    Training itself reseeds from (seed, epoch) at every epoch start, which is what makes a resumed
    run bit-identical; the global states are saved so user code that draws from them resumes too.
    """
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch_rng": torch.get_rng_state(), "python_rng": list(random.getstate()[1]),
            "numpy_rng": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": position,
                          "has_gauss": has_gauss, "cached": cached}}


def restore_rng_states(checkpoint: dict[str, Any]) -> None:
    if "torch_rng" in checkpoint:
        torch.set_rng_state(checkpoint["torch_rng"])
    if "python_rng" in checkpoint:
        random.setstate((3, tuple(checkpoint["python_rng"]), None))
    if "numpy_rng" in checkpoint:
        state = checkpoint["numpy_rng"]
        np.random.set_state((state["kind"], state["keys"].numpy().astype(np.uint32), state["position"],
                             state["has_gauss"], state["cached"]))


@functools.lru_cache(maxsize=1)
def _worker_dataset(run_path: str) -> Dataset:
    """A worker process (pool or Ray) runs many trials of one run: decode and verify its data once."""
    run = open_run(run_path)
    spec = run.read("spec")
    return load_recorded_dataset(spec["data"], spec["train"]["seeds"][0], run.read("data")["files"])


def run_trial_in_worker(run_path: str, trial: Trial, device: str, audits: dict[str, ModelAudit],
                        threads: int | None = None) -> str:
    """Everything a worker process needs to run one trial into a shared run folder; returns its status.

    The worker re-reads the data the run recorded (verifying checksums), so a trial trains on exactly
    what a local run would, and resumes from the trial's checkpoint when it is retried.
    """
    run = open_run(run_path)
    data = _worker_dataset(run_path)
    chosen = select_device(device)
    if threads:
        torch.set_num_threads(threads)
    with tqdm(disable=True) as bar:
        TrialRunner(run, data, chosen, audits, bar, log=print)(trial)
    return run.trial_status(trial.trial_id) or TrialState.FAILED.value


def _prepare(spec: ExperimentSpec, data: Dataset) -> tuple[torch.device, dict[str, ModelAudit]]:
    device = select_device(spec.device)
    return device, preflight(spec, data, device)


def _train_all(run: RunArchive, spec: ExperimentSpec, data: Dataset, device: torch.device,
               audits: dict[str, ModelAudit], executor: Executor | None, log: Log) -> RunArchive:
    """Train every trial, then seal the run: complete, partial (some trials failed) or failed.

    A failure of the driver or the environment (disk full while writing a trial's files, Ctrl-C, a
    worker that cannot open the run) ends the run `failed` with the error, keeping every checkpoint,
    so `reportgen run --resume` continues once the cause is fixed. The run is never sealed complete then.
    """
    trials = spec.trials()
    log(f"{len(trials)} trial(s) on {data.name} ({len(data.train_labels)} train / {len(data.test_labels)} "
        f"test images), device {device}, {torch.get_num_threads()} threads")
    total = sum(batches_per_epoch(len(data.train_labels), t.config.batch_size) * t.config.epochs for t in trials)
    resume_hint = f"resume with: reportgen run --resume {run.path}"
    try:
        with tqdm(total=total, unit="batch", desc=run.run_id, dynamic_ncols=True, mininterval=0.5,
                  disable=None) as bar:  # disable=None: no progress bar when stderr is not a terminal
            (executor or LocalExecutor()).map(trials, TrialRunner(run, data, device, audits, bar, log))
        state = run.seal([t.trial_id for t in trials])
    except KeyboardInterrupt:
        _mark_failed(run, "interrupted (Ctrl-C)")
        log(f"interrupted: completed epochs are checkpointed; {resume_hint}")
        raise
    except ReportgenError as exc:  # same type (ModelError, ArchiveWriteError…), message says what became of the run
        _mark_failed(run, str(exc))
        raise _same_kind(exc, f"{exc} — run {run.path} is marked failed and keeps its checkpoints; "
                              f"fix the cause (e.g. free disk space) and {resume_hint}") from exc
    except (OSError, MemoryError) as exc:  # the driver's own environment (processes, files, memory)
        _mark_failed(run, f"{type(exc).__name__}: {exc}")
        raise RunFailedError(f"run {run.path} failed: {type(exc).__name__}: {exc} — it keeps its checkpoints; "
                             f"fix the cause and {resume_hint}") from exc
    except BaseException as exc:
        _mark_failed(run, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        run.unlock()  # written: another process (or a later call in this one) may resume or render it
    status = run.status()
    if state == RunState.FAILED:
        raise RunFailedError(f"{run.path}: every trial failed ({status.get('error', 'no trial finished')}); "
                             f"tracebacks are in trials/*/trial.json — fix the cause and {resume_hint}")
    if state == RunState.PARTIAL:
        log(f"warning: {status['error']} (tracebacks in their trial.json); the run is partial — retrain the "
            f"failed trials with: reportgen run --resume {run.path}")
    return run


def _same_kind(exc: ReportgenError, message: str) -> ReportgenError:
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 — a subclass with another constructor: the generic kind
        return RunFailedError(message)


def _mark_failed(run: RunArchive, error: str) -> None:
    """Best effort: status.json may be exactly what the full disk refuses; it then stays `running`,
    which is resumable too. Checkpoints are never touched here."""
    try:
        run.set_status(RunState.FAILED, error=" ".join(error.split()))
    except (ReportgenError, OSError):
        pass


def run_experiment(spec: ExperimentSpec, runs_root: Path, run_id: str | None = None,
                   executor: Executor | None = None, log: Log = print) -> RunArchive:
    """Run every trial of the spec and return the completed archive.

    Re-running with the run id of an unfinished run continues that run instead.
    """
    if run_id and (Path(runs_root) / validate_run_id(run_id) / "status.json").exists():
        return resume_experiment(Path(runs_root) / run_id, executor, log)
    data = load_dataset(**asdict(spec.data), seed=spec.seeds[0])
    device, audits = _prepare(spec, data)
    executor = executor or LocalExecutor()
    env = environment(device) | {"executor": type(executor).__name__,
                                 "threads_per_trial": getattr(executor, "threads", torch.get_num_threads())}
    run = RunArchive.create(runs_root, run_id, {"spec": spec.to_dict(), "environment": env,
                                                "data": data_record(data)},
                            files={TEST_IMAGES: test_images_file(data)})
    return _train_all(run, spec, data, device, audits, executor, log)


def resume_experiment(path: Path, executor: Executor | None = None, log: Log = print) -> RunArchive:
    """Continue an unfinished run (running, partial or failed) with the archived spec and data: finished
    trials are kept, failed and interrupted ones are trained again (from their last checkpoint if any)."""
    run = open_run(path)
    if run.state() == RunState.COMPLETE and (run.path / "manifest.json").exists():
        raise ArchiveError(f"{run.path}: the run is already complete (render it with `reportgen render`)")
    run.lock()
    try:
        recorded = run.read("spec")
        spec = parse_spec(recorded, str(run.path / "spec.json"))
        data = load_recorded_dataset(recorded["data"], spec.seeds[0], run.read("data")["files"])
        device, audits = _prepare(spec, data)
        finished = sum(run.trial_status(t.trial_id) in FINISHED_TRIALS for t in spec.iter_trials())
        log(f"resuming {run.path} with its archived settings: {finished} of {spec.trial_count()} trial(s) "
            "finished, the others are trained")
        run.reopen()
    except BaseException:
        run.unlock()
        raise
    return _train_all(run, spec, data, device, audits, executor, log)
