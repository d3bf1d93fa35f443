"""BatchNorm2d's training and evaluation passes on channels_last CPU tensors, over rows of several pixels' channels.

Why: torch's CPU kernel for a channels_last BatchNorm2d loops over the channels as its inner dimension. With a
channel count that is not a multiple of 8 (one vector register of floats) that loop runs partly scalar: one
training pass (forward + backward) over 64 × 6 × 28 × 28 took 2.87 ms, where a ReLU over the same tensor takes
0.04 ms. Viewing the tensor as rows of 16 pixels × the channels (96 floats for 6 channels) lets every sum and
every elementwise step run over wide contiguous rows; a channel's sum is then the sum of its 16 columns:
1.10 ms. Its dozen small ops cost more than they save on small tensors, and torch's kernel is fast for 8, 16
or 32 channels (benchmarks/kernel_levers.py `--only batchnorm`, docs/speed.md), so it takes only layers whose
channel count is not a multiple of 8, on batches of at least MIN_VALUES values per channel (64 images of
14 × 14: 1.19-1.25× for 6 or 12 channels; 28 × 28: 2.6×).

It computes what `torch.nn.functional.batch_norm` computes in training: the batch's mean and biased variance
normalise, the unbiased variance and the momentum (or the cumulative average when momentum is None) update
the running statistics, and `num_batches_tracked` counts. In evaluation (no gradient wanted) it normalises by
the running statistics as torch's kernel does, x · scale + shift, in one pass over the rows: the engine's pass
over the 10,000 test images after every epoch (250 × 6 × 28 × 28 a batch: 1.37 → 0.19 ms). Sums and products
run in another order, so low-order bits differ from torch's kernel, the test figures' too (docs/speed.md,
"The rule for a lever"); trial.json records `batchnorm_kernel`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from reportgen.cpu_kernels.inputs import float32_channels_last

ROW_PIXELS = (16, 8, 4, 2, 1)  # pixels per row, the widest that divides the batch's pixel count
VECTOR_FLOATS = 8  # torch's kernel vectorises a multiple of this many channels well
MIN_VALUES = 12_000  # values per channel from which the rows' pass is faster (break-even near 64 × 12 × 12)


def eligible(module: nn.Module) -> bool:
    """torch's own BatchNorm2d with a scale and shift and running statistics (what this pass reproduces), over
    a channel count that torch's kernel does not vectorise well."""
    return (
        type(module) is nn.BatchNorm2d
        and module.affine
        and module.track_running_stats
        and module.num_features % VECTOR_FLOATS != 0
    )


def _row_pixels(x: torch.Tensor) -> int:
    """The pixels per row for the batch `x`: the widest of ROW_PIXELS that divides its pixel count."""
    n, _channels, h, w = x.shape
    return next(p for p in ROW_PIXELS if (n * h * w) % p == 0)


def _rows(tensor: torch.Tensor, pixels: int) -> torch.Tensor:
    """A channels_last (N, C, H, W) tensor as rows of `pixels` pixels' channels: a view, no copy."""
    return tensor.permute(0, 2, 3, 1).reshape(-1, pixels * tensor.shape[1])


def _channel_sums(rows: torch.Tensor, pixels: int) -> torch.Tensor:
    return rows.sum(0).view(pixels, -1).sum(0)


def _tiled(per_channel: torch.Tensor, pixels: int) -> torch.Tensor:
    """A row's worth of a per-channel vector: `pixels` copies of it (Tensor.repeat's values at half its cost)."""
    return per_channel.expand(pixels, -1).reshape(-1)


class _RowBatchNorm(torch.autograd.Function):
    """Normalise with the batch's statistics; returns the output, the mean and the biased variance."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):  # type: ignore[override]
        n, channels, h, w = x.shape
        pixels = _row_pixels(x)
        rows = _rows(x, pixels)
        count = n * h * w
        mean = _channel_sums(rows, pixels) / count
        centred = rows - _tiled(mean, pixels)
        var = _channel_sums(centred.square(), pixels) / count
        invstd = torch.rsqrt(var + eps)
        out = torch.addcmul(_tiled(bias, pixels), centred, _tiled(weight * invstd, pixels))
        ctx.save_for_backward(centred, invstd, weight)
        ctx.pixels = pixels
        ctx.mark_non_differentiable(mean, var)
        return out.view(n, h, w, channels).permute(0, 3, 1, 2), mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _mean_grad, _var_grad):  # type: ignore[override]
        centred, invstd, weight = ctx.saved_tensors
        pixels = ctx.pixels
        n, channels, h, w = grad.shape
        count = n * h * w
        dy = _rows(grad.contiguous(memory_format=torch.channels_last), pixels)
        grad_bias = _channel_sums(dy, pixels)
        dot = _channel_sums(dy * centred, pixels)  # Σ dy·(x − mean), per channel
        scale = weight * invstd
        # dx = scale·dy − scale/count·Σdy − scale·invstd²/count·Σ(dy·(x − mean))·(x − mean)
        shift = _tiled(-scale * grad_bias / count, pixels)
        slope = _tiled(-scale * invstd * invstd * dot / count, pixels)
        grad_input = torch.addcmul(shift, dy, _tiled(scale, pixels)).addcmul_(centred, slope)
        return grad_input.view(n, h, w, channels).permute(0, 3, 1, 2), dot * invstd, grad_bias, None


def _rows_batch(x: torch.Tensor) -> bool:
    """A float32 channels_last batch of at least MIN_VALUES values per channel, outside autocast: what the rows
    take, in training and in evaluation."""
    return (
        float32_channels_last(x)
        and x.shape[0] * x.shape[2] * x.shape[3] >= MIN_VALUES
        and not torch.is_autocast_enabled("cpu")
    )


def applies(module: nn.BatchNorm2d, x: torch.Tensor) -> bool:
    """This call trains on a rows' batch (`_rows_batch`). Anything else (evaluation, another dtype or layout,
    autocast, a smaller batch) takes torch's kernel."""
    return module.training and torch.is_grad_enabled() and _rows_batch(x)


def evaluates(module: nn.BatchNorm2d, x: torch.Tensor) -> bool:
    """This call evaluates a rows' batch (the running statistics normalise, no gradient is wanted), where torch's
    channels_last kernel is as slow (250 × 6 × 28 × 28: 1.37 ms against 0.19 ms over rows)."""
    return not module.training and not torch.is_grad_enabled() and _rows_batch(x)


def _by_running_statistics(module: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Evaluation's normalisation as torch's CPU kernel computes it — x · scale + shift, with scale = weight /
    √(running variance + eps) and shift = bias − running mean · scale — over rows; the rounding differs."""
    n, channels, h, w = x.shape
    pixels = _row_pixels(x)
    scale = module.weight * torch.rsqrt(module.running_var + module.eps)
    shift = module.bias - module.running_mean * scale
    out = torch.addcmul(_tiled(shift, pixels), _rows(x, pixels), _tiled(scale, pixels))
    return out.view(n, h, w, channels).permute(0, 3, 1, 2)


def forward(module: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """nn.BatchNorm2d.forward for `module`, with the rows' pass where `applies` or `evaluates` says so."""
    if evaluates(module, x):
        return _by_running_statistics(module, x)
    if not applies(module, x):
        return nn.BatchNorm2d.forward(module, x)
    out, mean, var = _RowBatchNorm.apply(x, module.weight, module.bias, module.eps)
    with torch.no_grad():  # the running statistics, as nn.BatchNorm2d updates them
        module.num_batches_tracked.add_(1)
        factor = 1.0 / float(module.num_batches_tracked) if module.momentum is None else module.momentum
        count = x.shape[0] * x.shape[2] * x.shape[3]
        module.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        module.running_var.mul_(1 - factor).add_(var * (count / (count - 1)), alpha=factor)
    return out
