"""The training step as one CUDA graph: a replay per full batch instead of ~50 kernel launches from Python.

Why: on an H200 an epoch of LeNet-5 at batch 64 spent ≈ 3.5 ms per step launching small kernels, with the GPU
idle (docs/speed.md). A captured step — forward, loss, backward, the optimizer's step and the epoch's loss and
accuracy sums — is replayed with one launch, on static input and target buffers.

How an epoch keeps train.train_epoch's semantics: the same permutation, dropout seed and augmentation stream
per (seed, epoch); each full batch is normalised (and augmented) outside the graph and copied into the static
input; the short last batch (60,000 = 937 × 64 + 32) trains eagerly through the same step function, so every
training image is used once per epoch.

Numbers: the optimizer runs with `capturable=True` (its step count and bias corrections live on the GPU), which
changes low-order bits against the eager engine, so a trial records which mode trained it (trial.json
`step_mode`, `step_mode_reason`). The mode is decided from the model, the settings and the device (`decide`,
pure), never from the machine's load. Capturing needs warm-up steps; their changes to the weights, buffers and
optimizer state are undone in place before the first real batch, so a run resumed from a checkpoint (which
captures again) trains bit-identically to an uninterrupted one.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reportgen import stopping
from reportgen.batches import batch_augmenter, compute_loss, derived_seed, epoch_permutation, normalize
from reportgen.settings import Precision, Schedule, TrainConfig

CUDA_GRAPH, EAGER = "cuda_graph", "eager"
NOT_CUDA = "not CUDA"
BUILTIN_MODELS = "reportgen.models."  # the module of every built-in model class
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch's whole-network example does


@dataclass(frozen=True)
class StepMode:
    """How a trial's training steps ran, and why: what trial.json records."""

    mode: str  # CUDA_GRAPH or EAGER
    reason: str

    def record(self) -> dict[str, str]:
        return {"step_mode": self.mode, "step_mode_reason": self.reason}


def decide(device_type: str, config: TrainConfig, model_module: str, train_size: int) -> StepMode:
    """Whether a trial's steps may be captured, from its device, settings and model alone (no GPU needed).

    model_module: the module of the model's class. Only the built-in models are captured: a graph replays the
    kernels it recorded, so a user's forward whose Python decides per call (a counter, a random branch, a
    shape check on values) would silently replay its first decision."""
    if device_type != "cuda":
        return StepMode(EAGER, NOT_CUDA)
    if config.precision != Precision.FP32:
        return StepMode(EAGER, f"precision {config.precision}: autocast is not captured")
    if config.schedule != Schedule.NONE:
        return StepMode(EAGER, f"schedule {config.schedule}: the learning rate would be frozen in the graph")
    if not model_module.startswith(BUILTIN_MODELS):
        return StepMode(EAGER, "not a built-in model: its forward may decide in Python per call")
    if train_size < config.batch_size:
        return StepMode(EAGER, f"no full batch: {train_size} training images, batch size {config.batch_size}")
    return StepMode(CUDA_GRAPH, f"built-in model, full batches of {config.batch_size}, fp32, constant learning rate")


def step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, loss: str,
         sums: tuple[torch.Tensor, torch.Tensor]) -> None:  # fmt: skip
    """One training step as train.train_epoch takes it, adding the batch's loss and correct count to `sums`:
    what the graph records, and what the short last batch runs eagerly."""

    output = model(x)
    batch_loss = compute_loss(loss, output.float(), y)
    optimizer.zero_grad(set_to_none=True)
    batch_loss.backward()
    optimizer.step()
    loss_sum, correct = sums
    loss_sum += batch_loss.detach() * len(y)
    correct += (output.detach().argmax(1) == y).sum()


class GraphedSteps:
    """A model's training step captured once; `train_epoch` has train.train_epoch's signature and result."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, images: torch.Tensor):
        self.model, self.optimizer, self.config = model, optimizer, config
        device = images.device
        self.x = torch.zeros((config.batch_size, *images.shape[1:]), device=device)
        self.y = torch.zeros(config.batch_size, dtype=torch.int64, device=device)
        self.sums = (
            torch.zeros((), dtype=torch.float64, device=device),
            torch.zeros((), dtype=torch.int64, device=device),
        )
        self._capture()

    def _capture(self) -> None:
        self.graph = torch.cuda.CUDAGraph()
        saved = snapshot(self.model, self.optimizer)
        make_capturable(self.optimizer)
        self.model.train()  # the graph records the training forward: dropout on, BatchNorm on batch statistics
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):  # creates the gradients and the optimizer state the graph will use
                step(self.model, self.optimizer, self.x, self.y, self.config.loss, self.sums)
        torch.cuda.current_stream().wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients it writes
        with torch.cuda.graph(self.graph):
            step(self.model, self.optimizer, self.x, self.y, self.config.loss, self.sums)
        restore_in_place(self.model, self.optimizer, saved)

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One full batch: its inputs into the static buffers, then the recorded step."""
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()

    def train_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: float,
        std: float,
        config: TrainConfig,
        epoch: int,
        on_batch: Callable[[int], None] | None = None,
        batch_schedule: Any = None,
    ) -> tuple[float, float]:
        """train.train_epoch with full batches replayed; the short last batch eagerly."""

        if model is not self.model or optimizer is not self.optimizer or batch_schedule is not None:
            raise ValueError("a graphed epoch trains the model and optimizer it captured, without a batch schedule")
        model.train()
        torch.manual_seed(derived_seed(config.seed, epoch, 2))  # dropout masks: the graph reads this generator
        order = epoch_permutation(config.seed, epoch, len(labels)).to(images.device)
        augment, generator = batch_augmenter(config, epoch, images.device)
        for total in self.sums:
            total.zero_()
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            x, y = normalize(images[index], mean, std, augment, generator), labels[index]
            if len(index) == config.batch_size:
                self.replay(x, y)
            else:
                step(model, optimizer, x, y, config.loss, self.sums)
            if on_batch is not None:
                on_batch(1)
            stopping.check()
        return float(self.sums[0]) / len(labels), int(self.sums[1]) / len(labels)


def graphed_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    images: torch.Tensor,
    schedule: Any = None,
) -> tuple[Callable[..., tuple[float, float]] | None, StepMode]:
    """The epoch function for train.train_model — a GraphedSteps' when `decide` allows and the capture works,
    else None (train.train_epoch) — and the mode to record. Captures only behind a CUDA device."""
    module = type(model).__module__
    mode = decide(images.device.type, config, module, len(images))
    if schedule is not None and mode.mode == CUDA_GRAPH:  # a schedule object without config.schedule: not ours
        mode = StepMode(EAGER, "a learning-rate schedule was given")
    if mode.mode != CUDA_GRAPH:
        return None, mode
    model_state, optimizer_state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    try:
        return GraphedSteps(model, optimizer, config, images).train_epoch, mode
    except RuntimeError as exc:  # an op that cannot be captured: train eagerly, as if never tried
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)  # its state and flags as they were (a fresh one: empty)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        first = " ".join(str(exc).split())[:200]
        return None, StepMode(EAGER, f"capture failed: {type(exc).__name__}: {first} ({where.name})")


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Let `optimizer` step inside a graph: its step counts on the parameters' device (Adam, AdamW, RMSprop
    have the flag; SGD keeps no count and needs none)."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True
    for param, state in optimizer.state.items():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"] = state["step"].to(dtype=torch.float32, device=param.device)
    # the warm-up and each epoch's short last batch step it outside a graph on purpose: torch's warning about
    # that (once per optimizer) would be noise
    optimizer._warned_capturable_if_run_uncaptured = True


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Copies of everything a warm-up step changes: the model's weights and buffers, the optimizer's state."""
    state = optimizer.state.items()
    return {
        "tensors": [t.detach().clone() for t in (*model.parameters(), *model.buffers())],
        "state": {p: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)} for p, s in state},
    }


def restore_in_place(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Undo the warm-up into the very tensors the graph reads and writes. Optimizer state the warm-up created
    (a fresh optimizer) goes back to zeros, which is what every optimizer here starts from: Adam's and
    RMSprop's step, averages and buffers; SGD's momentum buffer, whose first step from zeros
    (0 × momentum + gradient) is the gradient, as its eager first step copies it."""
    with torch.no_grad():
        for tensor, copy_ in zip((*model.parameters(), *model.buffers()), saved["tensors"]):
            tensor.copy_(copy_)
        for param, state in optimizer.state.items():
            before = saved["state"].get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and key in before:
                    value.copy_(before[key])
                elif isinstance(value, torch.Tensor):
                    value.zero_()
