"""Other CNNs from the course reports: seed 003's 1x1-convolution net and seed 004's three CNNs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reportgen.models.registry import register_model
from reportgen.models.shapes import GREY, conv_arguments, sides


class Conv1x1Net(nn.Module):
    """Seed 003: conv 120@5x5 → pool → 1x1 conv 6 → conv 150@3x3 → pool → 1x1 conv 12 → 300-120-84-10."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int | Sequence[int] = 28) -> None:
        super().__init__()
        height, width = sides(image_size, lambda side: ((side - 4) // 2 - 2) // 2)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 120, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(120, 6, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(6, 150, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(150, 12, kernel_size=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(12 * height * width, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TwoConvNet(nn.Module):
    """Seed 004 Model1/Model2: conv 10@5x5 → pool → conv 20@5x5 (→ Dropout2d) → pool → 320-50-classes."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        conv_dropout: float = 0.0,
        image_size: int | Sequence[int] = 28,
    ) -> None:
        super().__init__()
        height, width = sides(image_size, lambda side: ((side - 4) // 2 - 4) // 2)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.Dropout2d(conv_dropout),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(20 * height * width, 50), nn.ReLU(), nn.Linear(50, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ThreeConvNet(nn.Module):
    """Seed 004 Model3: three padded 3x3 convs (16, 32, 64) each with ReLU + pool → 576-128-classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int | Sequence[int] = 28) -> None:
        super().__init__()
        rows, columns = sides(image_size, lambda side: side // 2 // 2 // 2)  # `width` below counts channels
        blocks: list[nn.Module] = []
        width = in_channels
        for channels in (16, 32, 64):
            blocks += [nn.Conv2d(width, channels, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = channels
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * rows * columns, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model
def cnn_1x1(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """Seed 003's custom CNN with 1x1 convolutions (60,540 parameters without bias)."""
    return Conv1x1Net(**conv_arguments(input_shape, kwargs))


@register_model
def fmnist_cnn1(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """Seed 004 Model1: two conv layers, no dropout."""
    return TwoConvNet(**conv_arguments(input_shape, kwargs))


@register_model
def fmnist_cnn2(conv_dropout: float = 0.5, input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """Seed 004 Model2: Model1 with Dropout2d after the second conv."""
    return TwoConvNet(conv_dropout=conv_dropout, **conv_arguments(input_shape, kwargs))


@register_model
def fmnist_cnn3(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """Seed 004 Model3: three padded conv layers with growing channel counts."""
    return ThreeConvNet(**conv_arguments(input_shape, kwargs))
