"""The GPU plan's decisions, on any machine: whether a trial's steps are captured as a CUDA graph
(reportgen/cuda_graph.py), how many trials share one GPU (executor_choice.settle), which device `--device auto` picks
(run/device_choice.py), and what a run archives about them. The captures themselves run in tests/test_cuda.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import write_idx_dataset

from reportgen import cuda_graph
from reportgen.cuda_graph import CUDA_GRAPH, EAGER, NOT_CUDA, decide
from reportgen.data.datasets import load_dataset
from reportgen.run.device_choice import (
    NO_CUDA,
    Estimate,
    choose,
    estimate,
    probe_step_seconds,
    resumed_device,
    run_seconds,
)
from reportgen.run.executor_choice import AutoExecutor, choose_executor, cuda_workers, settle
from reportgen.run.executors import LocalExecutor, ProcessExecutor
from reportgen.run.preflight import preflight
from reportgen.spec import load_spec
from reportgen.train import TrainConfig, select_device, train_model

BUILTIN = "reportgen.models.lenet"  # the module of a built-in model class
CUDA = torch.device("cuda")  # a device object only: nothing here touches a GPU


@pytest.fixture
def make_spec(tmp_path: Path):
    idx = write_idx_dataset(tmp_path / "idx")

    def make(train: str, models: list[str], device: str = "auto"):
        entries = "".join(f'[[models]]\nname = "{name}"\n' for name in models)
        text = (
            f'name = "gpu-plan"\ndevice = "{device}"\n[data]\ndataset = "custom"\ndata_dir = "{idx}"\n'
            f"[train]\nbatch_size = 50\n{train}\n{entries}"
        )
        (tmp_path / "spec.toml").write_text(text, "utf-8")
        return load_spec(tmp_path / "spec.toml")

    return make


# --- the step mode -------------------------------------------------------------------------------------------


def test_a_built_in_fp32_model_with_a_constant_rate_is_captured_on_cuda_only():
    config = TrainConfig(batch_size=64)
    assert decide("cuda", config, BUILTIN, 60_000).mode == CUDA_GRAPH
    assert decide("cpu", config, BUILTIN, 60_000) == cuda_graph.StepMode(EAGER, NOT_CUDA)


@pytest.mark.parametrize(
    ("change", "module", "train_size", "why"),
    [
        ({"precision": "bf16"}, BUILTIN, 60_000, "autocast"),
        ({"schedule": "cosine"}, BUILTIN, 60_000, "learning rate would be frozen"),
        ({"schedule": "onecycle"}, BUILTIN, 60_000, "learning rate would be frozen"),
        ({}, "models", 60_000, "not a built-in model"),
        ({}, "__main__", 60_000, "not a built-in model"),
        ({}, BUILTIN, 63, "no full batch: 63 training images, batch size 64"),
    ],
)
def test_what_a_graph_cannot_hold_trains_eagerly_and_says_why(change, module, train_size, why):
    mode = decide("cuda", TrainConfig(batch_size=64, **change), module, train_size)
    assert mode.mode == EAGER and why in mode.reason
    assert mode.record() == {"step_mode": EAGER, "step_mode_reason": mode.reason}


def test_a_cpu_training_records_eager_because_not_cuda():
    torch.manual_seed(0)
    images, labels = torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8), torch.arange(64) % 10
    from reportgen.models.registry import create_model

    model = create_model("mlp")
    result = train_model(model, images, labels, images, labels, 0.5, 0.25, TrainConfig(epochs=1, batch_size=32))
    assert result.step_mode == {"step_mode": "eager", "step_mode_reason": "not CUDA"}


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "adam"},
        {"optimizer": "adamw", "weight_decay": 0.01},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "rmsprop", "momentum": 0.5},
    ],
)
def test_a_warm_up_undone_in_place_leaves_the_model_and_optimizer_as_fresh(settings):
    """What a capture does before the first real batch: warm-up steps, then everything put back into the
    same tensors (the graph holds their addresses). The state the warm-up created goes back to zeros, from
    which every optimizer steps exactly as from no state at all: same weights after the real steps."""
    from reportgen.models.registry import create_model
    from reportgen.train import make_optimizer

    config = TrainConfig(batch_size=32, lr=0.01, **settings)
    batches = [
        (torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(i)), torch.arange(32) % 10)
        for i in range(4)
    ]
    trained = []
    for warm_up in (True, False):
        torch.manual_seed(0)
        model = create_model("lenet5_regularized")  # dropout and BatchNorm buffers too
        optimizer = make_optimizer(config, model.parameters())
        sums = (torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64))
        if warm_up:
            saved = cuda_graph.snapshot(model, optimizer)
            for x, y in batches[::-1]:
                cuda_graph.step(model, optimizer, x * 3, y, config.loss, sums)
            cuda_graph.restore_in_place(model, optimizer, saved)
        torch.manual_seed(1)  # the epoch's dropout seed
        for x, y in batches:
            cuda_graph.step(model, optimizer, x, y, config.loss, sums)
        trained.append(model.state_dict())
    warmed, fresh = trained
    assert all(torch.equal(warmed[k], fresh[k]) for k in fresh)


class ReplayedEagerly(cuda_graph.GraphedSteps):
    """A GraphedSteps whose "graph" runs, eagerly on the static buffers, the step a capture records: capture
    needs a GPU; the epoch around it (order, seeds, buffers, the short last batch, the sums) does not."""

    def _capture(self) -> None:
        self.replays = 0

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x.copy_(x)
        self.y.copy_(y)
        cuda_graph.step(self.model, self.optimizer, self.x, self.y, self.config.loss, self.sums)
        self.replays += 1


@pytest.mark.parametrize("augment", ["", "rotation=10,translate=0.1,erasing=0.25"])
def test_a_graphed_epoch_trains_the_batches_train_epoch_trains(augment):
    """Full batches through the static buffers, the short last one (150 = 2 × 64 + 22) eagerly: the same
    order, dropout seeds, augmentation and sums as train.train_epoch, so the same weights, loss and accuracy."""
    from reportgen.models.registry import create_model
    from reportgen.train import make_optimizer, train_epoch

    g = torch.Generator().manual_seed(0)
    images, labels = torch.randint(0, 255, (150, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(150) % 10
    config = TrainConfig(batch_size=64, seed=4, augment=augment)
    trained, replayed = [], []
    for graphed in (True, False):
        torch.manual_seed(0)
        model = create_model("lenet5_regularized")  # dropout: its masks must follow the epoch's seed
        optimizer = make_optimizer(config, model.parameters())
        epoch = train_epoch
        if graphed:
            replayed.append(ReplayedEagerly(model, optimizer, config, images))
            epoch = replayed[0].train_epoch
        batches: list[int] = []
        figures = [epoch(model, optimizer, images, labels, 0.3, 0.3, config, e, batches.append) for e in (1, 2)]
        trained.append((figures, len(batches), model.state_dict()))
    (graph_figures, graph_batches, graph_weights), (eager_figures, eager_batches, eager_weights) = trained
    assert replayed[0].replays == 2 * 2 and graph_batches == eager_batches == 2 * 3
    assert graph_figures == eager_figures
    assert all(torch.equal(graph_weights[k], eager_weights[k]) for k in eager_weights)


# --- trials sharing one GPU ------------------------------------------------------------------------------------


def test_a_long_sweep_on_cuda_trains_trials_concurrently_by_a_plan_from_the_trial_list(make_spec):
    spec = make_spec("epochs = 1\nlr = [0.1, 0.01, 0.001]", ["mlp", "lenet5"])  # 6 trials
    data = load_dataset(**dataclasses.asdict(spec.data))
    audits = preflight(spec, data, select_device("cpu"))
    auto = AutoExecutor(2)
    long = settle(auto, spec.trials(), audits, 60_000 * 10, CUDA)  # Fashion-MNIST × 10 epochs' batches
    assert isinstance(long, ProcessExecutor) and long.workers == cuda_workers(6) and long.threads == 1
    assert cuda_workers(6, cores=16) == 4 and cuda_workers(6, cores=2) == 2 and cuda_workers(1, cores=16) == 1
    assert isinstance(settle(auto, spec.trials(), audits, len(data.train_labels), CUDA), LocalExecutor)  # short
    # the CPU's plan is as before: `workers` processes for a long sweep, nothing new from the device argument
    on_cpu = settle(auto, spec.trials(), audits, 60_000 * 10, torch.device("cpu"))
    assert isinstance(on_cpu, ProcessExecutor) and on_cpu.workers == 2
    assert type(settle(auto, spec.trials(), audits, 60_000 * 10)) is type(on_cpu)
    explicit = ProcessExecutor(workers=3)
    assert settle(explicit, spec.trials(), audits, 60_000, CUDA) is explicit


def test_auto_executor_is_chosen_as_before_on_a_machine_without_cuda(make_spec):
    spec = make_spec("epochs = 1\nlr = [0.1, 0.01]", ["mlp"])
    assert isinstance(choose_executor(spec, "auto", workers=2), AutoExecutor)
    if not torch.cuda.is_available():
        assert isinstance(choose_executor(spec, "auto", workers=1), LocalExecutor)


# --- --device auto ---------------------------------------------------------------------------------------------


def test_auto_picks_the_device_with_the_shorter_estimate():
    cpu, gpu = Estimate("cpu", 82.0, "cpu basis"), Estimate("cuda", 14.5, "gpu basis")
    choice = choose("auto", [cpu, gpu])
    assert choice.device == "cuda" and choice.reason == "estimated training 14.5 s on cuda vs 82.0 s on cpu"
    assert choice.line() == "device auto: cuda (estimated training 14.5 s on cuda vs 82.0 s on cpu)"
    slow_gpu = dataclasses.replace(gpu, seconds=109.0)
    assert choose("auto", [cpu, slow_gpu]).device == "cpu"
    assert choose("auto", [cpu, dataclasses.replace(gpu, seconds=82.0)]).device == "cpu"  # a tie: the first
    record = choose("auto", [cpu, gpu]).record()["device_choice"]
    assert record["chosen"] == "cuda" and record["estimates"]["cpu"] == {"seconds": 82.0, "basis": "cpu basis"}
    named = choose("cuda", [])
    assert named.device == "cuda" and "estimates" not in named.record()["device_choice"]


def test_a_run_estimate_shares_trials_out_over_lanes_and_pays_their_start():
    assert run_seconds([30.0, 20.0, 10.0], lanes=1) == 60.0
    assert run_seconds([30.0, 20.0, 10.0], lanes=3, start_s=4.0) == 34.0  # the longest trial bounds it
    assert run_seconds([10.0] * 8, lanes=4, start_s=4.0) == 24.0  # the total shared out
    assert run_seconds([], lanes=4) == 0.0


def test_a_resumed_run_keeps_the_device_auto_chose():
    assert resumed_device("auto", {"device": "cuda"}, cuda_available=True) == "cuda"
    assert resumed_device("auto", {"device": "cpu"}, cuda_available=True) == "cpu"  # auto chose the CPU: kept
    assert resumed_device("auto", {"device": "cuda"}, cuda_available=False) == "cpu"  # no GPU here any more
    assert resumed_device("cuda", {"device": "cpu"}, cuda_available=True) == "cuda"


def test_a_probe_times_real_training_steps_on_the_cpu(make_spec):
    spec = make_spec("epochs = 2", ["mlp", "lenet5"])
    data = load_dataset(**dataclasses.asdict(spec.data))
    mlp, lenet = spec.trials()
    cpu = select_device("cpu")
    assert 0 < probe_step_seconds(mlp, data.input_shape, cpu) < probe_step_seconds(lenet, data.input_shape, cpu)
    on_cpu = estimate(cpu, spec.trials(), data, LocalExecutor())
    assert on_cpu.device == "cpu" and on_cpu.seconds > 0 and "on 1 lane(s)" in on_cpu.basis
    assert on_cpu.basis.startswith("a step: mlp ") and f"{2 * 2 * 4} steps" in on_cpu.basis  # 2 trials × 2 epochs


@pytest.mark.slow
def test_a_cpu_run_with_device_auto_picks_the_cpu_says_why_and_records_it(tmp_path, make_spec, capsys):
    from reportgen.run.runner import run_experiment

    lines: list[str] = []
    run = run_experiment(make_spec("epochs = 1", ["mlp"]), tmp_path / "runs", "auto", log=lines.append)
    environment = run.read("environment")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: auto measures both devices (tests/test_cuda.py)")
    assert environment["device"] == "cpu"
    assert environment["device_choice"] == {
        "requested": "auto",
        "chosen": "cpu",
        "reason": f"{NO_CUDA}, torch {torch.__version__}",
    }
    assert f"device auto: cpu ({NO_CUDA}, torch {torch.__version__})" in lines
    assert environment["executor"] == "LocalExecutor" and environment["workers"] == 1
    trial = json.loads(next((run.path / "trials").glob("*/trial.json")).read_text())
    assert trial["step_mode"] == "eager" and trial["step_mode_reason"] == "not CUDA"
