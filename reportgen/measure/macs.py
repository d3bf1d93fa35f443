"""Multiply-adds per layer and in total, counted from the ops that run (measure/op_counts.py), each layer's
formula beside its count, cross-checked against torch's FlopCounterMode and torchinfo (measure/mac_checks.py,
each check saying which of our MACs it could not see and why, never passing them); and whether a claimed
figure (`--expect-macs`) holds. The convention is stated in measure/mac_text.py (CONVENTION), which words
the audit.

    macs = count_macs(create_model("lenet5"), (1, 28, 28))      # MacAudit: per layer, totals, cross-checks
    print(format_macs(macs, "lenet5"))                          # reportgen.measure.mac_text
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.mac_checks import CrossCheck, flop_counter_check, torchinfo_check
from reportgen.measure.mac_text import CONVENTION, cross_check_text, not_checked_text
from reportgen.measure.numbers import thousands
from reportgen.measure.op_counts import ModuleCall, count_ops, on_shapes_only
from reportgen.measure.probe import evaluating, original_module, refuse_torchscript
from reportgen.measure.without_dynamo import flop_counter_without_dynamo

# Leaf modules with no multiply-adds worth counting, and why (listed in the audit, never silently dropped).
NOT_COUNTED = {
    nn.modules.pooling._MaxPoolNd: "comparisons, no multiply-adds",
    nn.modules.pooling._AvgPoolNd: "additions only",
    nn.modules.pooling._AdaptiveAvgPoolNd: "additions only",
    nn.modules.pooling._AdaptiveMaxPoolNd: "comparisons, no multiply-adds",
    nn.modules.dropout._DropoutNd: "identity at inference",
    nn.Flatten: "reshape",
    nn.Unflatten: "reshape",
    nn.Identity: "identity",
}
ACTIVATION_NOTE = "elementwise activation"
NO_OPS_NOTE = "no multiply-adds ran in it"


@dataclass
class LayerMacs:
    """One call of a module: the MACs of the ops it ran itself (not inside its child layers), for one image."""

    name: str
    type: str
    formula: str  # "28·28·6·5·5·1 = 117,600"; "" when nothing was counted (then `note` says why)
    macs: int
    bias_adds: int = 0  # one addition per output element of an op with a bias: not a MAC
    note: str = ""  # why a layer has no MACs (pooling, activation…), ops not counted, or a finding
    ops: dict[str, int] = field(default_factory=dict)  # aten op → MACs, as counted
    formula_macs: int | None = None  # the layer formula's figure, when the layer type has one
    forward: bool = False  # work in the module's own forward, outside its child layers
    uncounted: list[str] = field(default_factory=list)  # ops with multiply-adds and no formula here

    @property
    def formula_differs(self) -> bool:
        """The layer formula and the ops that ran disagree: a finding, shown, never silently resolved."""
        return self.formula_macs is not None and self.formula_macs != self.macs


@dataclass
class MacAudit:
    layers: list[LayerMacs]
    total: int  # MACs per image
    bias_adds: int
    batchnorm_macs: int  # of `total`, batch norm at inference (one per element): what published figures leave out
    flop_counter: CrossCheck
    torchinfo: CrossCheck
    # [MACs for one random input, for another] when the forward's op counts depend on its input's values
    # (`total` is the first); empty when they do not, or when the forward reads no values at all
    input_dependent: list[int] = field(default_factory=list)
    input_dependent_layers: list[str] = field(default_factory=list)  # "extra (Linear): 100 vs 0"

    @property
    def not_counted(self) -> list[str]:
        """Ops with multiply-adds that ran and are not in `total`: "(root) (CdistNet) ran aten._cdist_forward (…)"."""
        return [f"{layer.name or '(root)'} ({layer.type}) ran {op}" for layer in self.layers for op in layer.uncounted]

    @property
    def flop_counter_flops(self) -> int:
        return self.flop_counter.figure

    @property
    def torchinfo_mult_adds(self) -> int:
        return self.torchinfo.figure

    @property
    def matches_flop_counter(self) -> bool:
        return self.flop_counter.matches

    @property
    def matches_torchinfo(self) -> bool:
        return self.torchinfo.matches

    @property
    def findings(self) -> list[LayerMacs]:
        """Layers whose formula gives another figure than the ops they ran."""
        return [layer for layer in self.layers if layer.formula_differs]

    def to_dict(self) -> dict[str, Any]:
        flop_check, torchinfo_check = cross_check_text(self)
        return asdict(self) | {
            "convention": CONVENTION,
            "flop_counter_flops": self.flop_counter_flops,
            "torchinfo_mult_adds": self.torchinfo_mult_adds,
            "matches_flop_counter": self.matches_flop_counter,
            "matches_torchinfo": self.matches_torchinfo,
            "flop_counter_check": flop_check,
            "torchinfo_check": torchinfo_check,
            "flop_counter_not_checked": not_checked_text(self.flop_counter),
            "torchinfo_not_checked": not_checked_text(self.torchinfo),
            "not_counted": self.not_counted,  # `total` is a lower bound when this is not empty
        }


def _dims(values: Any) -> str:
    return "·".join(str(int(v)) for v in values)


def _batch(shape: Any) -> str:
    return f"{int(shape[0])}·" if int(shape[0]) > 1 else ""  # frames or proposals folded into the batch


def _conv(module: nn.modules.conv._ConvNd, call: ModuleCall) -> tuple[str, int] | None:
    groups = f"/{module.groups}" if module.groups > 1 else ""
    if module.transposed:  # every input element is spread over k·out_c/groups outputs
        shape = call.input_shape
        channels = f"{module.in_channels}·{_dims(module.kernel_size)}·{module.out_channels}"
    else:  # every output element is a k·in_c/groups dot product
        shape = call.output.shape
        channels = f"{module.out_channels}·{_dims(module.kernel_size)}·{module.in_channels}"
    if not shape:
        return None
    positions = math.prod(shape[2:]) * shape[0]
    macs = positions * module.in_channels * module.out_channels * math.prod(module.kernel_size) // module.groups
    return f"{_batch(shape)}{_dims(shape[2:])}·{channels}{groups}", macs


def _linear(module: nn.Linear, call: ModuleCall) -> tuple[str, int]:
    rows = call.output.numel() // module.out_features  # every leading dimension: tokens, frames, proposals…
    prefix = f"{rows}·" if rows > 1 else ""
    return f"{prefix}{module.in_features}·{module.out_features}", rows * module.in_features * module.out_features


def _batchnorm(call: ModuleCall) -> tuple[str, int]:
    # in eval, (x − mean)/√(var + ε)·γ + β is one multiply-add per element with folded constants
    shape = call.output.shape
    return _batch(shape) + _dims([*shape[2:], shape[1]]), call.output.numel()  # positions, then channels


def _layer_formula(call: ModuleCall) -> tuple[str, int] | None:
    """(formula, MACs) from the layer's type and real shapes, for the types with a formula; None otherwise. It
    documents the counted figure and is compared with it."""
    module = call.module
    if not isinstance(call.output, torch.Tensor):
        return None
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(module, call)
    if isinstance(module, nn.Linear):
        return _linear(module, call)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
        return _batchnorm(call)
    return None


def _ops_formula(call: ModuleCall) -> str:
    """The products that ran, grouped: "addmm 10·64·192 + 4 × addmm 1·20·60"."""
    groups: list[list] = []
    for op in call.ops:
        if groups and groups[-1][0] == (op.op, op.formula):
            groups[-1][1] += 1
        else:
            groups.append([(op.op, op.formula), 1])
    return " + ".join(f"{f'{n} × ' if n > 1 else ''}{_short(op)} {formula}" for (op, formula), n in groups)


def _short(op: str) -> str:
    """An op as a reader knows it: the backend's attention kernel is attention."""
    return "attention" if "scaled_dot_product" in op else op


def _why_not_counted(module: nn.Module) -> str:
    for base, why in NOT_COUNTED.items():
        if isinstance(module, base):
            return why
    if type(module).__module__ == nn.modules.activation.__name__:
        return ACTIVATION_NOTE
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)):
        return "normalisation statistics: elementwise, no multiply-adds by the convention"
    return NO_OPS_NOTE


def _layer(call: ModuleCall) -> LayerMacs:
    kind, ops = type(call.module).__name__, defaultdict(int)
    for op in call.ops:
        ops[op.op] += op.macs
    layer = LayerMacs(call.name, kind, "", call.macs, call.bias_adds, ops=dict(ops), forward=not call.leaf)
    layer.uncounted = list(dict.fromkeys(call.uncounted))
    uncounted = f"not counted: {', '.join(layer.uncounted)}" if layer.uncounted else ""
    if not call.ops:
        layer.note = uncounted or _why_not_counted(call.module)
        return layer
    documented = _layer_formula(call)
    layer.formula_macs = documented[1] if documented else None
    if documented and documented[1] == call.macs:
        layer.formula = f"{documented[0]} = {thousands(call.macs)}"
    else:
        layer.formula = f"{_ops_formula(call)} = {thousands(call.macs)}"
    if layer.formula_differs:
        layer.note = f"its layer formula {documented[0]} gives {thousands(documented[1])}; the ops that ran do {thousands(call.macs)}"
    layer.note = "; ".join(filter(None, [layer.note, uncounted]))
    return layer


def count_macs(model: nn.Module, input_shape: tuple[int, ...], torchinfo_mult_adds: int | None = None) -> MacAudit:
    """MACs per module call and in total for one image of `input_shape` (without batch), counted from the ops
    that run in eval mode, with both cross-checks. `torchinfo_mult_adds`: a negative value skips the torchinfo
    check (torchinfo already failed on this model); otherwise torchinfo runs here, per layer, on one image."""
    model = original_module(model)  # a torch.compile'd model: its original forward, which hooks can see
    refuse_torchscript(model)
    input_shape = tuple(input_shape)
    with evaluating(model):
        calls, counter = _count_with_flop_counter(model, input_shape)
        other = _other_input(model, input_shape, calls)
        torchinfo = torchinfo_check(model, input_shape, calls, torchinfo_mult_adds is None or torchinfo_mult_adds >= 0)
    layers = [_layer(call) for call in calls if call.leaf or call.ops or call.uncounted]
    batchnorm = sum(op.macs for call in calls for op in call.ops if "batch_norm" in op.op)
    audit = MacAudit(
        layers,
        sum(layer.macs for layer in layers),
        sum(layer.bias_adds for layer in layers),
        batchnorm,
        flop_counter_check(counter, model, calls),
        torchinfo,
    )
    audit.input_dependent, audit.input_dependent_layers = _input_dependence(calls, other)
    return audit


def _other_input(model: nn.Module, input_shape: tuple[int, ...], calls: list[ModuleCall]) -> list[ModuleCall]:
    """The count again for another input (the first one negated), where the forward read values: a branch on
    them (`if x.mean() > 0`, a detector's proposals) can run other ops. [] when the first pass ran on shapes
    only (no value was read, so every input runs the same ops) or the other input cannot run."""
    if on_shapes_only(calls):
        return []
    try:
        return count_ops(model, input_shape, sign=-1.0)
    except ModelError:  # the audit stands on the first input; this comparison is then not made
        return []


def _macs_by_call_name(calls: list[ModuleCall]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for call in calls:
        totals[f"{call.name or '(root)'} ({type(call.module).__name__})"] += call.macs
    return totals


def _input_dependence(calls: list[ModuleCall], other: list[ModuleCall]) -> tuple[list[int], list[str]]:
    """([MACs for the first input, for the other], the layers that differ) when the two counts differ."""
    if not other:
        return [], []
    first, second = _macs_by_call_name(calls), _macs_by_call_name(other)
    layers = [
        f"{name}: {thousands(first.get(name, 0))} vs {thousands(second.get(name, 0))}"
        for name in dict.fromkeys([*first, *second])
        if first.get(name, 0) != second.get(name, 0)
    ]
    uncounted = [sorted(op for call in run for op in call.uncounted) for run in (calls, other)]
    if not layers and uncounted[0] == uncounted[1]:
        return [], []
    return [sum(first.values()), sum(second.values())], layers


def _count_with_flop_counter(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[list[ModuleCall], Any]:
    """Our count with FlopCounterMode in the same pass; ours alone when FlopCounterMode cannot run."""
    from torch.utils.flop_counter import FlopCounterMode

    counters: list[FlopCounterMode] = []

    def flop_counter() -> FlopCounterMode:
        counters.append(FlopCounterMode(display=False))
        return counters[-1]

    try:
        with flop_counter_without_dynamo():
            return count_ops(model, input_shape, flop_counter), counters[-1]
    except ModelError:
        return count_ops(model, input_shape), None  # a failure of the model itself raises here again


def check_macs_claim(audit: MacAudit, expect: int) -> str | None:
    """None when the claimed MACs per image match ours; else one line with the difference and the likely slip.
    A claim without the batch-norm multiply-adds (how torchvision publishes its figures) is accepted by
    `macs_claim_note`, not here."""
    if expect in (audit.total, audit.total - audit.batchnorm_macs):
        return None
    hints = [
        (2 * audit.total, "that is FLOPs: 2 × MACs"),  # the first that fits explains the claim
        (audit.total + audit.bias_adds, "that is ours + the bias additions, as torchinfo counts"),
        (audit.torchinfo_mult_adds, "that is torchinfo's mult-adds, counted by its own rule"),
        (2 * (audit.total - audit.batchnorm_macs), "that is FLOPs without BatchNorm: 2 × MACs"),
    ]
    hint = next((f" ({why})" for value, why in hints if value == expect), "")
    return f"claimed {thousands(expect)} MACs, counted {thousands(audit.total)} ({audit.total - expect:+,} difference){hint}"


def macs_claim_note(audit: MacAudit, expect: int) -> str | None:
    """The one line that says a claim holds only without BatchNorm (accepted: published figures leave it out)."""
    if not audit.batchnorm_macs or expect != audit.total - audit.batchnorm_macs or expect == audit.total:
        return None
    return (
        f"claimed {thousands(expect)} MACs = ours {thousands(audit.total)} without the {thousands(audit.batchnorm_macs)} BatchNorm "
        "multiply-adds (one per element at inference), which published figures leave out: accepted"
    )
