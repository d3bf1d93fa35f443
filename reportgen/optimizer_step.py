"""A training step's `zero_grad` and `step` for torch's fused Adam and AdamW, with the kernels torch's own `step` calls
and without the Python around them.

Why: the update of LeNet-5 + BN + Dropout is one fused kernel (`torch._fused_adam_`, 84 µs at one thread), but
`optimizer.step()` took 189 µs: torch wraps every call in dynamo's graph breaks and disabled frames, its
profiler's record_function, its step hooks and a regrouping of the tensors by device and dtype, and
`zero_grad` wraps the same way (20 µs against 7). Measured 2026-12-07 at one thread, alternating rounds:
`zero_grad` + step 0.22 → 0.13 ms for LeNet-5 + BN + Dropout and 0.19 → 0.10 ms for LeNet-5
(`benchmarks/kernel_levers.py --only step`); whole training steps 8.22 → 8.10 ms and 6.48 → 6.32 ms.

`DirectStep.step` makes the two calls torch's fused Adam makes for one device and dtype — the steps' counters
plus one, then the fused update with the group's settings read at that moment (a learning-rate schedule's
too) — on the same tensors in the same order, so every weight and every state tensor is bit for bit what
`optimizer.step()` leaves (tests/test_optimizer_step.py). It does so only where that is all torch would do:
one param group of torch's own Adam or AdamW with `fused=True`, no AMSGrad, maximize, capturable or
differentiable, a float learning rate, every parameter with a dense gradient, one device and dtype, state
already made (torch's own first step makes it), and no step hook registered. Anything else calls
`optimizer.step()`.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

_DIRECT_TYPES = (torch.optim.Adam, torch.optim.AdamW)
_ANY_OF = ("amsgrad", "maximize", "capturable", "differentiable")  # group settings the direct path does not do


class DirectStep:
    """`zero_grad()` (to None) and `step()` of `optimizer`, directly where `DirectStep`'s module says so."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        params = list(optimizer.param_groups[0]["params"])
        # what cannot change while the optimizer steps: checked once here, not at every step
        self._fused_adam = (
            type(optimizer) in _DIRECT_TYPES
            and len(optimizer.param_groups) == 1
            and all(p.device == params[0].device and p.dtype == params[0].dtype for p in params)
            and not any(p.is_complex() for p in params)
        )
        self.params: list[torch.Tensor] = params if self._fused_adam else []

    def zero_grad(self) -> None:
        """optimizer.zero_grad(set_to_none=True)."""
        if not self._fused_adam:
            self.optimizer.zero_grad(set_to_none=True)
            return
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """optimizer.step(): the fused update called directly where it may be, else torch's own step."""
        group = self.optimizer.param_groups[0]
        if not self._direct(group):
            self.optimizer.step()
            return
        state = self.optimizer.state
        grads = [param.grad for param in self.params]
        steps = [state[param]["step"] for param in self.params]
        update = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            update(
                self.params,
                grads,
                [state[param]["exp_avg"] for param in self.params],
                [state[param]["exp_avg_sq"] for param in self.params],
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=group["betas"][0],
                beta2=group["betas"][1],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    def _direct(self, group: dict) -> bool:
        """The direct update is all that torch's step would do now (see the module's docstring)."""
        if not self._fused_adam or not group.get("fused") or any(group.get(name) for name in _ANY_OF):
            return False
        if not isinstance(group["lr"], float):
            return False
        if (
            self.optimizer._optimizer_step_pre_hooks
            or self.optimizer._optimizer_step_post_hooks
            or _global_optimizer_pre_hooks
            or _global_optimizer_post_hooks
        ):
            return False
        state = self.optimizer.state
        return all(
            param.grad is not None and not param.grad.is_sparse and "step" in state.get(param, ())
            for param in self.params
        )
