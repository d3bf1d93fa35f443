"""One trial: the picklable job that says what to train and where, and the training of one job into the run
folder, with per-epoch checkpoints and the RNG states that make a resumed trial bit-identical."""

from __future__ import annotations

import dataclasses
import random
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from reportgen import cpu_kernels
from reportgen.data.datasets import Dataset, load_recorded_dataset
from reportgen.errors import ReportgenError
from reportgen.experiment import Trial, recorded_data
from reportgen.measure.activity import audit_with_training, record_training_modules
from reportgen.measure.params import ModelAudit
from reportgen.models.registry import create_model
from reportgen.run.archive_writing import RunArchive
from reportgen.states import FINISHED_TRIALS, TrialState
from reportgen.train import (
    EarlyStopping,
    EpochMetrics,
    TrainResult,
    apply_layout,
    batches_per_epoch,
    choose_layout,
    make_optimizer,
    make_scheduler,
    optimizer_kernel,
    train_model,
)


@dataclass(frozen=True)
class RecordedData:
    """How any process finds a run's data: the spec's data settings, the subset seed and the checksums of
    the files the run recorded (a file that changed since is refused)."""

    settings: dict[str, Any]
    seed: int
    files: dict[str, dict[str, str]]

    @classmethod
    def of(cls, run: RunArchive) -> RecordedData:
        spec = run.resolved_spec()  # data paths archived relative to the run folder
        return cls(*recorded_data(spec), run.read("data")["files"])

    def load(self) -> Dataset:
        return load_recorded_dataset(self.settings, self.seed, self.files)


@dataclass(frozen=True)
class TrialJob:
    """Everything needed to train one trial anywhere, and nothing that only lives in the driver.

    threads: torch threads while training (None: leave this process's setting). audit: the model's
    parameter audit and cost, measured once by the driver and recorded in trial.json.
    """

    trial: Trial
    run_path: str  # absolute: workers may run in another working directory, or on another machine
    data: RecordedData
    device: str
    threads: int | None
    audit: ModelAudit
    batches: int  # training batches over every epoch: the progress bar's share of this trial

    @property
    def work(self) -> int:
        """How long the trial trains, relatively: mult-adds per image × epochs."""
        return self.audit.mult_adds * self.trial.config.epochs


class TrialOutput(Protocol):
    """Where a training trial reports: the driver's progress bar and log, or a worker's stdout."""

    def batches(self, count: int) -> None:
        """`count` more training batches are done."""

    def epoch(self, line: str) -> None:
        """One finished epoch's metrics, as a line."""

    def log(self, line: str) -> None:
        """A warning or error about the trial."""


class PrintedOutput:
    """A worker's output: epoch lines and warnings on its stdout (the terminal, or a Ray worker log)."""

    def batches(self, count: int) -> None:
        pass  # the driver counts finished trials instead

    def epoch(self, line: str) -> None:
        print(line, flush=True)

    def log(self, line: str) -> None:
        print(line, flush=True)


def fails_only_its_trial(error: BaseException) -> bool:
    """The one failure policy of every executor.

    An error of the trial itself (its model raised, it ran out of memory, its worker process died) fails
    only that trial, recorded with its traceback, and the sweep goes on. A ReportgenError says the run
    itself cannot go on (its folder cannot be written — disk full —, its data or a model cannot be
    loaded where the trial runs), and Ctrl-C is the user's: those stop the run, which stays resumable.
    """
    return isinstance(error, Exception) and not isinstance(error, ReportgenError)


def record_failure(run: RunArchive, trial_id: str, error: str, trace: str | None = None) -> str:
    """Mark a trial failed (unless it finished after all, e.g. its worker died after writing it); its status."""
    if run.trial_status(trial_id) not in FINISHED_TRIALS:
        run.fail_trial(trial_id, error, trace)
    return run.trial_status(trial_id) or TrialState.FAILED.value


def on_device(data: Dataset, device: torch.device) -> Dataset:
    """The dataset with every split on the training device (the same object on CPU)."""
    moved = {
        name: getattr(data, name).to(device)
        for name in ("train_images", "train_labels", "test_images", "test_labels", "val_images", "val_labels")
        if getattr(data, name) is not None
    }
    return dataclasses.replace(data, **moved)


def run_trial(job: TrialJob, run: RunArchive, load_data: Callable[[], Dataset], output: TrialOutput) -> str:
    """Train one trial into the run folder under the one failure policy; returns its status.

    `load_data` gives the run's data on the job's device (loaded once per process by the caller). A
    trial's own failure (see `fails_only_its_trial`) is recorded in its trial.json and returned as
    `failed`; anything else is raised. A trial that is already finished is left as it is: a Ray task
    retried after its worker died may find its trial written.
    """
    trial = job.trial
    try:
        if run.trial_status(trial.trial_id) not in FINISHED_TRIALS:
            _train(job, run, load_data(), output)
    except Exception as exc:
        if not fails_only_its_trial(exc):
            raise
        output.log(f"error: trial {trial.trial_id} failed ({type(exc).__name__}: {exc}); the others go on")
        return record_failure(run, trial.trial_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return run.trial_status(trial.trial_id) or TrialState.FAILED.value


def _train(job: TrialJob, run: RunArchive, data: Dataset, output: TrialOutput) -> None:
    trial, config = job.trial, job.trial.config
    torch.manual_seed(config.seed)  # same init for every model built with this seed
    model = create_model(trial.model.ref, input_shape=data.input_shape).to(job.device)
    device = torch.device(job.device)
    layout = choose_layout(model, device)  # before the optimizer: it holds the parameters
    apply_layout(model, layout)
    kernels = cpu_kernels.choose(model, device)
    # what chose the kernels, archived beside the precision and threads: the layout, the optimizer's kernel
    # (fused or loop) and the CPU kernel levers (e.g. batchnorm_kernel: rows or torch), each other low-order bits
    chosen = {"layout": layout, "optimizer_kernel": optimizer_kernel(config), **kernels}
    optimizer = make_optimizer(config, model.parameters())
    # made before the checkpoint is loaded: a schedule sets the optimizer's LR, which the checkpoint restores
    schedule = make_scheduler(config, optimizer, batches_per_epoch(len(data.train_labels), config.batch_size))
    validation = None if data.val_labels is None else (data.val_images, data.val_labels)
    early = EarlyStopping(config.patience) if config.patience and validation is not None else None
    history = _restore(job, run, model, optimizer, output, {"schedule": schedule, "early_stopping": early}, chosen)

    def on_epoch(epoch: int, metrics: EpochMetrics, *_: Any) -> None:
        history.append(metrics)
        run.write_epochs(trial.trial_id, history)
        run.save_checkpoint(
            trial.trial_id,
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                **{
                    name: part.state_dict()
                    for name, part in (("schedule", schedule), ("early_stopping", early))
                    if part
                },
                "history": [asdict(h) for h in history],
                **rng_states(),
            },
        )
        output.epoch(epoch_line(trial.model.label, metrics, config.epochs))

    ran = record_training_modules(model)  # which layers acted on the training batches: for the report's verdicts
    result = train_model(
        model,
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
        data.mean,
        data.std,
        config,
        on_epoch=on_epoch,
        optimizer=optimizer,
        history=list(history),
        on_batch=output.batches,
        validation=validation,
        schedule=schedule,
        early=early,
        kernels=kernels,
    )
    extra = _early_record(early, result, config.epochs) | result.step_mode  # step_mode: how the steps ran, why
    _finish(job, run, model, result, data.test_labels, output, ran, extra)


def _early_record(early: EarlyStopping | None, result: TrainResult, epochs: int) -> dict[str, Any]:
    """The `early_stopping` record of trial.json: the patience, the epoch training stopped after (None: it ran every
    epoch) and the epoch whose weights were kept — what the report's epoch table marks."""
    if early is None:
        return {}
    trained = len(result.history)
    stopped = trained if trained < epochs and result.status != TrialState.DIVERGED else None
    return {"early_stopping": {"patience": early.patience, "stopped_after": stopped, "kept_epoch": early.best_epoch}}


def _restore(
    job: TrialJob,
    run: RunArchive,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    output: TrialOutput,
    parts: dict[str, Any],
    chosen: dict[str, str],
) -> list[EpochMetrics]:
    """Fresh trial: register it. Interrupted trial: load its last complete epoch, and the state of `parts`
    (the LR schedule, the early stopping; None where not used) that its checkpoint holds. `chosen`: what chose
    the kernels, for trial.json."""
    trial = job.trial
    checkpoint = run.load_checkpoint(trial.trial_id)
    if checkpoint is None:
        run.start_trial(
            trial.trial_id,
            {
                "trial_id": trial.trial_id,
                "label": trial.model.label,
                "model": trial.model.ref.target,
                "kwargs": trial.model.ref.kwargs,
                "base": trial.model.base,
                "config": asdict(trial.config),
                **chosen,
                "audit": job.audit.to_dict(),
            },
        )
        return []
    run.resume_trial(trial.trial_id)  # e.g. a failed trial retrained from its last epoch
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    for name, part in parts.items():
        if part is not None and name in checkpoint:
            part.load_state_dict(checkpoint[name])
    restore_rng_states(checkpoint)
    history = [EpochMetrics(**h) for h in checkpoint["history"]]
    run.write_epochs(trial.trial_id, history)  # metrics files may be ahead of a torn checkpoint
    output.batches(job.batches // trial.config.epochs * len(history))
    output.log(f"{trial.model.label}: resuming after epoch {checkpoint['epoch']}")
    return history


def _finish(
    job: TrialJob,
    run: RunArchive,
    model: nn.Module,
    result: TrainResult,
    test_labels: torch.Tensor,
    output: TrialOutput,
    ran: dict[str, dict[str, Any]],
    extra: dict[str, Any],
) -> None:
    trial, final = job.trial, result.final
    predictions = {
        "index": list(range(len(test_labels))),
        "label": test_labels.cpu().tolist(),
        "prediction": final.predictions.tolist(),
        "confidence": [round(c, 5) for c in final.confidences.tolist()],
    }
    weights = {k: v.cpu() for k, v in model.state_dict().items()}
    audit = audit_with_training(run.trial(trial.trial_id)["audit"], ran)  # as archived, plus what trained
    run.finish_trial(trial.trial_id, result.status, predictions, weights, audit=audit, **extra)
    if result.status == TrialState.DIVERGED:
        output.log(
            f"warning: {trial.model.label} ({trial.trial_id}) diverged at epoch {len(result.history)}; "
            "its trial is kept and flagged"
        )


def trial_batches(trial: Trial, train_size: int) -> int:
    """Training batches of a trial over all its epochs."""
    return batches_per_epoch(train_size, trial.config.batch_size) * trial.config.epochs


def epoch_line(label: str, metrics: EpochMetrics, epochs: int) -> str:
    return (
        f"{label} epoch {metrics.epoch}/{epochs}: train loss {metrics.train_loss:.4f} "
        f"acc {100 * metrics.train_acc:.2f}% | test loss {metrics.test_loss:.4f} "
        f"acc {100 * metrics.test_acc:.2f}% | {metrics.seconds:.1f} s"
    )


def rng_states() -> dict[str, Any]:
    """torch/numpy/python RNG states, in types that torch.load(weights_only=True) accepts.

    Training itself reseeds from (seed, epoch) at every epoch start, which is what makes a resumed
    run bit-identical; the global states are saved so user code that draws from them resumes too.
    """
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch_rng": torch.get_rng_state(),
        "python_rng": list(random.getstate()[1]),
        "numpy_rng": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": position,
            "has_gauss": has_gauss,
            "cached": cached,
        },
    }


def restore_rng_states(checkpoint: dict[str, Any]) -> None:
    if "torch_rng" in checkpoint:
        torch.set_rng_state(checkpoint["torch_rng"])
    if "python_rng" in checkpoint:
        random.setstate((3, tuple(checkpoint["python_rng"]), None))
    if "numpy_rng" in checkpoint:
        state = checkpoint["numpy_rng"]
        np.random.set_state(
            (
                state["kind"],
                state["keys"].numpy().astype(np.uint32),
                state["position"],
                state["has_gauss"],
                state["cached"],
            )
        )
