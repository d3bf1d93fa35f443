"""Kernels the engine puts in place of torch's own where these small models train faster on the CPU.

Each lever here replaces one layer type's pass in training or in evaluation, for torch's own class only and
where it measured faster (the layer's channels and kernel, the batch's shape), and only while a trial trains
(`installed`); the modules keep their parameters, state dict and hooks. Which lever a trial uses is
decided from its model and device alone (`choose`), never from the machine's load, so it repeats; trial.json
records the choice (docs/speed.md, "The rule for a lever").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from reportgen.cpu_kernels import batchnorm, conv_input_grad, dropout, maxpool, pool_first

TORCH = "torch"
ROWS = "rows"  # batchnorm.py's pass over rows of several pixels' channels
CORNERS = "corners"  # maxpool.py's maxima of the windows' four corner views
CONTIGUOUS = "contiguous"  # conv_input_grad.py's input gradient in the contiguous layout
UNIFORM = "uniform"  # dropout.py's mask of uniform numbers below the keep probability
POOL_FIRST = "pool_first"  # pool_first.py's max-pool before the ReLU that precedes it

# record key → (the layers it applies to, its kernel's name, the forward that uses it)
LEVERS: dict[str, tuple[Callable[[nn.Module], bool], str, Callable[..., torch.Tensor]]] = {
    "batchnorm_kernel": (batchnorm.eligible, ROWS, batchnorm.forward),
    "maxpool_kernel": (maxpool.eligible, CORNERS, maxpool.forward),
    "conv_input_grad_kernel": (conv_input_grad.eligible, CONTIGUOUS, conv_input_grad.forward),
    "dropout_kernel": (dropout.eligible, UNIFORM, dropout.forward),
    "relu_pool_kernel": (pool_first.eligible, POOL_FIRST, pool_first.forward),
}


def choose(model: nn.Module, device: torch.device) -> dict[str, str]:
    """Each lever's kernel for this trial, as trial.json records it: the lever's own on the CPU when the model
    has a layer it applies to, else torch's."""
    modules = list(model.modules())
    return {
        key: name if device.type == "cpu" and any(eligible(m) for m in modules) else TORCH
        for key, (eligible, name, _) in LEVERS.items()
    }


@contextlib.contextmanager
def installed(model: nn.Module, kernels: dict[str, str]) -> Iterator[None]:
    """While inside, the model's eligible layers run the kernels `choose` picked; on leaving, torch's again."""
    patched: list[nn.Module] = []
    for key, (eligible, name, forward) in LEVERS.items():
        if kernels.get(key) != name:
            continue
        for module in model.modules():
            # a forward set on the instance: the class and its other instances keep theirs (and a forward a
            # user set on the instance stays theirs)
            if eligible(module) and "forward" not in vars(module):
                module.forward = forward.__get__(module)
                patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward
