"""Parameter-count audit: per-layer formulas, bias/frozen/shared/buffer totals, a torchinfo cross-check.

Counting and laying out are separate modules: `audit_model` walks the model (run as measure/probe.py runs
it, each layer's formula from measure/param_formulas.py) and returns plain dataclasses (it never prints);
measure/audit_text.py lays an audit out, measure/widths.py sizes MLPs.

    audit = audit_model(create_model("lenet5"), (1, 28, 28), name="lenet5")
    print(format_audit(audit))             # reportgen.measure.audit_text
    check_claim(audit, expect=61_706)        # None: the claim holds

Each layer's own (direct) parameters are counted once, in forward order; a parameter object reached
again through a second module (tied weights) counts 0 there and the row is marked `shared`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.numbers import thousands
from reportgen.measure.param_formulas import param_formula
from reportgen.measure.probe import (
    check_expected_input,
    evaluating,
    original_module,
    probe,
    refuse_torchscript,
    torchinfo_pass,
)
from reportgen.messages import Message, Recorded


@dataclass
class LayerAudit:
    """One module's own parameters (not its children's) and how the count comes about."""

    name: str  # dotted module name; "" is the root module
    type: str
    output_shape: list[int] | None
    formula: Recorded  # arithmetic as text; a Message where it says more ("+12 running stats, not trainable")
    weights: int = 0
    bias: int = 0
    trainable: int = 0
    frozen: int = 0
    buffers: int = 0
    shared: bool = False
    pruned: int = 0  # of its parameters, masked to zero by torch.nn.utils.prune (still stored as *_orig)

    @property
    def params(self) -> int:
        return self.weights + self.bias

    @property
    def label(self) -> str:
        return self.name or "(root)"


@dataclass
class ModelAudit:
    model_name: str
    input_shape: tuple[int, ...]
    layers: list[LayerAudit]
    total: int
    without_bias: int
    bias: int
    trainable: int
    frozen: int
    buffers: int
    batchnorm_params: int
    torchinfo_total: int
    matches_torchinfo: bool
    torchinfo_error: str = ""
    batch_size: int = 2
    mult_adds: int = 0  # per image, forward pass, from torchinfo (0 when torchinfo failed)
    cost: dict[str, Any] | None = None  # MACs, latency, size (cost.ModelCost.to_dict), set by the runner
    pruned: int = 0  # parameters masked to zero by torch.nn.utils.prune (still stored as *_orig)
    torchinfo_note: Recorded = ""  # why torchinfo's total differs when the difference is explained (tied, pruned)
    notes: list[str] = field(default_factory=list)  # how the model was audited (a torch.compile'd model)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data


def _is_bias(param_name: str) -> bool:
    return "bias" in param_name


def parse_input_shape(text: str) -> tuple[int, ...]:
    """`1x28x28` (also `1×28×28`, `1,28,28`, `(1, 28, 28)`) → (1, 28, 28)."""
    cleaned = str(text).strip().strip("()[]").strip()
    parts = [p.strip() for p in re.split(r"\s*[x×X,]\s*", cleaned)] if cleaned else []
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ModelError(
            f"input shape {text!r}: expected positive integers joined by 'x' (without the batch "
            f"dimension), e.g. 1x28x28"
        )
    return tuple(int(p) for p in parts)


COMPILED_NOTE = "torch.compile'd: audited through its original module (_orig_mod), whose forward the compiled one runs"


def audit_model(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28), name: str = "") -> ModelAudit:
    """Count every parameter once, layer by layer in forward order, and cross-check with torchinfo.

    Runs the model twice on random input (our probe, then torchinfo) in eval mode without gradients;
    the train/eval mode of every submodule and the global RNG state are restored afterwards.
    A forward failure raises ModelError naming the layer where the shape broke.
    """
    compiled = original_module(model) is not model
    model = original_module(model)
    model_name = name or type(model).__name__
    refuse_torchscript(model)
    input_shape = tuple(input_shape)
    if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ModelError(f"model {model_name}: input shape {input_shape!r}: expected positive integers, e.g. 1x28x28")
    batch = 2
    check_expected_input(model, input_shape, model_name)
    with torch.random.fork_rng(devices=[]), evaluating(model):
        called = probe(model, input_shape, model_name, batch)
        shapes, torchinfo_total, torchinfo_error, mult_adds = torchinfo_pass(model, input_shape, batch)

    names = {id(m): n for n, m in model.named_modules()}
    called_ids = {id(m) for m in called}
    ordered = [m for m in called if id(m) in names]
    ordered += [m for _, m in model.named_modules() if id(m) not in called_ids]

    seen_params: dict[int, str] = {}
    seen_buffers: set[int] = set()
    layers: list[LayerAudit] = []
    bn_params = 0
    for module in ordered:
        mname = names[id(module)]
        params = list(module.named_parameters(recurse=False))
        buffers = list(module.named_buffers(recurse=False))
        has_children = any(True for _ in module.children())
        if (has_children or module is model or isinstance(module, nn.Identity)) and not params and not buffers:
            continue  # containers (Sequential, the root...) group other layers; Identity is a placeholder
        layer = LayerAudit(mname, type(module).__name__, shapes.get(id(module)), param_formula(module, params))
        shared_with: list[str] = []
        for pname, param in params:
            if id(param) in seen_params:
                layer.shared = True
                shared_with.append(f"{pname} shared with '{seen_params[id(param)] or '(root)'}'")
                continue
            seen_params[id(param)] = mname
            count = param.numel()
            if _is_bias(pname):
                layer.bias += count
            else:
                layer.weights += count
            if param.requires_grad:
                layer.trainable += count
            else:
                layer.frozen += count
            layer.pruned += _masked(module, pname)
        for _, buf in buffers:
            if id(buf) not in seen_buffers:
                seen_buffers.add(id(buf))
                layer.buffers += buf.numel()
        if shared_with:
            layer.formula = _followed(layer.formula, f" — {', '.join(shared_with)}, counted once there")
        if layer.frozen:
            frozen = " [frozen]" if layer.frozen == layer.params else f" [{thousands(layer.frozen)} frozen]"
            layer.formula = _followed(layer.formula, frozen)
        if layer.pruned:
            layer.formula = Message(
                "{formula} [{count} pruned]", {"formula": layer.formula, "count": thousands(layer.pruned)}
            )
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            bn_params += layer.params
        layers.append(layer)

    total = sum(layer.params for layer in layers)
    bias = sum(layer.bias for layer in layers)
    pruned = sum(layer.pruned for layer in layers)
    return ModelAudit(
        model_name=model_name,
        input_shape=input_shape,
        layers=layers,
        total=total,
        without_bias=total - bias,
        bias=bias,
        trainable=sum(layer.trainable for layer in layers),
        frozen=sum(layer.frozen for layer in layers),
        buffers=sum(layer.buffers for layer in layers),
        batchnorm_params=bn_params,
        torchinfo_total=torchinfo_total,
        mult_adds=mult_adds,
        matches_torchinfo=torchinfo_total == total,
        torchinfo_error=torchinfo_error,
        batch_size=batch,
        pruned=pruned,
        torchinfo_note=_torchinfo_note(model, total, torchinfo_total, pruned),
        notes=[COMPILED_NOTE] if compiled else [],
    )


def _followed(formula: Recorded, text: str) -> Recorded:
    """`formula` followed by `text` (a note the report shows as recorded): one text, or one message."""
    return (
        formula + text if isinstance(formula, str) else Message("{formula}{text}", {"formula": formula, "text": text})
    )


def _masked(module: nn.Module, param_name: str) -> int:
    """How many of `<name>_orig`'s entries torch.nn.utils.prune masks to zero (its `<name>_mask` buffer)."""
    if not param_name.endswith("_orig"):
        return 0
    mask = getattr(module, param_name[: -len("_orig")] + "_mask", None)
    return int((mask == 0).sum()) if isinstance(mask, torch.Tensor) else 0


SCRIPTED_NOTE = Message(
    "torchinfo counts the parameters of a scripted submodule twice, once for the scripted module and once for "
    "its layers; the model stores and trains each once: ours is right"
)


def _scripted_parameters(model: nn.Module) -> int:
    """Parameters inside the outermost scripted submodules (torchinfo lists them twice)."""
    scripted = [m for m in model.modules() if isinstance(m, torch.jit.ScriptModule) and any(m.children())]
    inner = {id(child) for m in scripted for child in m.modules() if child is not m}
    return sum(p.numel() for m in scripted if id(m) not in inner for p in m.parameters())


def _torchinfo_note(model: nn.Module, total: int, torchinfo_total: int, pruned: int) -> Recorded:
    """Say which count is right when torchinfo's differs for a known reason; "" when it agrees or the
    difference is unexplained (then it stays a mismatch)."""
    if torchinfo_total < 0 or torchinfo_total == total:
        return ""
    # named_parameters lists a tied parameter once per module holding it; torchinfo sums it that way too
    repeated = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) - total
    if repeated and torchinfo_total == total + repeated:
        return Message(
            "torchinfo counts the {repeated} shared (tied) parameters once per layer that uses them; "
            "the model stores and trains {total}: ours is right",
            {"repeated": thousands(repeated), "total": thousands(total)},
        )
    if (scripted := _scripted_parameters(model)) and torchinfo_total == total + scripted:
        return SCRIPTED_NOTE
    if pruned and torchinfo_total == total - pruned:
        return Message(
            "torchinfo counts the {left} parameters left after pruning; the model still stores {total} ({pruned} "
            "masked to zero): both are right, for different questions",
            {"left": thousands(torchinfo_total), "total": thousands(total), "pruned": thousands(pruned)},
        )
    return ""


# --------------------------------------------------------------------------- claims


def check_claim(audit: ModelAudit, expect: int | None = None, expect_no_bias: int | None = None) -> str | None:
    """None when the claimed count(s) hold, else one line saying what was counted and the likely slip."""
    problems: list[str] = []
    if expect is not None and expect != audit.total:
        diff = audit.total - expect
        msg = f"expected {thousands(expect)}, counted {thousands(audit.total)}"
        if audit.bias and expect == audit.without_bias:
            msg += f": bias terms {thousands(audit.bias)} — did you leave out biases?"
        elif audit.batchnorm_params and diff == audit.batchnorm_params:
            msg += f": BatchNorm adds {thousands(audit.batchnorm_params)} — did you count the model without BatchNorm?"
        elif audit.frozen and expect == audit.trainable:
            msg += f": frozen parameters {thousands(audit.frozen)} — did you count only trainable ones?"
        else:
            msg += f": difference {diff:+,}"
        problems.append(msg)
    if expect_no_bias is not None and expect_no_bias != audit.without_bias:
        msg = (
            f"expected {thousands(expect_no_bias)} without bias, counted {thousands(audit.without_bias)} without bias "
            f"({thousands(audit.total)} with bias)"
        )
        if audit.bias and expect_no_bias == audit.total:
            msg += " — that is the total with biases; did you include them?"
        problems.append(msg)
    return "; ".join(problems) or None
