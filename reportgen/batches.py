"""What one training batch is made of: its images in the epoch's order, normalised and augmented, and its loss.

Below both training loops — train.py's eager epoch and cuda_graph.py's captured one — so each builds a batch
the same way and neither imports the other's module for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from reportgen.data.augment import Augment
from reportgen.settings import LOSSES, TrainConfig


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent, reproducible seeds per (seed, epoch, stream) for data order and dropout."""
    return (seed * 1_000_003 + epoch * 7_919 + stream) % (2**63 - 1)


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The training order of one epoch: identical for every model trained with this seed."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(derived_seed(seed, epoch, 1)))


def normalize(
    images: torch.Tensor,
    mean: float | Sequence[float],
    std: float | Sequence[float],
    augment: Augment | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 → float in [0, 1] → (augmented, training batches only) → standardised, with one mean and std for
    every channel or (colour images) one per channel."""
    x = images.float().div_(255.0)
    if augment is not None:
        x = augment(x, generator)
    return x.sub_(_per_channel(mean, x)).div_(_per_channel(std, x))


def _per_channel(value: float | Sequence[float], like: torch.Tensor) -> float | torch.Tensor:
    """A float as it is (the grey path's arithmetic stays bit for bit), a list as a (1, C, 1, 1) tensor."""
    if isinstance(value, (int, float)):
        return value
    return torch.tensor(value, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def batch_augmenter(
    config: TrainConfig, epoch: int, device: torch.device
) -> tuple[Augment | None, torch.Generator | None]:
    """The augmentation and its random stream for one epoch (seeded, so resume and reruns match)."""
    if not config.augment:
        return None, None
    generator = torch.Generator(device=device).manual_seed(derived_seed(config.seed, epoch, 3))
    return Augment.from_text(config.augment), generator


def compute_loss(name: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    if name == "cross_entropy":
        return F.cross_entropy(output, target, reduction=reduction)
    if name == "nll":
        return F.nll_loss(output, target, reduction=reduction)
    if name == "bce_with_logits":  # one-hot targets; averaged over classes so it is per sample
        one_hot = F.one_hot(target, output.shape[1]).to(output.dtype)
        per_sample = F.binary_cross_entropy_with_logits(output, one_hot, reduction="none").mean(1)
        if reduction == "none":
            return per_sample
        return per_sample.mean() if reduction == "mean" else per_sample.sum()
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
