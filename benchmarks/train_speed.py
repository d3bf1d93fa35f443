"""Training speed, side by side on the same data, model and batch size (a benchmark, not a test).

    .venv/bin/python benchmarks/train_speed.py [--epochs 2] [--batch-size 64] [--threads 2] [--load]
    .venv/bin/python benchmarks/train_speed.py --smoke        # 1 epoch on 3,000 images: prints every figure

Sides, each in its own subprocess so its peak RSS is its own (a process's high-water mark never drops):
  textbook          the seed reports' loop: torchvision FashionMNIST + DataLoader + ToTensor/Normalize,
                    loss.item() every batch, evaluation under no_grad;
  engine            reportgen.train: uint8 tensors, one permutation per epoch, one sync per epoch,
                    evaluation under inference_mode;
  engine-foreach    the engine with Adam's foreach implementation (a lever: kept only if faster AND
                    bit-identical, which the `identical` column reports).
Training and evaluation are timed separately for every side. GFLOP/s (forward + backward counted by
torch's FlopCounterMode) is printed beside this machine's measured fp32 GEMM rate, the ceiling.
--load runs every side again beside one busy competing process, as on a student's laptop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from reportgen.data.datasets import FASHION_MNIST_DIR, load_dataset
from reportgen.models.registry import create_model
from reportgen.train import TrainConfig, evaluate, make_optimizer, train_epoch

MODEL = "lenet5"
SIDES = ("textbook", "engine", "engine-foreach")
BUSY = "while True: pass"  # the competing process: one core's worth of pure Python


def gemm_peak_gflops(threads: int, n: int = 1024, repeats: int = 10) -> float:
    """Best fp32 matrix-multiply rate of this machine with `threads` threads: what arithmetic can reach."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def step_flops(batch_size: int) -> int:
    """FLOPs of one forward + backward step on one batch, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = create_model(MODEL)
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def textbook(data, epochs: int, batch_size: int) -> dict:
    """The seeds' loop, on the same tensors as the engine (a TensorDataset with the ToTensor/Normalize
    arithmetic per batch), so only the loop differs, not the file decoding."""
    from torch.utils.data import DataLoader, TensorDataset

    def batches(images, labels, size, shuffle):
        loader = DataLoader(
            TensorDataset(images, labels), batch_size=size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
        )
        for x, y in loader:
            yield (x.float() / 255 - data.mean) / data.std, y

    torch.manual_seed(0)
    model = create_model(MODEL)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for x, y in batches(data.train_images, data.train_labels, batch_size, True):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss.item()  # the seeds print/accumulate the loss every batch: a sync per batch
        train_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches(data.test_images, data.test_labels, 1000, False):
            correct += (model(x).argmax(1) == y).sum().item()
    return {
        "train_s": sum(train_seconds) / epochs,
        "eval_s": time.perf_counter() - started,
        "test_acc": correct / len(data.test_labels),
        "weights": None,
    }


def engine(data, epochs: int, batch_size: int, foreach: bool = False) -> dict:
    """reportgen's engine, epoch by epoch, training and evaluation timed apart."""
    torch.manual_seed(0)
    model = create_model(MODEL)
    config = TrainConfig(epochs=epochs, batch_size=batch_size)
    optimizer = make_optimizer(config, model.parameters())
    if foreach:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
    train_seconds, eval_seconds = [], []
    for epoch in range(1, epochs + 1):
        train_seconds.append(
            _timed(
                lambda epoch=epoch: train_epoch(
                    model, optimizer, data.train_images, data.train_labels, data.mean, data.std, config, epoch
                )
            )
        )
        started = time.perf_counter()
        result = evaluate(model, data.test_images, data.test_labels, data.mean, data.std, config.loss)
        eval_seconds.append(time.perf_counter() - started)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().tobytes()
    return {
        "train_s": sum(train_seconds) / epochs,
        "eval_s": sum(eval_seconds) / epochs,
        "test_acc": result.accuracy,
        "weights": hashlib.sha256(weights).hexdigest(),
    }


def run_side(side: str, args: argparse.Namespace) -> dict:
    """Child process: one side, its own peak RSS."""
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", train_subset=args.train_subset or None)
    if side == "textbook":
        figures = textbook(data, args.epochs, args.batch_size)
    else:
        figures = engine(data, args.epochs, args.batch_size, foreach=side == "engine-foreach")
    return figures | {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(side: str, args: argparse.Namespace, load: bool) -> dict:
    command = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--train-subset",
        str(args.train_subset),
    ]
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load else None
    try:
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    finally:
        if busy:
            busy.kill()
            busy.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=0, help="0: all 60,000 training images")
    parser.add_argument("--load", action="store_true", help="also measure beside one busy competing process")
    parser.add_argument("--smoke", action="store_true", help="1 epoch on 3,000 images, to check the script")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.train_subset = 1, 3000
    if args.side:
        print(json.dumps(run_side(args.side, args)))
        return
    images = args.train_subset or 60_000
    epoch_gflop = step_flops(args.batch_size) * images / args.batch_size / 1e9
    peak = gemm_peak_gflops(args.threads)
    print(
        f"data {FASHION_MNIST_DIR}, model {MODEL}, batch {args.batch_size}, {images:,} training images, "
        f"{args.epochs} epoch(s), {args.threads} thread(s)"
    )
    print(f"one epoch = {epoch_gflop:.1f} GFLOP forward + backward; fp32 GEMM peak here: {peak:.1f} GFLOP/s")
    header = (
        f"{'side':16s}{'load':>6s}{'train s/epoch':>15s}{'GFLOP/s':>9s}{'% peak':>8s}{'eval s':>8s}"
        f"{'test acc':>10s}{'peak RSS MB':>13s}{'identical':>11s}"
    )
    print(header)
    reference = None
    for load in (False, True) if args.load else (False,):
        for side in SIDES:
            row = measure(side, args, load)
            reference = row["weights"] if side == "engine" and not load else reference
            identical = "-" if row["weights"] is None else ("yes" if row["weights"] == reference else "no")
            rate = epoch_gflop / row["train_s"]
            print(
                f"{side:16s}{'busy' if load else 'idle':>6s}{row['train_s']:15.2f}{rate:9.1f}"
                f"{100 * rate / peak:7.1f}%{row['eval_s']:8.2f}{100 * row['test_acc']:9.2f}%"
                f"{row['peak_rss_mb']:13.0f}{identical:>11s}"
            )


if __name__ == "__main__":
    main()
