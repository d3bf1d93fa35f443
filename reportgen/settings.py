"""Training settings as data: one trial's settings (TrainConfig) and, on its fields, everything else
needs to know about each setting — what a spec may give, whether it can be swept, how the report
names and orders it, whether it can be a heatmap axis.

The spec's validation and sweep expansion, the report's settings table and comparison columns, the
heatmap axes and the English display names are all derived from these fields: a new setting is one
new field here (plus its Korean name in templates/i18n/ko.json, which a test checks).

Kept free of torch so reading a spec or rendering an archived run does not load the training engine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Optimizer(StrEnum):
    SGD = "sgd"
    ADAM = "adam"
    ADAMW = "adamw"
    RMSPROP = "rmsprop"


class Loss(StrEnum):
    CROSS_ENTROPY = "cross_entropy"
    NLL = "nll"  # the model outputs log-probabilities
    BCE_WITH_LOGITS = "bce_with_logits"  # one-hot targets


class Schedule(StrEnum):
    """How the learning rate moves during training (torch.optim.lr_scheduler does the arithmetic)."""

    NONE = "none"  # constant
    STEP = "step"  # × gamma every step_size epochs (StepLR)
    COSINE = "cosine"  # from lr down to 0 over the epochs, per epoch (CosineAnnealingLR)
    ONECYCLE = "onecycle"  # up to lr and down again over every batch of training (OneCycleLR, max_lr = lr)


class Precision(StrEnum):
    FP32 = "fp32"
    BF16 = "bf16"  # forward/loss under bfloat16 autocast (evaluation stays fp32)


OPTIMIZERS = tuple(Optimizer)
LOSSES = tuple(Loss)
PRECISIONS = tuple(Precision)
SCHEDULES = tuple(Schedule)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]{1,4})?")  # device strings a spec may name (fullmatch)


@dataclass(frozen=True)
class Setting:
    """What the rest of reportgen knows about one TrainConfig field (its `name`)."""

    name: str
    label: str  # English display name; the i18n key is `name`
    column: int  # position in the report's settings table and in comparison.csv
    choices: tuple[str, ...] = ()  # allowed values of a text setting
    low: float | None = None  # inclusive range of a numeric setting
    high: float | None = None
    integer: bool = False
    sweepable: bool = True  # may be a list under [train] (seed has `seeds`, augment its own table)
    axis: int | None = None  # heatmap axis priority, lowest first; None: never an axis
    # (other setting, its values) under which a value other than the default has any effect; a spec that
    # pairs them otherwise is refused rather than silently training without it (momentum under Adam)
    only_with: tuple[str, tuple[str, ...]] | None = None
    # left out of the report's list of shared settings while at its default (a newer option most runs never
    # use: "LR schedule: none, patience: 0" would be noise in every report)
    quiet_default: bool = False


def _setting(default: Any, label: str, column: int, **meta: Any) -> Any:
    return dataclasses.field(default=default, metadata={"setting": dict(label=label, column=column, **meta)})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training trial; units: lr per step, weight_decay as the optimizer's L2 factor.

    Field order is the order a sweep enumerates combinations in (trial ids depend on it): keep it."""

    epochs: int = _setting(10, "Epochs", 0, low=1, high=100_000, integer=True, axis=2)
    batch_size: int = _setting(64, "Batch size", 1, low=1, high=100_000, integer=True, axis=1)
    lr: float = _setting(1e-3, "Learning rate", 3, low=1e-12, high=1e3, axis=0)
    optimizer: str = _setting("adam", "Optimizer", 2, choices=OPTIMIZERS, axis=5)
    momentum: float = _setting(
        0.0, "Momentum", 4, low=0.0, high=0.999, axis=3, only_with=("optimizer", (Optimizer.SGD, Optimizer.RMSPROP))
    )
    weight_decay: float = _setting(0.0, "Weight decay", 5, low=0.0, high=10.0, axis=4)
    loss: str = _setting("cross_entropy", "Loss function", 6, choices=LOSSES, axis=6)
    seed: int = _setting(0, "Seed", 9, low=0, high=2**31 - 1, integer=True, sweepable=False)
    # train-only augmentation, canonical text of reportgen.data.augment.Augment ("" = none)
    augment: str = _setting("", "Augmentation", 7, sweepable=False)
    precision: str = _setting("fp32", "Precision", 8, choices=PRECISIONS)
    schedule: str = _setting("none", "LR schedule", 10, choices=SCHEDULES, axis=7, quiet_default=True)
    step_size: int = _setting(
        1, "LR step (epochs)", 11, low=1, high=100_000, integer=True, only_with=("schedule", (Schedule.STEP,)),
        quiet_default=True,
    )  # fmt: skip
    gamma: float = _setting(
        0.1, "LR decay factor", 12, low=1e-6, high=1.0, only_with=("schedule", (Schedule.STEP,)), quiet_default=True
    )
    # epochs without a better validation accuracy before training stops (0: never); needs [data] validation
    # 0 (the default): no early stopping
    patience: int = _setting(0, "Patience (epochs)", 13, low=0, high=100_000, integer=True, quiet_default=True)


SETTINGS: dict[str, Setting] = {
    f.name: Setting(f.name, **f.metadata["setting"]) for f in dataclasses.fields(TrainConfig)
}
SWEEPABLE = tuple(name for name, s in SETTINGS.items() if s.sweepable)  # in sweep enumeration order
REPORTED = tuple(sorted(SETTINGS, key=lambda name: SETTINGS[name].column))  # report and CSV column order
HEATMAP_AXES = tuple(sorted((n for n, s in SETTINGS.items() if s.axis is not None), key=lambda n: SETTINGS[n].axis))
DISPLAY_NAMES = {name: s.label for name, s in SETTINGS.items()}  # the English catalogue of setting names


def worth_showing(name: str, value: Any, shared: dict[str, Any]) -> bool:
    """Whether a setting every trial shares belongs in the report's list: a quiet setting at its default is
    left out, unless the setting it works with makes it matter (the step size of a step schedule)."""
    setting = SETTINGS[name]
    if not setting.quiet_default or value != getattr(TrainConfig(), name):
        return True
    return setting.only_with is not None and shared.get(setting.only_with[0]) in setting.only_with[1]


def value_order(value: Any) -> tuple[bool, float | str]:
    """Sort key for a setting's values: numbers numerically (32, 64, 128 — not "128, 256, 32, 64"), then text
    alphabetically (booleans count as text: True is not 1 here)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (False, value)
    return (True, str(value))


# What a loss value measures: nll on log-probabilities is cross-entropy (the pre-flight refuses nll on logits),
# so their values compare; BCE over one-hot targets is another quantity.
LOSS_SCALES = {Loss.CROSS_ENTROPY: "cross-entropy", Loss.NLL: "cross-entropy", Loss.BCE_WITH_LOGITS: "binary"}


def mixed_loss_scales(losses: Iterable[str]) -> bool:
    """Whether loss values of these loss functions are on different scales (then compare accuracy)."""
    return len({LOSS_SCALES.get(loss, loss) for loss in losses}) > 1
