"""The CPU kernel levers (reportgen/cpu_kernels): each computes what torch's kernel computes (BatchNorm's rows to
float32 rounding, the pooling's corners bit for bit), applies only where it reproduces it, comes off the model
when training ends, repeats bit for bit, and is what trains a trial."""

import copy

import pytest
import torch
from conftest import write_idx_dataset
from torch import nn

from reportgen import cpu_kernels, train
from reportgen.cpu_kernels import batchnorm
from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model

CPU = torch.device("cpu")
ROWS = {"batchnorm_kernel": cpu_kernels.ROWS}


def channels_last(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator) * 3 + 1).contiguous(memory_format=torch.channels_last)


def two_steps(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, kernels: dict[str, str], steps: int = 2):
    """`steps` training steps' output, input gradient and parameter gradients of `layer`, with `kernels` on it."""
    x = x.detach().clone().requires_grad_()
    with cpu_kernels.installed(layer, kernels):
        for _ in range(steps):
            out = layer(x)
            out.backward(grad)
    return out, x.grad, layer.weight.grad, layer.bias.grad


def error(value: torch.Tensor, truth: torch.Tensor) -> float:
    return ((value.double() - truth).abs().max() / truth.abs().max()).item()


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
@pytest.mark.parametrize("shape", [(64, 6, 28, 28), (16, 12, 32, 32), (1, 3, 111, 111)], ids=str)
def test_rows_batchnorm_computes_what_torch_computes(shape, momentum):
    """Output, every gradient and the running statistics, against torch's BatchNorm2d in float64 as the truth:
    the rows' pass is off by float32 rounding and no further off than torch's own float32 kernel (it sums in
    shorter runs: measured 9e-7 against torch's 4e-5 for LeNet-5's first weight gradient). Shapes: LeNet-5's
    first layer, 12 channels, and a pixel count no row width divides (111·111 = 12,321: rows of one pixel)."""
    torch.manual_seed(0)
    theirs = nn.BatchNorm2d(shape[1], momentum=momentum)
    nn.init.uniform_(theirs.weight, 0.5, 1.5)
    nn.init.normal_(theirs.bias)
    ours, exact = copy.deepcopy(theirs), copy.deepcopy(theirs).double()
    x, grad = channels_last(*shape), channels_last(*shape, seed=1)
    truth = two_steps(exact, x.double(), grad.double(), {})
    expected = two_steps(theirs, x, grad, {})
    got = two_steps(ours, x, grad, ROWS)
    for name, a, b, t in zip(("output", "input grad", "weight grad", "bias grad"), got, expected, truth):
        assert error(a, t) <= max(error(b, t), 1e-6), name
        assert not torch.equal(a, b), f"{name}: the rows' kernel never ran"
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert got[1].is_contiguous(memory_format=torch.channels_last)
    for buffer in ("running_mean", "running_var"):
        assert error(getattr(ours, buffer), getattr(exact, buffer)) <= 1e-6, buffer
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 2


@pytest.mark.parametrize(
    "case",
    ["evaluation", "contiguous input", "float64", "bf16 autocast", "no grad", "small batch", "16 channels"],
)
def test_rows_batchnorm_leaves_every_other_call_to_torch(case):
    """Where the rows' pass does not reproduce torch's, is not needed, or is not faster (fewer than 12,000
    values per channel, a channel count torch vectorises), torch's kernel runs: bit for bit."""
    theirs = nn.BatchNorm2d(16 if case == "16 channels" else 6)
    ours = copy.deepcopy(theirs)
    x = channels_last(*((64, 6, 10, 10) if case == "small batch" else (64, theirs.num_features, 14, 14)))
    if case == "contiguous input":
        x = x.contiguous()
    if case == "float64":
        theirs, ours, x = theirs.double(), ours.double(), x.double()
    if case == "evaluation":
        theirs.eval(), ours.eval()

    def run(norm: nn.Module, kernels: dict[str, str]) -> torch.Tensor:
        autocast = torch.autocast("cpu", enabled=case == "bf16 autocast")
        with cpu_kernels.installed(norm, kernels), autocast, torch.set_grad_enabled(case != "no grad"):
            return norm(x)

    assert torch.equal(run(ours, ROWS), run(theirs, {}))
    assert torch.equal(ours.running_mean, theirs.running_mean)


def test_the_check_above_could_tell_the_kernels_apart():
    """The same call as a training step: the rows' pass runs and its low-order bits differ from torch's."""
    theirs = nn.BatchNorm2d(6)
    ours = copy.deepcopy(theirs)
    x = channels_last(64, 6, 14, 14)
    with cpu_kernels.installed(ours, ROWS):
        assert not torch.equal(ours(x), theirs(x))


def test_only_torchs_own_batchnorm2d_with_statistics_affine_and_odd_channels_is_eligible():
    class Subclassed(nn.BatchNorm2d):
        pass

    assert batchnorm.eligible(nn.BatchNorm2d(4)) and batchnorm.eligible(nn.BatchNorm2d(12))
    assert not batchnorm.eligible(nn.BatchNorm2d(16))  # torch's kernel vectorises 16 channels well
    assert not batchnorm.eligible(Subclassed(4))  # its forward may do anything
    assert not batchnorm.eligible(nn.BatchNorm2d(4, affine=False))
    assert not batchnorm.eligible(nn.BatchNorm2d(4, track_running_stats=False))
    assert not batchnorm.eligible(nn.BatchNorm1d(4))


def test_choice_comes_from_the_model_and_the_device():
    kernels = ("batchnorm_kernel", "maxpool_kernel", "conv_input_grad_kernel", "dropout_kernel", "relu_pool_kernel")

    def chosen(name: str, device: torch.device = CPU) -> tuple[str, ...]:
        choice = cpu_kernels.choose(create_model(name), device)
        assert list(choice) == list(kernels)
        return tuple(choice.values())

    assert chosen("lenet5_regularized") == ("rows", "corners", "contiguous", "uniform", "pool_first")
    assert chosen("lenet5") == ("torch", "corners", "contiguous", "torch", "pool_first")
    assert chosen("mlp") == ("torch",) * 5
    assert chosen("lenet5_regularized", torch.device("cuda")) == ("torch",) * 5


CORNERS = {"maxpool_kernel": cpu_kernels.CORNERS}


@pytest.mark.parametrize("values", ["normal", "ties", "after ReLU", "NaN"])
@pytest.mark.parametrize("shape", [(250, 6, 28, 28), (250, 16, 10, 10), (3, 1, 6, 8)], ids=str)
def test_corner_maxpool_evaluates_bit_for_bit_what_torch_computes(shape, values):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if values == "ties":
        x = x.round()
    if values == "after ReLU":
        x = x.relu()
    if values == "NaN":
        x[0, 0, 0, 0] = float("nan")
    x = x.contiguous(memory_format=torch.channels_last)
    pool = nn.MaxPool2d(2)
    with torch.inference_mode():
        expected = pool(x)
        with cpu_kernels.installed(pool, CORNERS):
            assert "forward" in vars(pool)
            got = pool(x)
    assert torch.equal(got.nan_to_num(-7.0), expected.nan_to_num(-7.0))
    assert got.isnan().sum() == expected.isnan().sum() == (values == "NaN")
    assert got.is_contiguous(memory_format=torch.channels_last) and expected.is_contiguous(
        memory_format=torch.channels_last
    )


def test_corner_maxpool_leaves_training_and_other_pools_to_torch():
    from reportgen.cpu_kernels import maxpool

    x = channels_last(4, 6, 8, 8).requires_grad_()
    assert not maxpool.applies(nn.MaxPool2d(2), x)  # training: torch's kernel keeps the indices its backward needs
    assert maxpool.applies(nn.MaxPool2d(2), x.detach())
    assert not maxpool.applies(nn.MaxPool2d(2), x.detach()[:, :, :7, :7])  # odd sides (and not channels_last)
    assert not maxpool.applies(nn.MaxPool2d(2), x.detach().contiguous())
    assert maxpool.eligible(nn.MaxPool2d(2)) and maxpool.eligible(nn.MaxPool2d((2, 2), stride=2))
    for other in (
        nn.MaxPool2d(3),
        nn.MaxPool2d(2, stride=1),
        nn.MaxPool2d(2, padding=1),
        nn.MaxPool2d(2, ceil_mode=True),
    ):
        assert not maxpool.eligible(other), other
    assert not maxpool.eligible(nn.MaxPool2d(2, return_indices=True))


def test_installed_comes_off_the_model_even_when_training_fails():
    model = create_model("lenet5_regularized")
    norms = [m for m in model.modules() if batchnorm.eligible(m)]  # the first (6 channels); 16 stay torch's
    assert len(norms) == 1
    keys = list(model.state_dict())
    with pytest.raises(RuntimeError, match="stop"), cpu_kernels.installed(model, ROWS):
        assert all("forward" in vars(m) for m in norms)
        raise RuntimeError("stop")
    assert not any("forward" in vars(m) for m in model.modules())
    assert list(model.state_dict()) == keys


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = write_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=640, n_test=200)
    return load_dataset("mnist", data_dir=folder)


def trained(data, kernels: dict[str, str] | None):
    config = train.TrainConfig(epochs=2, batch_size=64, seed=3)
    torch.manual_seed(config.seed)
    model = create_model("lenet5_regularized")
    train.apply_layout(model, train.choose_layout(model, CPU))  # as a trial does: the lever needs channels_last
    result = train.train_model(
        model, data.train_images, data.train_labels, data.test_images, data.test_labels, data.mean, data.std,
        config, kernels=kernels,
    )  # fmt: skip
    return result, model.state_dict()


def test_the_engine_trains_with_the_chosen_levers_and_repeats_bit_for_bit(data):
    chosen = cpu_kernels.choose(create_model("lenet5_regularized"), CPU)
    assert set(chosen.values()) == {
        cpu_kernels.ROWS, cpu_kernels.CORNERS, cpu_kernels.CONTIGUOUS, cpu_kernels.UNIFORM, cpu_kernels.POOL_FIRST
    }  # fmt: skip
    (first, weights), (again, weights_again) = trained(data, None), trained(data, None)
    assert [e.train_loss for e in first.history] == [e.train_loss for e in again.history]
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    _, explicit = trained(data, chosen)
    assert all(torch.equal(weights[k], explicit[k]) for k in weights)  # None trains with `choose`'s levers
    for lever in ("batchnorm_kernel", "conv_input_grad_kernel", "dropout_kernel"):  # each changes bits: it trained
        _, without = trained(data, chosen | {lever: cpu_kernels.TORCH})
        assert not all(torch.equal(weights[k], without[k]) for k in weights), lever
    # the corners' pooling evaluates exactly as torch's does, and pooling before the ReLU trains and evaluates
    # exactly as the other order: the same weights, the same training and test figures
    for lever in ("maxpool_kernel", "relu_pool_kernel"):
        by_torch, torch_weights = trained(data, chosen | {lever: cpu_kernels.TORCH})
        assert all(torch.equal(weights[k], torch_weights[k]) for k in weights), lever
        assert [e.train_loss for e in by_torch.history] == [e.train_loss for e in first.history], lever
        assert [e.test_loss for e in by_torch.history] == [e.test_loss for e in first.history], lever
        assert torch.equal(by_torch.final.confidences, first.final.confidences), lever


CONTIGUOUS_GRAD = {"conv_input_grad_kernel": cpu_kernels.CONTIGUOUS}


def test_contiguous_input_grad_changes_only_the_input_gradient():
    """LeNet-5's second convolution: output, weight and bias gradients are torch's bit for bit; the input
    gradient agrees with float64 to float32 rounding and stays channels_last."""
    torch.manual_seed(0)
    theirs = nn.Conv2d(6, 16, 5).to(memory_format=torch.channels_last)
    ours, exact = copy.deepcopy(theirs), copy.deepcopy(theirs).double()
    x, grad = channels_last(64, 6, 14, 14), channels_last(64, 16, 10, 10, seed=1)
    expected, got = two_steps(theirs, x, grad, {}, steps=1), two_steps(ours, x, grad, CONTIGUOUS_GRAD, steps=1)
    truth = two_steps(exact, x.double(), grad.double(), {}, steps=1)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])
    assert not torch.equal(got[1], expected[1])  # the lever ran
    assert error(got[1], truth[1]) < 2e-6
    assert got[1].is_contiguous(memory_format=torch.channels_last)


def test_contiguous_input_grad_takes_only_small_channel_5x5_convolutions_that_need_it():
    from reportgen.cpu_kernels import conv_input_grad

    assert conv_input_grad.eligible(nn.Conv2d(6, 16, 5)) and conv_input_grad.eligible(nn.Conv2d(3, 6, 7))
    for other in (
        nn.Conv2d(6, 16, 3),
        nn.Conv2d(8, 16, 5),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.Conv2d(6, 16, 5, groups=2),
        nn.Conv2d(6, 16, 5, dilation=2),
    ):
        assert not conv_input_grad.eligible(other), other  # measured no faster, or not what it reproduces
    conv = nn.Conv2d(3, 6, 5).to(memory_format=torch.channels_last)
    images = channels_last(4, 3, 28, 28)
    assert not conv_input_grad.applies(conv, images)  # the first layer: its input needs no gradient
    assert conv_input_grad.applies(conv, images.clone().requires_grad_())
    assert not conv_input_grad.applies(nn.Conv2d(3, 6, 5), images.clone().requires_grad_())  # torch's layout


UNIFORM = {"dropout_kernel": cpu_kernels.UNIFORM}


def dropped(layer: nn.Dropout, x: torch.Tensor, kernels: dict[str, str], seed: int = 0):
    """One training pass of `layer` from a seeded generator: its output and the input gradient of out.sum()."""
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    with cpu_kernels.installed(layer, kernels):
        out = layer(x)
    out.backward(torch.ones_like(out))
    return out, x.grad


@pytest.mark.parametrize("p", [0.3, 0.5, 0.9])
def test_uniform_dropout_draws_torchs_law_and_scaling(p):
    """Each value kept with probability 1 - p (within 4.5 binomial standard deviations over 240,000 values),
    kept values scaled exactly as torch scales them (x · (1 / (1 − p)) with torch's float32 division), and the
    gradient flowing through the same mask; the masks themselves are other random numbers than torch's."""
    x = torch.rand(2000, 120) + 0.5  # no zeros: a zero output is a dropped value
    ours, grad = dropped(nn.Dropout(p), x, UNIFORM)
    theirs, _ = dropped(nn.Dropout(p), x, {})
    kept = ours != 0
    keep, n = 1 - p, kept.numel()
    assert abs(kept.sum().item() - keep * n) <= 4.5 * (n * keep * p) ** 0.5
    scale = torch.ones(()).div_(keep)  # torch's: the mask divided by the keep probability, in float32
    assert torch.equal(ours[kept], x[kept] * scale)
    assert torch.equal(grad, kept.float() * scale)
    assert torch.equal(theirs[theirs != 0], x[theirs != 0] * scale)  # the check above holds for torch's kernel
    assert not torch.equal(kept, theirs != 0)  # the lever ran: other masks


def test_uniform_dropout_repeats_with_the_seed_and_follows_the_generator():
    x = torch.rand(64, 84) + 0.5
    first, again, other = (dropped(nn.Dropout(0.3), x, UNIFORM, seed)[0] for seed in (5, 5, 6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("case", ["evaluation", "p=0", "p=1", "in place", "float64", "bf16 autocast"])
def test_uniform_dropout_leaves_every_other_call_to_torch(case):
    """Outside float32 training with 0 < p < 1, torch's dropout runs: bit for bit, the same random numbers."""
    p = {"p=0": 0.0, "p=1": 1.0}.get(case, 0.3)
    layer = nn.Dropout(p, inplace=case == "in place")
    if case == "evaluation":
        layer.eval()
    x = torch.rand(64, 120, dtype=torch.float64 if case == "float64" else torch.float32) + 0.5

    def run(kernels: dict[str, str]) -> torch.Tensor:
        torch.manual_seed(0)
        with cpu_kernels.installed(layer, kernels), torch.autocast("cpu", enabled=case == "bf16 autocast"):
            return layer(x.clone())

    assert torch.equal(run(UNIFORM), run({}))


def test_only_torchs_own_dropout_not_in_place_is_eligible():
    from reportgen.cpu_kernels import dropout

    class Subclassed(nn.Dropout):
        pass

    assert dropout.eligible(nn.Dropout(0.3))
    assert not dropout.eligible(nn.Dropout(0.3, inplace=True))
    assert not dropout.eligible(Subclassed(0.3))
    assert not dropout.eligible(nn.Dropout2d(0.3)) and not dropout.eligible(nn.AlphaDropout(0.3))


POOL_FIRST = {"relu_pool_kernel": cpu_kernels.POOL_FIRST}


def block_pass(block: nn.Sequential, x: torch.Tensor, kernels: dict[str, str]):
    """One training pass of `block` on `x`: output, input gradient, and the name of the output's last op."""
    x = x.detach().clone().requires_grad_()
    grad = torch.randn(block(x.detach()).shape, generator=torch.Generator().manual_seed(2))
    with cpu_kernels.installed(block, kernels):
        out = block(x)
    out.backward(grad)
    return out, x.grad, out.grad_fn.name()


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(3, ceil_mode=True),
        nn.MaxPool2d(2, dilation=2),
    ],
    ids=["2x2", "3x3 padded", "ceil", "dilated"],
)
@pytest.mark.parametrize("values", ["normal", "ties", "NaN", "in place", "contiguous"])
def test_pooling_before_the_relu_is_bit_for_bit_the_same_pass(pool, values):
    """Output and input gradient equal torch's order exactly (the last op shows which order ran): ties (rounded
    values, so windows share their maximum and whole windows are negative), a NaN, an in-place ReLU, both
    layouts, and pools with padding, ceil mode or dilation."""
    x = torch.randn(8, 6, 12, 12, generator=torch.Generator().manual_seed(0)) * 2
    if values == "ties":
        x = x.round()
    if values == "NaN":
        x[0, 0, 3, 3] = float("nan")
    if values != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    block = nn.Sequential(nn.Conv2d(6, 6, 1), nn.ReLU(inplace=values == "in place"), pool)
    ours, theirs = block_pass(block, x, POOL_FIRST), block_pass(block, x, {})
    assert (ours[2], theirs[2]) == ("ReluBackward0", "MaxPool2DWithIndicesBackward0")  # which op ran last
    for got, expected in zip(ours[:2], theirs[:2]):
        assert torch.equal(got.nan_to_num(-7.0), expected.nan_to_num(-7.0))
        assert got.isnan().sum() == expected.isnan().sum()


def test_pooling_before_the_relu_leaves_observed_or_other_pairs_in_order():
    """A hook that sees tensors (on either layer, or global), another ReLU or pool, or a subclassed Sequential:
    torch's order. The training-mode recorder's pre-hooks (measure/activity.py) do not stop the swap."""
    from reportgen.cpu_kernels import pool_first
    from reportgen.measure.activity import record_training_modules

    x = channels_last(4, 6, 8, 8)

    def last_op(block: nn.Module) -> str:
        return block_pass(block, x, POOL_FIRST)[2]

    def pair(relu: nn.Module | None = None, pool: nn.Module | None = None) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(6, 6, 1), relu or nn.ReLU(), pool or nn.MaxPool2d(2))

    assert "MaxPool" not in last_op(pair())
    recorded = pair()
    ran = record_training_modules(recorded)
    assert "MaxPool" not in last_op(recorded) and set(ran) == {"", "0", "1", "2"}
    hooked = pair()
    hooked[1].register_forward_hook(lambda *_: None)
    assert "MaxPool" in last_op(hooked)
    seen = pair()
    seen[2].register_forward_pre_hook(lambda *_: None)
    assert "MaxPool" in last_op(seen)
    with nn.modules.module.register_module_forward_hook(lambda *_: None):
        assert "MaxPool" in last_op(pair())
    assert "MaxPool" not in last_op(pair())  # the global hook is gone again

    class Subclassed(nn.Sequential):
        pass

    assert not pool_first.eligible(Subclassed(*pair()))
    assert not pool_first.eligible(pair(relu=nn.LeakyReLU()))
    assert not pool_first.eligible(pair(pool=nn.AvgPool2d(2)))
    assert not pool_first.eligible(pair(pool=nn.MaxPool2d(2, return_indices=True)))
    assert not pool_first.eligible(nn.Sequential(nn.MaxPool2d(2), nn.ReLU()))  # already pools first
    assert not pool_first.eligible(nn.Sequential(nn.ReLU(), nn.Identity(), nn.MaxPool2d(2)))


@pytest.mark.parametrize("shape", [(250, 6, 28, 28), (100, 3, 32, 32), (1, 3, 111, 111)], ids=str)
def test_rows_batchnorm_evaluates_what_torch_evaluates(shape):
    """Under inference_mode (the engine's evaluation) the rows normalise by the running statistics: against
    float64, as close as torch's own float32 kernel (or within 1e-6), channels_last, and not torch's bits."""
    torch.manual_seed(0)
    theirs = nn.BatchNorm2d(shape[1]).eval()
    nn.init.uniform_(theirs.weight, 0.5, 1.5)
    nn.init.normal_(theirs.bias)
    theirs.running_mean.normal_()
    theirs.running_var.uniform_(0.2, 3.0)
    ours, exact = copy.deepcopy(theirs), copy.deepcopy(theirs).double()
    x = channels_last(*shape)
    with torch.inference_mode():
        truth, expected = exact(x.double()), theirs(x)
        with cpu_kernels.installed(ours, ROWS):
            got = ours(x)
    assert error(got, truth) <= max(error(expected, truth), 1e-6)
    assert not torch.equal(got, expected)  # the rows ran
    assert got.is_contiguous(memory_format=torch.channels_last)
