"""Vectorized training: trials that differ only in lr / momentum / weight_decay train as one stacked model.

Trials sharing architecture, batch size, epochs, seed, loss and optimizer type start from the same
weights and see the same batches in the same order, so their K copies can be stacked along a new
leading dimension and trained with `torch.vmap`: one forward/backward per batch for all K trials
instead of K. Results equal `train_model`'s one-at-a-time runs within float tolerance (a stacked
convolution is computed as one grouped convolution, which rounds differently).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from .train import (OPTIMIZERS, EpochMetrics, TrainConfig, TrainResult, compute_loss, derived_seed,
                    epoch_permutation, evaluate, normalize)

StackedEpochCallback = Callable[[int, int, EpochMetrics], None]  # (trial index, epoch, metrics)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 1e-8


def vectorize_blocker(model: nn.Module) -> str | None:
    """Why `model` cannot be trained stacked (None if it can)."""
    for name, module in model.named_modules():
        where = f"{name or 'the model'} ({type(module).__name__})"
        # Running statistics are mutated in place during forward: not expressible per-slice under vmap.
        if isinstance(module, nn.modules.batchnorm._BatchNorm) or any(
                buffer_name.startswith("running_") for buffer_name, _ in module.named_buffers(recurse=False)):
            return f"{where} keeps running statistics"
        # Random masks under vmap come from one shared RNG stream, unlike the sequential runs'.
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return f"{where} draws random masks (p={module.p})"
        if isinstance(module, nn.RReLU):
            return f"{where} draws random slopes"
    return None


def can_vectorize(model: nn.Module) -> bool:
    """True when stacked training gives the same results as sequential training for this model."""
    return vectorize_blocker(model) is None


def group_key(config: TrainConfig, model_label: str) -> tuple:
    """Trials with equal keys share init and data order, so they can share one stack."""
    return (model_label, config.batch_size, config.epochs, config.seed, config.loss, config.optimizer)


def _per_trial(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K,) hyperparameter as (K, 1, ..., 1) in `like`'s dtype, broadcasting over one stacked parameter."""
    return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class StackedOptimizer:
    """torch.optim's default update rules for parameters stacked along dim 0, one trial per slice.

    lr, momentum and weight_decay are (K,) float64 tensors on the parameters' device; derived factors
    are computed in float64 then cast, as torch.optim does with its Python-float hyperparameters.
    """

    def __init__(self, params: list[torch.Tensor], configs: list[TrainConfig]) -> None:
        kinds = {c.optimizer for c in configs}
        if len(kinds) != 1 or next(iter(kinds)) not in OPTIMIZERS:
            raise ValueError(f"a stack needs one optimizer from {', '.join(OPTIMIZERS)}, got {sorted(kinds)}")
        self.kind = kinds.pop()
        self.params = params
        device = params[0].device

        def column(attr: str) -> torch.Tensor:
            return torch.tensor([getattr(c, attr) for c in configs], dtype=torch.float64, device=device)

        self.lr, self.momentum, self.weight_decay = column("lr"), column("momentum"), column("weight_decay")
        self.steps = 0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in params]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        update = {"sgd": self._sgd, "adam": self._adam, "adamw": self._adam, "rmsprop": self._rmsprop}[self.kind]
        for param, state in zip(self.params, self.state):
            update(param, param.grad, state)

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def keep(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Continue with only the trials at `index`, whose parameters are now `params`."""
        self.params = params
        self.lr, self.momentum, self.weight_decay = (t[index] for t in (self.lr, self.momentum, self.weight_decay))
        self.state = [{name: t[index] for name, t in state.items()} for state in self.state]

    def _l2(self, param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad + _per_trial(self.weight_decay, param) * param  # torch: grad.add(param, alpha=wd)

    def _sgd(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        grad = self._l2(param, grad)
        if "momentum_buffer" not in state:  # torch's first buffer is the gradient itself
            state["momentum_buffer"] = grad.clone()
        else:  # momentum 0 gives buffer == grad, i.e. plain SGD, as torch does without a buffer
            state["momentum_buffer"].mul_(_per_trial(self.momentum, param)).add_(grad)
        param.sub_(_per_trial(self.lr, param) * state["momentum_buffer"])

    def _adam(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        beta1, beta2 = ADAM_BETAS
        if self.kind == "adamw":  # decoupled: shrink the weights, leave the gradient alone
            param.mul_(_per_trial(1 - self.lr * self.weight_decay, param))
        else:
            grad = self._l2(param, grad)
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(param), torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1 ** self.steps)
        denom = (exp_avg_sq.sqrt() / (1 - beta2 ** self.steps) ** 0.5).add_(ADAM_EPS)
        param.sub_(_per_trial(step_size, param) * (exp_avg / denom))

    def _rmsprop(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        grad = self._l2(param, grad)
        if not state:
            state["square_avg"], state["momentum_buffer"] = torch.zeros_like(param), torch.zeros_like(param)
        square_avg, buffer = state["square_avg"], state["momentum_buffer"]
        square_avg.mul_(RMSPROP_ALPHA).addcmul_(grad, grad, value=1 - RMSPROP_ALPHA)
        # momentum 0 makes the buffer grad/avg, i.e. torch's momentum-free update
        buffer.mul_(_per_trial(self.momentum, param)).addcdiv_(grad, square_avg.sqrt().add_(RMSPROP_EPS))
        param.sub_(_per_trial(self.lr, param) * buffer)


class _Stack:
    """K identically shaped models as stacked parameters and buffers, run with vmap."""

    def __init__(self, models: list[nn.Module], loss: str) -> None:
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")  # architecture only; weights come from the stack
        self.base.train()
        self.loss = loss
        self.forward = vmap(self._trial, in_dims=(0, 0, None, None))

    def _trial(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
        output = functional_call(self.base, (params, buffers), (x,))
        return compute_loss(self.loss, output, y), output

    def keep(self, index: torch.Tensor) -> None:
        self.params = {n: p.detach()[index].requires_grad_() for n, p in self.params.items()}
        self.buffers = {n: b[index] for n, b in self.buffers.items()}

    @torch.no_grad()
    def write_back(self, slot: int, model: nn.Module) -> None:
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            tensor.copy_((self.params[name] if name in self.params else self.buffers[name])[slot])


def _check_stackable(models: list[nn.Module], configs: list[TrainConfig]) -> None:
    if not models or len(models) != len(configs):
        raise ValueError(f"need one config per model, got {len(models)} model(s) and {len(configs)} config(s)")
    for model in models:
        reason = vectorize_blocker(model)
        if reason is not None:
            raise ValueError(f"cannot train {type(model).__name__} stacked: {reason}; train it sequentially")
    if len({group_key(c, "") for c in configs}) != 1:
        raise ValueError("stacked trials must share batch_size, epochs, seed, loss and optimizer")
    shapes = [[(n, t.shape) for n, t in m.state_dict().items()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("stacked trials must share one architecture (same parameter names and shapes)")


def _train_epoch(stack: _Stack, optimizer: StackedOptimizer, images: torch.Tensor, labels: torch.Tensor,
                 mean: float, std: float, config: TrainConfig, epoch: int,
                 on_batch: Callable[[int], None] | None) -> tuple[list[float], list[float]]:
    """train_epoch for the whole stack: per-trial (mean loss, accuracy), one device sync at the end."""
    torch.manual_seed(derived_seed(config.seed, epoch, 2))  # same global RNG state as train_epoch leaves
    order = epoch_permutation(config.seed, epoch, len(labels)).to(images.device)
    k = len(optimizer.lr)
    loss_sums = torch.zeros(k, dtype=torch.float64, device=images.device)
    correct = torch.zeros(k, dtype=torch.int64, device=images.device)
    for start in range(0, len(order), config.batch_size):
        index = order[start:start + config.batch_size]
        x, y = normalize(images[index], mean, std), labels[index]
        losses, outputs = stack.forward(stack.params, stack.buffers, x, y)
        # Each trial's loss depends only on its own slice, so the sum's gradient is per-trial;
        # a NaN trial gets NaN gradients in its slice only.
        losses.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        loss_sums += losses.detach() * len(index)
        correct += (outputs.detach().argmax(-1) == y).sum(-1)
        if on_batch is not None:
            on_batch(1)
    return [s / len(labels) for s in loss_sums.tolist()], [c / len(labels) for c in correct.tolist()]


def train_stacked(models: list[nn.Module], train_images: torch.Tensor, train_labels: torch.Tensor,
                  test_images: torch.Tensor, test_labels: torch.Tensor, mean: float, std: float,
                  configs: list[TrainConfig], on_epoch: StackedEpochCallback | None = None,
                  on_batch: Callable[[int], None] | None = None) -> list[TrainResult]:
    """Train K trials as one stack; returns their TrainResults in `configs` order, as train_model would.

    `models` are freshly built and identically seeded; after each epoch every live trial's weights
    are copied into its model and evaluated with train.evaluate. `EpochMetrics.seconds` is the stacked
    training time divided by the live trials, plus the trial's own evaluation time, so a sweep's seconds
    add up to its wall time. `on_batch(1)` is called once per stacked batch. A trial whose training
    loss is non-finite is reported for that epoch, flagged "diverged" and dropped from the stack.
    Raises ValueError when the models cannot be stacked (the caller then trains them sequentially).
    """
    _check_stackable(models, configs)
    config = configs[0]
    stack = _Stack(models, config.loss)
    optimizer = StackedOptimizer(list(stack.params.values()), configs)
    results = [TrainResult() for _ in configs]
    live = list(range(len(configs)))  # original index of each stack slot
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = _train_epoch(stack, optimizer, train_images, train_labels, mean, std, config,
                                             epoch, on_batch)
        shared_seconds = (time.perf_counter() - started) / len(live)
        for slot, trial in enumerate(live):
            started = time.perf_counter()
            stack.write_back(slot, models[trial])
            test = evaluate(models[trial], test_images, test_labels, mean, std, config.loss)
            metrics = EpochMetrics(epoch, train_loss[slot], train_acc[slot], test.loss, test.accuracy,
                                   shared_seconds + time.perf_counter() - started)
            results[trial].history.append(metrics)
            results[trial].final = test
            if on_epoch is not None:
                on_epoch(trial, epoch, metrics)
            if not math.isfinite(train_loss[slot]):
                results[trial].status = "diverged"
        keep = [slot for slot, trial in enumerate(live) if results[trial].status != "diverged"]
        if not keep:
            break
        if len(keep) < len(live):  # stop spending compute on diverged trials
            index = torch.tensor(keep, device=optimizer.lr.device)
            stack.keep(index)
            optimizer.keep(index, list(stack.params.values()))
            live = [live[slot] for slot in keep]
    for trial in live:  # no epochs to train: report the initial weights, as train_model does
        if results[trial].final is None:
            results[trial].final = evaluate(models[trial], test_images, test_labels, mean, std, config.loss)
    return results
