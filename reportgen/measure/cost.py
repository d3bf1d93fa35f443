"""What a model costs besides its parameters: multiply-adds per layer (with formulas, cross-checked against
torch's FlopCounterMode and torchinfo), inference latency measured timm-style, and size on disk.

Convention, stated wherever a number appears: 1 MAC = 1 multiply + 1 add = 2 FLOPs, per image, forward
pass; bias additions are not MACs; BatchNorm in eval mode is one multiply-add per element (x·scale + shift).

    macs = count_macs(create_model("lenet5"), (1, 28, 28))      # MacAudit: per layer, totals, cross-checks
    print(format_macs(macs, "lenet5"))
    cost = measure_cost(model, (1, 28, 28), "cpu")              # ModelCost: MACs, latency, size; .to_dict()

The two counters see the model differently, and each difference is listed rather than hidden:
FlopCounterMode counts matrix products and convolutions only (2 FLOPs per MAC), so it ignores BatchNorm;
torchinfo counts each layer's parameters times its output positions (Conv*) or once per image (other
layers), so it adds bias additions and counts BatchNorm (and transposed convolutions) its own way.
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

from reportgen.measure.params import evaluating, measure_torchinfo_mult_adds, model_device, refuse_torchscript

CONVENTION = (
    "1 MAC = 1 multiply + 1 add = 2 FLOPs, per image; bias additions are not MACs; "
    "BatchNorm in eval is one multiply-add per element"
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
NO_FORMULA_NOTE = "not counted by reportgen (no formula for this layer type)"


@dataclass
class LayerMacs:
    """One call of a leaf module: its MACs for one image and what each cross-check should see of it."""

    name: str
    type: str
    formula: str  # "28·28·6·5·5·1 = 117,600"; "" when not counted (then `note` says why)
    macs: int
    bias_adds: int = 0  # one addition per output element of a layer with a bias: not a MAC
    torchinfo_expected: int = 0  # torchinfo's rule: parameters × output positions (Conv*), else parameters
    note: str = ""  # why a layer has no MACs (pooling, activation, no formula…)


@dataclass
class MacAudit:
    layers: list[LayerMacs]
    total: int  # MACs per image
    bias_adds: int
    other_terms: int  # torchinfo's expected figure − ours − bias additions (BatchNorm by parameters…; may be < 0)
    flop_counter_flops: int  # torch.utils.flop_counter, per image; -1 when it could not run
    torchinfo_mult_adds: int  # -1 when unavailable
    flop_counter_layers: dict[str, int] = field(default_factory=dict)  # leaf module name → its FLOPs

    @property
    def torchinfo_expected(self) -> int:
        return self.total + self.bias_adds + self.other_terms

    @property
    def matches_torchinfo(self) -> bool:
        return self.torchinfo_mult_adds >= 0 and self.torchinfo_mult_adds == self.torchinfo_expected

    @property
    def torchinfo_differs(self) -> list[LayerMacs]:
        """Layers torchinfo counts otherwise than our MACs plus bias additions (BatchNorm, transposed conv…)."""
        return [layer for layer in self.layers if layer.torchinfo_expected != layer.macs + layer.bias_adds]

    def _macs_by_name(self) -> dict[str, int]:
        macs: dict[str, int] = defaultdict(int)
        for layer in self.layers:  # a module called twice is one entry for FlopCounterMode
            macs[layer.name] += layer.macs
        return macs

    @property
    def flop_counter_ignores(self) -> list[str]:
        """Layers with MACs that FlopCounterMode does not count (BatchNorm): listed, left out of the comparison."""
        return [name for name, macs in self._macs_by_name().items() if macs and not self.flop_counter_layers.get(name)]

    @property
    def flop_counter_disagrees(self) -> list[str]:
        """Layers both count where FlopCounterMode's FLOPs are not 2 × our MACs, or that only it counts."""
        macs = self._macs_by_name()
        return [name for name, flops in self.flop_counter_layers.items() if flops != 2 * macs.get(name, 0)]

    @property
    def flop_counter_outside_layers(self) -> int:
        """FLOPs FlopCounterMode saw outside every leaf layer (a matmul in forward itself): work we did not count."""
        return self.flop_counter_flops - sum(self.flop_counter_layers.values()) if self.flop_counter_flops >= 0 else 0

    @property
    def flop_counter_compared_macs(self) -> int:
        return sum(macs for name, macs in self._macs_by_name().items() if self.flop_counter_layers.get(name))

    @property
    def matches_flop_counter(self) -> bool:
        return (
            self.flop_counter_flops >= 0 and not self.flop_counter_disagrees and self.flop_counter_outside_layers == 0
        )

    @property
    def ignored(self) -> list[LayerMacs]:
        """Layers we do not count, each with its reason."""
        return [layer for layer in self.layers if layer.note]

    def to_dict(self) -> dict[str, Any]:
        flop_check, torchinfo_check = cross_check_text(self)
        return asdict(self) | {
            "convention": CONVENTION,
            "matches_flop_counter": self.matches_flop_counter,
            "flop_counter_check": flop_check,
            "flop_counter_ignores": self.flop_counter_ignores,
            "flop_counter_outside_layers": self.flop_counter_outside_layers,
            "matches_torchinfo": self.matches_torchinfo,
            "torchinfo_check": torchinfo_check,
            "torchinfo_expected": self.torchinfo_expected,
            "torchinfo_differs": [layer.name for layer in self.torchinfo_differs],
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


def _conv(module: nn.modules.conv._ConvNd, inputs: torch.Tensor, output: torch.Tensor) -> tuple[str, int, int]:
    groups = f"/{module.groups}" if module.groups > 1 else ""
    if module.transposed:  # every input element is spread over k·out_c/groups outputs
        spatial, channels = inputs.shape[2:], f"{module.in_channels}·{_dims(module.kernel_size)}·{module.out_channels}"
    else:  # every output element is a k·in_c/groups dot product
        spatial, channels = output.shape[2:], f"{module.out_channels}·{_dims(module.kernel_size)}·{module.in_channels}"
    macs = (
        math.prod(spatial) * module.in_channels * module.out_channels * math.prod(module.kernel_size) // module.groups
    )
    bias = output[0].numel() if module.bias is not None else 0
    return f"{_dims(spatial)}·{channels}{groups} = {_n(macs)}", macs, bias


def _linear(module: nn.Linear, output: torch.Tensor) -> tuple[str, int, int]:
    rows = output[0].numel() // module.out_features  # extra dims (tokens…) repeat the product
    macs = rows * module.in_features * module.out_features
    prefix = f"{rows}·" if rows > 1 else ""
    bias = output[0].numel() if module.bias is not None else 0
    return f"{prefix}{module.in_features}·{module.out_features} = {_n(macs)}", macs, bias


def _batchnorm(output: torch.Tensor) -> tuple[str, int, int]:
    # in eval, (x − mean)/√(var + ε)·γ + β is one multiply-add per element with folded constants
    shape = [*output.shape[2:], output.shape[1]]  # positions first, then channels, as for conv
    macs = output[0].numel()
    return f"{_dims(shape)} = {_n(macs)}", macs, 0


def _counted(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> tuple[str, int, int] | None:
    """(formula, MACs, bias additions) for the layer types with a formula; None for the rest."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(module, inputs, output)
    if isinstance(module, nn.Linear):
        return _linear(module, output)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training and module.track_running_stats:
        return _batchnorm(output)
    return None


def _why_not_counted(module: nn.Module) -> str:
    for base, why in NOT_COUNTED.items():
        if isinstance(module, base):
            return why
    if type(module).__module__ == nn.modules.activation.__name__ and not isinstance(module, nn.MultiheadAttention):
        return ACTIVATION_NOTE
    return NO_FORMULA_NOTE


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    return (
        next((item for item in output if isinstance(item, torch.Tensor)), None)
        if isinstance(output, (tuple, list))
        else None
    )


def _torchinfo_expected(module: nn.Module, output: Any) -> int:
    """Per image, what torchinfo 1.8's rule adds for this module (it sees the first output tensor): a
    `weight` or `bias` (pruned: its unmasked entries) times the output positions for a class named *Conv*,
    once otherwise; other weights (an RNN's weight_ih_l0…) times the output's second dimension."""
    shape = getattr(_first_tensor(output), "shape", ())
    total = 0
    for name, param in module.named_parameters(recurse=False):
        base = name.removesuffix("_orig")
        mask = getattr(module, base + "_mask", None) if base != name else None
        count = int(mask.sum()) if isinstance(mask, torch.Tensor) else param.numel()
        if base in ("weight", "bias"):
            total += count * (math.prod(shape[2:]) if "Conv" in type(module).__name__ else 1)
        elif "weight" in base or "bias" in base:
            total += count * (shape[1] if len(shape) > 1 else 1)
    return total


def _layer(name: str, module: nn.Module, inputs: torch.Tensor | None, output: Any) -> LayerMacs:
    kind, expected = type(module).__name__, _torchinfo_expected(module, output)
    counted = _counted(module, inputs, output) if inputs is not None and isinstance(output, torch.Tensor) else None
    if counted is None:  # a tuple output (LSTM…) has no formula here either: listed, never dropped
        return LayerMacs(name, kind, "", 0, torchinfo_expected=expected, note=_why_not_counted(module))
    return LayerMacs(name, kind, *counted, torchinfo_expected=expected)


def _leaves(model: nn.Module) -> dict[nn.Module, str]:
    return {module: name for name, module in model.named_modules() if next(module.children(), None) is None}


def _forward_records(model: nn.Module, x: torch.Tensor) -> list[LayerMacs]:
    """Each leaf module's MACs from its real input and output shapes, in the order they are called."""
    records: list[LayerMacs] = []
    leaves = _leaves(model)

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        records.append(_layer(leaves[module], module, first, output))

    handles = [module.register_forward_hook(hook) for module in leaves]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return records


def _flop_counter(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """(total FLOPs, {leaf name: its FLOPs} for the leaves it counted); (-1, {}) when it cannot run."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(x)
    except Exception:  # noqa: BLE001 — the cross-check must never stop an audit; shown as unavailable
        return -1, {}
    counts, root = counter.get_flop_counts(), type(model).__name__  # keys: "LeNet5.features.0"
    per_layer = {
        name: sum(counts.get(f"{root}.{name}" if name else root, {}).values()) for name in _leaves(model).values()
    }
    return int(counter.get_total_flops()), {name: int(flops) for name, flops in per_layer.items() if flops}


def count_macs(model: nn.Module, input_shape: tuple[int, ...], torchinfo_mult_adds: int | None = None) -> MacAudit:
    """MACs per layer and in total for one image of `input_shape` (without batch), in eval mode, with both
    cross-checks. `torchinfo_mult_adds`: torchinfo's figure per image if already known (the parameter audit
    has it as `mult_adds`), -1 to skip that check, None to ask torchinfo here."""
    refuse_torchscript(model)
    x = torch.zeros(1, *input_shape, device=model_device(model))
    with evaluating(model):
        layers = _forward_records(model, x)
        flops, per_layer = _flop_counter(model, x)
    if torchinfo_mult_adds is None:
        torchinfo_mult_adds = measure_torchinfo_mult_adds(model, tuple(input_shape))
    total, bias_adds = sum(layer.macs for layer in layers), sum(layer.bias_adds for layer in layers)
    other = sum(layer.torchinfo_expected for layer in layers) - total - bias_adds
    return MacAudit(layers, total, bias_adds, other, flops, torchinfo_mult_adds, per_layer)


def check_macs_claim(audit: MacAudit, expect: int) -> str | None:
    """None when the claimed MACs per image match ours; else one line with the difference and the likely slip."""
    if expect == audit.total:
        return None
    hints = [
        (2 * audit.total, "that is FLOPs: 2 × MACs"),  # the first that fits explains the claim
        (audit.total + audit.bias_adds, "that is ours + the bias additions, as torchinfo counts"),
        (audit.torchinfo_mult_adds, "that is torchinfo's mult-adds, counted by its own rule"),
    ]
    hint = next((f" ({why})" for value, why in hints if value == expect), "")
    return f"claimed {_n(expect)} MACs, counted {_n(audit.total)} ({audit.total - expect:+,} difference){hint}"


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


def _grouped(layers: list[LayerMacs], value: Callable[[list[LayerMacs]], str]) -> str:
    """Layers by type, in order: one layer by name ("bn1 (BatchNorm2d, …)"), several as "20 BatchNorm2d layers
    (…)" — a ResNet lists 20 BatchNorms; the JSON keeps every name."""
    by_type: dict[str, list[LayerMacs]] = defaultdict(list)
    for layer in layers:
        by_type[layer.type].append(layer)
    parts = []
    for kind, group in by_type.items():
        names = {layer.name for layer in group}
        who = f"{group[0].name or '(root)'} ({kind}, " if len(names) == 1 else f"{len(names)} {kind} layers ("
        parts.append(f"{who}{value(group)})")
    return ", ".join(parts)


def _macs_of(group: list[LayerMacs]) -> str:
    return f"{_n(sum(layer.macs for layer in group))} MACs"


def _flop_counter_text(audit: MacAudit) -> str:
    if audit.flop_counter_flops < 0:
        return "unavailable"
    compared = audit.flop_counter_compared_macs
    if not audit.matches_flop_counter:
        disagree = set(audit.flop_counter_disagrees)
        problems = (
            [f"layers where it differs: {_grouped([x for x in audit.layers if x.name in disagree], _flops_of(audit))}"]
            if disagree
            else []
        )
        if audit.flop_counter_outside_layers:
            problems.append(f"{_n(audit.flop_counter_outside_layers)} FLOPs outside any layer")
        text = (
            f"{_n(audit.flop_counter_flops)} FLOPs ✗ MISMATCH (2 × ours would be {_n(2 * compared)}; "
            f"{'; '.join(problems)})"
        )
    elif compared:
        text = f"{_n(audit.flop_counter_flops)} FLOPs ✓ (= 2 × the {_n(compared)} MACs of the layers both count)"
    else:
        text = f"{_n(audit.flop_counter_flops)} FLOPs ✓ (it counts none of these layers either)"
    ignores = set(audit.flop_counter_ignores)
    return text + (
        f"; it ignores {_grouped([x for x in audit.layers if x.name in ignores], _macs_of)}" if ignores else ""
    )


def _flops_of(audit: MacAudit) -> Callable[[list[LayerMacs]], str]:
    def value(group: list[LayerMacs]) -> str:
        flops = sum(audit.flop_counter_layers.get(name, 0) for name in {layer.name for layer in group})
        return f"{_n(flops)} FLOPs, ours {_macs_of(group)}"

    return value


def _torchinfo_value(group: list[LayerMacs]) -> str:
    return f"as {_n(sum(layer.torchinfo_expected for layer in group))}, ours {_macs_of(group)}"


def _torchinfo_text(audit: MacAudit) -> str:
    if audit.torchinfo_mult_adds < 0:
        return "unavailable"
    verdict = (
        "✓" if audit.matches_torchinfo else f"✗ MISMATCH (its rule on our layers gives {_n(audit.torchinfo_expected)})"
    )
    differs = audit.torchinfo_differs
    bias_adds = sum(layer.bias_adds for layer in audit.layers if layer not in differs)
    why = [f"torchinfo also counts the {_n(bias_adds)} bias additions"] if bias_adds else []
    if differs:
        why.append(f"it counts {_grouped(differs, _torchinfo_value)}")
    return f"{_n(audit.torchinfo_mult_adds)} {verdict}" + (f" ({'; '.join(why)})" if why else "")


def cross_check_text(audit: MacAudit) -> tuple[str, str]:
    """The two cross-checks as one-line verdicts (FlopCounterMode, torchinfo), in English."""
    return _flop_counter_text(audit), _torchinfo_text(audit)


def format_macs(audit: MacAudit, label: str = "", fmt: str = "table") -> str:
    """Layer, type, formula, MACs; then totals and both cross-checks, as a console `table` or `markdown`."""
    rows = [
        (layer.name or "(root)", layer.type, layer.formula or f"– ({layer.note})", _n(layer.macs) if layer.macs else "")
        for layer in audit.layers
    ]
    flop, info = cross_check_text(audit)
    summary = [
        f"total MACs per image: {_n(audit.total)} (= {_n(2 * audit.total)} FLOPs)",
        f"FlopCounterMode: {flop}",
        f"torchinfo mult-adds: {info}",
    ]
    title = f"MACs{f' of {label}' if label else ''} ({CONVENTION})"
    if fmt == "markdown":
        return _macs_markdown(title, rows, summary)
    header = ("layer", "type", "MACs formula", "MACs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([title, line(header), *map(line, rows), *summary])


def _macs_markdown(title: str, rows: list[tuple[str, ...]], summary: list[str]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"**{cell(title)}**", "", "| layer | type | MACs formula | MACs |", "|---|---|---|---:|"]
    lines += [f"| `{name}` | {kind} | {cell(formula)} | {count} |" for name, kind, formula, count in rows]
    lines += ["", *(f"- {cell(text)}" for text in summary)]
    return "\n".join(lines) + "\n"
