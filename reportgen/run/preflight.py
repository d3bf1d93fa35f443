"""Pre-flight: every model of a spec is built and checked once before any run folder exists, and its cost
(MACs, latency, size) is measured once, before training starts, so parallel workers cannot distort it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from reportgen.data.datasets import Dataset
from reportgen.errors import ModelError, ReportgenError
from reportgen.experiment import ExperimentSpec
from reportgen.measure.cost import measure_cost
from reportgen.measure.params import ModelAudit, audit_model
from reportgen.models.registry import create_model
from reportgen.settings import Loss

# How long one model's constructor, or its checks' forward passes, may take before the pre-flight gives up on it:
# a forward that never returns (a `while` that never ends) hung the run with no message. Generous: a large zoo
# model's forwards on a 2-core CPU take seconds. REPORTGEN_PREFLIGHT_TIMEOUT_S overrides it (0: no limit).
PREFLIGHT_TIMEOUT_S = 60.0
TIMEOUT_VARIABLE = "REPORTGEN_PREFLIGHT_TIMEOUT_S"


class _TimedOut(BaseException):
    """Raised by the alarm; a BaseException, so the `except Exception` of torchinfo or of the user's code cannot
    swallow it."""


def timeout_s() -> float:
    """The limit in seconds (0: none), from the environment variable if set."""
    text = os.environ.get(TIMEOUT_VARIABLE)
    if text is None:
        return PREFLIGHT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ReportgenError(f"{TIMEOUT_VARIABLE}={text!r}: expected seconds ≥ 0 (0: no limit)")
    return value


@contextlib.contextmanager
def time_limit(label: str, what: str) -> Iterator[None]:
    """Stop `what` of model `label` with one line once it has run longer than timeout_s().

    SIGALRM interrupts Python code (a loop, time.sleep) in the main thread; C code that never returns to the
    interpreter is interrupted only when it does. The alarm repeats each second until disarmed, so one
    exception swallowed where Python ignores them (a __del__ or weakref callback) does not let the forward run
    on. Where an alarm cannot be used, there is no limit: off the main thread (signal handlers can only be set
    there: compare() called from a thread), without SIGALRM (Windows), or when someone else's alarm is set
    (their handler or timer stays untouched). A notebook's cells run on the kernel's main thread: limited."""
    limit = timeout_s()
    usable = (
        limit > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
    if not usable:
        yield
        return

    def alarm(number: int, frame: Any) -> None:
        raise _TimedOut

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit, 1.0)
    try:
        yield
    except _TimedOut:
        raise ModelError(
            f"model {label!r}: {what} did not return within {limit:g} s (a loop that never ends?); "
            f"fix it, or raise the limit with {TIMEOUT_VARIABLE}=SECONDS"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def preflight(spec: ExperimentSpec, data: Dataset, device: torch.device | None = None) -> dict[str, ModelAudit]:
    """Build every model once: forward on the dataset's shape, output size, loss compatibility; then
    (given the training device) its cost: MACs, inference latency and size, measured once per model
    before any training starts, so parallel workers cannot distort the timing."""
    audits: dict[str, ModelAudit] = {}
    for index, entry in enumerate(spec.models):
        torch.manual_seed(0)
        with time_limit(entry.label, "its constructor"):
            model = create_model(entry.ref, input_shape=data.input_shape)
        batch = f"a batch of shape (2, {', '.join(map(str, data.input_shape))})"
        forward = f"its forward on {'x'.join(map(str, data.input_shape))} images"
        with time_limit(entry.label, forward):  # the audit's own forward passes (torchinfo, the MAC count)
            audits[entry.label] = audit_model(model, data.input_shape, name=entry.label)
        if audits[entry.label].trainable == 0:
            raise ModelError(f"model {entry.label!r} has no trainable parameters: there is nothing to train")
        with time_limit(entry.label, forward):
            output = _forward(entry.label, model, batch, data.input_shape)
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


def _forward(label: str, model: nn.Module, batch: str, shape: tuple[int, ...]) -> Any:
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(2, *shape))
    except Exception as exc:  # the user's forward code: one line, not a traceback
        raise ModelError(f"model {label!r}: forward on {batch} raised {type(exc).__name__}: {exc}") from exc


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
