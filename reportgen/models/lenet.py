"""LeNet-5 and the variants the course reports use."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reportgen.models.registry import register_model
from reportgen.models.shapes import GREY, conv_arguments, pair, sides

PAPER_SIZE = 32  # LeNet-5's input in the original paper: 32×32, which 28×28 images reach with padding 2


def paper_padding(image_size: int | Sequence[int]) -> int:
    """The padding that brings the smaller side to the paper's 32 pixels: 2 for 28×28, none for 32×32 or more."""
    return max(0, PAPER_SIZE - min(pair(image_size))) // 2


class LeNet5(nn.Module):
    """LeNet-5: conv 6@5x5 (padded to 32×32) → pool → conv 16@5x5 → pool → 120 → 84 → classes.

    `padding=0` gives the 256-input variant (seed 000); `batchnorm`/`dropout` give the regularized
    variant (seed 002: BatchNorm after each conv and hidden linear layer, dropout after the hidden
    linear layers). Without `padding`, a 28×28 image is padded by 2 and a 32×32 one (CIFAR-10) not at all.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        padding: int | None = None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_size: int | Sequence[int] = 28,
    ) -> None:
        super().__init__()
        padding = paper_padding(image_size) if padding is None else padding

        def block(layer: nn.Module, norm: nn.Module, *rest: nn.Module) -> list[nn.Module]:
            # BatchNorm sits between the layer and its ReLU; absent layers are left out, not Identity
            return [layer, *([norm] if batchnorm else []), *rest]

        def dropout_layer() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout else []

        self.features = nn.Sequential(
            *block(
                nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2)
            ),
            *block(nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)),
        )
        height, width = sides(image_size, lambda side: ((side + 2 * padding - 4) // 2 - 4) // 2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *block(nn.Linear(16 * height * width, 120), nn.BatchNorm1d(120), nn.ReLU(), *dropout_layer()),
            *block(nn.Linear(120, 84), nn.BatchNorm1d(84), nn.ReLU(), *dropout_layer()),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class LeNet5C5(nn.Module):
    """LeNet-5 with a 120-channel 5x5 convolution as C5 and a log-softmax output (seed 001)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int | Sequence[int] = 28) -> None:
        super().__init__()
        padding = paper_padding(image_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 120, kernel_size=5),
            nn.ReLU(),
        )
        height, width = sides(image_size, lambda side: ((side + 2 * padding - 4) // 2 - 4) // 2 - 4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(120 * height * width, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model
def lenet5(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """LeNet-5, 61,706 parameters (conv 6@5x5 pad 2, conv 16@5x5, 400-120-84-10); on 3×32×32: no padding, 62,006."""
    return LeNet5(**conv_arguments(input_shape, kwargs))


@register_model
def lenet5_regularized(
    batchnorm: bool = True, dropout: float = 0.3, input_shape: Sequence[int] = GREY, **kwargs
) -> nn.Module:
    """LeNet-5 with BatchNorm after every conv/hidden linear layer and dropout 0.3 (62,158 parameters)."""
    return LeNet5(batchnorm=batchnorm, dropout=dropout, **conv_arguments(input_shape, kwargs))


@register_model
def lenet5_256(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """LeNet-5 without padding: 16x4x4 = 256 inputs to the first linear layer (seed 000, 44,426 parameters)."""
    return LeNet5(padding=0, **conv_arguments(input_shape, kwargs))


@register_model
def lenet5_c5(input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """LeNet-5 with a 120-channel C5 convolution and log-softmax output (seed 001, 61,706 parameters)."""
    return LeNet5C5(**conv_arguments(input_shape, kwargs))
