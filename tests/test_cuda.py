"""The CUDA path, end to end: skipped on a machine without a GPU, run by benchmarks/gpu_check.sh where one is lent.

On such a machine `--device auto` trains where its timed estimate is shorter (run/device_choice.py), so the rest of
the suite's runs may train on either device; the cases here name CUDA, and the graph's resume is checked here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math

import pytest
import torch
from conftest import FAST, requires_fashion

from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model
from reportgen.run.trial import on_device
from reportgen.train import TrainConfig, select_device, train_model

pytestmark = [
    requires_fashion,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.fixture(scope="module")
def subset():
    return on_device(load_dataset("fashion-mnist", train_subset=3000, test_subset=500), select_device("cuda"))


def fit_on_gpu(data, name: str, config: TrainConfig):
    torch.manual_seed(config.seed)
    model = create_model(name).cuda()
    result = train_model(
        model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std, config
    )
    return result, model


def test_a_cuda_run_is_archived_and_reported_as_cuda(workdir, cli):
    code, _, err = cli("run", "--device", "cuda", "--models", "lenet5,mlp", *FAST, "--run-id", "gpu", "--no-pdf")
    assert code == 0, err
    run = workdir / "runs" / "gpu"
    environment = json.loads((run / "environment.json").read_text())
    assert environment["device"].startswith("cuda") and environment["device_name"] == torch.cuda.get_device_name()
    summary = json.loads(next((workdir / "output").rglob("summary.json")).read_text())
    assert {cost["device"] for cost in summary["cost"].values()} == {environment["device"]}
    assert all(cost["latency"][0]["median_ms"] > 0 for cost in summary["cost"].values())
    caption = summary["report"]["tables"]["comparison"]["caption"]  # one trial a model: the cost joined it
    assert f"before training on {environment['device']}" in caption
    assert next((workdir / "output").rglob("report.html")).stat().st_size > 10_000


def test_cuda_training_repeats_bit_for_bit(subset):
    """The archive promises that one seed gives one set of weights; on a GPU that needs deterministic kernels."""
    config = TrainConfig(epochs=2, batch_size=64, seed=5)
    (a, model_a), (b, model_b) = (
        fit_on_gpu(subset, "lenet5_regularized", config),
        fit_on_gpu(subset, "lenet5_regularized", config),
    )
    assert [e.test_loss for e in a.history] == [e.test_loss for e in b.history]
    assert all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))


def test_bf16_on_cuda_learns(subset):
    result, _ = fit_on_gpu(subset, "lenet5", TrainConfig(epochs=2, batch_size=64, seed=0, precision="bf16"))
    assert math.isfinite(result.history[-1].train_loss) and result.history[-1].test_acc > 0.6


# --- the training step as a CUDA graph (reportgen/cuda_graph.py) ---------------------------------------------


def weights_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_built_in_model_trains_through_a_graph_and_repeats_bit_for_bit(subset):
    config = TrainConfig(epochs=2, batch_size=64, seed=5)  # 3,000 images: 46 full batches and one of 56
    (a, model_a), (b, model_b) = (
        fit_on_gpu(subset, "lenet5_regularized", config),
        fit_on_gpu(subset, "lenet5_regularized", config),
    )
    assert a.step_mode["step_mode"] == "cuda_graph", a.step_mode
    assert [e.test_loss for e in a.history] == [e.test_loss for e in b.history]
    assert same_weights(weights_of(model_a), weights_of(model_b))
    assert a.history[-1].test_acc > 0.6  # it learned: the replays saw each batch's images, not the first's


def test_graph_replays_train_what_eager_steps_with_the_same_optimizer_train(subset):
    """LeNet-5 (no dropout): the graph's replays against train.train_epoch's eager steps with the same
    capturable optimizer. Same kernels, so the weights agree; stale inputs or a frozen step would not."""
    from reportgen.cuda_graph import graphed_epochs, make_capturable
    from reportgen.train import make_optimizer, train_epoch

    config = TrainConfig(epochs=1, batch_size=64, seed=1)
    models = []
    for graphed in (True, False):
        torch.manual_seed(config.seed)
        model = create_model("lenet5").cuda()
        optimizer = make_optimizer(config, model.parameters())
        make_capturable(optimizer)
        epoch = graphed_epochs(model, optimizer, config, subset.train_images)[0] if graphed else train_epoch
        epoch(model, optimizer, subset.train_images, subset.train_labels, subset.mean, subset.std, config, 1)
        models.append(weights_of(model))
    graph, eager = models
    assert all(torch.allclose(graph[k], eager[k], rtol=0, atol=1e-6) for k in graph)


def train_on_gpu(data, name: str, config: TrainConfig, checkpoint: dict | None = None, history=None):
    """train_model as a trial calls it: its own optimizer, restored from `checkpoint` when resuming."""
    from reportgen.train import make_optimizer

    torch.manual_seed(config.seed if checkpoint is None else 99)  # resumed: the checkpoint overwrites the init
    model = create_model(name).cuda()
    optimizer = make_optimizer(config, model.parameters())
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    result = train_model(
        model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std,
        config, optimizer=optimizer, history=history,
    )  # fmt: skip
    return result, model, optimizer


def test_a_graphed_trial_resumed_from_a_checkpoint_is_bit_identical(subset):
    """The resumed process captures again; the warm-up's changes are undone, so epoch 2 continues exactly."""
    config = TrainConfig(epochs=2, batch_size=64, seed=3)
    whole, model, _ = train_on_gpu(subset, "lenet5_regularized", config)
    first, half, optimizer = train_on_gpu(subset, "lenet5_regularized", dataclasses.replace(config, epochs=1))
    buffer = io.BytesIO()  # the checkpoint as the archive keeps it: saved, then loaded onto the CPU
    torch.save({"model": half.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True, map_location="cpu")
    result, resumed, _ = train_on_gpu(subset, "lenet5_regularized", config, checkpoint, first.history)
    assert result.step_mode["step_mode"] == "cuda_graph"
    assert [e.test_loss for e in result.history] == [e.test_loss for e in whole.history]
    assert same_weights(weights_of(resumed), weights_of(model))


class NeedsTheHost(torch.nn.Module):
    """A forward that reads a value on the host: a graph cannot record it."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 if float(x.abs().max()) > 0 else 0.0  # a host sync
        return self.net(x) * scale


NeedsTheHost.__module__ = "reportgen.models.test_only"  # as if built in: decide() lets it try


class NotBuiltIn(NeedsTheHost):
    """The same model from a user's file: decide() keeps it eager without trying."""


def test_a_step_that_cannot_be_captured_trains_eagerly_as_if_never_tried(subset):
    config = TrainConfig(epochs=1, batch_size=64, seed=2)
    trained = []
    for model_class in (NeedsTheHost, NotBuiltIn):
        torch.manual_seed(config.seed)
        model = model_class().cuda()
        data = subset
        result = train_model(
            model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std,
            config,
        )  # fmt: skip
        trained.append((result.step_mode, weights_of(model)))
    (tried, tried_weights), (never, never_weights) = trained
    assert tried["step_mode"] == "eager" and tried["step_mode_reason"].startswith("capture failed"), tried
    assert never["step_mode_reason"].startswith("not a built-in model")
    assert same_weights(tried_weights, never_weights)


def test_a_cuda_run_records_its_step_mode_and_trains_trials_concurrently_alike(workdir, cli):
    common = ["--models", "lenet5,mlp", *FAST, "--no-pdf", "--device", "cuda"]
    assert cli("run", *common, "--run-id", "local", "--executor", "local")[0] == 0
    assert cli("run", *common, "--run-id", "shared", "--executor", "process", "--workers", "2")[0] == 0
    runs = workdir / "runs"
    for trial in (runs / "local" / "trials").iterdir():
        record = json.loads((trial / "trial.json").read_text())
        assert record["step_mode"] == "cuda_graph", record.get("step_mode_reason")
        twin = runs / "shared" / "trials" / trial.name
        assert (trial / "predictions.csv").read_bytes() == (twin / "predictions.csv").read_bytes()
        a, b = (torch.load(t / "model.pt", weights_only=True) for t in (trial, twin))
        assert same_weights(a, b)


def test_device_auto_on_a_gpu_machine_measures_both_devices_and_says_which_it_chose(workdir, cli):
    code, out, err = cli("run", "--models", "lenet5", *FAST, "--no-pdf", "--run-id", "auto")
    assert code == 0, err
    environment = json.loads((workdir / "runs" / "auto" / "environment.json").read_text())
    choice = environment["device_choice"]
    assert choice["requested"] == "auto" and set(choice["estimates"]) == {"cpu", "cuda"}
    assert environment["device"].startswith(choice["chosen"])
    assert f"device auto: {choice['chosen']} (estimated training" in out + err
