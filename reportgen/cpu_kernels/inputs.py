"""The one kind of input every CPU kernel lever takes: a 4-d float32 batch on the CPU, in channels_last."""

from __future__ import annotations

import torch


def float32_channels_last(x: torch.Tensor) -> bool:
    """`x` is a 4-d float32 CPU tensor laid out channels_last (as a trial's convolutional model runs them); any
    other input takes torch's own kernel."""
    return (
        x.dim() == 4
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and x.is_contiguous(memory_format=torch.channels_last)
    )
