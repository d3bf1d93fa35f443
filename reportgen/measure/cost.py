"""What a model costs besides its parameters: multiply-adds counted from the ops that run (with per-layer
formulas beside them, cross-checked against torch's FlopCounterMode and torchinfo), inference latency measured
timm-style, and size on disk.

Convention, stated once (CONVENTION) and wherever a number appears: 1 MAC = 1 multiply + 1 add = 2 FLOPs, per
image, forward pass in eval mode; bias additions are not MACs; BatchNorm at inference is one multiply-add per
element (x·scale + shift, FrozenBatchNorm2d too); attention counts q·kᵀ and weights·v; an RNN counts its
weight matrices at every time step; elementwise work (activations, gates, softmax, norms' statistics) is not
MACs. `--expect-macs` accepts the total, or the total without BatchNorm (as torchvision publishes, noted).

    macs = count_macs(create_model("lenet5"), (1, 28, 28))      # MacAudit: per layer, totals, cross-checks
    print(format_macs(macs, "lenet5"))
    cost = measure_cost(model, (1, 28, 28), "cpu")              # ModelCost: MACs, latency, size; .to_dict()

Counting is measure/op_counts.py (ops on real shapes, attributed to the module that ran them); the checks are
measure/mac_checks.py, each saying which of our MACs it could not see and why, never passing them.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.mac_checks import CrossCheck, flop_counter_check, torchinfo_check
from reportgen.measure.numbers import Words, pad, text_width
from reportgen.measure.op_counts import ModuleCall, count_ops, on_shapes_only
from reportgen.measure.params import evaluating, original_module, refuse_torchscript
from reportgen.measure.unchecked import explained_text, unchecked_text
from reportgen.messages import Message

CONVENTION = (
    "1 MAC = 1 multiply + 1 add = 2 FLOPs, per image; bias additions are not MACs; "
    "BatchNorm at inference is one multiply-add per element"
)
LATENCY_BATCHES = (1, 256)
WARMUP = 3
MIN_REPEATS = 3  # a median and quartiles need a few samples even when one forward exceeds the budget
MAX_REPEATS = 30
BUDGET_S = 0.4  # per model and batch size: the whole measurement stays a few seconds for a report
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
            "flop_counter_not_checked": _not_checked(self.flop_counter),
            "torchinfo_not_checked": _not_checked(self.torchinfo),
            "not_counted": self.not_counted,  # `total` is a lower bound when this is not empty
        }


@dataclass
class Latency:
    batch_size: int
    median_ms: float
    iqr_ms: float  # spread: interquartile range of the repetitions
    min_ms: float
    max_ms: float
    repeats: int
    images_per_second: float  # batch size / median


@dataclass
class ModelCost:
    macs: MacAudit
    latency: list[Latency] = field(default_factory=list)
    device: str = "cpu"
    threads: int = 1  # torch threads during the latency measurement
    state_dict_bytes: int = 0  # torch.save(state_dict) with floating tensors in fp32
    parameter_bytes: int = 0  # unique parameters, as stored in memory

    def to_dict(self) -> dict[str, Any]:
        return {
            "macs": self.macs.to_dict(),
            "latency": [asdict(x) for x in self.latency],
            "device": self.device,
            "threads": self.threads,
            "state_dict_bytes": self.state_dict_bytes,
            "parameter_bytes": self.parameter_bytes,
        }


# --------------------------------------------------------------------------- MACs per layer


def _n(value: int) -> str:
    return f"{value:,}"


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
        layer.formula = f"{documented[0]} = {_n(call.macs)}"
    else:
        layer.formula = f"{_ops_formula(call)} = {_n(call.macs)}"
    if layer.formula_differs:
        layer.note = f"its layer formula {documented[0]} gives {_n(documented[1])}; the ops that ran do {_n(call.macs)}"
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
        f"{name}: {_n(first.get(name, 0))} vs {_n(second.get(name, 0))}"
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
    return f"claimed {_n(expect)} MACs, counted {_n(audit.total)} ({audit.total - expect:+,} difference){hint}"


def macs_claim_note(audit: MacAudit, expect: int) -> str | None:
    """The one line that says a claim holds only without BatchNorm (accepted: published figures leave it out)."""
    if not audit.batchnorm_macs or expect != audit.total - audit.batchnorm_macs or expect == audit.total:
        return None
    return (
        f"claimed {_n(expect)} MACs = ours {_n(audit.total)} without the {_n(audit.batchnorm_macs)} BatchNorm "
        "multiply-adds (one per element at inference), which published figures leave out: accepted"
    )


# --------------------------------------------------------------------------- latency and size


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    batch_sizes: tuple[int, ...] = LATENCY_BATCHES,
    budget_s: float = BUDGET_S,
) -> list[Latency]:
    """timm-style inference timing: eval mode under inference_mode, warm-up, then repetitions until the
    time budget or MAX_REPEATS; median and interquartile range. On CPU one thread, so the figure does not
    depend on how many training workers share the machine (the thread count is restored afterwards)."""
    device = torch.device(device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        with evaluating(model):
            return [
                _time_batch(model, torch.zeros(b, *input_shape, device=device), device, budget_s) for b in batch_sizes
            ]
    finally:
        torch.set_num_threads(threads)


def _time_batch(model: nn.Module, x: torch.Tensor, device: torch.device, budget_s: float) -> Latency:
    def once() -> float:
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":  # kernels run asynchronously: wait for them inside the timed span
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    with torch.inference_mode():
        for _ in range(WARMUP):
            once()
        times, deadline = [], time.perf_counter() + budget_s
        while len(times) < MIN_REPEATS or (len(times) < MAX_REPEATS and time.perf_counter() < deadline):
            times.append(once())
    quartiles = statistics.quantiles(times, n=4)
    median = statistics.median(times)
    return Latency(
        len(x),
        1000 * median,
        1000 * (quartiles[2] - quartiles[0]),
        1000 * min(times),
        1000 * max(times),
        len(times),
        len(x) / median,
    )


def model_size(model: nn.Module) -> tuple[int, int]:
    """(bytes of the state_dict as torch.save writes it, floating tensors in fp32; bytes of the unique
    parameters in memory)."""
    buffer = io.BytesIO()
    state = {
        k: v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }  # integer buffers (BatchNorm's step count) stay integers
    torch.save(state, buffer)
    unique = {id(p): p for p in model.parameters()}.values()
    return len(buffer.getvalue()), sum(p.numel() * p.element_size() for p in unique)


def measure_cost(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    torchinfo_mult_adds: int | None = None,
) -> ModelCost:
    """Everything the report's cost table shows, measured once per model (the model already on `device`)."""
    device = torch.device(device)
    state_dict_bytes, parameter_bytes = model_size(model)
    return ModelCost(
        count_macs(model, input_shape, torchinfo_mult_adds),
        measure_latency(model, input_shape, device),
        str(device),
        1 if device.type == "cpu" else torch.get_num_threads(),
        state_dict_bytes,
        parameter_bytes,
    )


# --------------------------------------------------------------------------- formatting


def _not_checked(check: CrossCheck, translate: Words = str) -> str:
    """Why part of our count went unchecked, layers of one type and reason together ("20 BatchNorm2d layers
    (2,483,712 MACs): …"); "" when the check saw everything. vars(), not asdict(): each reason stays a message,
    worded by `translate` (str: in English)."""
    if check.figure < 0:
        return translate(check.error)
    return unchecked_text((vars(entry) for entry in check.not_checked), _sentences(translate), translate)


def _sentences(translate: Words) -> Callable[..., str]:
    """`translate` as unchecked.py's `tr(key, **values)`."""
    return lambda key, **values: translate(Message(key, values))


def _check_text(check: CrossCheck, unit: str, factor: int, total: int, translate: Words = str) -> str:
    """One line: ✓ only for what the check saw and confirmed; ✗ with the places it disagrees; "not checked" and
    why for the rest."""
    say = _sentences(translate)
    if check.figure < 0:
        return say("not checked ({why})", why=translate(check.error))
    figure = f"{_n(check.figure)}{unit}"
    explained = ""
    if check.explained:
        why = explained_text((vars(e) for e in check.explained), say, translate)
        explained = say("; differs, explained: {why}", why=why)
    if check.disagree:
        verdict = say("{figure} ✗ MISMATCH ({where})", figure=figure, where="; ".join(check.disagree))
    elif check.checked_macs:
        key = "{figure} ✓ for the {checked} MACs it can see (it counts {factor} × ours)" if factor > 1 else (
            "{figure} ✓ for the {checked} MACs it can see (it counts ours)")  # fmt: skip
        verdict = say(key, figure=figure, checked=_n(check.checked_macs), factor=factor)
    elif check.explained:
        verdict = f"{figure} ≠ " + say("ours")
    elif total:
        return say("{figure}, not checked: {why}", figure=figure, why=_not_checked(check, translate))
    else:
        verdict = say("{figure} (no multiply-adds to check)", figure=figure)
    unchecked = say("; not checked: {why}", why=_not_checked(check, translate)) if check.unchecked_macs else ""
    return verdict + explained + unchecked


def cross_check_text(audit: MacAudit, translate: Words = str) -> tuple[str, str]:
    """The two cross-checks as one-line verdicts (FlopCounterMode, torchinfo), worded by `translate`."""
    flop = _check_text(audit.flop_counter, " FLOPs", 2, audit.total, translate)
    info = _check_text(audit.torchinfo, "", 1, audit.total, translate)
    if audit.torchinfo.checked_macs and not audit.torchinfo.disagree:
        ours = _sentences(translate)("(it counts ours)")
        info = info.replace(ours, _sentences(translate)("(it counts ours + their bias additions)"))
    return flop, info


def total_text(audit: MacAudit, translate: Words = str) -> str:
    """ "61,470 (= 122,940 FLOPs)"; "at least 12,544 (…): 1 op with multiply-adds not counted" when some ran
    without a formula here (the total is then a lower bound, never a complete figure)."""
    text = f"{_n(audit.total)} (= {_n(2 * audit.total)} FLOPs)"
    missing = len(audit.not_counted)
    if not missing:
        return text
    key = "at least {text}: {n} ops not counted (below)" if missing > 1 else "at least {text}: 1 op not counted (below)"
    return _sentences(translate)(key, text=text, n=missing)


def input_dependence_text(audit: MacAudit, translate: Words = str) -> str:
    """Both figures and where they differ, when the op counts depend on the input's values."""
    first, second = audit.input_dependent
    return _sentences(translate)(
        "{first} MACs for one random input, {second} for another (its negation): the forward's work depends "
        "on its input's values, and the total above is the first ({layers})",
        first=_n(first),
        second=_n(second),
        layers="; ".join(audit.input_dependent_layers),
    )


def format_macs(audit: MacAudit, label: str = "", fmt: str = "table", translate: Words = str) -> str:
    """Layer, type, formula, MACs; then totals, findings and both cross-checks, as a console `table` or
    `markdown`, worded by `translate` (str: in English; reportgen.report.i18n.wording(lang) for another)."""
    say = _sentences(translate)
    rows = [
        (
            (layer.name or "(root)") + (say(" (forward)") if layer.forward else ""),
            layer.type,
            layer.formula or f"– ({translate(layer.note)})",
            _n(layer.macs) if layer.macs else "",
        )
        for layer in audit.layers
    ]
    flop, info = cross_check_text(audit, translate)
    summary = [say("total MACs per image: {total}", total=total_text(audit, translate))]
    if audit.batchnorm_macs:
        summary[0] += say("; without BatchNorm {macs}", macs=_n(audit.total - audit.batchnorm_macs))
    summary += [say("finding: {name} ({type}): {note}", name=layer.name or "(root)", type=layer.type,
                    note=translate(layer.note)) for layer in audit.findings]  # fmt: skip
    summary += [say("not in the total: {entry}", entry=translate(entry)) for entry in audit.not_counted]
    if audit.input_dependent:
        summary.append(say("input-dependent: {text}", text=input_dependence_text(audit, translate)))
    summary += [f"{say('FlopCounterMode')}: {flop}", say("torchinfo mult-adds: {check}", check=info)]
    title = say("MACs of {label} ({convention})" if label else "MACs ({convention})", label=label,
                convention=say(CONVENTION))  # fmt: skip
    if fmt == "markdown":
        return _macs_markdown(title, rows, summary, translate)
    header = tuple(say(word) for word in _MAC_COLUMNS)
    widths = [max(text_width(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(pad(c, w, i == 3) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([title, line(header), *map(line, rows), *summary])


_MAC_COLUMNS = ("layer", "type", "MACs formula", "MACs")


def _macs_markdown(title: str, rows: list[tuple[str, ...]], summary: list[str], translate: Words = str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    header = " | ".join(translate(Message(word)) for word in _MAC_COLUMNS)
    lines = [f"**{cell(title)}**", "", f"| {header} |", "|---|---|---|---:|"]
    lines += [f"| `{name}` | {kind} | {cell(formula)} | {count} |" for name, kind, formula, count in rows]
    lines += ["", *(f"- {cell(text)}" for text in summary)]
    return "\n".join(lines) + "\n"
