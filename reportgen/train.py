"""Training engine: data as uint8 tensors on the device, one permutation per epoch, no DataLoader.

Every source of randomness is derived from (seed, epoch), so two models trained with the same
seed see the same batches in the same order, and a run resumed at an epoch boundary continues
exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen import cpu_kernels, cuda_graph, stopping
from reportgen.batches import (
    batch_augmenter,
    compute_loss,
    derived_seed,
    epoch_permutation,
    normalize,
)
from reportgen.errors import SpecError
from reportgen.freed_memory import keep_freed_memory
from reportgen.optimizer_step import DirectStep
from reportgen.settings import (  # noqa: F401 (re-exported)
    DEVICE_PATTERN,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    Schedule,
    TrainConfig,
)
from reportgen.states import TrialState

# Images per forward pass when evaluating, chosen for speed. On the CPU (`benchmarks/kernel_levers.py`, one
# thread) a LeNet-5 pass over the 10,000 test images took 0.67-0.71 s in batches of 2,000 and 0.35 s in
# batches of 250: a 2,000-image activation (37 MB) does not stay in the cache. A GPU wants large batches: it
# is bound by kernel launches. Batches of 64 images or more gave every figure bit for bit alike here (the
# loss is summed exactly); a smaller one can take other kernels and move a confidence in the 8th digit, so
# 250 divides the 10,000-image test sets of MNIST and Fashion-MNIST: no small last batch.
EVAL_BATCH = {"cpu": 250, "cuda": 2000}
DIVERGED_LOSS_FACTOR = 100  # a training loss 100× the chance-level loss ln(classes) counts as diverged


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float
    val_loss: float | None = None  # only with a validation split carved from the training data
    val_acc: float | None = None
    lr: float | None = None  # the learning rate at the epoch's first batch (a schedule moves it)


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    predictions: torch.Tensor  # int64 (N,)
    confidences: torch.Tensor  # float32 (N,), softmax probability of the predicted class


@dataclass
class TrainResult:
    history: list[EpochMetrics] = field(default_factory=list)
    status: TrialState = TrialState.COMPLETE  # or DIVERGED
    final: Evaluation | None = None
    step_mode: dict[str, str] = field(default_factory=dict)  # cuda_graph.StepMode.record(): trial.json's


class EarlyStopping:
    """`patience` epochs without a better validation accuracy stop training; the best epoch's weights are
    the ones kept. Its state goes into every checkpoint, so a resumed trial stops where it would have."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_epoch, self.best_acc = 0, -math.inf
        self.best_weights: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_acc: float | None, model: nn.Module) -> None:
        if val_acc is not None and val_acc > self.best_acc:  # ties keep the earlier epoch
            self.best_epoch, self.best_acc = epoch, val_acc
            self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def should_stop(self, epoch: int) -> bool:
        return self.best_epoch > 0 and epoch - self.best_epoch >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        """Load the best epoch's weights into `model`."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "best_acc": self.best_acc, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_epoch, self.best_acc = state["best_epoch"], state["best_acc"]
        self.best_weights = state["best_weights"]


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule of `config` (None: constant), from torch's own schedulers. Step and
    cosine move once per epoch, one-cycle once per batch (see `steps_per_batch`)."""
    from torch.optim import lr_scheduler

    if config.schedule == Schedule.STEP:
        return lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == Schedule.COSINE:
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == Schedule.ONECYCLE:
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    return None


def steps_per_batch(config: TrainConfig) -> bool:
    """Whether the schedule steps after every batch (one-cycle) rather than after every epoch."""
    return config.schedule == Schedule.ONECYCLE


def resolved_device(requested: str) -> str:
    """The devices `requested` can mean on this machine: `auto` is "cuda" where CUDA is present (the run then
    measures which of the two trains faster: run/device_choice.py, the one place a run's device is chosen),
    else "cpu"; anything else as it is, checked."""
    if not isinstance(requested, str) or not DEVICE_PATTERN.fullmatch(requested):
        raise SpecError(f"device {requested!r}: expected auto, cpu, cuda or cuda:N")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def select_device(requested: str = "auto") -> torch.device:
    """`auto` picks CUDA when present; on the CPU the process trains with `choose_threads()` threads and keeps
    its freed memory for reuse (freed_memory.py).

    A device this machine does not have is refused here, before any run folder exists."""
    device = torch.device(resolved_device(requested))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SpecError(
                f"device {requested!r}: CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        if (device.index or 0) >= count:
            names = "cuda:0" if count == 1 else f"cuda:0 … cuda:{count - 1}"
            raise SpecError(f"device {requested!r}: this machine has {count} CUDA device(s) ({names})")
        # cuDNN may pick kernels that add in a varying order: measured on an H200 (benchmarks/repeatability.py),
        # two trainings from one seed differed by up to 0.06 in a weight after one epoch; with deterministic
        # kernels they were identical and no slower. Ops with no deterministic CUDA kernel at all (the backward
        # of adaptive pooling, scatter-add) can still differ: docs/speed.md says so.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    if device.type == "cpu":
        torch.set_num_threads(choose_threads())
        keep_freed_memory()  # a training step's freed tensors are reused, not page-faulted in again
    return device


CHANNELS_LAST, CONTIGUOUS = "channels_last", "contiguous"


def choose_layout(model: nn.Module, device: torch.device) -> str:
    """The memory layout a model trains in: channels_last for a convolutional model on the CPU, where
    oneDNN's NHWC convolutions are faster for these small layers (LeNet-5, one thread, 6,000 images per
    epoch: 1.92-2.61 s vs 2.87-3.02 s contiguous, benchmarks/train_speed.py's layout A/B in docs/speed.md);
    contiguous otherwise. Decided from the model and the device alone — never the machine's load — so one
    spec on one machine trains the same weights every time; the archive records it (trial.json `layout`)."""
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return CHANNELS_LAST if convolutional and device.type == "cpu" else CONTIGUOUS


def apply_layout(model: nn.Module, layout: str) -> nn.Module:
    """The model with its 4-d parameters and buffers in `layout` (the same module, changed in place)."""
    return model.to(memory_format=torch.channels_last) if layout == CHANNELS_LAST else model


def choose_threads() -> int:
    """Torch threads of one process training on the CPU: one.

    Why one, measured by benchmarks/train_speed.py on a 2-core machine shared with other work:
    - the thread count changes the low-order bits of the trained weights (the benchmark's `identical`
      column), so it cannot follow the load ("idle cores at start") without one spec training different
      numbers on a busy and a quiet machine; one thread gives the same numbers whatever the core count,
      and the same as a worker of a parallel sweep (ProcessExecutor trains with one thread each);
    - two threads beside other busy processes collapse (OpenMP threads spin waiting for a descheduled
      sibling: LeNet-5 on 3,000 images took 1.3–12.6 s vs 0.39 s with one thread); one thread slows in
      proportion to the share of a core it gets (0.39 → 0.83 s beside one busy process);
    - on a quiet machine a sweep gets its parallelism from worker processes, not threads."""
    return 1


# Optimizers whose update runs as one fused kernel over all parameters, on the CPU and CUDA alike (torch's
# `fused=True`). One fused Adam step of LeNet-5 + BN + Dropout takes 0.23 ms against 0.99 ms for torch's
# default per-parameter loop (benchmarks/kernel_levers.py, one thread): 5-9% of a step of these small models.
# It rounds differently from the loop, so the weights' low-order bits differ from versions before
# 2026-12-07 (docs/speed.md, "The rule for a lever"); trial.json records `optimizer_kernel`.
FUSED_OPTIMIZERS = ("adam", "adamw", "sgd")


def optimizer_kernel(config: TrainConfig) -> str:
    """`fused` or `loop`: how the optimizer's update runs, decided from the settings alone (so it repeats)."""
    return "fused" if config.optimizer in FUSED_OPTIMIZERS else "loop"


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    fused = {"fused": True} if optimizer_kernel(config) == "fused" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **fused
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")


def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float, loss: str
) -> Evaluation:
    """Whole-split evaluation in batches, keeping every prediction for the galleries.

    The loss is the exact sum (math.fsum) of the per-sample losses, so batches of 64 images or more give every
    figure alike (see EVAL_BATCH)."""
    was_training = model.training
    model.eval()
    size = EVAL_BATCH.get(images.device.type, EVAL_BATCH["cuda"])  # another accelerator: as a GPU
    losses, predictions, confidences = [], [], []
    try:
        with torch.inference_mode():
            for start in range(0, len(labels), size):
                x = normalize(images[start : start + size], mean, std)
                y = labels[start : start + size]
                output = model(x).float()
                losses.append(compute_loss(loss, output, y, reduction="none"))
                probs = output.exp() if loss == "nll" else output.softmax(1)
                confidence, predicted = probs.max(1)
                predictions.append(predicted)
                confidences.append(confidence)
    finally:
        model.train(was_training)
    predicted = torch.cat(predictions)
    return Evaluation(
        math.fsum(torch.cat(losses).double().cpu().tolist()) / len(labels),
        float((predicted == labels).float().mean()),
        predicted.cpu(),
        torch.cat(confidences).cpu(),
    )


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: float,
    std: float,
    config: TrainConfig,
    epoch: int,
    on_batch: Callable[[int], None] | None = None,
    batch_schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> tuple[float, float]:
    """One pass over the training split; returns (mean loss, accuracy). Syncs with the device once.
    `batch_schedule`: a learning-rate schedule stepped after every batch (one-cycle)."""
    model.train()
    torch.manual_seed(derived_seed(config.seed, epoch, 2))  # dropout masks
    order = epoch_permutation(config.seed, epoch, len(labels)).to(images.device)
    augment, generator = batch_augmenter(config, epoch, images.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    update = DirectStep(optimizer)  # optimizer.zero_grad and .step, bit for bit, without torch's wrapping
    for start in range(0, len(order), config.batch_size):
        index = order[start : start + config.batch_size]
        x, y = normalize(images[index], mean, std, augment, generator), labels[index]
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            output = model(x)
            loss = compute_loss(config.loss, output.float(), y)
        update.zero_grad()
        loss.backward()
        update.step()
        if batch_schedule is not None:
            batch_schedule.step()
        loss_sum += loss.detach() * len(index)
        correct += (output.detach().argmax(1) == y).sum()
        if on_batch is not None:
            on_batch(1)
        stopping.check()  # a Ctrl-C swallowed where it landed stops the training here (reportgen/stopping.py)
    return float(loss_sum) / len(labels), int(correct) / len(labels)


def is_diverged(train_loss: float, num_classes: int) -> bool:
    """NaN/inf, or exploded far beyond what an untrained model scores (ln(classes) for cross-entropy)."""
    return not math.isfinite(train_loss) or train_loss > DIVERGED_LOSS_FACTOR * math.log(max(num_classes, 2))


def batches_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


EpochCallback = Callable[[int, EpochMetrics, nn.Module, torch.optim.Optimizer], None]


def train_model(
    model: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    mean: float,
    std: float,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    history: list[EpochMetrics] | None = None,
    on_batch: Callable[[int], None] | None = None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    early: EarlyStopping | None = None,
    kernels: dict[str, str] | None = None,
) -> TrainResult:
    """Train for config.epochs, starting after `history` (for resume); stops early if the loss diverges, or
    when `early` (with a validation split) sees no better validation accuracy for its patience, restoring the
    best epoch's weights. `schedule` (make_scheduler's, restored with the optimizer on resume) moves the LR.
    `kernels`: the CPU kernel levers to train with (cpu_kernels.choose's record; None: chosen here)."""
    optimizer = optimizer or make_optimizer(config, model.parameters())
    graphed, mode = cuda_graph.graphed_epochs(model, optimizer, config, train_images, schedule)
    result = TrainResult(history=list(history or []), step_mode=mode.record())
    run_epoch = graphed or train_epoch  # a CUDA graph's replays where decide() allows, else eager
    per_batch = schedule if steps_per_batch(config) else None
    # the CPU kernel levers (cpu_kernels), on the model while it trains and evaluates, off when it returns
    kernels = cpu_kernels.choose(model, train_images.device) if kernels is None else kernels
    with cpu_kernels.installed(model, kernels):
        for epoch in range(len(result.history) + 1, config.epochs + 1):
            if early is not None and early.should_stop(epoch - 1):
                break
            started, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            train_loss, train_acc = run_epoch(
                model, optimizer, train_images, train_labels, mean, std, config, epoch, on_batch, per_batch
            )
            if schedule is not None and per_batch is None:
                schedule.step()
            test = evaluate(model, test_images, test_labels, mean, std, config.loss)
            val = evaluate(model, *validation, mean, std, config.loss) if validation is not None else None
            metrics = EpochMetrics(
                epoch,
                train_loss,
                train_acc,
                test.loss,
                test.accuracy,
                time.perf_counter() - started,
                val.loss if val else None,
                val.accuracy if val else None,
                lr,
            )
            result.history.append(metrics)
            result.final = test
            if early is not None:
                early.update(epoch, metrics.val_acc, model)
            if on_epoch is not None:
                on_epoch(epoch, metrics, model, optimizer)
            if is_diverged(train_loss, int(train_labels.max()) + 1):
                result.status = TrialState.DIVERGED
                break
    if early is not None and result.status != TrialState.DIVERGED and early.best_epoch not in (0, len(result.history)):
        early.restore_best(model)
        result.final = None  # evaluated below, with the best epoch's weights
    if result.final is None:  # resumed after the last epoch, or the best weights restored: evaluate them
        result.final = evaluate(model, test_images, test_labels, mean, std, config.loss)
    return result
