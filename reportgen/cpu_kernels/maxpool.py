"""2×2 max-pooling in evaluation, on channels_last CPU tensors: the maxima of the windows' four corner views.

Why: torch's CPU max_pool2d scans each window and records an int64 index per output even under inference_mode,
where nothing reads it: 28% of a pass of LeNet-5 + BN + Dropout over the 10,000 test images, which the
engine makes after every epoch. The window's four pixels are four strided views of the input, and three
`maximum`s give the output (64 × 6 × 28 × 28: 0.25 ms against 0.94 ms).

Bit for bit what torch computes: a maximum is exact, and a window holding a NaN gives NaN either way. So it
leaves the numbers alone; trial.json still records it (`maxpool_kernel`). In training torch's kernel runs: its
indices are what the backward pass needs, and assembling them from comparisons of the corner views measured
slower (1.44 ms against 0.94 for the forward).
"""

from __future__ import annotations

import torch
from torch import nn

from reportgen.cpu_kernels.inputs import float32_channels_last
from reportgen.models.shapes import pair


def eligible(module: nn.Module) -> bool:
    """torch's own MaxPool2d over 2×2 windows with stride 2, no padding or dilation, no indices returned."""
    return (
        type(module) is nn.MaxPool2d
        and pair(module.kernel_size) == (2, 2)
        and pair(module.stride or module.kernel_size) == (2, 2)
        and pair(module.padding) == (0, 0)
        and pair(module.dilation) == (1, 1)
        and not module.return_indices
        and not module.ceil_mode
    )


def _corners(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A channels_last (N, C, 2H, 2W) tensor's window corners, each an (N, H, W, C) view: top left, top right,
    bottom left, bottom right."""
    n, channels, height, width = tensor.shape
    pairs = tensor.permute(0, 2, 3, 1).view(n, height // 2, 2, width // 2, 2, channels)
    return pairs[:, :, 0, :, 0], pairs[:, :, 0, :, 1], pairs[:, :, 1, :, 0], pairs[:, :, 1, :, 1]


def applies(module: nn.MaxPool2d, x: torch.Tensor) -> bool:
    """Evaluation (no gradient wanted) of a float32 channels_last batch of even height and width on the CPU."""
    return (
        not (torch.is_grad_enabled() and x.requires_grad)
        and float32_channels_last(x)
        and x.shape[2] % 2 == 0
        and x.shape[3] % 2 == 0
    )


def forward(module: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    """nn.MaxPool2d.forward for `module`, with the corners' maxima where `applies` says so."""
    if not applies(module, x):
        return nn.MaxPool2d.forward(module, x)
    top_left, top_right, bottom_left, bottom_right = _corners(x)
    top, bottom = torch.maximum(top_left, top_right), torch.maximum(bottom_left, bottom_right)
    return torch.maximum(top, bottom).permute(0, 3, 1, 2)
