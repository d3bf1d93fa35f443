"""Multiply-adds counted from the ops a forward pass really runs, each attributed to the module that ran it.

A TorchDispatchMode sees every aten op of one forward on real shapes (matrix products, convolutions,
scaled-dot-product attention, RNN layers and cells, batch norm at inference) and turns each into MACs by
the op's own formula; composite ops (linear, matmul, einsum, lstm on some paths…) are decomposed first, so
only the ops that do the work are counted. Global module hooks keep a stack of the model's modules, keyed
by identity, so a module reached under two names is one module, a scripted submodule called from Python is
one row, and work in a `forward` outside any child layer is its parent's own row.

    calls = count_ops(model, (1, 28, 28))           # [ModuleCall], in the order the calls finished

The pass runs on shapes only (fake tensors: no arithmetic, seconds even for a ResNet-50); a forward whose
control flow reads values (a detection head's NMS, `if x.sum() > 0`) runs again on real values.

What is not counted is named, never taken for zero: ops with multiply-adds and no formula here (cdist, FFT,
quantised kernels, any op outside aten) and custom autograd Functions whose output no torch op made (NumPy
inside `forward`) are listed on the row of the module that ran them.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.without_dynamo import CountingMode

aten = torch.ops.aten
# (MACs, bias additions, formula such as "10·64·192") of one op from its arguments by name and its output
Handler = Callable[[dict[str, Any], Any], tuple[int, int, str]]
_HANDLERS: dict[Any, Handler] = {}


def _handles(*packets: Any) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for packet in packets:
            _HANDLERS[packet] = handler
        return handler

    return register


def _dot(*values: int) -> str:
    return "·".join(str(int(v)) for v in values)


def _rows(tensor: torch.Tensor) -> int:
    """How many vectors of the last dimension a tensor holds: every leading dimension counts (tokens, frames,
    proposals, time steps), not only the first."""
    return tensor.numel() // tensor.shape[-1] if tensor.dim() else 1


@_handles(aten.mm, aten.addmm, aten._addmm_activation)
def _mm(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    m, k = a["mat1" if "mat1" in a else "self"].shape
    n = a["mat2"].shape[1]
    return m * k * n, out.numel() if "mat1" in a else 0, _dot(m, k, n)


@_handles(aten.bmm, aten.baddbmm, aten.addbmm)
def _bmm(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    b, m, k = a["batch1" if "batch1" in a else "self"].shape
    n = a["batch2" if "batch2" in a else "mat2"].shape[2]
    return b * m * k * n, out.numel() if "batch1" in a else 0, _dot(b, m, k, n)


@_handles(aten.mv, aten.addmv)
def _mv(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    m, k = a.get("mat", a["self"]).shape
    return m * k, out.numel() if "mat" in a else 0, _dot(m, k)


@_handles(aten.dot, aten.vdot)
def _vector_dot(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    return a["self"].numel(), 0, _dot(a["self"].numel())


@_handles(aten.convolution, aten._convolution)
def _convolution(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    x, weight = a["input"], a["weight"]
    # every output position is a dot product over the weight's in/groups·k taps of each output channel; a
    # transposed convolution spreads every input position over its taps instead
    positions = x.shape[2:] if a["transposed"] else out.shape[2:]
    macs = x.shape[0] * math.prod(positions) * weight.numel()
    bias = out.numel() if a["bias"] is not None else 0
    return macs, bias, f"{_dot(x.shape[0], *positions)}·({_dot(*weight.shape)})"


@_handles(
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_cudnn_attention,
    aten._scaled_dot_product_fused_attention_overrideable,
)
def _attention(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    q, k, v = a["query"], a["key"], a["value"]
    heads, length, width = math.prod(q.shape[:-2]), q.shape[-2], q.shape[-1]
    keys, value_width = k.shape[-2], v.shape[-1]
    macs = heads * length * keys * (width + value_width)  # scores q·kᵀ, then weights·v
    return macs, 0, f"{_dot(heads, length, keys)}·({width} + {value_width})"


def _batch_norm(a: dict[str, Any], _out: Any, training: bool) -> tuple[int, int, str]:
    if training:  # statistics of the batch: not the inference convention, not multiply-adds
        return 0, 0, ""
    x = a["input"]
    return x.numel(), 0, _dot(*x.shape)


@_handles(aten.native_batch_norm, aten._native_batch_norm_legit, aten.cudnn_batch_norm, aten.miopen_batch_norm)
def _batch_norm_maybe_training(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    return _batch_norm(a, out, bool(a["training"]))


@_handles(aten._native_batch_norm_legit_no_training)
def _batch_norm_inference(a: dict[str, Any], out: Any) -> tuple[int, int, str]:
    return _batch_norm(a, out, False)


def _recurrent(steps: int, weights: list[torch.Tensor]) -> tuple[int, int, str]:
    """Every time step of every row multiplies the input and the hidden state by each weight matrix (and the
    projection, if any); gate nonlinearities and the cell update are elementwise, like activations."""
    matrices = [w for w in weights if w is not None and w.dim() == 2]
    biases = [w for w in weights if w is not None and w.dim() == 1]
    per_step = sum(w.numel() for w in matrices)
    terms = " + ".join(_dot(*w.shape) for w in matrices)
    return steps * per_step, steps * sum(b.numel() for b in biases), f"{steps}·({terms})"


@_handles(aten.lstm, aten.gru, aten.rnn_tanh, aten.rnn_relu)
def _rnn(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    return _recurrent(_rows(a["input"] if "input" in a else a["data"]), list(a["params"]))


@_handles(aten.mkldnn_rnn_layer)
def _mkldnn_rnn_layer(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    weights = [a["weight0"], a["weight1"]] + ([a["weight2"], a["weight3"]] if a["has_biases"] else [])
    return _recurrent(_rows(a["input"]), weights)


@_handles(aten._cudnn_rnn, aten.miopen_rnn)
def _fused_rnn(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    return _recurrent(_rows(a["input"]), list(a["weight"]))


@_handles(aten.lstm_cell, aten.gru_cell, aten.rnn_tanh_cell, aten.rnn_relu_cell)
def _cell(a: dict[str, Any], _out: Any) -> tuple[int, int, str]:
    return _recurrent(_rows(a["input"]), [a["w_ih"], a["w_hh"], a.get("b_ih"), a.get("b_hh")])


# Ops that do multiply-adds reportgen has no formula for: shown on their layer's row as "not counted", with
# the op named, never silently zero (the total is then a lower bound, and says so).
_QUANTISED = "a quantised kernel: no formula here"
UNCOUNTED = {
    aten._trilinear: "a bilinear form",
    aten._native_multi_head_attention: "the fused attention fast path",
    aten._transformer_encoder_layer_fwd: "the fused encoder-layer fast path",
    aten._cdist_forward: "pairwise distances: no formula here",
    aten._fft_r2c: "a fast Fourier transform: no formula here",
    aten._fft_c2r: "a fast Fourier transform: no formula here",
    aten._fft_c2c: "a fast Fourier transform: no formula here",
    aten._scaled_mm: "a scaled low-precision matrix product: no formula here",
    aten._int_mm: "an integer matrix product: no formula here",
    aten._weight_int8pack_mm: _QUANTISED,
    aten._weight_int4pack_mm: _QUANTISED,
    aten.fbgemm_linear_int8_weight_fp32_activation: _QUANTISED,
    aten.fbgemm_linear_fp16_weight_fp32_activation: _QUANTISED,
    aten.fbgemm_linear_fp16_weight: _QUANTISED,
    aten.quantized_lstm: _QUANTISED,
    aten.quantized_gru: _QUANTISED,
    aten.quantized_lstm_cell: _QUANTISED,
    aten.quantized_gru_cell: _QUANTISED,
    aten.quantized_rnn_relu_cell: _QUANTISED,
    aten.quantized_rnn_tanh_cell: _QUANTISED,
}
# Ops outside aten (quantized::linear_dynamic, a C++ extension's op) are not counted either, by namespace;
# these do no multiply-adds (comparisons, max pooling), so they are not listed.
NO_MACS_ELSEWHERE = {"torchvision.nms", "torchvision.roi_pool", "torchvision.ps_roi_pool"}
_COUNTED_NAMESPACES = {"aten", "prim", "prims"}
FUNCTION_UNSEEN = "a custom autograd Function whose output no torch op made: its work is not visible to the count"


def _uncounted(func: Any) -> str | None:
    """ "op (why)" for an op with multiply-adds and no formula here; None for one counted or without MACs."""
    packet = func.overloadpacket
    if packet in UNCOUNTED:
        return f"aten.{packet.__name__} ({UNCOUNTED[packet]})"
    name = f"{func.namespace}.{packet.__name__}"
    if func.namespace in _COUNTED_NAMESPACES or name in NO_MACS_ELSEWHERE:
        return None
    why = _QUANTISED if func.namespace == "quantized" else "an op outside aten: no formula here"
    return f"{name} ({why})"


def _frozen_batch_norm(module: nn.Module) -> bool:
    """torchvision's and timm's FrozenBatchNorm2d: BatchNorm at inference written as elementwise ops."""
    buffers = dict(module.named_buffers(recurse=False))
    return "FrozenBatchNorm" in type(module).__name__ and {"running_mean", "running_var"} <= buffers.keys()


@dataclass
class OpCount:
    op: str  # aten op, without overload: "addmm", "convolution", "mkldnn_rnn_layer"
    macs: int
    bias_adds: int
    formula: str  # "10·64·192": the product this op computes, per the op's shapes


@dataclass
class ModuleCall:
    """What one call of a module computed itself, outside the calls of its child modules."""

    name: str  # canonical (first) name from named_modules(); "" for the root
    module: nn.Module
    ops: list[OpCount] = field(default_factory=list)
    uncounted: list[str] = field(default_factory=list)  # "aten._trilinear (a bilinear form)"
    leaf: bool = True  # no child module of the model ran inside this call
    input_shape: tuple[int, ...] = ()  # of its first tensor argument
    packed_input: bool = False  # it was called with a PackedSequence (torchinfo misreads those)
    output: Any = None  # the call's output (fake tensors in a shapes-only pass), for formulas and shapes

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def bias_adds(self) -> int:
        return sum(op.bias_adds for op in self.ops)


class _Counter(CountingMode):
    """Counts each op on the module call at the top of the stack that the hooks keep."""

    def __init__(self, stack: list[ModuleCall]) -> None:
        super().__init__()
        self.stack = stack
        self.functions = 0  # custom autograd Functions open: while any is, the storage each op makes is kept
        self.made: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func.overloadpacket)
        uncounted = None if handler else _uncounted(func)
        if handler is None and uncounted is None and func.namespace == "aten":  # not prim.device
            with self:  # a composite op: count the ops it is made of, which come back through this mode
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if self.stack and handler is not None:
            named = dict(zip((arg.name for arg in func._schema.arguments), args)) | kwargs
            macs, bias_adds, formula = handler(named, out[0] if isinstance(out, (tuple, list)) else out)
            if macs or bias_adds:
                self.stack[-1].ops.append(OpCount(func.overloadpacket.__name__, macs, bias_adds, formula))
        elif self.stack and uncounted:
            self.stack[-1].uncounted.append(uncounted)
        if self.functions and not func.is_view:  # a view (also apply's own detach of its outputs) makes nothing
            self.made.update(_storages(out))
        return out


def _storages(values: Any) -> list[int]:
    """Where the real tensors among `values` keep their data (fake tensors have none: they never leave torch)."""
    tensors = values if isinstance(values, (tuple, list)) else [values]
    places = []
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.numel() and not _is_fake(tensor):
            places.append(tensor.untyped_storage().data_ptr())
    return places


def _is_fake(tensor: torch.Tensor) -> bool:
    fake = sys.modules.get("torch._subclasses.fake_tensor")
    return fake is not None and isinstance(tensor, fake.FakeTensor)


@contextmanager
def _custom_functions_seen(counter: _Counter, stack: list[ModuleCall]) -> Iterator[None]:
    """A custom autograd Function's forward is seen op by op like any code, but one that computes outside torch
    (NumPy, a C++ extension called directly) runs no op a counter can see: its call is named as not counted,
    never taken for zero. Function.apply is wrapped for this pass only, and for this thread only."""
    original = torch.autograd.Function.__dict__["apply"]
    owner = threading.get_ident()

    def apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original.__get__(None, cls)(*args, **kwargs)
        counter.functions += 1
        try:
            out = original.__get__(None, cls)(*args, **kwargs)
        finally:
            counter.functions -= 1
        known = counter.made | set(_storages([*args, *kwargs.values()]))  # an op made it, or it views an input
        if stack and not set(_storages(out)) <= known:
            stack[-1].uncounted.append(f"{cls.__name__}.forward ({FUNCTION_UNSEEN})")
        if not counter.functions:
            counter.made.clear()
        return out

    torch.autograd.Function.apply = classmethod(apply)
    try:
        yield
    finally:
        torch.autograd.Function.apply = original


@contextmanager
def _module_stack(model: nn.Module, calls: list[ModuleCall], stack: list[ModuleCall]) -> Iterator[None]:
    """Global forward hooks (they also fire for a scripted submodule called from Python, where per-module hooks
    are refused), restricted to the model's own modules by identity."""
    names: dict[int, str] = {}
    for name, module in model.named_modules():
        names.setdefault(id(module), name)

    def before(module: nn.Module, args: Any) -> None:
        if id(module) in names:
            if stack:
                stack[-1].leaf = False
            first = next((tuple(arg.shape) for arg in args if isinstance(arg, torch.Tensor)), ())
            packed = any(isinstance(arg, nn.utils.rnn.PackedSequence) for arg in args)
            stack.append(ModuleCall(names[id(module)], module, input_shape=first, packed_input=packed))

    def after(module: nn.Module, _args: Any, output: Any) -> None:
        if stack and stack[-1].module is module:
            call = stack.pop()
            call.output = output
            calls.append(call)

    hooks = nn.modules.module
    handles = [hooks.register_module_forward_pre_hook(before), hooks.register_module_forward_hook(after)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _fake_mode() -> Any:
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)  # the model's own parameters stay real, untouched


@contextmanager
def without_fast_paths() -> Iterator[None]:
    """MultiheadAttention and TransformerEncoderLayer take fused kernels at inference; the unfused path runs
    the same products as separate ops, so each is counted (and visible to FlopCounterMode)."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


@contextmanager
def _no_fake_left_in(model: nn.Module, real_too: bool = False) -> Iterator[None]:
    """A forward that stores tensors on its modules (`self.last = y`, a buffer reassigned) would leave fake
    tensors in the model after a shapes-only pass: each is put back as it was, or removed if it is new.
    `real_too`: the same for real tensors the audit's forward stored (the model leaves the audit unchanged)."""
    from torch._subclasses.fake_tensor import FakeTensor

    kind = torch.Tensor if real_too else FakeTensor
    saved = [(m, dict(vars(m)), dict(m._buffers), dict(m._parameters)) for m in model.modules()]
    try:
        yield
    finally:
        for module, attributes, buffers, parameters in saved:
            for store, before in (
                (vars(module), attributes),
                (module._buffers, buffers),
                (module._parameters, parameters),
            ):
                for key, value in list(store.items()):
                    if isinstance(value, kind) and before.get(key) is not value:
                        if key in before:
                            store[key] = before[key]
                        else:
                            del store[key]


# Below this many parameters and input values a forward on real tensors takes milliseconds, while the fake
# mode's first use imports torch._dynamo: 0.8 s and 156 MB more resident memory in every run's pre-flight
# (measured on LeNet-5-sized models). resnet50 at 3×224×224 (25.6 M parameters) still goes shapes-first.
CHEAP_PARAMETERS = 2_000_000
CHEAP_INPUT_VALUES = 200_000


@contextmanager
def _kept_rng() -> Iterator[None]:
    """The CPU generator as it was: the audit's random input does not shift a run's seeded stream. (Not
    torch.random.fork_rng: it is wrapped to disable torch.compile, and that import alone costs 0.8 s.)"""
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


def _cheap(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> bool:
    values = batch * math.prod(input_shape)
    return sum(p.numel() for p in model.parameters()) <= CHEAP_PARAMETERS and values <= CHEAP_INPUT_VALUES


def run_shapes_first(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int,
    inner: Callable[[], Any] = nullcontext,
    device: torch.device | None = None,
    sign: float = 1.0,
) -> Any:
    """One forward of `batch` inputs (on `device`, else the model's) under `inner()` (extra dispatch modes,
    hooks): on shapes only first, on real values when the model's forward reads values. Returns the output;
    the model's failure propagates. The real input is the same standard-normal draw every time (the generator
    is put back), times `sign`: −1 gives another input on which a branch on a sign, mean or sum goes the
    other way."""
    device = device or next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    if _cheap(model, input_shape, batch):  # a real forward costs less than the fake mode's first use
        with _kept_rng(), inner(), torch.no_grad(), _no_fake_left_in(model, real_too=True):
            return model(sign * torch.randn(batch, *input_shape, device=device))
    fake = _fake_mode()
    try:
        with fake:
            x = torch.zeros(batch, *input_shape, device=device)
        with fake, inner(), torch.no_grad(), _no_fake_left_in(model):
            return model(x)
    except Exception:  # noqa: BLE001 — it reads values (NMS, `if x.sum() > 0`) or fails: the real run decides
        with _kept_rng(), inner(), torch.no_grad(), _no_fake_left_in(model, real_too=True):
            return model(sign * torch.randn(batch, *input_shape, device=device))


def count_ops(
    model: nn.Module, input_shape: tuple[int, ...], also: Callable[[], Any] = nullcontext, sign: float = 1.0
) -> list[ModuleCall]:
    """Every module call of one forward on one input of `input_shape` (the model already in eval mode), with
    the ops it ran itself. `also()`: another counter to run in the same pass (FlopCounterMode), below ours, so
    it sees the same decomposed ops. `sign` −1: the other input (run_shapes_first). A forward that cannot run
    raises ModelError naming the layer."""
    calls: list[ModuleCall] = []
    stack: list[ModuleCall] = []

    @contextmanager
    def counting() -> Iterator[None]:
        calls.clear()
        stack.clear()
        counter = _Counter(stack)
        with (
            without_fast_paths(),
            also(),
            _module_stack(model, calls, stack),
            counter,
            _custom_functions_seen(counter, stack),
        ):
            yield

    try:
        run_shapes_first(model, input_shape, 1, counting, sign=sign)
    except Exception as exc:
        where = stack[-1] if stack else None
        layer = f"layer '{where.name or '(root)'}' ({type(where.module).__name__})" if where else "the model"
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelError(f"cannot count the multiply-adds of {layer}: {type(exc).__name__}: {reason}") from exc
    _add_frozen_batch_norm(calls)
    return calls


def _add_frozen_batch_norm(calls: list[ModuleCall]) -> None:
    """FrozenBatchNorm2d is BatchNorm at inference written as x·scale + shift: one multiply-add per element, as
    the batch-norm op is counted (its per-channel scale and shift are elementwise work, not MACs)."""
    for call in calls:
        if _frozen_batch_norm(call.module) and isinstance(call.output, torch.Tensor):
            shape = call.output.shape
            call.ops.append(OpCount("frozen_batch_norm", call.output.numel(), 0, _dot(*shape)))


def on_shapes_only(calls: list[ModuleCall]) -> bool:
    """The pass ran on fake tensors: the forward read no values, so any input of this shape runs the same ops."""
    fake = sys.modules.get("torch._subclasses.fake_tensor")  # never imported: no shapes-only pass ran
    return fake is not None and any(isinstance(call.output, fake.FakeTensor) for call in calls)


def ops_by_name(calls: list[ModuleCall]) -> dict[str, int]:
    """MACs per aten op over all calls: what FlopCounterMode's own per-op totals are compared with."""
    totals: dict[str, int] = defaultdict(int)
    for call in calls:
        for op in call.ops:
            totals[op.op] += op.macs
    return dict(totals)
