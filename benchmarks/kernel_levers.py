"""A/Bs of the levers below the training loop, one thread (a benchmark, not a test): docs/speed.md's lever table.

    .venv/bin/python benchmarks/kernel_levers.py [--models lenet5,lenet5_regularized,mlp_lenet_sized]

- evaluation batch: seconds of one pass over the 10,000 Fashion-MNIST test images (best of 3) per batch size,
  and whether predictions, confidences and the loss equal those of the first size;
- conv backend: one LeNet-shaped forward + backward step on 64 images, oneDNN (torch's default) vs native;
- max-pooling layout: max_pool2d with indices on 64×6×28×28, NCHW vs channels_last (ReLU beside it);
- cached data: one epoch's batches of 64 sliced from the uint8 images and normalised (the engine) vs sliced
  from a training set normalised once (float32, 4× the memory).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from reportgen import train
from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model

EVAL_SIZES = (2000, 500, 250, 256, 128)


def milliseconds(work: Callable[[], object], repeats: int = 50) -> float:
    work()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return (time.perf_counter() - started) / repeats * 1000


def evaluation_batches(names: list[str]) -> None:
    data = load_dataset("fashion-mnist", train_subset=3000)
    print("evaluation batch: seconds per pass over the test split (best of 3); same = every figure identical")
    for name in names:
        torch.manual_seed(0)
        model = create_model(name)
        first = None
        for size in EVAL_SIZES:
            train.EVAL_BATCH["cpu"] = size
            timed = []
            for _ in range(3):
                started = time.perf_counter()
                result = train.evaluate(model, data.test_images, data.test_labels, data.mean, data.std, "cross_entropy")
                timed.append(time.perf_counter() - started)
            first = first or result
            same = (
                result.loss == first.loss
                and torch.equal(result.predictions, first.predictions)
                and torch.equal(result.confidences, first.confidences)
            )
            print(f"  {name:20s} {size:5d}  {min(timed):.3f} s  same: {'yes' if same else 'no'}")


def conv_backends(names: list[str]) -> None:
    images, labels = torch.randn(64, 1, 28, 28), torch.zeros(64, dtype=torch.long)
    print("conv backend: ms per forward + backward step of 64 images")
    for name in names:
        for onednn in (True, False):
            torch.backends.mkldnn.enabled = onednn
            torch.manual_seed(0)
            model = create_model(name)

            def step(model=model) -> None:
                model.zero_grad()
                F.cross_entropy(model(images), labels).backward()

            print(f"  {name:20s} {'oneDNN' if onednn else 'native':7s} {milliseconds(step):.2f} ms")
    torch.backends.mkldnn.enabled = True


def pooling_layouts() -> None:
    nchw = torch.relu(torch.randn(64, 6, 28, 28)).requires_grad_()
    nhwc = nchw.detach().to(memory_format=torch.channels_last).requires_grad_()
    print("max-pooling with indices, 64×6×28×28:")
    print(f"  NCHW          {milliseconds(lambda: F.max_pool2d(nchw, 2)):.3f} ms")
    print(f"  channels_last {milliseconds(lambda: F.max_pool2d(nhwc, 2)):.3f} ms")
    print(f"  ReLU (NCHW)   {milliseconds(lambda: torch.relu(nchw)):.3f} ms")


def data_batches() -> None:
    data = load_dataset("fashion-mnist")
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(0))
    cached = train.normalize(data.train_images, data.mean, data.std)

    def per_batch() -> None:
        for start in range(0, len(order), 64):
            train.normalize(data.train_images[order[start : start + 64]], data.mean, data.std)

    def from_cache() -> None:
        for start in range(0, len(order), 64):
            cached[order[start : start + 64]]

    print(f"data batches of one epoch ({len(order):,} images, batches of 64):")
    print(f"  sliced and normalised per batch   {milliseconds(per_batch, repeats=3):.0f} ms")
    print(f"  sliced from a normalised copy     {milliseconds(from_cache, repeats=3):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,lenet5_regularized,mlp_lenet_sized")
    names = parser.parse_args().models.split(",")
    torch.set_num_threads(1)
    evaluation_batches(names)
    conv_backends([n for n in names if "mlp" not in n])
    pooling_layouts()
    data_batches()


if __name__ == "__main__":
    main()
