"""Fully-connected baselines (the course's "custom MLP")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reportgen.models.registry import register_model


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


@register_model
def mlp(hidden: Sequence[int] = (64,), **kwargs) -> nn.Module:
    """784-64-10 MLP (seed 000, 50,890 parameters); `hidden` sets the widths."""
    return MLP(hidden=hidden, **kwargs)


@register_model
def mlp_lenet_sized(hidden: Sequence[int] = (75, 32), **kwargs) -> nn.Module:
    """784-75-32-10 MLP, 61,637 parameters: within 0.2% of LeNet-5's 61,706."""
    return MLP(hidden=hidden, **kwargs)


@register_model
def mlp_deep(hidden: Sequence[int] = (64, 64, 64, 32, 16, 16, 10), **kwargs) -> nn.Module:
    """Seed 002's eight-layer MLP sized to LeNet-5 (61,720 parameters)."""
    return MLP(hidden=hidden, **kwargs)
