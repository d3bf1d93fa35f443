"""Where a training epoch of the default experiment's models spends its time: an op-level profile (a benchmark,
not a test).

    .venv/bin/python benchmarks/profile_epoch.py [--images 12800] [--threads 1] [--top 8]

For each model of the default experiment (LeNet-5, the parameter-matched MLP, LeNet-5 + BN + Dropout), in the
layout and with the CPU kernel levers and freed memory a trial trains with, it trains one warm-up pass, then
profiles reportgen's engine (train_epoch) over `--images` Fashion-MNIST
training images with torch.profiler, and prints the ops that take the most self CPU time: convolution
forward and backward, pooling, BatchNorm, the optimizer, data slicing. Seconds are per full epoch of 60,000
images, scaled from the profiled images; the share is of the profiled time. Each model's line also gives its
forward + backward GFLOP per epoch and the rate it reached against this machine's fp32 GEMM rate.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from reportgen import cpu_kernels
from reportgen.data.datasets import load_dataset
from reportgen.freed_memory import keep_freed_memory
from reportgen.models.registry import create_model
from reportgen.train import TrainConfig, apply_layout, choose_layout, make_optimizer, normalize, train_epoch

MODELS = ("lenet5", "mlp_lenet_sized", "lenet5_regularized")
EPOCH_IMAGES = 60_000


def gemm_gflops(n: int = 1024, repeats: int = 5) -> float:
    """This machine's fp32 matrix-multiply rate at the current thread count: the ceiling."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def step_gflop(model: torch.nn.Module, data, config: TrainConfig) -> float:
    """Forward + backward GFLOP of one training batch (FlopCounterMode: matrix products and convolutions)."""
    x = normalize(data.train_images[: config.batch_size], data.mean, data.std, None, None)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def profile_model(name: str, data, images: int, top: int, peak: float) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    cpu = torch.device("cpu")
    apply_layout(model, choose_layout(model, cpu))  # as a trial trains it: its layout and CPU kernel levers
    config = TrainConfig()
    optimizer = make_optimizer(config, model.parameters())
    subset = data.train_images[:images], data.train_labels[:images]
    with cpu_kernels.installed(model, cpu_kernels.choose(model, cpu)):
        train_epoch(model, optimizer, *subset, data.mean, data.std, config, 1)  # warm-up: allocator, kernels
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            train_epoch(model, optimizer, *subset, data.mean, data.std, config, 2)
            seconds = time.perf_counter() - started
    scale = EPOCH_IMAGES / images
    batches = EPOCH_IMAGES / config.batch_size
    gflop = step_gflop(model, data, config) * batches
    print(
        f"\n{name}: {seconds * scale:.2f} s per epoch (scaled from {images:,} images); {gflop:.1f} GFLOP forward + "
        f"backward per epoch -> {gflop / (seconds * scale):.1f} GFLOP/s, {100 * gflop / (seconds * scale) / peak:.1f}%"
        " of the GEMM rate"
    )
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"  {'op':<44} {'s/epoch':>8} {'share':>6} {'calls/batch':>11}")
    for event in events[:top]:
        per_epoch = event.self_cpu_time_total / 1e6 * scale
        calls = event.count / (images / config.batch_size)
        print(f"  {event.key[:44]:<44} {per_epoch:8.2f} {100 * event.self_cpu_time_total / total:5.1f}% {calls:11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12_800, help="training images profiled (scaled to 60,000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=8, help="ops listed per model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every training process does (select_device)
    data = load_dataset("fashion-mnist")
    peak = gemm_gflops()
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"{args.threads} thread(s), batch 64, fp32 GEMM rate {peak:.1f} GFLOP/s; load average {load}")
    for name in MODELS:
        profile_model(name, data, args.images, args.top, peak)


if __name__ == "__main__":
    main()
