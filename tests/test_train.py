"""The training engine on a small learnable IDX set: reproducibility, shared batch order, divergence,
losses, bf16 autocast and device placement."""

import math

import pytest
import recording_nets
import torch
from conftest import write_idx_dataset
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from reportgen import train
from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model
from reportgen.train import TrainConfig, epoch_permutation, evaluate, train_epoch, train_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = write_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=1200, n_test=300)
    return load_dataset("mnist", data_dir=folder)  # "fashion-mnist" would check the real files' sha256


def fit(data, name: str, config: TrainConfig):
    torch.manual_seed(config.seed)
    model = create_model(name)
    return train_model(
        model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std, config
    ), model


def test_identical_seeds_give_identical_metrics_and_weights(data):
    config = TrainConfig(epochs=2, batch_size=64, seed=7)
    (a, model_a), (b, model_b) = fit(data, "lenet5_regularized", config), fit(data, "lenet5_regularized", config)
    strip = lambda h: [(e.train_loss, e.train_acc, e.test_loss, e.test_acc) for e in h]
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    c, _ = fit(data, "lenet5_regularized", TrainConfig(epochs=2, batch_size=64, seed=8))
    assert strip(c.history) != strip(a.history)


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits"])
def test_evaluation_figures_do_not_depend_on_batches_of_64_or_more(data, monkeypatch, loss):
    """The evaluation batch is chosen for speed (train.EVAL_BATCH): every figure must come out the same, the
    loss too (a per-batch float32 sum moved it in the 8th digit). Batches under 64 images may take other
    kernels (docs/speed.md), so the sizes split the 300 test images into batches of 64 or more."""
    torch.manual_seed(0)
    model = create_model("lenet5_regularized")
    train_model(
        model,
        *(data.train_images[:256], data.train_labels[:256]),
        data.test_images,
        data.test_labels,
        data.mean,
        data.std,
        TrainConfig(epochs=1, batch_size=64, loss=loss),
    )
    results = []
    for size in (300, 150, 100):
        monkeypatch.setitem(train.EVAL_BATCH, "cpu", size)
        results.append(evaluate(model, data.test_images, data.test_labels, data.mean, data.std, loss))
    for other in results[1:]:
        assert (other.loss, other.accuracy) == (results[0].loss, results[0].accuracy)
        assert torch.equal(other.predictions, results[0].predictions)
        assert torch.equal(other.confidences, results[0].confidences)


def test_different_models_see_the_same_batches_in_the_same_order(data):
    config = TrainConfig(epochs=2, batch_size=100, seed=3)
    fit(data, 'recording_nets:Recorder?tag="small"&width=8', config)
    fit(data, 'recording_nets:Recorder?tag="wide"&width=64', config)
    assert len(recording_nets.SEEN["small"]) == 2 * 12
    assert recording_nets.SEEN["small"] == recording_nets.SEEN["wide"]


def test_each_epoch_has_its_own_permutation():
    first, second = epoch_permutation(0, 1, 1000), epoch_permutation(0, 2, 1000)
    assert sorted(first.tolist()) == list(range(1000)) and not torch.equal(first, second)
    assert torch.equal(first, epoch_permutation(0, 1, 1000))


def test_training_learns_and_records_every_epoch(data):
    result, _ = fit(data, "lenet5", TrainConfig(epochs=3, batch_size=32, seed=0))
    assert [e.epoch for e in result.history] == [1, 2, 3]
    assert result.history[-1].test_acc > 0.6 and result.history[-1].train_loss < result.history[0].train_loss
    assert len(result.final.predictions) == 300 and result.status == "complete"


def test_diverging_run_is_stopped_and_flagged(data):
    result, _ = fit(data, "mlp", TrainConfig(epochs=4, batch_size=64, optimizer="sgd", lr=1e4, seed=0))
    assert result.status == "diverged" and not math.isfinite(result.history[-1].train_loss)
    assert len(result.history) < 4


@pytest.mark.parametrize("loss, model", [("nll", "lenet5_c5"), ("bce_with_logits", "mlp")])
def test_other_losses_train(data, loss, model):
    result, _ = fit(data, model, TrainConfig(epochs=1, batch_size=64, loss=loss, seed=0))
    assert math.isfinite(result.history[0].test_loss) and result.history[0].test_acc > 0.3


class PrecisionProbe(nn.Module):
    """A small net that notes, on every call, whether autocast was on and which dtypes its layers saw."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(784, 32), nn.Linear(32, 10)
        self.calls: list[dict] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(x.flatten(1))
        output = self.out(hidden.relu())
        device = x.device.type
        self.calls.append(
            {
                "training": self.training,
                "autocast": torch.is_autocast_enabled(device),
                "autocast_dtype": torch.get_autocast_dtype(device),
                "input": x.dtype,
                "hidden": hidden.dtype,
                "output": output.dtype,
            }
        )
        return output


def probe_calls(data, precision: str) -> tuple[list[dict], list[dict], float]:
    torch.manual_seed(0)
    probe = PrecisionProbe()
    result = train_model(
        probe,
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
        data.mean,
        data.std,
        TrainConfig(epochs=1, batch_size=100, seed=0, precision=precision),
    )
    training = [c for c in probe.calls if c["training"]]
    return training, [c for c in probe.calls if not c["training"]], result.history[0].train_loss


def test_bf16_trains_under_bfloat16_autocast_and_evaluates_in_fp32(data):
    training, evaluation, loss = probe_calls(data, "bf16")
    assert len(training) == 12 and evaluation  # 1200 images / 100 per batch, then the test split
    for call in training:  # the batch arrives in fp32; the layers compute in bfloat16 under autocast
        assert call["autocast"] and call["autocast_dtype"] == torch.bfloat16, call
        assert call["input"] == torch.float32 and call["hidden"] == call["output"] == torch.bfloat16, call
    for call in evaluation:  # predictions and reported test metrics come from full-precision math
        assert not call["autocast"] and call["hidden"] == call["output"] == torch.float32, call
    assert math.isfinite(loss)


def test_fp32_never_enables_autocast(data):
    training, evaluation, _loss = probe_calls(data, "fp32")
    assert training and evaluation
    assert all(not c["autocast"] and c["hidden"] == c["output"] == torch.float32 for c in training + evaluation)


def test_bf16_lenet_still_learns(data):
    result, _ = fit(data, "lenet5", TrainConfig(epochs=1, batch_size=64, seed=0, precision="bf16"))
    assert math.isfinite(result.history[0].train_loss) and result.history[0].test_acc > 0.4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_and_cpu_share_one_implementation(data):
    """The same train_model call on CUDA tensors gives the CPU numbers within float tolerance."""
    config = TrainConfig(epochs=1, batch_size=64, seed=0)
    cpu, _ = fit(data, "mlp", config)
    torch.manual_seed(0)
    model = create_model("mlp").cuda()
    gpu = train_model(
        model,
        *(t.cuda() for t in (data.train_images, data.train_labels, data.test_images, data.test_labels)),
        data.mean,
        data.std,
        config,
    )
    assert gpu.history[0].train_loss == pytest.approx(cpu.history[0].train_loss, rel=1e-3)


class DeviceLog(TorchDispatchMode):
    """Every tensor operation run inside it, with the devices of the tensors it read and wrote.

    Meta tensors have shapes but no values, so reading a number back (`float(loss)`) and copying results to
    the host are answered with placeholders; everything else runs as the engine wrote it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, set[str], set[str]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        reads = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        if func is torch.ops.aten._local_scalar_dense.default and args[0].is_meta:
            self.ops.append((str(func), reads, set()))
            return 0.0 if args[0].is_floating_point() else 0
        if func is torch.ops.aten._to_copy.default and args[0].is_meta and kwargs.get("device") == torch.device("cpu"):
            out = torch.zeros(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        else:
            out = func(*args, **kwargs)
        self.ops.append((str(func), reads, {t.device.type for t in tree_leaves(out) if isinstance(t, torch.Tensor)}))
        return out

    def off_device(self, device: str) -> list[tuple[str, set[str], set[str]]]:
        return [op for op in self.ops if (op[1] | op[2]) - {device}]


def tiny_split(device: str, n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return images.to(device), (torch.arange(n) % 10).to(device)


def test_evaluation_computes_on_the_device_of_its_inputs():
    """Meta tensors stand in for an accelerator on this CPU-only machine: a tensor the evaluation made with a
    fixed device ("cpu", or .cuda()) shows up as an operation off the meta device."""
    model = create_model("lenet5").to("meta")
    images, labels = tiny_split("meta")
    log = DeviceLog()
    with log:
        result = evaluate(model, images, labels, 0.3, 0.3, "cross_entropy")
    assert len(log.ops) > 20  # the whole forward pass was seen
    copies_out = [op for op in log.ops if op[0] == "aten._to_copy.default" and op[2] == {"cpu"}]
    assert len(copies_out) == 3 and len(result.predictions) == 120  # losses, predictions, confidences, at the end
    assert [op for op in log.off_device("meta") if op not in copies_out] == []


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_training_epoch_computes_on_the_device_of_its_inputs(device):
    """Autocast has no meta variant, so a training epoch is checked on each device this machine has: apart
    from the epoch order, drawn on the CPU so every device trains in the same order, all work stays there."""
    torch.manual_seed(0)
    model = create_model("lenet5").to(device)
    images, labels = tiny_split(device)
    config = TrainConfig(epochs=1, batch_size=40, seed=0)
    log = DeviceLog()
    with log:
        train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.01), images, labels, 0.3, 0.3, config, 1)
    assert any(op[0].startswith("aten.convolution_backward") for op in log.ops)  # a full step was seen
    epoch_order = [("aten.randperm.generator", set(), {"cpu"}), ("aten._to_copy.default", {"cpu"}, {device})]
    assert log.off_device(device) == ([] if device == "cpu" else epoch_order)
