"""Vectorized training: trials that differ only in lr / momentum / weight_decay train as one stacked model.

Trials sharing architecture, batch size, epochs, seed, loss and optimizer type start from the same
weights and see the same batches in the same order, so their K copies can be stacked along a new
leading dimension and trained with `torch.vmap`: one forward/backward per batch for all K trials
instead of K. Results equal `train_model`'s one-at-a-time runs within float tolerance (a stacked
convolution is computed as one grouped convolution, which rounds differently).
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .train import (
    OPTIMIZERS,
    EpochMetrics,
    TrainConfig,
    TrainResult,
    batch_augmenter,
    compute_loss,
    derived_seed,
    epoch_permutation,
    evaluate,
    is_diverged,
    normalize,
)

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
    """True when stacked training gives the same results as sequential training for this model.

    Only modules are inspected; a random op called inside forward (F.dropout) still fails loudly,
    as vmap refuses randomness by default.
    """
    return vectorize_blocker(model) is None


def group_key(config: TrainConfig, model_label: str) -> tuple:
    """Trials with equal keys share init and data order, so they can share one stack."""
    return (model_label, config.batch_size, config.epochs, config.seed, config.loss, config.optimizer,
            config.augment, config.precision)


def _per_trial(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K,) hyperparameter as (K, 1, ..., 1) in `like`'s dtype, broadcasting over one stacked parameter."""
    return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class StackedOptimizer:
    """torch.optim's default update rules for parameters stacked along dim 0, one trial per slice.

    lr, momentum and weight_decay are (K,) float64 tensors on the parameters' device; derived factors
    are computed in float64 and then cast, as torch.optim does with its Python-float hyperparameters.
    `step` works in place and overwrites the gradients (fresh allocations cost page faults on CPU).
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
    def step(self, grads: list[torch.Tensor] | None = None) -> None:
        """One update from `grads` (default: each parameter's .grad), which it overwrites."""
        self.steps += 1
        update = {"sgd": self._sgd, "adam": self._adam, "adamw": self._adam, "rmsprop": self._rmsprop}[self.kind]
        for param, grad, state in zip(self.params, grads or [p.grad for p in self.params], self.state):
            update(param, grad, state)

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def keep(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Continue with only the trials at `index`, whose parameters are now `params`."""
        self.params = params
        self.lr, self.momentum, self.weight_decay = (t[index] for t in (self.lr, self.momentum, self.weight_decay))
        self.state = [{name: t[index] for name, t in state.items()} for state in self.state]

    def _l2(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        grad.addcmul_(param, _per_trial(self.weight_decay, param))  # torch: grad.add(param, alpha=wd)

    def _sgd(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        self._l2(param, grad)
        if "momentum_buffer" not in state:  # torch's first buffer is the gradient itself
            state["momentum_buffer"] = grad.clone()
        else:  # momentum 0 gives buffer == grad, i.e. plain SGD, as torch does without a buffer
            state["momentum_buffer"].mul_(_per_trial(self.momentum, param)).add_(grad)
        param.addcmul_(state["momentum_buffer"], _per_trial(-self.lr, param))

    def _adam(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        beta1, beta2 = ADAM_BETAS
        if self.kind == "adamw":  # decoupled: shrink the weights, leave the gradient alone
            param.mul_(_per_trial(1 - self.lr * self.weight_decay, param))
        else:
            self._l2(param, grad)
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(param), torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = torch.sqrt(exp_avg_sq, out=grad).div_((1 - beta2 ** self.steps) ** 0.5).add_(ADAM_EPS)
        torch.div(exp_avg, step, out=step)  # the gradient's memory now holds exp_avg / denom
        param.addcmul_(step, _per_trial(-self.lr / (1 - beta1 ** self.steps), param))

    def _rmsprop(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        self._l2(param, grad)
        if not state:
            state.update(square_avg=torch.zeros_like(param), momentum_buffer=torch.zeros_like(param),
                         avg=torch.empty_like(param))  # avg: scratch, reused every step
        square_avg, buffer = state["square_avg"], state["momentum_buffer"]
        square_avg.mul_(RMSPROP_ALPHA).addcmul_(grad, grad, value=1 - RMSPROP_ALPHA)
        avg = torch.sqrt(square_avg, out=state["avg"]).add_(RMSPROP_EPS)
        # momentum 0 makes the buffer grad/avg, i.e. torch's momentum-free update
        buffer.mul_(_per_trial(self.momentum, param)).addcdiv_(grad, avg)
        param.addcmul_(buffer, _per_trial(-self.lr, param))


class _Stack:
    """K identically shaped models as one flat (K, P) weight tensor plus stacked buffers, run with vmap.

    The per-parameter leaves handed to functional_call are views of `flat`, so the optimizer updates
    all weights with a handful of large in-place ops (few kernel launches on CUDA); after backward
    the gradients are copied into the matching flat buffer (cheaper than autograd's split backward).
    """

    def __init__(self, models: list[nn.Module], loss: str) -> None:
        params, self.buffers = stack_module_state(models)
        self.shapes = {name: p.shape[1:] for name, p in params.items()}
        self._use(torch.cat([p.detach().reshape(len(models), -1) for p in params.values()], 1))
        self.base = copy.deepcopy(models[0]).to("meta")  # architecture only; weights come from the stack
        self.base.train()
        self.loss = loss
        self._forward = vmap(self._trial, in_dims=(0, 0, None, None))

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = flat.split([shape.numel() for shape in self.shapes.values()], dim=1)
        return {name: chunk.view(-1, *shape) for (name, shape), chunk in zip(self.shapes.items(), chunks)}

    def _use(self, flat: torch.Tensor) -> None:
        self.flat, self.flat_grad = flat, torch.empty_like(flat)
        self.params = {name: view.requires_grad_() for name, view in self._views(flat).items()}
        self._grad_views = list(self._views(self.flat_grad).values())

    def _trial(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
        output = functional_call(self.base, (params, buffers), (x,))
        return compute_loss(self.loss, output, y), output

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K,) mean losses and (K, B, classes) outputs of every trial on the shared batch."""
        return self._forward(self.params, self.buffers, x, y)

    def take_grads(self) -> torch.Tensor:
        """Move the leaves' gradients into the (K, P) buffer matching `flat`."""
        for view, param in zip(self._grad_views, self.params.values()):
            view.copy_(param.grad)
            param.grad = None
        return self.flat_grad

    def keep(self, index: torch.Tensor) -> None:
        self._use(self.flat[index])
        self.buffers = {name: b[index] for name, b in self.buffers.items()}

    @torch.no_grad()
    def write_back(self, slot: int, model: nn.Module) -> None:
        stacked = {**self.params, **self.buffers}
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            tensor.copy_(stacked[name][slot])


def _check_stackable(models: list[nn.Module], configs: list[TrainConfig]) -> None:
    if not models or len(models) != len(configs):
        raise ValueError(f"need one config per model, got {len(models)} model(s) and {len(configs)} config(s)")
    for model in models:
        reason = vectorize_blocker(model)
        if reason is not None:
            raise ValueError(f"cannot train {type(model).__name__} stacked: {reason}; train it sequentially")
    if len({group_key(c, "") for c in configs}) != 1:
        raise ValueError("stacked trials must share batch_size, epochs, seed, loss and optimizer")
    shapes = [[(n, t.shape, t.dtype) for n, t in m.state_dict().items()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("stacked trials must share one architecture (same parameter names, shapes, dtypes)")
    if not all(p.requires_grad for p in models[0].parameters()):  # torch.optim would skip frozen ones
        raise ValueError("stacked trials must have every parameter trainable (requires_grad)")
    if len({p.dtype for p in models[0].parameters()}) != 1:
        raise ValueError("stacked trials need parameters, all of one dtype (they share one flat tensor)")


def _train_epoch(stack: _Stack, optimizer: StackedOptimizer, images: torch.Tensor, labels: torch.Tensor,
                 mean: float, std: float, config: TrainConfig, epoch: int,
                 on_batch: Callable[[int], None] | None) -> tuple[list[float], list[float]]:
    """train_epoch for the whole stack: per-trial (mean loss, accuracy), one device sync at the end."""
    torch.manual_seed(derived_seed(config.seed, epoch, 2))  # same global RNG state as train_epoch leaves
    order = epoch_permutation(config.seed, epoch, len(labels)).to(images.device)
    augment, generator = batch_augmenter(config, epoch, images.device)  # same stream as train_epoch
    loss_sums = torch.zeros(len(stack.flat), dtype=torch.float64, device=images.device)
    correct = torch.zeros(len(stack.flat), dtype=torch.int64, device=images.device)
    for start in range(0, len(order), config.batch_size):
        index = order[start:start + config.batch_size]
        x, y = normalize(images[index], mean, std, augment, generator), labels[index]
        losses, outputs = stack.losses(x, y)
        # Each trial's loss depends only on its own slice, so the sum's gradient is per-trial;
        # a NaN trial gets NaN gradients in its slice only.
        losses.sum().backward()
        optimizer.step([stack.take_grads()])
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
    optimizer = StackedOptimizer([stack.flat], configs)
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
            if is_diverged(train_loss[slot], int(train_labels.max()) + 1):
                results[trial].status = "diverged"
        keep = [slot for slot, trial in enumerate(live) if results[trial].status != "diverged"]
        if not keep:
            break
        if len(keep) < len(live):  # stop spending compute on diverged trials
            index = torch.tensor(keep, device=optimizer.lr.device)
            stack.keep(index)
            optimizer.keep(index, [stack.flat])
            live = [live[slot] for slot in keep]
    for trial in live:  # no epochs to train: report the initial weights, as train_model does
        if results[trial].final is None:
            results[trial].final = evaluate(models[trial], test_images, test_labels, mean, std, config.loss)
    return results
