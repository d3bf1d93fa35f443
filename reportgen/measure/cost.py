"""What a model costs besides its parameters: multiply-adds (measure/macs.py), inference latency measured
timm-style, and size on disk; `measure_cost` measures all three once per model for the report's cost table.

    cost = measure_cost(model, (1, 28, 28), "cpu")              # ModelCost: MACs, latency, size; .to_dict()
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.measure.macs import MacAudit, count_macs
from reportgen.measure.probe import evaluating

LATENCY_BATCHES = (1, 256)
WARMUP = 3
MIN_REPEATS = 5  # a median and quartiles need a few samples even when one forward exceeds the budget
MAX_REPEATS = 30
BUDGET_S = 0.15  # per model and batch size, after the warm-up: the default models take 0.4 s in all


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
