import math

import pytest
import recording_nets
import torch
from conftest import requires_fashion

from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model
from reportgen.train import TrainConfig, epoch_permutation, train_model

pytestmark = requires_fashion


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mnist", train_subset=1200, test_subset=300)


def fit(data, name: str, config: TrainConfig):
    torch.manual_seed(config.seed)
    model = create_model(name)
    return train_model(model, data.train_images, data.train_labels, data.test_images, data.test_labels,
                       data.mean, data.std, config), model


def test_identical_seeds_give_identical_metrics_and_weights(data):
    config = TrainConfig(epochs=2, batch_size=64, seed=7)
    (a, model_a), (b, model_b) = fit(data, "lenet5_regularized", config), fit(data, "lenet5_regularized", config)
    strip = lambda h: [(e.train_loss, e.train_acc, e.test_loss, e.test_acc) for e in h]
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    c, _ = fit(data, "lenet5_regularized", TrainConfig(epochs=2, batch_size=64, seed=8))
    assert strip(c.history) != strip(a.history)


def test_different_models_see_the_same_batches_in_the_same_order(data):
    config = TrainConfig(epochs=2, batch_size=100, seed=3)
    fit(data, "recording_nets:Recorder?tag=\"small\"&width=8", config)
    fit(data, "recording_nets:Recorder?tag=\"wide\"&width=64", config)
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


def test_bf16_autocast_trains_on_the_same_code_path(data):
    result, _ = fit(data, "lenet5", TrainConfig(epochs=1, batch_size=64, seed=0, precision="bf16"))
    plain, _ = fit(data, "lenet5", TrainConfig(epochs=1, batch_size=64, seed=0))
    assert math.isfinite(result.history[0].train_loss) and result.history[0].test_acc > 0.4
    assert result.history[0].train_loss != plain.history[0].train_loss  # autocast really changed the math


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_and_cpu_share_one_implementation(data):
    """The same train_model call on CUDA tensors gives the CPU numbers within float tolerance."""
    config = TrainConfig(epochs=1, batch_size=64, seed=0)
    cpu, _ = fit(data, "mlp", config)
    torch.manual_seed(0)
    model = create_model("mlp").cuda()
    gpu = train_model(model, *(t.cuda() for t in (data.train_images, data.train_labels, data.test_images,
                                                   data.test_labels)), data.mean, data.std, config)
    assert gpu.history[0].train_loss == pytest.approx(cpu.history[0].train_loss, rel=1e-3)


def test_engine_has_no_device_specific_branches():
    """One implementation for CPU and CUDA: the engine takes its device from the tensors it is given;
    only select_device knows device names."""
    import inspect

    import reportgen.train as engine

    for function in (engine.train_epoch, engine.evaluate, engine.train_model, engine.normalize,
                     engine.batch_augmenter):
        source = inspect.getsource(function)
        assert "cuda" not in source and '"cpu"' not in source, function.__name__
