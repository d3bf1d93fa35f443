"""Fully-connected baselines (the course's "custom MLP")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reportgen.models.registry import register_model
from reportgen.models.shapes import GREY, flat_arguments


class MLP(nn.Module):
    """Flatten → [Linear → ReLU (→ Dropout)] per hidden width → Linear to the classes."""

    def __init__(
        self, hidden: Sequence[int] = (64,), num_classes: int = 10, in_features: int = 784, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# Each takes every pixel of the data's images as input (784 for 1×28×28, 3,072 for 3×32×32); the widths, sized to
# LeNet-5 on Fashion-MNIST, stay as they are: `reportgen params lenet5 --input 3x32x32 --match-mlp 2` sizes anew.


@register_model
def mlp(hidden: Sequence[int] = (64,), input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """784-64-10 MLP (seed 000, 50,890 parameters); `hidden` sets the widths."""
    return MLP(hidden=hidden, **flat_arguments(input_shape, kwargs))


@register_model
def mlp_lenet_sized(hidden: Sequence[int] = (75, 32), input_shape: Sequence[int] = GREY, **kwargs) -> nn.Module:
    """784-75-32-10 MLP, 61,637 parameters: within 0.2% of LeNet-5's 61,706."""
    return MLP(hidden=hidden, **flat_arguments(input_shape, kwargs))


@register_model
def mlp_deep(
    hidden: Sequence[int] = (64, 64, 64, 32, 16, 16, 10), input_shape: Sequence[int] = GREY, **kwargs
) -> nn.Module:
    """Seed 002's eight-layer MLP sized to LeNet-5 (61,720 parameters)."""
    return MLP(hidden=hidden, **flat_arguments(input_shape, kwargs))
