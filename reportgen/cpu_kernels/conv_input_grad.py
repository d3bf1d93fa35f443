"""The input gradient of a small-channel 5×5 convolution on the CPU, computed in the contiguous layout.

Why: in a channels_last model oneDNN computes a convolution's input gradient in channels_last too, and for an
input of fewer than 8 channels under a 5×5 kernel that kernel is slow: LeNet-5's second convolution (6 → 16
channels, 14 × 14, 64 images) took 1.44 ms for its input gradient in channels_last against 0.98 ms in the
contiguous layout, the copies there and back included. With 3×3 kernels, padding, or 8 and more channels
channels_last was as fast or faster (benchmarks/kernel_levers.py `--only conv`, docs/speed.md), so the lever
takes only 5×5 (or larger) kernels without padding over fewer than 8 channels. The forward pass and the weight and bias gradients stay what they were: oneDNN's, in
channels_last, bit for bit.

The input gradient's sums run in another order, so the weights' low-order bits differ from torch's own
backward pass (docs/speed.md, "The rule for a lever"); trial.json records `conv_input_grad_kernel`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from reportgen.cpu_kernels.inputs import float32_channels_last

MAX_IN_CHANNELS = 7  # 8 and more: channels_last is as fast (one vector register of floats)
MIN_KERNEL = 5  # 3×3 kernels: channels_last was faster


def eligible(module: nn.Module) -> bool:
    """torch's own Conv2d with one group, no dilation, no padding, a kernel of 5 or more and fewer than 8 input
    channels: the cases measured faster (1.1-1.5×; with padding 2 they were 0.91-1.0×)."""
    return (
        type(module) is nn.Conv2d
        and module.groups == 1
        and module.dilation == (1, 1)
        and module.padding == (0, 0)
        and min(module.kernel_size) >= MIN_KERNEL
        and module.in_channels <= MAX_IN_CHANNELS
    )


class _ContiguousInputGradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.geometry = (list(stride), list(padding), bias is not None)
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.geometry
        bias_sizes = [weight.shape[0]] if has_bias else None

        def backward_pass(grad, x, weight, wanted):
            return torch.ops.aten.convolution_backward(
                grad, x, weight, bias_sizes, stride, padding, [1, 1], False, [0, 0], 1, wanted
            )

        _, grad_weight, grad_bias = backward_pass(grad, x, weight, [False, True, has_bias])  # as torch's pass
        grad_input = backward_pass(grad.contiguous(), x.contiguous(), weight.contiguous(), [True, False, False])[0]
        return grad_input.contiguous(memory_format=torch.channels_last), grad_weight, grad_bias, None, None


def applies(module: nn.Conv2d, x: torch.Tensor) -> bool:
    """This call trains with an input that needs its gradient (a layer after the first), float32 channels_last
    on the CPU, outside autocast."""
    return (
        torch.is_grad_enabled()
        and x.requires_grad
        and float32_channels_last(x)
        and module.weight.is_contiguous(memory_format=torch.channels_last)
        and not torch.is_autocast_enabled("cpu")
    )


def forward(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d.forward for `module`, with the contiguous input gradient where `applies` says so."""
    if not applies(module, x):
        return nn.Conv2d.forward(module, x)
    return _ContiguousInputGradConv.apply(x, module.weight, module.bias, module.stride, module.padding)
