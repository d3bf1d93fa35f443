"""Pre-flight: every model of a spec is built and checked once before any run folder exists, and its cost
(MACs, latency, size) is measured once, before training starts, so parallel workers cannot distort it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reportgen.data.datasets import Dataset
from reportgen.errors import ModelError, ReportgenError
from reportgen.measure.cost import measure_cost
from reportgen.measure.params import ModelAudit, audit_model
from reportgen.models.registry import create_model
from reportgen.settings import Loss
from reportgen.spec import ExperimentSpec


def preflight(spec: ExperimentSpec, data: Dataset, device: torch.device | None = None) -> dict[str, ModelAudit]:
    """Build every model once: forward on the dataset's shape, output size, loss compatibility; then
    (given the training device) its cost: MACs, inference latency and size, measured once per model
    before any training starts, so parallel workers cannot distort the timing."""
    audits: dict[str, ModelAudit] = {}
    for index, entry in enumerate(spec.models):
        torch.manual_seed(0)
        model = create_model(entry.ref)
        audits[entry.label] = audit_model(model, data.input_shape, name=entry.label)
        if audits[entry.label].trainable == 0:
            raise ModelError(f"model {entry.label!r} has no trainable parameters: there is nothing to train")
        model.eval()
        try:
            with torch.no_grad():
                output = model(torch.zeros(2, *data.input_shape))
        except Exception as exc:  # the user's forward code: one line, not a traceback
            raise ModelError(
                f"model {entry.label!r}: forward on a batch of shape (2, "
                f"{', '.join(map(str, data.input_shape))}) raised {type(exc).__name__}: {exc}"
            ) from exc
        expected = f"one tensor of shape (batch, {data.num_classes}) — logits or log-probabilities"
        if not isinstance(output, torch.Tensor):
            raise ModelError(
                f"model {entry.label!r}: forward returned {describe_output(output)}, expected "
                f"{expected}; return only the class scores"
            )
        if not output.is_floating_point():
            raise ModelError(f"model {entry.label!r}: forward returned a {output.dtype} tensor, expected {expected}")
        if output.shape != (2, data.num_classes):
            raise ModelError(
                f"model {entry.label!r}: output shape {tuple(output.shape[1:])}, expected "
                f"({data.num_classes},) for the {data.num_classes} classes of {data.name}"
            )
        _check_loss(spec, index, torch.allclose(output.exp().sum(1), torch.ones(2), atol=1e-4))
        if device is not None:
            audits[entry.label].cost = _cost(model, data, device, audits[entry.label].mult_adds)
    return audits


def _check_loss(spec: ExperimentSpec, index: int, is_log_probs: bool) -> None:
    """The losses this model trains with — its own [models.train] loss, else the spec's — suit its output:
    'nll' on logits trains to a negative "loss" (measured: −2.48) and exits 0 as if nothing were wrong."""
    entry = spec.models[index]
    own = "loss" in entry.train
    losses = [entry.train["loss"]] if own else spec.train["loss"]
    if Loss.NLL in losses and not is_log_probs:
        key = f"models[{index}].train.loss" if own else "train.loss"
        raise ModelError(
            f"{spec.source}: key '{key}': 'nll' needs log-probabilities, but model "
            f"{entry.label!r} outputs logits — use 'cross_entropy' or a log-softmax model"
        )


def _cost(model: nn.Module, data: Dataset, device: torch.device, mult_adds: int) -> dict[str, Any]:
    """The model's cost, or the one-line reason it could not be measured (it never stops a run)."""
    try:
        return measure_cost(model.to(device), data.input_shape, device, mult_adds or -1).to_dict()
    except (RuntimeError, ValueError, ReportgenError) as exc:
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}


def describe_output(output: Any) -> str:
    """What a forward returned, for an error message: `a tuple of 2 (Tensor (2, 10), Tensor (2, 84))`."""
    if isinstance(output, torch.Tensor):
        return f"Tensor {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        items = ", ".join(describe_output(o) for o in output[:4]) + (", …" if len(output) > 4 else "")
        return f"a {type(output).__name__} of {len(output)} ({items})"
    if isinstance(output, dict):
        return f"a dict with keys {list(output)[:6]}"
    return f"a {type(output).__name__}"
