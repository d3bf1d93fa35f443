"""Stacked (vmap) training must reproduce one-at-a-time `train_model` runs, trial by trial."""
import math

import pytest
import torch
from conftest import requires_fashion

from reportgen.data import load_dataset
from reportgen.registry import create_model
from reportgen.train import TrainConfig, compute_loss, make_optimizer, normalize, train_model
from reportgen.vectorized import StackedOptimizer, _Stack, can_vectorize, group_key, train_stacked

TRAIN, TEST = 1200, 300
LOSS_TOL = 1e-4
ACC_TOL = 2 / TEST  # two predictions may flip on a float tie
WEIGHT_TOL = 1e-4


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mnist", train_subset=TRAIN, test_subset=TEST)


def split(data):
    return data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std


def fresh(name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name)


def sequential(data, name: str, configs: list[TrainConfig]):
    runs = [(config, fresh(name, config.seed)) for config in configs]
    return [(train_model(model, *split(data), config), model) for config, model in runs]


def stacked(data, name: str, configs: list[TrainConfig], **callbacks):
    models = [fresh(name, config.seed) for config in configs]
    return train_stacked(models, *split(data), configs, **callbacks), models


def assert_same_run(expected, expected_model, result, model):
    assert result.status == expected.status and len(result.history) == len(expected.history)
    for want, got in zip(expected.history, result.history):
        assert got.epoch == want.epoch
        assert got.train_loss == pytest.approx(want.train_loss, abs=LOSS_TOL)
        assert got.test_loss == pytest.approx(want.test_loss, abs=LOSS_TOL)
        assert got.train_acc == pytest.approx(want.train_acc, abs=ACC_TOL)
        assert got.test_acc == pytest.approx(want.test_acc, abs=ACC_TOL)
    assert result.final.accuracy == result.history[-1].test_acc
    for (name, want), got in zip(expected_model.state_dict().items(), model.state_dict().values()):
        assert torch.allclose(got, want, rtol=0, atol=WEIGHT_TOL), name


def test_models_with_running_stats_or_dropout_cannot_be_stacked():
    assert can_vectorize(create_model("lenet5")) and can_vectorize(create_model("mlp"))
    assert can_vectorize(create_model("fmnist_cnn1"))  # Dropout2d(p=0) draws nothing
    assert not can_vectorize(create_model("lenet5_regularized"))  # BatchNorm
    assert not can_vectorize(create_model("fmnist_cnn2"))  # Dropout2d(p=0.5)


@pytest.mark.parametrize("name, reason", [("lenet5_regularized", "running statistics"),
                                          ("fmnist_cnn2", "random masks")])
def test_train_stacked_refuses_unstackable_models(data, name, reason):
    configs = [TrainConfig(epochs=1, lr=lr) for lr in (1e-3, 1e-2)]
    with pytest.raises(ValueError, match=reason):
        train_stacked([fresh(name, 0) for _ in configs], *split(data), configs)


def test_trials_differing_only_in_optimizer_settings_share_a_group():
    base = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", seed=1)
    tuned = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", seed=1, lr=0.5, momentum=0.9, weight_decay=1e-3)
    assert group_key(base, "lenet5") == group_key(tuned, "lenet5")
    for other in (TrainConfig(epochs=2, batch_size=32, optimizer="sgd", seed=1),
                  TrainConfig(epochs=2, batch_size=64, optimizer="sgd", seed=2),
                  TrainConfig(epochs=2, batch_size=64, optimizer="adam", seed=1)):
        assert group_key(other, "lenet5") != group_key(base, "lenet5")
    assert group_key(base, "mlp") != group_key(base, "lenet5")


def test_train_stacked_refuses_configs_that_cannot_share_a_stack(data):
    configs = [TrainConfig(epochs=1, batch_size=64), TrainConfig(epochs=1, batch_size=32)]
    with pytest.raises(ValueError, match="batch_size"):
        train_stacked([fresh("mlp", 0) for _ in configs], *split(data), configs)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_stacked_optimizer_matches_torch_optim_per_trial(optimizer):
    # Per-trial lr, momentum and weight decay, including zeros, which torch.optim special-cases.
    settings = [(0.1, 0.9, 1e-2), (1e-2, 0.0, 0.0), (1e-3, 0.5, 1e-4)]
    configs = [TrainConfig(optimizer=optimizer, lr=lr, momentum=m, weight_decay=wd) for lr, m, wd in settings]
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 4, 5, generator=generator), torch.randn(3, 7, generator=generator)]
    stacked_params = [p.clone() for p in start]
    vectorized = StackedOptimizer(stacked_params, configs)
    singles = [[p[k].clone().requires_grad_() for p in start] for k in range(3)]
    references = [make_optimizer(c, params) for c, params in zip(configs, singles)]
    for step in range(6):
        grads = [torch.randn(p.shape, generator=generator) * 10.0 ** -step for p in start]
        vectorized.step([g.clone() for g in grads])
        for k, (params, reference) in enumerate(zip(singles, references)):
            for param, grad in zip(params, grads):
                param.grad = grad[k].clone()
            reference.step()
    for k, params in enumerate(singles):
        for got, want in zip(stacked_params, params):
            assert torch.allclose(got[k], want.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer, extra, lrs", [
    ("sgd", {"momentum": 0.9, "weight_decay": 1e-4}, (0.1, 0.03, 0.01)),
    ("adam", {}, (3e-3, 1e-3, 3e-4)),
    ("adamw", {"weight_decay": 0.01}, (3e-3, 1e-3, 3e-4)),
    ("rmsprop", {"momentum": 0.5, "weight_decay": 1e-4}, (1e-3, 3e-4, 1e-4)),
])
def test_stacked_mlp_training_equals_sequential_runs(data, optimizer, extra, lrs):
    configs = [TrainConfig(epochs=2, batch_size=64, optimizer=optimizer, lr=lr, seed=0, **extra) for lr in lrs]
    results, models = stacked(data, "mlp", configs)
    for (expected, expected_model), result, model in zip(sequential(data, "mlp", configs), results, models):
        assert_same_run(expected, expected_model, result, model)


# LeNet-5 amplifies float rounding chaotically at large learning rates (a sequential run moves as much
# when only its thread count changes), so the convolution path is compared at modest ones.
@pytest.mark.parametrize("optimizer, extra, lrs", [
    ("sgd", {"momentum": 0.9, "weight_decay": 1e-4}, (0.01, 0.005, 0.002)),
    ("adam", {}, (3e-4, 2e-4, 1e-4)),
])
def test_stacked_lenet5_training_equals_sequential_runs(data, optimizer, extra, lrs):
    configs = [TrainConfig(epochs=2, batch_size=64, optimizer=optimizer, lr=lr, seed=0, **extra) for lr in lrs]
    results, models = stacked(data, "lenet5", configs)
    for (expected, expected_model), result, model in zip(sequential(data, "lenet5", configs), results, models):
        assert_same_run(expected, expected_model, result, model)


def test_diverging_trial_is_flagged_and_its_siblings_are_unaffected(data):
    configs = [TrainConfig(epochs=3, batch_size=64, optimizer="sgd", lr=lr, seed=0) for lr in (0.05, 1e4, 0.01)]
    epochs_seen, batches = [], []
    results, models = stacked(data, "mlp", configs, on_epoch=lambda k, epoch, m: epochs_seen.append((k, epoch)),
                              on_batch=batches.append)
    expected = sequential(data, "mlp", configs)
    assert results[1].status == "diverged" and not math.isfinite(results[1].history[-1].train_loss)
    assert len(results[1].history) == len(expected[1][0].history) < 3
    assert epochs_seen == [(k, e) for e in (1, 2, 3) for k in (0, 1, 2) if k != 1 or e <= len(results[1].history)]
    assert sum(batches) == 3 * math.ceil(TRAIN / 64)
    for k in (0, 2):
        assert results[k].status == "complete"
        assert_same_run(*expected[k], results[k], models[k])


def test_nan_trial_leaves_other_trials_gradients_intact(data):
    x, y = normalize(data.train_images[:64], data.mean, data.std), data.train_labels[:64]
    model = fresh("lenet5", 0)
    compute_loss("cross_entropy", model(x), y).backward()
    stack = _Stack([fresh("lenet5", 0) for _ in range(3)], "cross_entropy")
    with torch.no_grad():
        stack.flat[1] = float("nan")
    losses, _ = stack.losses(x, y)
    losses.sum().backward()  # NaN total, yet each slice's gradient comes from its own loss only
    grads = stack.take_grads()
    assert torch.isnan(losses[1]) and torch.isnan(grads[1]).all()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()])
    for k in (0, 2):
        assert torch.allclose(grads[k], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss, name", [("nll", "lenet5_c5"), ("bce_with_logits", "mlp")])
def test_other_losses_train_stacked_as_sequentially(data, loss, name):
    configs = [TrainConfig(epochs=1, batch_size=64, loss=loss, lr=lr, seed=0) for lr in (3e-4, 1e-4)]
    results, models = stacked(data, name, configs)
    for (expected, expected_model), result, model in zip(sequential(data, name, configs), results, models):
        assert_same_run(expected, expected_model, result, model)


@requires_fashion
def test_runner_stacks_a_learning_rate_sweep_and_matches_sequential(workdir, cli):
    """Through the CLI: --vectorize on and off give the same archive within float tolerance."""
    import json

    spec = workdir / "sweep.toml"
    spec.write_text('[data]\ntrain_subset = 1200\ntest_subset = 300\n[train]\nepochs = 2\nbatch_size = 100\n'
                    'optimizer = "sgd"\nmomentum = 0.9\nlr = [0.01, 0.005]\n[[models]]\nname = "mlp"\n')
    for mode in ("on", "off"):
        code, _out, err = cli("run", spec, "--vectorize", mode, "--run-id", mode, "--no-pdf")
        assert code == 0, err
    stacked, sequential = (json.loads((workdir / "output" / m / "summary.json").read_text())["epochs"]
                           for m in ("on", "off"))
    assert stacked.keys() == sequential.keys() and len(stacked) == 2
    for trial in stacked:
        for a, b in zip(stacked[trial], sequential[trial]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
            assert a["test_acc"] == pytest.approx(b["test_acc"], abs=2 / 300)
