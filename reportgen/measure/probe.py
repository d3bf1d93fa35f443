"""How an audit runs a model: in eval mode (every submodule's own mode restored afterwards), through a
torch.compile'd model's original module, never a TorchScript one, refused before any forward on data of
other channels than a zoo model's; then one forward with hooks (a failure named by the layer where it broke)
and torchinfo's passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.numbers import shape_text


def model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def probe(model: nn.Module, input_shape: tuple[int, ...], model_name: str, batch: int) -> list[nn.Module]:
    """Run the model once; return modules in order of first call, or raise ModelError naming the layer."""
    names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    order: dict[int, nn.Module] = {}
    stack: list[nn.Module] = []
    last_done: list[nn.Module] = []

    def pre_hook(module: nn.Module, _args: Any) -> None:
        order.setdefault(id(module), module)
        stack.append(module)

    def post_hook(module: nn.Module, _args: Any, _output: Any) -> None:
        if stack and stack[-1] is module:
            stack.pop()
        last_done[:] = [module]

    handles = []
    for module in model.modules():
        if isinstance(module, torch.jit.ScriptModule):
            continue  # hooks are refused on scripted submodules; their parent names the place of a failure
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    device = model_device(model)
    try:
        x = torch.randn(batch, *input_shape, device=device)
        with torch.no_grad():
            model(x)
    except Exception as exc:  # any failure of the user's forward becomes one line
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if len(reason) > 300:
            reason = reason[:297] + "..."
        where = stack[-1] if stack else model
        label = names.get(id(where), "") or "(root)"
        after = ""
        if (where is model or any(where.children())) and last_done and last_done[0] is not where:
            done = last_done[0]
            after = f", after layer '{names.get(id(done), '') or '(root)'}' ({type(done).__name__}),"
        mismatch = _channel_mismatch(where, list(order.values()), input_shape, label)
        if mismatch:
            raise ModelError(f"model {model_name} {mismatch}") from exc
        expected = getattr(model, "_reportgen_expected_input", None)
        published = f" (it was published for {shape_text(expected)})" if expected else ""
        raise ModelError(
            f"model {model_name}: forward fails at layer '{label}' ({type(where).__name__}){after} "
            f"for input {shape_text(input_shape)}{published}: {reason}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
    return list(order.values())


_CHANNELS = {1: "grey", 3: "RGB"}


def _channel_mismatch(where: nn.Module, called: list[nn.Module], input_shape: tuple[int, ...], label: str) -> str:
    """Why a forward failed at the model's first convolution when its channels are not the data's (a grey model
    on RGB images): said with both shapes; "" for any other failure."""
    first = next((m for m in called if isinstance(m, nn.modules.conv._ConvNd)), None)
    if where is not first or len(input_shape) < 2 or int(where.in_channels) == input_shape[0]:
        return ""

    def channels(count: int) -> str:
        return f"{count}-channel" + (f" ({_CHANNELS[count]})" if count in _CHANNELS else "")

    return (
        f"takes {channels(int(where.in_channels))} images — its first layer '{label}' is "
        f"{type(where).__name__}({where.in_channels}, {where.out_channels}, …) — but the data is "
        f"{shape_text(input_shape)}, {channels(input_shape[0])}: build that layer with in_channels={input_shape[0]}"
    )


def torchinfo_pass(
    model: nn.Module, input_shape: tuple[int, ...], batch: int
) -> tuple[dict[int, list[int]], int, str, int]:
    """({id(module): output size}, total params, error text, mult-adds per image) from torchinfo; never raises.
    Both passes run on shapes only where the forward allows. Mult-adds come from a pass on one image: its
    figure need not scale with the batch (a sequence-first layer's first dimension is time), so a batch's
    figure divided by the batch would be wrong."""
    from reportgen.measure.mac_checks import torchinfo_summary

    try:
        stats = torchinfo_summary(model, input_shape, batch)
        mult_adds = int(torchinfo_summary(model, input_shape, 1).total_mult_adds)
    except Exception as exc:  # noqa: BLE001 - the audit still stands without the cross-check
        return {}, -1, " ".join(str(exc).split())[:300] or type(exc).__name__, 0
    shapes: dict[int, list[int]] = {}
    for info in stats.summary_list:
        key = id(info.module)
        if key not in shapes and info.output_size:
            shapes[key] = (
                [int(d) for d in info.output_size] if all(isinstance(d, int) for d in info.output_size) else None
            )
    return shapes, int(stats.total_params), "", mult_adds


# --------------------------------------------------------------------------- how a model runs for an audit


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode inside; afterwards every submodule's own train/eval mode is back (a frozen
    BatchNorm kept in eval inside a training model stays so, which `model.train(was_training)` would undo)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def original_module(model: nn.Module) -> nn.Module:
    """The module a torch.compile'd model wraps (its OptimizedModule shares the parameters): hooks and dispatch
    modes see the original forward, where the compiled one refuses them ("already tracked for mutation")."""
    inner = getattr(model, "_orig_mod", None)
    return inner if type(model).__name__ == "OptimizedModule" and isinstance(inner, nn.Module) else model


def refuse_torchscript(model: nn.Module) -> None:
    """Audits hook into modules; TorchScript modules do not support hooks: one clear line instead."""
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelError(
            "TorchScript modules cannot be audited (hooks are not supported on them): "
            "pass the nn.Module before torch.jit.script / torch.jit.trace"
        )


def check_expected_input(model: nn.Module, input_shape: tuple[int, ...], model_name: str) -> None:
    """A zoo model on data of other channels is refused in one line before any forward; other sizes may run
    (global pooling), and a forward that fails then says which size the model was published for."""
    from reportgen.models.registry import expected_input

    expected = expected_input(model)
    if expected and len(input_shape) == len(expected) and input_shape[0] != expected[0]:
        timm = type(model).__module__.startswith("timm.")  # timm builds any channel count; torchvision does not
        hint = f" (timm: pass in_chans={input_shape[0]})" if timm else ""
        raise ModelError(
            f"model {model_name} takes {shape_text(expected)} images, the data is {shape_text(input_shape)}: "
            f"{input_shape[0]} channel(s), not {expected[0]}{hint}"
        )
