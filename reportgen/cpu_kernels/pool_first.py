"""A ReLU followed by a max-pool in an nn.Sequential, run as the pool and then the ReLU: a quarter of the values.

Why: LeNet-style blocks apply ReLU to every pixel of a convolution's output (64 × 6 × 28 × 28 in LeNet-5), then
keep one pixel of each 2 × 2 window. A ReLU never changes which value of a window is largest, so pooling first
and applying the ReLU to the pooled map gives the same output from a ReLU over a quarter of the values, and
the same gradient: the window's maximum is where the gradient goes in either order (where the maximum is not
positive the ReLU's gradient is zero in both), and nothing else of the window gets any. A training step
measured 9.52 → 9.20 ms (LeNet-5 + BN + Dropout) and 7.36 → 7.07 ms (LeNet-5), one thread, medians of 30
alternating rounds (benchmarks/kernel_levers.py `--only order`, docs/speed.md).

Bit for bit torch's numbers: max(relu(a), relu(b)) = relu(max(a, b)) exactly, NaN included (both propagate
it), and max-pooling's padding never wins a window. A trial trains the same weights either way
(tests/test_cpu_kernels.py); trial.json records `relu_pool_kernel`. The ReLU and the pool are still called as
modules, so their hooks run, but on the other tensor: the pair is swapped only where neither has a hook that
could see the difference (a forward hook, or a pre-hook other than the one that records that a layer ran
in training, measure/activity.py) and no global module hook is registered.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from reportgen.measure.activity import READS_ONLY_THE_MODE


def eligible(module: nn.Module) -> bool:
    """torch's own nn.Sequential (its forward is the plain chain this one reorders) holding a ReLU directly
    followed by a max-pool that `swappable` may reorder."""
    if type(module) is not nn.Sequential:
        return False
    layers = list(module)
    return any(_reorderable(first, then) for first, then in itertools.pairwise(layers))


def _reorderable(first: nn.Module, then: nn.Module) -> bool:
    """torch's own ReLU, then torch's own MaxPool2d returning only the pooled map."""
    return type(first) is nn.ReLU and type(then) is nn.MaxPool2d and not then.return_indices


def _unobserved(layer: nn.Module) -> bool:
    """No hook sees what goes in or out of `layer`, but the training-mode recorder's."""
    return not layer._forward_hooks and all(
        getattr(hook, READS_ONLY_THE_MODE, False) for hook in layer._forward_pre_hooks.values()
    )


def swappable(first: nn.Module, then: nn.Module) -> bool:
    """This call may pool before the ReLU: the pair is reorderable and nothing would observe the order."""
    return (
        _reorderable(first, then)
        and _unobserved(first)
        and _unobserved(then)
        and not torch_module._global_forward_hooks
        and not torch_module._global_forward_pre_hooks
    )


def forward(sequence: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """nn.Sequential.forward for `sequence`, each swappable ReLU, max-pool pair run as the pool, then the ReLU."""
    layers = list(sequence)
    index = 0
    while index < len(layers):
        layer = layers[index]
        if index + 1 < len(layers) and swappable(layer, layers[index + 1]):
            x = layer(layers[index + 1](x))
            index += 2
        else:
            x = layer(x)
            index += 1
    return x
