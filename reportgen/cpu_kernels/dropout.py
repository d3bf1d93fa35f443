"""Dropout's training mask on the CPU, drawn as uniform numbers below the keep probability.

Why: torch's CPU dropout draws its mask with `bernoulli_(1 - p)`, which on this build goes through MKL's
random streams (a stream seeded per call, then copied): 84 µs for the 64 × 120 mask of LeNet-5 + BN + Dropout's
first hidden layer, where `uniform_()` and a comparison draw a mask of the same law in 28 µs. A training step
with its two dropout layers (forward + backward) measured 168 → 120 µs per layer (benchmarks/kernel_levers.py
`--only dropout`, docs/speed.md).

It computes what torch's CPU dropout computes — `input * mask / (1 - p)`, the mask 1 with probability 1 - p —
from the same generator (the one the engine seeds per epoch for dropout masks), but other random numbers: the
masks differ from torch's kernel, so the weights do too (docs/speed.md, "The rule for a lever"); a trial
repeats them, and resume restores the generator's state. trial.json records `dropout_kernel`.
"""

from __future__ import annotations

import torch
from torch import nn


def eligible(module: nn.Module) -> bool:
    """torch's own Dropout, not in place (its output is a new tensor, as here)."""
    return type(module) is nn.Dropout and not module.inplace


def applies(module: nn.Dropout, x: torch.Tensor) -> bool:
    """Training on a float32 CPU tensor with a drop probability strictly between 0 and 1 (0 and 1 are torch's
    special cases), outside autocast; anything else takes torch's dropout."""
    return (
        module.training
        and 0.0 < module.p < 1.0
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")
    )


def forward(module: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """nn.Dropout.forward for `module`, with the uniform mask where `applies` says so."""
    if not applies(module, x):
        return nn.Dropout.forward(module, x)
    keep = 1.0 - module.p
    # the mask as torch builds it (`div_` by the keep probability), from uniform numbers instead of bernoulli_
    mask = torch.empty_like(x).uniform_().lt_(keep).div_(keep)
    return x * mask
