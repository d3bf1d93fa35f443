"""Which of a model's modules ran while it trained, recorded into its parameter audit's layer rows.

A regularizer counts only if it acted on the training batches: a BatchNorm2d or Dropout that `forward` never
calls, or a Dropout(p=0.0), regularizes nothing although the model lists it. The parameter audit runs the
model once in eval mode; this records the training itself, so a module used only under `self.training` is
seen too. Each module's hook removes itself the first time the module runs in training mode: after the
first batch the training loop pays nothing for it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# An attribute set on this module's hooks: they look at the module's training flag (and a dropout's p), never at
# a tensor, so a lever that changes what flows through the module (cpu_kernels/pool_first.py) may keep them.
READS_ONLY_THE_MODE = "reads_only_the_mode"


def record_training_modules(model: nn.Module) -> dict[str, dict[str, Any]]:
    """A dict that fills, as the model trains, with every submodule (by dotted name) that ran in training
    mode, with the dropout probability it ran with (`{"p": 0.3}`) for dropout layers. A module's hook goes
    once it has fired; the hooks of modules that never train stay with the model (one check per call)."""
    ran: dict[str, dict[str, Any]] = {}
    handles: dict[str, Any] = {}

    def watch(name: str):
        def hook(module: nn.Module, _args: Any) -> None:
            if not module.training or name not in handles:
                return  # an evaluation pass says nothing about training
            ran[name] = {"p": float(module.p)} if isinstance(module, nn.modules.dropout._DropoutNd) else {}
            handles.pop(name).remove()

        setattr(hook, READS_ONLY_THE_MODE, True)
        return hook

    for name, module in model.named_modules():
        if not isinstance(module, torch.jit.ScriptModule):  # scripted modules refuse hooks
            handles[name] = module.register_forward_pre_hook(watch(name))
    return ran


def audit_with_training(audit: dict[str, Any], ran: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The archived audit (ModelAudit.to_dict) with each layer's `ran_in_training` (and a dropout layer's `p`),
    or unchanged when nothing trained in this process (a resumed trial whose epochs were all done): no
    record is better than a record that says nothing ran."""
    if not ran:
        return audit
    layers = [
        layer | {"ran_in_training": layer["name"] in ran} | ran.get(layer["name"], {}) for layer in audit["layers"]
    ]
    return audit | {"layers": layers}
