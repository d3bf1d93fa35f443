"""Training speed, side by side on the same data, model and batch size (a benchmark, not a test).

    .venv/bin/python benchmarks/train_speed.py [--epochs 2] [--train-subset N] [--threads 1] [--load] [--no-report]
    .venv/bin/python benchmarks/train_speed.py --smoke        # 1 epoch on 3,000 images: prints every figure
    python3 benchmarks/train_speed.py --device cuda --sides textbook,engine,engine-bf16 --report-args "--device cuda"

It ends with the lines to track from one commit to the next:
  engine speed-up: N.NNx   the textbook loop's seconds per epoch (training + evaluation) over the engine's,
                           same data, thread count and batch size, both test accuracies beside it, and the
                           share of this machine's fp32 GEMM rate the engine's training computes; --pairs N
                           takes medians of N alternating runs per side (one run moves by tens of percent);
  default report: N s      wall time of `reportgen run` (the default experiment: training, then the HTML
                           and PDF report) in a fresh temporary folder, as `make report` runs it: minutes,
                           skipped with --no-report; --smoke runs a one-model, one-epoch experiment instead;
  seed 004 grid: N s       with --grid: wall time of seed 004's 18-trial sweep (examples/), 10 epochs, full data,
                           with its report (--grid-args adds options, e.g. --device cuda --no-pdf).

Every measurement is one child process, so its peak RSS (ru_maxrss, read inside the child) is its own:
a process's high-water mark never drops, so sides measured one after another in one process would
each inherit the largest before them.
  textbook        the seed reports' loop: DataLoader + the ToTensor/Normalize arithmetic per batch,
                  loss.item() every batch, evaluation under no_grad;
  engine          reportgen.train as the runs use it (train_epoch + evaluate, in the layout choose_layout picks);
  engine-contiguous  the engine in the contiguous layout it used before channels_last (the layout A/B);
  engine-foreach  the engine with Adam(foreach=True)        } levers: each is kept in reportgen/train.py
  engine-fused    the engine with Adam(fused=True)          } only if faster AND bit-identical, which
  engine-passive  the engine with OMP_WAIT_POLICY=PASSIVE   } the `identical` column reports (weights
  engine-compile  torch.compile(dynamic=False), every batch } compared with `engine` at --threads, idle)
                  full (training set cut to a multiple of the batch size), compile time reported apart.
  engine-bf16     the engine with --precision bf16 (an opt-in setting: its accuracy is the figure to read).
  engine-graph    the engine's epoch as a trial on CUDA takes it: each full batch one replay of the captured
                  step (reportgen/cuda_graph.py), the short last batch eager; on the CPU it trains eagerly
                  and says why (its `step mode` note); `identical` compares it with the eager engine.
--device cuda runs every side on the GPU: the engine with its data on the device, the textbook loop moving
each batch there; the ceiling is then the GPU's fp32 matrix rate, and threads only drive the host side.
With --pairs N the engine trains N times from one seed: `repeats bit for bit` says whether those weights match.
Training (seconds per epoch) and evaluation (seconds per pass over the test split) are timed apart for
every side; the engine side also times evaluation's forward passes under no_grad vs inference_mode.
GFLOP/s (forward + backward, counted by torch's FlopCounterMode) is printed beside this machine's
fp32 GEMM rate measured with the same thread count: the ceiling.
--load adds a second table: --load-sides at each of --load-threads, alone and beside one busy process
(a core's worth of pure Python), as on a student's laptop or a shared machine.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from reportgen import cpu_kernels
from reportgen.cuda_graph import graphed_epochs
from reportgen.data.datasets import FASHION_MNIST_DIR, load_dataset
from reportgen.models.registry import create_model
from reportgen.run.trial import on_device
from reportgen.train import (
    CONTIGUOUS,
    EVAL_BATCH,
    TrainConfig,
    apply_layout,
    choose_layout,
    choose_threads,
    evaluate,
    make_optimizer,
    normalize,
    select_device,
    train_epoch,
)

MODEL = "lenet5"
ENGINE_ADAM = {"engine-foreach": {"foreach": True}, "engine-fused": {"fused": True}}
SIDE_ENV = {"engine-passive": {"OMP_WAIT_POLICY": "PASSIVE"}}  # read by OpenMP when the child starts
SIDES = (
    "textbook", "engine", "engine-contiguous", "engine-foreach", "engine-fused", "engine-passive", "engine-compile",
    "engine-bf16", "engine-graph",
)  # fmt: skip
BUSY = "while True: pass"  # the competing process: one core's worth of pure Python
SMOKE_REPORT = "--models mlp --epochs 1 --train-subset 1500 --test-subset 300"  # a tiny end-to-end run


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    _finished()
    return time.perf_counter() - started


def _finished() -> None:
    if torch.cuda.is_initialized():  # GPU kernels run asynchronously: a span ends when they have finished
        torch.cuda.synchronize()


def gemm_peak_gflops(threads: int, device: str = "cpu", repeats: int = 5) -> float:
    """Best fp32 matrix-multiply rate of this machine with `threads` threads (or of the GPU): the ceiling."""
    torch.set_num_threads(threads)  # select_device sets the engine's one thread; the table compares --threads
    n = 8192 if device == "cuda" else 2048  # a GPU needs a larger product to reach its rate
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up
    return 2 * n**3 / min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1e9


def step_flops(batch_size: int) -> int:
    """FLOPs of one forward + backward step on one batch, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = create_model(MODEL)
    x, y = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def weights_digest(model: torch.nn.Module) -> str:
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).cpu()
    return hashlib.sha256(weights.numpy().tobytes()).hexdigest()


def textbook(data, epochs: int, batch_size: int, device: str) -> dict:
    """The seeds' loop, on the same tensors as the engine (a TensorDataset with the ToTensor/Normalize
    arithmetic per batch, then each batch moved to the device), so only the loop differs, not the file decoding."""
    from torch.utils.data import DataLoader, TensorDataset

    def batches(images, labels, size, shuffle):
        loader = DataLoader(
            TensorDataset(images, labels), batch_size=size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)
        )
        for x, y in loader:
            yield ((x.float() / 255 - data.mean) / data.std).to(device), y.to(device)

    def evaluation() -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in batches(data.test_images, data.test_labels, 1000, False):
                correct += (model(x).argmax(1) == y).sum().item()
        return correct / len(data.test_labels)

    torch.manual_seed(0)
    model = create_model(MODEL).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_seconds, eval_seconds = [], []
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
        accuracy = evaluation()  # ends in .item(): synchronised
        eval_seconds.append(time.perf_counter() - started)
    return {"train_s": sum(train_seconds) / epochs, "eval_s": sum(eval_seconds) / epochs, "test_acc": accuracy}


def forward_pass_seconds(model: torch.nn.Module, data, grad_mode: Callable, repeats: int = 3) -> float:
    """Best time of the evaluation's forward passes over the test split under one autograd mode."""

    def passes() -> None:
        with grad_mode():
            size = EVAL_BATCH[data.test_images.device.type]
            for start in range(0, len(data.test_labels), size):
                model(normalize(data.test_images[start : start + size], data.mean, data.std)).softmax(1)

    model.eval()
    return min(_timed(passes) for _ in range(repeats))


def compile_warm_up(model: torch.nn.Module, data, config: TrainConfig) -> float:
    """Seconds to compile the training and evaluation graphs, on a copy, so the timed epochs do not pay it."""
    twin = torch.compile(copy.deepcopy(model), dynamic=False)
    optimizer = make_optimizer(config, twin.parameters())
    x = normalize(data.train_images[: config.batch_size], data.mean, data.std)

    def warm() -> None:
        F.cross_entropy(twin(x), data.train_labels[: config.batch_size]).backward()
        optimizer.step()
        twin.eval()
        with torch.inference_mode():
            twin(normalize(data.test_images[: EVAL_BATCH["cpu"]], data.mean, data.std))

    return _timed(warm)


def engine(data, epochs: int, batch_size: int, side: str, device: str, threads: int) -> dict:
    """reportgen's engine, epoch by epoch, training and evaluation timed apart."""
    torch.manual_seed(0)
    data = on_device(data, select_device(device))  # the engine's device settings (deterministic cuDNN)
    torch.set_num_threads(threads)  # select_device sets the engine's one thread; the table compares --threads
    model = create_model(MODEL).to(device)
    layout = CONTIGUOUS if side == "engine-contiguous" else choose_layout(model, torch.device(device))
    apply_layout(model, layout)  # as a trial does: the layout the engine chooses for this model and device
    config = TrainConfig(epochs=epochs, batch_size=batch_size, precision="bf16" if side == "engine-bf16" else "fp32")
    figures = {"layout": layout}
    train_images, train_labels = data.train_images, data.train_labels
    if side == "engine-compile":
        figures["compile_s"] = compile_warm_up(model, data, config)
        model = torch.compile(model, dynamic=False)
        full = len(train_labels) - len(train_labels) % batch_size  # no short last batch: one graph
        train_images, train_labels = train_images[:full], train_labels[:full]
    if side in ENGINE_ADAM:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, **ENGINE_ADAM[side])
    else:
        optimizer = make_optimizer(config, model.parameters())
    run_epoch = train_epoch
    if side == "engine-graph":  # the capture (warm-up steps included) is timed apart, as compile's is
        started = time.perf_counter()
        graphed, mode = graphed_epochs(model, optimizer, config, train_images)
        _finished()
        figures |= {"capture_s": time.perf_counter() - started, **mode.record()}
        run_epoch = graphed or train_epoch
    train_seconds, eval_seconds = [], []
    with cpu_kernels.installed(model, cpu_kernels.choose(model, torch.device(device))):  # as train_model does
        for epoch in range(1, epochs + 1):
            train_seconds.append(
                _timed(
                    lambda epoch=epoch: run_epoch(
                        model, optimizer, train_images, train_labels, data.mean, data.std, config, epoch
                    )
                )
            )
            started = time.perf_counter()
            result = evaluate(model, data.test_images, data.test_labels, data.mean, data.std, config.loss)
            eval_seconds.append(time.perf_counter() - started)
    if side == "engine":
        figures["no_grad_s"] = forward_pass_seconds(model, data, torch.no_grad)
        figures["inference_mode_s"] = forward_pass_seconds(model, data, torch.inference_mode)
    return figures | {
        "train_s": sum(train_seconds) / epochs,
        "eval_s": sum(eval_seconds) / epochs,
        "test_acc": result.accuracy,
        "weights": weights_digest(model),
    }


def run_side(args: argparse.Namespace) -> dict:
    """Child process: one side, its own peak RSS."""
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", train_subset=args.train_subset or None)
    if args.side == "textbook":
        figures = textbook(data, args.epochs, args.batch_size, args.device)
    else:
        figures = engine(data, args.epochs, args.batch_size, args.side, args.device, args.threads)
    return figures | {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(side: str, threads: int, busy: bool, args: argparse.Namespace) -> dict:
    """One side in a child process, optionally beside one busy competing process."""
    command = [sys.executable, __file__, "--side", side, "--threads", str(threads)]
    command += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    command += ["--train-subset", str(args.train_subset), "--device", args.device]
    competitor = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, env=os.environ | SIDE_ENV.get(side, {})
        )
    finally:
        if competitor:
            competitor.kill()
            competitor.wait()
    if done.returncode:
        sys.exit(f"{side} ({threads} thread(s)) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def where(args: argparse.Namespace) -> str:
    """The device every side trained on, by name."""
    return f"cuda ({torch.cuda.get_device_name()})" if args.device == "cuda" else "cpu"


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def comma_list(kind: type, choices: tuple | None = None) -> Callable[[str], list]:
    def parse(text: str) -> list:
        values = [kind(part) for part in text.split(",") if part]
        unknown = [v for v in values if choices and v not in choices]
        if not values or unknown or any(isinstance(v, int) and v < 1 for v in values):
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected a comma-separated list of {choices or 'integers ≥ 1'}"
            )
        return values

    return parse


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=choose_threads(), help="threads of the sides table (the engine's)"
    )
    parser.add_argument("--train-subset", type=int, default=0, help="0: all 60,000 training images")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every side trains")
    parser.add_argument("--sides", type=comma_list(str, SIDES), default=list(SIDES), help=",".join(SIDES))
    parser.add_argument("--load", action="store_true", help="add the table beside one busy competing process")
    parser.add_argument("--load-sides", type=comma_list(str, SIDES), default=["textbook", "engine", "engine-passive"])
    parser.add_argument("--load-threads", type=comma_list(int), default=[1, 2])
    parser.add_argument("--smoke", action="store_true", help="1 epoch on 3,000 images, to check the script")
    parser.add_argument(
        "--pairs", type=int, default=1, help="speed-up from the medians of this many textbook/engine runs, alternating"
    )
    parser.add_argument("--no-report", action="store_true", help="skip timing `reportgen run` (minutes)")
    parser.add_argument(
        "--report-args", type=shlex.split, default=None, help="options of the timed `reportgen run` (default: none)"
    )
    parser.add_argument(
        "--grid", action="store_true", help="also time seed 004's 18-trial grid (examples/, 10 epochs, full data)"
    )
    parser.add_argument(
        "--grid-args", type=shlex.split, default=[], help="options added to the timed grid run (e.g. --device cuda)"
    )
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.train_subset = 1, 3000
    if args.report_args is None:
        args.report_args = shlex.split(SMOKE_REPORT) if args.smoke else []
    return args


def main() -> None:
    args = parse_args()
    if args.side:
        print(json.dumps(run_side(args)))
        return
    images = args.train_subset or 60_000
    epoch_gflop = step_flops(args.batch_size) * images / args.batch_size / 1e9
    all_threads = sorted({args.threads, *(args.load_threads if args.load else [])})
    peaks = {threads: gemm_peak_gflops(threads, args.device) for threads in all_threads}
    print(
        f"data {FASHION_MNIST_DIR}, model {MODEL}, batch {args.batch_size}, {images:,} training images, "
        f"{args.epochs} epoch(s); {load_average()} on {os.cpu_count()} cores at start; {where(args)}"
    )
    print(f"one epoch = {epoch_gflop:.2f} GFLOP forward + backward")
    for threads, peak in peaks.items():
        print(f"fp32 GEMM peak here, {where(args)}, {threads} thread(s): {peak:.1f} GFLOP/s")
    rows: dict[tuple[str, int, bool], dict] = {}

    def table(title: str, runs: list[tuple[str, int, bool]]) -> None:
        print(f"\n{title}")
        print(
            f"{'side':16s}{'threads':>8s}{'load':>6s}{'train s/epoch':>15s}{'GFLOP/s':>9s}{'% peak':>8s}"
            f"{'eval s':>8s}{'test acc':>10s}{'peak RSS MB':>13s}{'identical':>11s}"
        )
        for side, threads, busy in runs:
            if (side, threads, busy) not in rows:  # an idle row of the first table is not measured twice
                rows[side, threads, busy] = measure(side, threads, busy, args)
            row = rows[side, threads, busy]
            reference = rows.get(("engine", args.threads, False), {}).get("weights")
            weights = None if side in ("textbook", "engine-compile") else row["weights"]
            identical = "-" if weights is None or reference is None else ("yes" if weights == reference else "no")
            rate = epoch_gflop / row["train_s"]
            print(
                f"{side:16s}{threads:8d}{'busy' if busy else 'idle':>6s}{row['train_s']:15.2f}{rate:9.2f}"
                f"{100 * rate / peaks[threads]:7.1f}%{row['eval_s']:8.2f}{100 * row['test_acc']:9.2f}%"
                f"{row['peak_rss_mb']:13.0f}{identical:>11s}"
            )
        print(load_average())

    sides = sorted(args.sides, key=lambda side: side != "engine")  # the reference first
    table(f"sides ({args.threads} thread(s), idle)", [(side, args.threads, False) for side in sides])
    if args.load:
        runs = [(side, t, busy) for side in args.load_sides for t in args.load_threads for busy in (False, True)]
        table("under load (busy = beside one process spinning a core)", runs)
    notes(rows, args)
    print()
    headline(rows, args, epoch_gflop / peaks[args.threads])
    if not args.no_report:
        default_report(args.report_args)
    if args.grid:
        grid_sweep(args.grid_args)


def headline(rows: dict[tuple[str, int, bool], dict], args: argparse.Namespace, epoch_per_peak: float) -> None:
    """The engine against the textbook loop on the same data, threads and batch size: one ratio to track. With
    --pairs N, from the medians of N runs of each side (the table's, then N - 1 more, alternating order), since
    one run per side moves by tens of percent on a busy machine."""
    textbook_row, engine_row = rows.get(("textbook", args.threads, False)), rows.get(("engine", args.threads, False))
    if not (textbook_row and engine_row):
        print("engine speed-up: not measured (--sides needs textbook and engine)")
        return
    runs = {"textbook": [textbook_row], "engine": [engine_row]}
    for pair in range(1, args.pairs):
        for side in ("textbook", "engine") if pair % 2 else ("engine", "textbook"):
            runs[side].append(measure(side, args.threads, False, args))
    textbook_s, engine_s = (statistics.median(r["train_s"] + r["eval_s"] for r in runs[side]) for side in runs)
    engine_train_s = statistics.median(r["train_s"] for r in runs["engine"])
    spread = ""
    if args.pairs > 1:
        ranges = {side: [r["train_s"] + r["eval_s"] for r in runs[side]] for side in runs}
        spread = ", ".join(f"{side} {min(v):.2f}-{max(v):.2f} s" for side, v in ranges.items())
        repeats = "yes" if len({r["weights"] for r in runs["engine"]}) == 1 else "no"
        spread = f"medians of {args.pairs} alternating runs each ({spread}; engine repeats bit for bit: {repeats}); "
    print(
        f"engine speed-up: {textbook_s / engine_s:.2f}x (training + evaluation per epoch: textbook {textbook_s:.2f} s, "
        f"engine {engine_s:.2f} s; {spread}{where(args)}, {args.threads} thread(s), batch {args.batch_size}; "
        f"test accuracy textbook "
        f"{100 * textbook_row['test_acc']:.2f}%, engine {100 * engine_row['test_acc']:.2f}%); the engine's training "
        f"computes {100 * epoch_per_peak / engine_train_s:.1f}% of the fp32 GEMM ceiling"
    )


def default_report(options: list[str]) -> None:
    """Wall time of `reportgen run` end to end (training, then the HTML and PDF) in a fresh folder."""
    command = [sys.executable, "-m", "reportgen", "run", *options]
    with tempfile.TemporaryDirectory(prefix="reportgen-benchmark-") as folder:
        at_start = load_average()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        reports = sorted(Path(folder, "output").rglob("report.html"))
        if done.returncode or not reports:
            sys.exit(f"reportgen run {shlex.join(options)} failed (exit {done.returncode}):\n{done.stderr}")
        pdf = "HTML + PDF" if any(r.with_name("report.pdf").is_file() for r in reports) else "HTML, no PDF"
    what = f"reportgen run {shlex.join(options)}" if options else "reportgen run, the default experiment"
    at_end = load_average().removeprefix("load average ")
    print(f"default report: {seconds:.0f} s ({what}, {pdf}; {at_start} at start, {at_end} at end)")


GRID_SPEC = Path(__file__).resolve().parent.parent / "examples" / "seed004_loss_optimizer_grid.toml"


def grid_sweep(options: list[str]) -> None:
    """Wall time of seed 004's grid (3 CNNs × 2 losses × 3 optimizers, 10 epochs on all 60,000 images) with
    its report: the sweep a course runs, the third line to track (hours on a 2-core CPU; minutes on a GPU)."""
    with tempfile.TemporaryDirectory(prefix="reportgen-grid-") as folder:
        command = [sys.executable, "-m", "reportgen", "run", str(GRID_SPEC), *options]
        at_start, started = load_average(), time.perf_counter()
        done = subprocess.run(command, cwd=folder, check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"seed 004 grid failed (exit {done.returncode}):\n{done.stderr}")
    extra = f" {shlex.join(options)}" if options else ""
    print(
        f"seed 004 grid: {seconds:.0f} s (reportgen run examples/{GRID_SPEC.name}{extra}, 18 trials; {at_start} at start)"
    )


def notes(rows: dict[tuple[str, int, bool], dict], args: argparse.Namespace) -> None:
    """What the table's columns cannot hold: the eval A/B, compile time, what `identical` compares."""
    print(f"\nidentical: same trained weights as `engine` with {args.threads} thread(s), idle (sha256 of the weights)")
    for (side, threads, busy), row in rows.items():
        if "no_grad_s" in row:
            print(
                f"evaluation forward passes ({side}, {threads} thread(s), {'busy' if busy else 'idle'}, best of 3): "
                f"no_grad {row['no_grad_s']:.3f} s, inference_mode {row['inference_mode_s']:.3f} s"
            )
        if "step_mode" in row:
            print(
                f"{side}: step mode {row['step_mode']} ({row['step_mode_reason']}); capture and warm-up "
                f"{row['capture_s']:.2f} s (not in train s/epoch)"
            )
        if "compile_s" in row:
            print(
                f"engine-compile: {row['compile_s']:.1f} s to compile (not in train s/epoch); trains on the "
                f"largest multiple of {args.batch_size} images, so its weights are not comparable"
            )


if __name__ == "__main__":
    main()
