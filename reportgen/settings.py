"""Training settings as data: the values a spec may name and one trial's settings (TrainConfig).

Kept free of torch so reading a spec or rendering an archived run does not load the training engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LOSSES = ("cross_entropy", "nll", "bce_with_logits")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]{1,4})?")  # device strings a spec may name (fullmatch)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training trial; units: lr per step, weight_decay as the optimizer's L2 factor."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    seed: int = 0
    augment: str = ""  # train-only augmentation, canonical text of reportgen.data.augment.Augment ("" = none)
    precision: str = "fp32"  # "bf16": forward/loss under bfloat16 autocast (evaluation stays fp32)
