"""Does one seed give one set of weights on this device? (a diagnostic, not a test)

    python3 benchmarks/repeatability.py --device cuda [--model lenet5_regularized] [--train-subset 3000]

Trains the model twice per mode (one epoch, Fashion-MNIST subset, the engine's settings) and prints per mode
whether the two trainings end with the same weights bit for bit, the largest difference, and the seconds of
one training. Each mode runs in a child process of its own, since a mode is set before the first kernel:
  raw            the engine with torch's own defaults (no select_device: cuDNN picks any kernel)
  default        the engine as reportgen runs it (select_device: deterministic cuDNN kernels)
  deterministic  torch.use_deterministic_algorithms(True), CUBLAS_WORKSPACE_CONFIG=:4096:8 (ops without a
                 deterministic kernel warn instead of failing; their names are printed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

MODES = {"raw": {}, "default": {}, "deterministic": {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}}


def train_twice(args: argparse.Namespace) -> dict:
    import torch

    from reportgen.data.datasets import load_dataset
    from reportgen.models.registry import create_model
    from reportgen.run.trial import on_device
    from reportgen.train import TrainConfig, select_device, train_model

    if args.mode == "deterministic":
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = select_device(args.device) if args.mode != "raw" else torch.device(args.device)
    data = on_device(load_dataset("fashion-mnist", train_subset=args.train_subset, test_subset=1000), device)
    weights, seconds = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            torch.manual_seed(0)
            model = create_model(args.model).to(device)
            started = time.perf_counter()
            train_model(
                model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std,
                TrainConfig(epochs=1, batch_size=64, seed=0),
            )  # fmt: skip
            seconds.append(time.perf_counter() - started)
            weights.append(torch.cat([t.detach().flatten().double() for t in model.state_dict().values()]).cpu())
    difference = float((weights[0] - weights[1]).abs().max())
    nondeterministic = sorted({str(w.message).split(" does not have a deterministic")[0] for w in caught})
    return {"identical": difference == 0.0, "max_difference": difference, "seconds": seconds[1],
            "warned": [w for w in nondeterministic if "deterministic" not in w][:5]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="lenet5_regularized")
    parser.add_argument("--train-subset", type=int, default=3000)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(train_twice(args)))
        return
    print(f"{args.model}, one epoch on {args.train_subset:,} images, twice per mode, on {args.device}")
    for mode, env in MODES.items():
        command = [sys.executable, __file__, "--mode", mode, "--device", args.device, "--model", args.model]
        done = subprocess.run(
            [*command, "--train-subset", str(args.train_subset)],
            capture_output=True, text=True, env=os.environ | env, check=False,
        )  # fmt: skip
        if done.returncode:
            print(f"{mode:14s} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{mode:14s} identical {'yes' if row['identical'] else 'no':3s}  largest difference "
            f"{row['max_difference']:.3g}  {row['seconds']:.2f} s per training"
            + (f"  warned: {'; '.join(row['warned'])}" if row["warned"] else "")
        )


if __name__ == "__main__":
    main()
