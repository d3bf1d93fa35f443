"""`--device auto`: the CPU or the GPU, whichever this run's training is estimated to take less time on.

Why not simply the GPU when there is one: models this small at batch 64 are bound by launching kernels there,
not by arithmetic; the default report took 109 s on an H200 and 82 s on a 2-core CPU (docs/speed.md). So where
CUDA is present, a few training steps of each model are timed on each device (`probe_step_seconds`), scaled to
the run's batches and to the trials each device would train at once (its executor's plan), and the shorter
estimate wins (`choose`, pure). The choice, the estimates and why are recorded in the run's environment record
(`device_choice`) and printed as one line; a resumed run keeps the device it started on (`resumed_device`),
since the device changes the weights' low-order bits. Without CUDA there is nothing to measure: the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from reportgen import cpu_kernels, cuda_graph
from reportgen.models.registry import create_model
from reportgen.run.executor_choice import AutoExecutor, cuda_workers, worker_start_seconds
from reportgen.run.executors import Executor, ProcessExecutor
from reportgen.run.preflight import time_limit
from reportgen.run.trial import trial_batches
from reportgen.train import apply_layout, choose_layout, make_optimizer, resolved_device, select_device

if TYPE_CHECKING:
    from reportgen.data.datasets import Dataset
    from reportgen.experiment import ExperimentSpec, Trial

PROBE_STEPS = 5  # timed steps per model and device, after one untimed (cuDNN's and the allocator's first use)
NO_CUDA = "no CUDA device on this machine"


@dataclass(frozen=True)
class Estimate:
    """A device's estimated training time for the whole run, and what it rests on."""

    device: str
    seconds: float
    basis: str


@dataclass(frozen=True)
class DeviceChoice:
    """The device a run trains on, as requested and as chosen, with the reason."""

    requested: str
    device: str
    reason: str
    estimates: tuple[Estimate, ...] = ()

    def record(self) -> dict[str, Any]:
        """The environment record's `device_choice`."""
        estimates = {e.device: {"seconds": round(e.seconds, 1), "basis": e.basis} for e in self.estimates}
        return {
            "device_choice": {"requested": self.requested, "chosen": self.device, "reason": self.reason}
            | ({"estimates": estimates} if estimates else {})
        }

    def line(self) -> str:
        return f"device {self.requested}: {self.device} ({self.reason})"


def choose(requested: str, estimates: list[Estimate]) -> DeviceChoice:
    """The device with the shortest estimate (a tie keeps the first: pass the CPU first), or the one named."""
    if requested != "auto":
        return DeviceChoice(requested, requested, "named in the spec or by --device")
    if not estimates:
        raise ValueError("choose: no device to choose from")
    best = min(estimates, key=lambda e: e.seconds)
    others = "".join(f" vs {e.seconds:.1f} s on {e.device}" for e in estimates if e is not best)
    reason = f"estimated training {best.seconds:.1f} s on {best.device}{others}"
    return DeviceChoice(requested, best.device, reason, tuple(estimates))


def run_seconds(trial_seconds: list[float], lanes: int, start_s: float = 0.0) -> float:
    """The wall time of trials taking `trial_seconds` each on `lanes` at once, longest first: at least the
    longest one, at least the total shared out; plus the lanes' start when there are several."""
    if not trial_seconds:
        return 0.0
    if lanes <= 1:
        return sum(trial_seconds)
    return start_s + max(max(trial_seconds), sum(trial_seconds) / lanes)


def resumed_device(requested: str, environment: dict[str, Any], cuda_available: bool | None = None) -> str:
    """The device a resumed run trains on: for `auto`, the one it started on (the device changes the weights'
    low-order bits, and a resumed run matches the uninterrupted one) where this machine has it, else the CPU."""
    started = environment.get("device", "cpu")
    if requested != "auto":
        return requested
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    return started if cuda_available or not started.startswith("cuda") else "cpu"


def probe_step_seconds(trial: Trial, input_shape: tuple[int, ...], device: torch.device) -> float:
    """Seconds per training step of `trial`'s model on `device`, as its trial would take them (layout, the
    CPU kernel levers, the CUDA graph where `cuda_graph.decide` allows), timed over PROBE_STEPS steps on random inputs."""
    config = trial.config
    torch.manual_seed(0)
    model = create_model(trial.model.ref, input_shape=input_shape).to(device)
    apply_layout(model, choose_layout(model, device))
    optimizer = make_optimizer(config, model.parameters())
    x = torch.randn(config.batch_size, *input_shape, device=device)
    y = torch.zeros(config.batch_size, dtype=torch.int64, device=device)
    sums = (torch.zeros((), dtype=torch.float64, device=device), torch.zeros((), dtype=torch.int64, device=device))
    mode = cuda_graph.decide(device.type, config, type(model).__module__, config.batch_size)
    if mode.mode == cuda_graph.CUDA_GRAPH:
        graphed = cuda_graph.GraphedSteps(model, optimizer, config, x)

        def one_step() -> None:
            graphed.replay(x, y)
    else:

        def one_step() -> None:
            cuda_graph.step(model, optimizer, x, y, config.loss, sums)

    with cpu_kernels.installed(model, cpu_kernels.choose(model, device)):  # the kernels its trial would train with
        one_step()
        _sync(device)
        started = time.perf_counter()
        for _ in range(PROBE_STEPS):
            one_step()
        _sync(device)
    return (time.perf_counter() - started) / PROBE_STEPS


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def estimate(device: torch.device, trials: list[Trial], data: Dataset, executor: Executor | AutoExecutor) -> Estimate:
    """The run's training time on `device`: each model's probed step × its trials' batches, on the lanes the
    executor would use there (an AutoExecutor's plan for this device, from these seconds)."""
    per_model: dict[str, float] = {}
    for trial in trials:
        if trial.model.label not in per_model:
            with time_limit(trial.model.label, f"its probe steps on {device}"):
                per_model[trial.model.label] = probe_step_seconds(trial, data.input_shape, device)
    train_size = len(data.train_labels)
    seconds = [trial_batches(t, train_size) * per_model[t.model.label] for t in trials]
    planned = executor
    if isinstance(executor, AutoExecutor):
        planned = executor.choose(
            sum(seconds), cuda_workers(len(trials)) if device.type == "cuda" else None, str(device)
        )
    lanes = planned.workers if isinstance(planned, ProcessExecutor) else 1
    start_s = worker_start_seconds(planned, str(device)) if isinstance(planned, ProcessExecutor) else 0.0
    steps = ", ".join(f"{label} {1000 * s:.2f} ms" for label, s in per_model.items())
    basis = f"a step: {steps}; {sum(trial_batches(t, train_size) for t in trials)} steps on {lanes} lane(s)"
    return Estimate(device.type, run_seconds(seconds, lanes, start_s), basis)


def choose_device(
    spec: ExperimentSpec, data: Dataset, executor: Executor | AutoExecutor, log: Callable[[str], None]
) -> DeviceChoice:
    """The run's device: the one named, or for `auto` the CPU or the GPU by estimated training time, said in
    one line through `log`."""
    if spec.device != "auto":
        return choose(spec.device, [])
    choice = _automatic(spec, data, executor)
    log(choice.line())
    return choice


def _automatic(spec: ExperimentSpec, data: Dataset, executor: Executor | AutoExecutor) -> DeviceChoice:
    if resolved_device("auto") == "cpu":
        return DeviceChoice("auto", "cpu", f"{NO_CUDA}, torch {torch.__version__}")
    threads = torch.get_num_threads()  # select_device("cpu") sets the CPU's training threads: for the probe only
    try:
        estimates = [estimate(select_device(name), spec.trials(), data, executor) for name in ("cpu", "cuda")]
    except Exception as exc:  # noqa: BLE001 — a model that cannot train is the pre-flight's to report, in one line
        return DeviceChoice("auto", "cuda", f"no estimate could be made ({type(exc).__name__}): the GPU, as before")
    finally:
        torch.set_num_threads(threads)
    return choose("auto", estimates)
