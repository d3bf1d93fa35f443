"""A/Bs of the levers below the training loop, one thread (a benchmark, not a test): docs/speed.md's lever table.

    .venv/bin/python benchmarks/kernel_levers.py [--models lenet5,lenet5_regularized,mlp_lenet_sized]

- evaluation batch: seconds of one pass over the 10,000 Fashion-MNIST test images (best of 3) per batch size,
  and whether predictions, confidences and the loss equal those of the first size;
- conv backend: one LeNet-shaped forward + backward step on 64 images, oneDNN (torch's default) vs native;
- max-pooling layout: max_pool2d with indices on 64×6×28×28, NCHW vs channels_last (ReLU beside it);
- cached data: one epoch's batches of 64 sliced from the uint8 images and normalised (the engine) vs sliced
  from a training set normalised once (float32, 4× the memory);
- optimizer kernel: one training step (forward, backward, Adam) with torch's per-parameter loop vs `fused`;
- optimizer step: one `zero_grad` + fused Adam step of each model's parameters through torch's calls vs
  reportgen/optimizer_step.py's DirectStep (the same kernels), alternating rounds;
- training layout: one training step contiguous, channels_last, and channels_last with each BatchNorm2d
  fed a contiguous tensor (hooks);
- BatchNorm kernel: one training step of LeNet-5 + BN + Dropout with torch's BatchNorm2d and with the rows'
  pass (reportgen/cpu_kernels/batchnorm.py), alternating rounds; then its test accuracy with each, seeds 0-4,
  12,000 images, 3 epochs, as for the optimizer;
- dropout kernel: one Dropout(0.3) training pass on each hidden layer's shape, and one training step of
  LeNet-5 + BN + Dropout, with torch's mask and the uniform one (reportgen/cpu_kernels/dropout.py), alternating
  rounds; then its test accuracy with each, seeds 0-4, as for the BatchNorm kernel;
- ReLU, max-pool order: one training step of each convolutional model with its ReLU before each max-pool (torch's
  order) and after it (reportgen/cpu_kernels/pool_first.py), 30 alternating rounds; the numbers are the same
  either way (tests/test_cpu_kernels.py), so no accuracy table;
- conv input gradient: one input-gradient pass in channels_last and in the contiguous layout (copies in) for
  a few convolution shapes, which the lever takes; a training step and test accuracy (seeds 0-4, as above)
  of each convolutional model with torch's backward pass and with the lever;
- optimizer accuracy: each model trained by the engine with the loop and with the fused optimizer, seeds
  0-4, on 12,000 training images for 3 epochs: test accuracy per seed, and mean ± std per side (a lever
  that changes the weights' low-order bits must keep accuracy within the seeds' noise).
The two step A/Bs alternate the sides round by round and print medians, because this machine's speed
drifts by tens of percent from minute to minute; `--only optimizer,layout` runs just those. Every side
trains with the engine's CPU kernel levers (cpu_kernels) but where a side names another kernel.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from reportgen import cpu_kernels, train
from reportgen.data.datasets import load_dataset
from reportgen.freed_memory import keep_freed_memory
from reportgen.models.registry import create_model
from reportgen.optimizer_step import DirectStep

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


def alternating_steps(sides: dict[str, Callable[[], object]], rounds: int = 12, steps: int = 20) -> None:
    """Median ms per call of each side, the sides taking turns round by round (each warmed up first)."""
    timed: dict[str, list[float]] = {side: [] for side in sides}
    for work in sides.values():
        milliseconds(work, repeats=3)
    for _ in range(rounds):
        for side, work in sides.items():
            timed[side].append(milliseconds(work, repeats=steps))
    for side, values in timed.items():
        print(f"  {side:40s} median {statistics.median(values):6.2f} ms  (range {min(values):.2f}-{max(values):.2f})")


def training_step(
    name: str, layout: str, fused: bool, norm_contiguous: bool = False, kernels: dict[str, str] | None = None
) -> Callable[[], object]:
    """One forward + backward + Adam step of a fresh `name` on 64 random images, in `layout`, with the CPU
    kernel levers `kernels` (None: the ones the engine chooses)."""
    torch.manual_seed(0)
    model = train.apply_layout(create_model(name), layout)
    kernels = cpu_kernels.choose(model, torch.device("cpu")) if kernels is None else kernels
    lever = cpu_kernels.installed(model, kernels)
    lever.__enter__()  # left on: the model is thrown away with the step (which holds `lever`, so it stays on)
    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    if layout == train.CHANNELS_LAST:
        images = images.contiguous(memory_format=torch.channels_last)
    if norm_contiguous:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.register_forward_pre_hook(lambda _m, args: (args[0].contiguous(),))
                module.register_forward_hook(lambda _m, _a, out: out.contiguous(memory_format=torch.channels_last))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)

    def step(lever=lever) -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    return step


def optimizer_steps(names: list[str]) -> None:
    print("optimizer step: ms per zero_grad + fused Adam step, torch's calls vs DirectStep, alternating rounds")
    for name in names:
        sides = {}
        for kind in ("torch", "direct"):
            params = list(create_model(name).parameters())
            optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
            grads = [torch.randn_like(p) for p in params]
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            optimizer.step()  # torch's own first step makes the state
            update = DirectStep(optimizer)

            def step(kind=kind, optimizer=optimizer, update=update, params=params, grads=grads) -> None:
                optimizer.zero_grad(set_to_none=True) if kind == "torch" else update.zero_grad()
                for param, grad in zip(params, grads, strict=True):
                    param.grad = grad
                optimizer.step() if kind == "torch" else update.step()

            sides[f"{name} {kind}"] = step
        alternating_steps(sides, steps=200)


def optimizer_kernels(names: list[str]) -> None:
    print("optimizer kernel: ms per training step of 64 images (Adam loop vs fused), alternating rounds")
    for name in names:
        layout = train.CHANNELS_LAST if "mlp" not in name else train.CONTIGUOUS
        alternating_steps(
            {f"{name} {kind}": training_step(name, layout, kind == "fused") for kind in ("loop", "fused")}
        )


def training_layouts(names: list[str]) -> None:
    print("training layout: ms per training step of 64 images (fused Adam), alternating rounds")
    for name in names:
        alternating_steps(
            {
                f"{name} contiguous": training_step(name, train.CONTIGUOUS, True),
                f"{name} channels_last": training_step(name, train.CHANNELS_LAST, True),
                f"{name} channels_last, BatchNorm contiguous": training_step(name, train.CHANNELS_LAST, True, True),
            }
        )


def batchnorm_kernels() -> None:
    name = "lenet5_regularized"
    print("BatchNorm kernel: ms per training step of 64 images (fused Adam, channels_last), alternating rounds")
    alternating_steps(
        {
            f"{name} {kernel}": training_step(name, train.CHANNELS_LAST, True, kernels={"batchnorm_kernel": kernel})
            for kernel in (cpu_kernels.TORCH, cpu_kernels.ROWS)
        }
    )
    print("BatchNorm kernel: test accuracy after 3 epochs on 12,000 images")
    for kernel in (cpu_kernels.TORCH, cpu_kernels.ROWS):
        seeds_accuracy(name, kernel, fused=True, kernels={"batchnorm_kernel": kernel})


def dropout_kernels() -> None:
    name = "lenet5_regularized"
    print("dropout kernel: ms per training pass (forward + backward) of one Dropout(0.3), alternating rounds")
    for shape in ((64, 120), (64, 84)):  # LeNet-5 + BN + Dropout's two hidden layers
        x, grad = torch.randn(*shape, requires_grad=True), torch.randn(*shape)
        sides = {}
        for kernel in (cpu_kernels.TORCH, cpu_kernels.UNIFORM):
            layer = torch.nn.Dropout(0.3)
            lever = cpu_kernels.installed(layer, {"dropout_kernel": kernel})
            lever.__enter__()  # left on, as in training_step
            sides[f"{shape} {kernel}"] = lambda layer=layer, lever=lever, x=x, grad=grad: layer(x).backward(grad)
        alternating_steps(sides, steps=500)
    print("dropout kernel: ms per training step of 64 images (fused Adam, channels_last), alternating rounds")
    chosen = cpu_kernels.choose(create_model(name), torch.device("cpu"))  # every other lever as the engine has it
    alternating_steps(
        {
            f"{name} {kernel}": training_step(
                name, train.CHANNELS_LAST, True, kernels=chosen | {"dropout_kernel": kernel}
            )
            for kernel in (cpu_kernels.TORCH, cpu_kernels.UNIFORM)
        },
        rounds=24,
    )
    print("dropout kernel: test accuracy after 3 epochs on 12,000 images")
    for kernel in (cpu_kernels.TORCH, cpu_kernels.UNIFORM):
        seeds_accuracy(name, kernel, fused=True, kernels=chosen | {"dropout_kernel": kernel})


def relu_pool_orders(names: list[str]) -> None:
    print("ReLU, max-pool order: ms per training step of 64 images (fused Adam, channels_last), alternating rounds")
    for name in names:
        chosen = cpu_kernels.choose(create_model(name), torch.device("cpu"))
        alternating_steps(
            {
                f"{name} {kernel}": training_step(
                    name, train.CHANNELS_LAST, True, kernels=chosen | {"relu_pool_kernel": kernel}
                )
                for kernel in (cpu_kernels.TORCH, cpu_kernels.POOL_FIRST)
            },
            rounds=30,
        )


def conv_input_grads(names: list[str]) -> None:
    from reportgen.cpu_kernels import conv_input_grad

    print("conv input gradient: µs per input-gradient pass of 64 images, channels_last vs contiguous (copies in)")
    for cin, cout, side, kernel, padding in ((6, 16, 14, 5, 0), (3, 16, 32, 5, 0), (3, 6, 32, 5, 0), (1, 6, 28, 5, 2),
                                             (6, 16, 28, 5, 2), (8, 16, 14, 5, 0), (6, 16, 32, 3, 1), (12, 24, 14, 3, 1),
                                             (16, 32, 14, 3, 1), (32, 64, 8, 3, 1)):  # fmt: skip
        x = torch.randn(64, cin, side, side).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(cout, cin, kernel, kernel).contiguous(memory_format=torch.channels_last)
        grad = torch.randn_like(F.conv2d(x, weight, padding=padding)).contiguous(memory_format=torch.channels_last)

        def pass_(grad=grad, x=x, weight=weight, padding=padding, cout=cout) -> torch.Tensor:
            return torch.ops.aten.convolution_backward(
                grad, x, weight, [cout], [1, 1], [padding] * 2, [1, 1], False, [0, 0], 1, [True, False, False]
            )[0]

        def contiguous(grad=grad, x=x, weight=weight, pass_=pass_) -> torch.Tensor:
            return pass_(grad.contiguous(), x.contiguous(), weight.contiguous()).contiguous(
                memory_format=torch.channels_last
            )

        last, plain = milliseconds(pass_) * 1000, milliseconds(contiguous) * 1000
        chosen = conv_input_grad.eligible(torch.nn.Conv2d(cin, cout, kernel, padding=padding))
        print(f"  {cin:2d} → {cout:2d} channels, {side}×{side}, {kernel}×{kernel}: channels_last {last:6.0f}, "
              f"contiguous {plain:6.0f} ({last / plain:.2f}×){'  ← the lever takes it' if chosen else ''}")  # fmt: skip
    print("conv input gradient: ms per training step of 64 images (fused Adam, channels_last), alternating rounds")
    for name in names:
        alternating_steps(
            {
                f"{name} {kernel}": training_step(
                    name,
                    train.CHANNELS_LAST,
                    True,
                    kernels=cpu_kernels.choose(create_model(name), torch.device("cpu"))
                    | {"conv_input_grad_kernel": kernel},
                )
                for kernel in (cpu_kernels.TORCH, cpu_kernels.CONTIGUOUS)
            }
        )
    print("conv input gradient: test accuracy after 3 epochs on 12,000 images")
    for name in names:
        for kernel in (cpu_kernels.TORCH, cpu_kernels.CONTIGUOUS):
            kernels = cpu_kernels.choose(create_model(name), torch.device("cpu")) | {"conv_input_grad_kernel": kernel}
            seeds_accuracy(name, kernel, fused=True, kernels=kernels)


def seeds_accuracy(name: str, side: str, fused: bool, kernels: dict[str, str] | None = None, seeds: int = 5) -> None:
    """Test accuracy of `name` trained by the engine (as a trial: its layout; Adam fused or as a loop; the CPU
    kernel levers `kernels`, None: the engine's choice) on 12,000 images for 3 epochs, per seed and mean ± std."""
    data = load_dataset("fashion-mnist", train_subset=12000)
    accuracies = []
    for seed in range(seeds):
        config = train.TrainConfig(epochs=3, seed=seed)
        torch.manual_seed(seed)
        model = create_model(name)
        train.apply_layout(model, train.choose_layout(model, torch.device("cpu")))  # as a trial does
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=fused)
        result = train.train_model(
            model, data.train_images, data.train_labels, data.test_images, data.test_labels,
            data.mean, data.std, config, optimizer=optimizer, kernels=kernels,
        )  # fmt: skip
        accuracies.append(100 * result.final.accuracy)
    shown = " ".join(f"{a:.2f}" for a in accuracies)
    spread = statistics.stdev(accuracies)
    print(
        f"  {name:20s} {side:5s} {shown}  mean {statistics.mean(accuracies):.2f} ± {spread:.2f}% (seeds 0-{seeds - 1})"
    )


def optimizer_accuracy(names: list[str]) -> None:
    print("optimizer accuracy: test accuracy after 3 epochs on 12,000 images")
    for name in names:
        for kind in ("loop", "fused"):  # the engine's optimizer (fused: the default experiment's Adam), or a loop
            seeds_accuracy(name, kind, fused=kind == "fused")


SECTIONS = (
    "evaluation",
    "backend",
    "pooling",
    "data",
    "optimizer",
    "step",
    "layout",
    "batchnorm",
    "dropout",
    "order",
    "conv",
    "accuracy",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,lenet5_regularized,mlp_lenet_sized")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}")
    args = parser.parse_args()
    names, only = args.models.split(","), set(args.only.split(","))
    convolutional = [n for n in names if "mlp" not in n]
    torch.set_num_threads(1)
    keep_freed_memory()  # as every training process does (select_device): no page faults per fresh tensor
    sections = {
        "evaluation": lambda: evaluation_batches(names),
        "backend": lambda: conv_backends(convolutional),
        "pooling": pooling_layouts,
        "data": data_batches,
        "optimizer": lambda: optimizer_kernels(names),
        "step": lambda: optimizer_steps(names),
        "layout": lambda: training_layouts(convolutional),
        "batchnorm": batchnorm_kernels,
        "dropout": dropout_kernels,
        "order": lambda: relu_pool_orders(convolutional),
        "conv": lambda: conv_input_grads(convolutional),
        "accuracy": lambda: optimizer_accuracy(names),
    }
    for section, run in sections.items():
        if section in only:
            run()


if __name__ == "__main__":
    main()
