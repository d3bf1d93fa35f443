"""What a model costs besides its parameters: multiply-adds per layer (with formulas, cross-checked against
torch's FlopCounterMode and torchinfo), inference latency measured timm-style, and size on disk.

Convention, stated wherever a number appears: 1 MAC = 1 multiply + 1 add = 2 FLOPs, per image, forward
pass; bias additions are not MACs (torchinfo counts them as such, so its total is ours + the bias adds).
"""
from __future__ import annotations

import io
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .param_audit import refuse_torchscript

CONVENTION = "1 MAC = 1 multiply + 1 add = 2 FLOPs, per image; bias additions are not MACs"
LATENCY_BATCHES = (1, 256)
WARMUP = 3
MAX_REPEATS = 30
BUDGET_S = 0.4  # per model and batch size: the whole measurement stays a few seconds for a report
# Leaf modules with no multiply-adds worth counting, and why (listed in the audit, never silently dropped).
NOT_COUNTED = {
    nn.modules.pooling._MaxPoolNd: "comparisons, no multiply-adds",
    nn.modules.pooling._AvgPoolNd: "additions only",
    nn.modules.pooling._AdaptiveAvgPoolNd: "additions only",
    nn.modules.pooling._AdaptiveMaxPoolNd: "comparisons, no multiply-adds",
    nn.modules.batchnorm._BatchNorm: "elementwise scale and shift; folds into the preceding layer at inference",
    nn.Dropout: "identity at inference", nn.Flatten: "reshape", nn.Identity: "identity",
}
ACTIVATION_NOTE = "elementwise activation"


@dataclass
class LayerMacs:
    name: str
    type: str
    formula: str
    macs: int
    bias_adds: int = 0
    other_terms: int = 0  # what torchinfo adds for a layer we do not count: its parameter count (BatchNorm)
    note: str = ""  # why a layer has no MACs (pooling, activation, BatchNorm…)


@dataclass
class MacAudit:
    layers: list[LayerMacs]
    total: int
    bias_adds: int
    other_terms: int
    flop_counter_flops: int  # torch.utils.flop_counter, per image; -1 when it could not run
    torchinfo_mult_adds: int  # -1 when unavailable

    @property
    def matches_flop_counter(self) -> bool:
        return self.flop_counter_flops == 2 * self.total

    @property
    def matches_torchinfo(self) -> bool:
        return self.torchinfo_mult_adds == self.total + self.bias_adds + self.other_terms

    @property
    def ignored(self) -> list[LayerMacs]:
        return [layer for layer in self.layers if layer.note]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"matches_flop_counter": self.matches_flop_counter,
                               "matches_torchinfo": self.matches_torchinfo, "convention": CONVENTION}


@dataclass
class Latency:
    batch_size: int
    median_ms: float
    iqr_ms: float  # spread: interquartile range of the repetitions
    repeats: int
    images_per_second: float


@dataclass
class ModelCost:
    macs: MacAudit
    latency: list[Latency] = field(default_factory=list)
    device: str = "cpu"
    threads: int = 1
    state_dict_bytes: int = 0  # torch.save(state_dict) in fp32
    parameter_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs.to_dict(), "latency": [asdict(x) for x in self.latency], "device": self.device,
                "threads": self.threads, "state_dict_bytes": self.state_dict_bytes,
                "parameter_bytes": self.parameter_bytes}


def _n(value: int) -> str:
    return f"{value:,}"


def _conv(module: nn.modules.conv._ConvNd, inputs: torch.Tensor, output: torch.Tensor) -> tuple[str, int, int]:
    kernel = math.prod(module.kernel_size)
    per_group_in = module.in_channels // module.groups
    k_text = "·".join(map(str, module.kernel_size))
    if module.transposed:  # every input element is spread over k·out_c/groups outputs
        spatial = list(inputs.shape[2:])
        macs = math.prod(spatial) * module.in_channels * kernel * (module.out_channels // module.groups)
        formula = f"{'·'.join(map(str, spatial))}·{module.in_channels}·{k_text}·{module.out_channels}/{module.groups}"
    else:  # every output element is a k·in_c/groups dot product
        spatial = list(output.shape[2:])
        macs = math.prod(spatial) * module.out_channels * kernel * per_group_in
        formula = f"{'·'.join(map(str, spatial))}·{module.out_channels}·{k_text}·{module.in_channels}"
        formula += f"/{module.groups}" if module.groups > 1 else ""
    bias = output[0].numel() if module.bias is not None else 0
    return f"{formula} = {_n(macs)}", macs, bias


def _linear(module: nn.Linear, inputs: torch.Tensor, output: torch.Tensor) -> tuple[str, int, int]:
    rows = output[0].numel() // module.out_features  # extra dims (tokens…) repeat the product
    macs = rows * module.in_features * module.out_features
    prefix = f"{rows}·" if rows > 1 else ""
    bias = output[0].numel() if module.bias is not None else 0
    return f"{prefix}{module.in_features}·{module.out_features} = {_n(macs)}", macs, bias


def _layer(name: str, module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> LayerMacs:
    kind = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        return LayerMacs(name, kind, *_conv(module, inputs, output))
    if isinstance(module, nn.Linear):
        return LayerMacs(name, kind, *_linear(module, inputs, output))
    params = sum(p.numel() for p in module.parameters(recurse=False))
    for base, why in NOT_COUNTED.items():
        if isinstance(module, base):
            return LayerMacs(name, kind, "", 0, other_terms=params, note=why)
    if not params:
        return LayerMacs(name, kind, "", 0, note=ACTIVATION_NOTE)
    return LayerMacs(name, kind, "", 0, other_terms=params, note="not counted by reportgen (no formula for this layer type)")


def _forward_records(model: nn.Module, x: torch.Tensor) -> list[LayerMacs]:
    """Each leaf module's MACs from its real input and output shapes, in forward order."""
    records: list[LayerMacs] = []
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        if isinstance(output, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            records.append(_layer(names[module], module, args[0], output))

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return records


def _flop_counter(model: nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(x)
    except Exception:  # noqa: BLE001 — the cross-check must never stop an audit; shown as unavailable
        return -1
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, input_shape: tuple[int, ...], torchinfo_mult_adds: int = -1) -> MacAudit:
    """MACs per layer and in total for one image of `input_shape` (without batch), in eval mode."""
    refuse_torchscript(model)
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_shape, device=next(model.parameters(), torch.zeros(())).device)
        layers = _forward_records(model, x)
        flops = _flop_counter(model, x)
    finally:
        model.train(was_training)
    return MacAudit(layers, sum(layer.macs for layer in layers), sum(layer.bias_adds for layer in layers),
                    sum(layer.other_terms for layer in layers), flops, torchinfo_mult_adds)


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu",
                    batch_sizes: tuple[int, ...] = LATENCY_BATCHES, budget_s: float = BUDGET_S) -> list[Latency]:
    """timm-style inference timing: eval mode under inference_mode, warm-up, then repetitions until the
    time budget or MAX_REPEATS; median and interquartile range. On CPU one thread, so the figure does not
    depend on how many training workers share the machine."""
    device = torch.device(device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    was_training = model.training
    model.eval()
    try:
        return [_time_batch(model, torch.zeros(b, *input_shape, device=device), device, budget_s) for b in batch_sizes]
    finally:
        model.train(was_training)
        torch.set_num_threads(threads)


def _time_batch(model: nn.Module, x: torch.Tensor, device: torch.device, budget_s: float) -> Latency:
    def once() -> float:
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    with torch.inference_mode():
        for _ in range(WARMUP):
            once()
        times, deadline = [], time.perf_counter() + budget_s
        while len(times) < 3 or (len(times) < MAX_REPEATS and time.perf_counter() < deadline):
            times.append(once())
    quartiles = statistics.quantiles(times, n=4)
    median = statistics.median(times)
    return Latency(len(x), 1000 * median, 1000 * (quartiles[2] - quartiles[0]), len(times), len(x) / median)


def model_size(model: nn.Module) -> tuple[int, int]:
    """(bytes of the fp32 state_dict as torch.save writes it, bytes of the parameters in memory)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().float().cpu() for k, v in model.state_dict().items()}, buffer)
    unique = {id(p): p for p in model.parameters()}.values()
    return len(buffer.getvalue()), sum(p.numel() * p.element_size() for p in unique)


def measure_cost(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu",
                 torchinfo_mult_adds: int = -1) -> ModelCost:
    """Everything the report's cost table shows, measured once per model."""
    device = torch.device(device)
    state_dict_bytes, parameter_bytes = model_size(model)
    return ModelCost(count_macs(model, input_shape, torchinfo_mult_adds), measure_latency(model, input_shape, device),
                     str(device), 1 if device.type == "cpu" else torch.get_num_threads(), state_dict_bytes,
                     parameter_bytes)


def check_macs_claim(audit: MacAudit, expect: int) -> str | None:
    """None when the claimed MACs per image match ours; else one line with the difference."""
    if expect == audit.total:
        return None
    hint = " (that is ours + the bias additions, as torchinfo counts)" if expect == audit.total + audit.bias_adds else ""
    hint = " (that is FLOPs: 2 × MACs)" if expect == 2 * audit.total else hint
    return f"claimed {_n(expect)} MACs, counted {_n(audit.total)} ({expect - audit.total:+,} difference){hint}"


def format_macs(audit: MacAudit, label: str = "", fmt: str = "table") -> str:
    """Layer, type, formula, MACs; then totals and both cross-checks, as a console `table` or `markdown`."""
    rows = [(layer.name, layer.type, layer.formula or f"– ({layer.note})", _n(layer.macs) if layer.macs else "")
            for layer in audit.layers]
    if fmt == "markdown":
        return _macs_markdown(audit, label, rows)
    widths = [max(len(r[i]) for r in [("layer", "type", "MACs formula", "MACs"), *rows]) for i in range(4)]
    lines = [f"MACs{f' of {label}' if label else ''} ({CONVENTION})",
             "  ".join(h.ljust(w) for h, w in zip(("layer", "type", "MACs formula", "MACs"), widths))]
    lines += ["  ".join((c.rjust(w) if i == 3 else c.ljust(w)) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.append(f"total MACs per image: {_n(audit.total)} (= {_n(2 * audit.total)} FLOPs)")
    lines.append(f"FlopCounterMode: {cross_check_text(audit)[0]}")
    lines.append(f"torchinfo mult-adds: {cross_check_text(audit)[1]}")
    return "\n".join(lines)


def _macs_markdown(audit: MacAudit, label: str, rows: list[tuple[str, ...]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    flop, info = cross_check_text(audit)
    lines = [f"**MACs{f' of {cell(label)}' if label else ''}** ({CONVENTION})", "",
             "| layer | type | MACs formula | MACs |", "|---|---|---|---:|"]
    lines += [f"| `{name}` | {kind} | {cell(formula)} | {count} |" for name, kind, formula, count in rows]
    lines += ["", f"- total MACs per image: {_n(audit.total)} (= {_n(2 * audit.total)} FLOPs)",
              f"- FlopCounterMode: {flop}", f"- torchinfo mult-adds: {info}"]
    return "\n".join(lines) + "\n"


def cross_check_text(audit: MacAudit) -> tuple[str, str]:
    """The two cross-checks as short verdicts (English; the report translates its own)."""
    if audit.flop_counter_flops < 0:
        flop = "unavailable"
    else:
        flop = f"{_n(audit.flop_counter_flops)} FLOPs {'✓' if audit.matches_flop_counter else '✗ MISMATCH'}"
    if audit.torchinfo_mult_adds < 0:
        info = "unavailable"
    else:
        extra = f" and {_n(audit.other_terms)} for the parameters of uncounted layers" if audit.other_terms else ""
        info = (f"{_n(audit.torchinfo_mult_adds)} {'✓' if audit.matches_torchinfo else '✗ MISMATCH'} "
                f"(torchinfo also counts the {_n(audit.bias_adds)} bias additions{extra})")
    return flop, info
