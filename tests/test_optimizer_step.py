"""reportgen/optimizer_step.py: the training loop's direct fused Adam step leaves every weight and every state
tensor bit for bit where torch's `optimizer.step()` leaves them, and takes torch's step wherever it cannot."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reportgen.models.registry import create_model
from reportgen.optimizer_step import DirectStep


def _train(make_optimizer, direct: bool, steps: int = 6, schedule: bool = False):
    """A few training steps of LeNet-5 + BN + Dropout on fixed random batches; returns (model, optimizer, whether
    the last step went the direct way)."""
    torch.manual_seed(0)
    model = create_model("lenet5_regularized").to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5) if schedule else None
    update = DirectStep(optimizer)
    generator = torch.Generator().manual_seed(1)
    went_direct = False
    for _ in range(steps):
        images = torch.randn(16, 1, 28, 28, generator=generator).contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, 10, (16,), generator=generator)
        if direct:
            update.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        went_direct = update._direct(optimizer.param_groups[0])
        update.step() if direct else optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return model, optimizer, went_direct


def _assert_bitwise_equal(a, b) -> None:
    for (name, x), (_, y) in zip(a[0].state_dict().items(), b[0].state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    for x, y in zip(a[1].state.values(), b[1].state.values(), strict=True):
        for key in x:
            assert torch.equal(x[key], y[key]), key


@pytest.mark.parametrize(
    "make_optimizer, schedule",
    [
        (lambda params: torch.optim.Adam(params, lr=1e-3, fused=True), False),
        (lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-2, fused=True), True),
        (lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True), True),
    ],
    ids=["adam", "adam-weight-decay-schedule", "adamw-schedule"],
)
def test_direct_steps_leave_every_number_where_torchs_step_does(make_optimizer, schedule):
    torchs = _train(make_optimizer, direct=False, schedule=schedule)
    direct = _train(make_optimizer, direct=True, schedule=schedule)
    assert direct[2]  # after torch's first step made the state, the steps went the direct way
    _assert_bitwise_equal(torchs, direct)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=True),
        lambda params: torch.optim.Adam(params, lr=1e-3),  # not fused: torch's loop over the parameters
        lambda params: torch.optim.Adam(params, lr=1e-3, amsgrad=True, fused=True),
        lambda params: torch.optim.Adam(params, lr=torch.tensor(1e-3), fused=True),
    ],
    ids=["sgd", "adam-loop", "amsgrad", "tensor-lr"],
)
def test_what_the_direct_step_does_not_do_takes_torchs_step(make_optimizer):
    torchs = _train(make_optimizer, direct=False)
    direct = _train(make_optimizer, direct=True)
    assert not direct[2]
    _assert_bitwise_equal(torchs, direct)


def test_a_step_hook_or_a_parameter_without_gradient_takes_torchs_step():
    """A hook would not run on the direct path, and torch's step skips a parameter that got no gradient."""
    model = create_model("mlp_lenet_sized")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    update = DirectStep(optimizer)
    F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    update.step()  # torch's: the state does not exist yet
    group = optimizer.param_groups[0]
    assert update._direct(group)
    handle = optimizer.register_step_post_hook(lambda *args: None)
    assert not update._direct(group)
    handle.remove()
    next(model.parameters()).grad = None
    assert not update._direct(group)
