"""Training speed, side by side on the same data, model and batch size (a benchmark, not a test).

    .venv/bin/python benchmarks/train_speed.py [--epochs 3] [--batch-size 64] [--sweep 8] [--device auto]

(1) the textbook loop of the seed reports: torchvision FashionMNIST + DataLoader + ToTensor/Normalize,
    loss.item() every batch;
(2) reportgen's engine (uint8 tensors on the device, one permutation per epoch, one sync per epoch);
(3) reportgen's vectorised sweep of K learning rates as one stacked model vs K sequential engine runs.
Prints seconds per epoch, ratios, achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode on one
training step), peak memory and the final test accuracy of each, so speed is never bought with accuracy.
"""
from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from reportgen.vectorized import train_stacked
from torch.utils.flop_counter import FlopCounterMode

from reportgen.data.datasets import FASHION_MNIST_DIR, load_dataset
from reportgen.models.registry import create_model
from reportgen.train import TrainConfig, select_device, train_model

MODEL = "lenet5"
SWEEP_LRS = (3e-3, 2e-3, 1.5e-3, 1e-3, 7e-4, 5e-4, 3e-4, 2e-4)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def training_flops(batch_size: int, device: torch.device) -> int:
    """FLOPs of one forward + backward step of the model on one batch, counted by torch."""
    torch.manual_seed(0)
    model = create_model(MODEL).to(device)
    x = torch.randn(batch_size, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def textbook(epochs: int, batch_size: int, device: torch.device, mean: float, std: float) -> tuple[float, float]:
    """The seeds' loop. torchvision wants un-gzipped files under root/FashionMNIST/raw/."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    root = Path(tempfile.mkdtemp())
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in FASHION_MNIST_DIR.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train = DataLoader(datasets.FashionMNIST(str(root), train=True, transform=transform), batch_size=batch_size,
                       shuffle=True, generator=torch.Generator().manual_seed(0))
    test = DataLoader(datasets.FashionMNIST(str(root), train=False, transform=transform), batch_size=1000)
    torch.manual_seed(0)
    model = create_model(MODEL).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for x, y in train:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss.item()  # the seeds print/accumulate the loss every batch: a device sync per batch
        seconds.append(time.perf_counter() - started)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test:
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    shutil.rmtree(root)
    return sum(seconds) / epochs, correct / 10_000


def engine(data, epochs: int, batch_size: int, device: torch.device, lr: float = 1e-3) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(MODEL).to(device)
    tensors = [t.to(device) for t in (data.train_images, data.train_labels, data.test_images, data.test_labels)]
    result = train_model(model, *tensors, data.mean, data.std, TrainConfig(epochs=epochs, batch_size=batch_size,
                                                                           lr=lr, optimizer="adam"))
    return sum(e.seconds for e in result.history) / epochs, result.history[-1].test_acc


def sweep(data, k: int, batch_size: int, device: torch.device) -> dict[str, object]:
    """K learning rates for one epoch: K sequential engine runs vs one stacked run."""
    lrs = SWEEP_LRS[:k]
    tensors = [t.to(device) for t in (data.train_images, data.train_labels, data.test_images, data.test_labels)]
    started = time.perf_counter()
    sequential = [engine(data, 1, batch_size, device, lr)[1] for lr in lrs]
    sequential_seconds = time.perf_counter() - started
    configs = [TrainConfig(epochs=1, batch_size=batch_size, lr=lr, optimizer="adam") for lr in lrs]
    models = []
    for _ in lrs:
        torch.manual_seed(0)
        models.append(create_model(MODEL).to(device))
    started = time.perf_counter()
    results = train_stacked(models, *tensors, data.mean, data.std, configs)
    stacked_seconds = time.perf_counter() - started
    return {"lrs": lrs, "sequential_s": sequential_seconds, "stacked_s": stacked_seconds,
            "sequential_acc": sequential, "stacked_acc": [r.history[-1].test_acc for r in results]}


def profile_engine(data, batch_size: int, device: torch.device, steps: int = 200) -> None:
    """Where an engine training step spends its time: torch.profiler's top operators."""
    from torch.profiler import ProfilerActivity, profile

    from reportgen.train import make_optimizer, train_epoch

    subset = steps * batch_size
    torch.manual_seed(0)
    model = create_model(MODEL).to(device)
    config = TrainConfig(epochs=1, batch_size=batch_size)
    optimizer = make_optimizer(config, model.parameters())
    images, labels = data.train_images[:subset].to(device), data.train_labels[:subset].to(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_epoch(model, optimizer, images, labels, data.mean, data.std, config, 1)
    print(f"\nprofile of {steps} engine steps (batch {batch_size}):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sweep", type=int, default=8, help="K learning rates in the vectorised sweep")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-textbook", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print where an engine step spends its time")
    args = parser.parse_args()
    device = select_device(args.device)
    data = load_dataset("fashion-mnist")
    step_flops = training_flops(args.batch_size, device)
    epoch_gflop = step_flops * (len(data.train_labels) / args.batch_size) / 1e9
    print(f"device {device}, {torch.get_num_threads()} threads, model {MODEL}, batch {args.batch_size}, "
          f"{args.epochs} epochs; one epoch = {epoch_gflop:.0f} GFLOP (forward + backward, counted)")

    rows = []
    if not args.skip_textbook:
        seconds, acc = textbook(args.epochs, args.batch_size, device, data.mean, data.std)
        rows.append(("textbook DataLoader loop", seconds, acc, peak_memory_mb(device)))
    seconds, acc = engine(data, args.epochs, args.batch_size, device)
    rows.append(("reportgen engine", seconds, acc, peak_memory_mb(device)))
    print(f"\n{'':28s}{'s/epoch':>9s}{'GFLOP/s':>9s}{'test acc':>10s}{'peak MB':>9s}")
    for name, seconds, acc, memory in rows:
        print(f"{name:28s}{seconds:9.2f}{epoch_gflop / seconds:9.1f}{100 * acc:9.2f}%{memory:9.0f}")
    if len(rows) == 2:
        print(f"engine speed-up: {rows[0][1] / rows[1][1]:.2f}x per epoch, accuracy difference "
              f"{100 * (rows[1][2] - rows[0][2]):+.2f} points")

    if args.profile:
        profile_engine(data, args.batch_size, device)
    if args.sweep:
        result = sweep(data, args.sweep, args.batch_size, device)
        k = len(result["lrs"])
        print(f"\nsweep of {k} learning rates, 1 epoch each:")
        print(f"  {k} sequential runs  {result['sequential_s']:7.2f} s")
        print(f"  one stacked run     {result['stacked_s']:7.2f} s   speed-up {result['sequential_s'] / result['stacked_s']:.2f}x"
              f"   peak {peak_memory_mb(device):.0f} MB")
        for lr, a, b in zip(result["lrs"], result["sequential_acc"], result["stacked_acc"]):
            print(f"  lr {lr:<8g} sequential {100 * a:6.2f}%  stacked {100 * b:6.2f}%")


if __name__ == "__main__":
    main()
