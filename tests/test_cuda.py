"""The CUDA path, end to end: skipped on a machine without a GPU, run by benchmarks/gpu_check.sh where one is lent.

On such a machine `--device auto` trains on the GPU, so the rest of the suite (resume, reliability) runs there too.
"""

from __future__ import annotations

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
