"""Two independent checks of counted multiply-adds, each saying what it could not see rather than passing it.

FlopCounterMode (torch.utils.flop_counter) runs in the same pass below our counter, so it sees the same
decomposed ops, and counts them with its own formulas and its own module tracking: per op and per layer
its FLOPs must be 2 × our MACs. Ops it has no formula for (batch norm, an LSTM layer on the CPU, attention
on the CPU) are "not checked", with the op and the layer named.

torchinfo charges each layer its parameters × output positions (Conv*) or × the first output dimension (other
layers). That rule measures the work of a convolution, of a Linear over a batch of vectors and of an RNN
layer (then it equals our MACs plus the bias additions); for every other layer it measures parameters, not
work, so those layers are "not checked" and say why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.measure.op_counts import ModuleCall, ops_by_name, run_shapes_first
from reportgen.messages import Message, Op, Recorded


@dataclass
class Unchecked:
    """Our MACs in one layer that a check cannot see, and why."""

    name: str
    type: str
    macs: int
    why: Recorded  # a Message: the report words it in its language


@dataclass
class Explained:
    """A layer where the check's figure differs from ours for a known reason, and which side is right."""

    name: str
    type: str
    theirs: int
    macs: int  # ours
    bias_adds: int
    why: Recorded  # one of the *_WHY sentences below: the reason, and that ours is right


# torchinfo's rule for a pruned layer, for an RNN fed a PackedSequence: wrong there, for these reasons (fixed
# sentences, so the report translates them by key).
PRUNED_WHY = Message(
    "torchinfo counts only the weights pruning left nonzero, but the forward multiplies by the whole masked "
    "weight, zeros included: ours is right"
)
PACKED_WHY = Message(
    "torchinfo's rule does not follow a PackedSequence: it charges the parameters by the packed data's shape, "
    "not by the time steps that ran: ours is right"
)


@dataclass
class CrossCheck:
    """One independent check: its figure, what it confirmed, where it disagrees and what it could not see."""

    figure: int  # per image: FLOPs (FlopCounterMode) or mult-adds (torchinfo); -1 when it could not run
    checked_macs: int = 0  # our MACs it saw and compared
    disagree: list[str] = field(default_factory=list)  # "0 (TwiceLinear): it 144, ours 2 × 72"
    not_checked: list[Unchecked] = field(default_factory=list)
    error: Recorded = ""  # why it could not run: a Message, or the words of the exception that stopped it
    explained: list[Explained] = field(default_factory=list)  # differs where the check's rule is known wrong

    @property
    def matches(self) -> bool:
        return self.figure >= 0 and not self.disagree

    @property
    def unchecked_macs(self) -> int:
        return sum(entry.macs for entry in self.not_checked)

    def unchecked(self, macs: int, call: ModuleCall, why: Recorded) -> None:
        self.not_checked.append(Unchecked(call.name or "(root)", type(call.module).__name__, macs, why))


def _n(value: int) -> str:
    return f"{value:,}"


def _label(call: ModuleCall) -> str:
    return f"{call.name or '(root)'} ({type(call.module).__name__})"


def _by_module(calls: list[ModuleCall]) -> dict[int, list[ModuleCall]]:
    grouped: dict[int, list[ModuleCall]] = defaultdict(list)
    for call in calls:
        grouped[id(call.module)].append(call)
    return grouped


# --------------------------------------------------------------------------- FlopCounterMode


def flop_counter_check(counter: Any, model: nn.Module, calls: list[ModuleCall]) -> CrossCheck:
    """Compare FlopCounterMode's per-op and per-layer FLOPs with 2 × our MACs of the ops it has formulas for."""
    if counter is None:
        return CrossCheck(-1, error=Message("FlopCounterMode could not run on this model"))
    counts = counter.get_flop_counts()
    known = {packet.__name__ for packet in counter.flop_registry}
    check = CrossCheck(int(counter.get_total_flops()))
    theirs = {packet.__name__: int(flops) for packet, flops in counts.get("Global", {}).items()}
    ours = {op: macs for op, macs in ops_by_name(calls).items() if op in known}
    for op in sorted(set(theirs) | set(ours)):
        if theirs.get(op, 0) != 2 * ours.get(op, 0):
            check.disagree.append(f"aten.{op}: {_n(theirs.get(op, 0))} FLOPs, ours 2 × {_n(ours.get(op, 0))}")
    per_layer = _flop_counter_layers(counts, model)
    for group in _by_module(calls).values():
        seen = sum(op.macs for call in group for op in call.ops if op.op in known)
        unseen = sorted({op.op for call in group for op in call.ops if op.op not in known})
        if unseen:
            macs = sum(op.macs for call in group for op in call.ops if op.op not in known)
            ops = [
                Op("aten." + op) if op != "frozen_batch_norm" else Message("elementwise x·scale + shift")
                for op in unseen
            ]
            check.unchecked(macs, group[0], Message("no formula for {ops}", {"ops": ops}))
        check.checked_macs += seen
        flops = per_layer.get(id(group[0].module), 0)
        if all(call.leaf for call in group) and flops != 2 * seen:  # a parent's figure includes its children
            check.disagree.append(f"{_label(group[0])}: {_n(flops)} FLOPs, ours 2 × {_n(seen)}")
    return check


def _flop_counter_layers(counts: dict[str, dict[Any, int]], model: nn.Module) -> dict[int, int]:
    """FlopCounterMode's FLOPs per module (its keys are "ResNet.layer1.0.conv1"), by identity: a module reached
    under two names is one module whichever name it was tracked under."""
    root, by_name = type(model).__name__, dict(model.named_modules(remove_duplicate=False))
    flops: dict[int, int] = {}
    for key, ops in counts.items():
        name = "" if key == root else key.removeprefix(root + ".")
        if name in by_name and (key == root or key.startswith(root + ".")):
            flops[id(by_name[name])] = max(flops.get(id(by_name[name]), 0), int(sum(ops.values())))
    return flops


# --------------------------------------------------------------------------- torchinfo


def torchinfo_summary(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> Any:
    """torchinfo's summary of a forward on `batch` inputs in eval mode, run on shapes only when the forward allows
    (real values otherwise). Raises what torchinfo raises."""
    import torchinfo

    stats: list[Any] = []

    def summary(x: torch.Tensor) -> None:
        # mode "eval" sets the model to eval and back with model.train(): the caller restores each module's mode
        stats.append(torchinfo.summary(model, input_data=x, verbose=0, device=x.device, mode="eval"))

    run_with_input(model, input_shape, summary, batch)
    return stats[-1]


def torchinfo_layers(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[dict[int, int], dict[int, list], int]:
    """torchinfo's mult-adds per leaf module (by identity, summed over calls), each module's first output size,
    and its total, for one image."""
    stats = torchinfo_summary(model, input_shape)
    macs: dict[int, int] = defaultdict(int)
    sizes: dict[int, list] = {}
    for info in stats.summary_list:
        if info.is_leaf_layer:
            macs[id(info.module)] += int(info.macs)
        sizes.setdefault(id(info.module), list(info.output_size))
    return dict(macs), sizes, int(stats.total_mult_adds)


def run_with_input(
    model: nn.Module, input_shape: tuple[int, ...], use: Callable[[torch.Tensor], None], batch: int = 1
) -> None:
    """`use(x)` for an input of `batch` × `input_shape` that a tool runs through the model itself: a fake
    (shapes-only) input first, a real one when the forward reads values."""

    class Capture(nn.Module):  # run_shapes_first builds the input; this hands it to the tool instead
        def __init__(self) -> None:
            super().__init__()
            self.model = model  # a child, so whatever the shapes-only pass leaves in it is put back

        def forward(self, x: torch.Tensor) -> None:
            use(x)

    run_shapes_first(Capture(), input_shape, batch)


def _blind_spot(module: nn.Module, size: list) -> Message | None:
    """Why torchinfo's rule does not measure this layer's work (None when it does)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return None if not module.transposed else Message("its rule charges every weight at every output position")
    if isinstance(module, nn.Linear):
        rows = math.prod(size[:-1]) if size else 0
        first = Message("its rule counts a Linear once per first dimension ({n})", {"n": str(size[0]) if size else ""})
        return None if size and rows == size[0] else first
    if isinstance(module, nn.RNNBase):
        return None
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return Message("its rule counts BatchNorm's parameters, not its elements")
    return Message("its rule counts this layer's parameters, not the work it does")


def _unseen(module: nn.Module) -> Message:
    """Why torchinfo has no figure of its own for a module that did work."""
    if isinstance(module, torch.jit.ScriptModule):
        return Message("it cannot see inside a scripted module")
    return Message("it counts leaf layers only, not work in a forward")


def torchinfo_check(
    model: nn.Module, input_shape: tuple[int, ...], calls: list[ModuleCall], run: bool = True
) -> CrossCheck:
    """Per layer: where torchinfo's rule measures work it must equal our MACs plus the bias additions."""
    if not run:
        return CrossCheck(-1, error=Message("skipped: torchinfo failed on this model in the parameter audit"))
    try:
        theirs, sizes, total = torchinfo_layers(model, input_shape)
    except Exception as exc:  # noqa: BLE001 — the audit stands without this check; it says why
        return CrossCheck(-1, error=" ".join(str(exc).split())[:200] or type(exc).__name__)
    check = CrossCheck(total)
    for key, group in _by_module(calls).items():
        macs, bias = sum(call.macs for call in group), sum(call.bias_adds for call in group)
        if not macs:
            continue
        blind = _blind_spot(group[0].module, sizes.get(key, [])) if key in theirs else _unseen(group[0].module)
        if blind:
            check.unchecked(macs, group[0], blind)
        elif theirs[key] == macs + bias:
            check.checked_macs += macs
        elif why := _torchinfo_wrong(group):
            call = group[0]
            check.explained.append(
                Explained(call.name or "(root)", type(call.module).__name__, theirs[key], macs, bias, why)
            )
        else:
            check.disagree.append(f"{_label(group[0])}: {_n(theirs[key])}, ours {_n(macs)} + {_n(bias)} bias")
    return check


def _torchinfo_wrong(group: list[ModuleCall]) -> Message | None:
    """Why torchinfo's figure for this layer is wrong where it is known to be (None otherwise: a real mismatch)."""
    module = group[0].module
    masks = [name for name, _ in module.named_buffers(recurse=False) if name.endswith("_mask")]
    if masks and any(hasattr(module, name[: -len("_mask")] + "_orig") for name in masks):  # torch.nn.utils.prune
        return PRUNED_WHY
    if isinstance(module, nn.RNNBase) and any(call.packed_input for call in group):
        return PACKED_WHY
    return None
