"""Parameter-count audit: per-layer formulas, bias/frozen/shared/buffer totals, a torchinfo cross-check.

Counting and laying out are separate modules: `audit_model` walks the model and returns plain
dataclasses (it never prints); measure/audit_text.py lays an audit out, measure/widths.py sizes MLPs.

    audit = audit_model(create_model("lenet5"), (1, 28, 28), name="lenet5")
    print(format_audit(audit))             # reportgen.measure.audit_text
    check_claim(audit, expect=61_706)        # None: the claim holds

Each layer's own (direct) parameters are counted once, in forward order; a parameter object reached
again through a second module (tied weights) counts 0 there and the row is marked `shared`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError
from reportgen.measure.numbers import shape_text, thousands
from reportgen.messages import Message, Recorded

DOT = "·"  # multiplication in formulas: 6·(1·5·5) + 6


@dataclass
class LayerAudit:
    """One module's own parameters (not its children's) and how the count comes about."""

    name: str  # dotted module name; "" is the root module
    type: str
    output_shape: list[int] | None
    formula: Recorded  # arithmetic as text; a Message where it says more ("+12 running stats, not trainable")
    weights: int = 0
    bias: int = 0
    trainable: int = 0
    frozen: int = 0
    buffers: int = 0
    shared: bool = False
    pruned: int = 0  # of its parameters, masked to zero by torch.nn.utils.prune (still stored as *_orig)

    @property
    def params(self) -> int:
        return self.weights + self.bias

    @property
    def label(self) -> str:
        return self.name or "(root)"


@dataclass
class ModelAudit:
    model_name: str
    input_shape: tuple[int, ...]
    layers: list[LayerAudit]
    total: int
    without_bias: int
    bias: int
    trainable: int
    frozen: int
    buffers: int
    batchnorm_params: int
    torchinfo_total: int
    matches_torchinfo: bool
    torchinfo_error: str = ""
    batch_size: int = 2
    mult_adds: int = 0  # per image, forward pass, from torchinfo (0 when torchinfo failed)
    cost: dict[str, Any] | None = None  # MACs, latency, size (cost.ModelCost.to_dict), set by the runner
    pruned: int = 0  # parameters masked to zero by torch.nn.utils.prune (still stored as *_orig)
    torchinfo_note: Recorded = ""  # why torchinfo's total differs when the difference is explained (tied, pruned)
    notes: list[str] = field(default_factory=list)  # how the model was audited (a torch.compile'd model)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data


# --------------------------------------------------------------------------- small helpers


def _prod(values: Any) -> int:
    return int(math.prod(int(v) for v in values))


def _is_bias(param_name: str) -> bool:
    return "bias" in param_name


def _top_level_sum(expr: str) -> bool:
    depth = 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and expr.startswith(" + ", i):
            return True
    return False


def _wrap(expr: str) -> str:
    return f"({expr})" if _top_level_sum(expr) else expr


def parse_input_shape(text: str) -> tuple[int, ...]:
    """`1x28x28` (also `1×28×28`, `1,28,28`, `(1, 28, 28)`) → (1, 28, 28)."""
    cleaned = str(text).strip().strip("()[]").strip()
    parts = [p.strip() for p in re.split(r"\s*[x×X,]\s*", cleaned)] if cleaned else []
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ModelError(
            f"input shape {text!r}: expected positive integers joined by 'x' (without the batch "
            f"dimension), e.g. 1x28x28"
        )
    return tuple(int(p) for p in parts)


# --------------------------------------------------------------------------- formulas


def _conv_formula(m: nn.modules.conv._ConvNd) -> tuple[str, int]:
    k = tuple(int(v) for v in m.kernel_size)
    k_expr = DOT.join(str(v) for v in k)
    has_bias = m.bias is not None
    cin, cout, groups = int(m.in_channels), int(m.out_channels), int(m.groups)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        # weight: in × out/groups × k
        out_expr = str(cout) if groups == 1 else f"{cout}/{groups}"
        value = _prod(k) * cin * (cout // groups) + (cout if has_bias else 0)
        text = f"{k_expr}{DOT}{cin}{DOT}{out_expr}" + (f" + {cout}" if has_bias else "")
        return text, value
    in_expr = str(cin) if groups == 1 else f"{cin}/{groups}"
    value = (_prod(k) * (cin // groups) + (1 if has_bias else 0)) * cout
    text = f"({k_expr}{DOT}{in_expr} + 1){DOT}{cout}" if has_bias else f"{k_expr}{DOT}{in_expr}{DOT}{cout}"
    return text, value


def _linear_formula(m: nn.Linear) -> tuple[str, int]:
    cin, cout = int(m.in_features), int(m.out_features)
    if m.bias is not None:
        return f"({cin} + 1){DOT}{cout}", (cin + 1) * cout
    return f"{cin}{DOT}{cout}", cin * cout


def _bilinear_formula(m: nn.Bilinear) -> tuple[str, int]:
    a, b, cout = int(m.in1_features), int(m.in2_features), int(m.out_features)
    if m.bias is not None:
        return f"({a}{DOT}{b} + 1){DOT}{cout}", (a * b + 1) * cout
    return f"{a}{DOT}{b}{DOT}{cout}", a * b * cout


def _norm_base_formula(m: nn.modules.batchnorm._NormBase) -> tuple[Recorded, int]:
    c = int(m.num_features)
    affine = (f"2{DOT}{c} = {thousands(2 * c)}", 2 * c) if m.affine else (Message("no affine parameters"), 0)
    if m.track_running_stats:
        stats = Message(
            "{formula} (+{count} running stats, not trainable)", {"formula": affine[0], "count": thousands(2 * c)}
        )
        return stats, affine[1]
    return affine if m.affine else ("0", 0)


def _normalized_expr(shape: Any) -> tuple[str, int]:
    dims = tuple(int(d) for d in shape)
    n = _prod(dims)
    return (str(n) if len(dims) == 1 else "(" + DOT.join(str(d) for d in dims) + ")"), n


def _layernorm_formula(m: nn.LayerNorm) -> tuple[str, int]:
    expr, n = _normalized_expr(m.normalized_shape)
    if not m.elementwise_affine:
        return "0", 0
    if getattr(m, "bias", None) is not None:
        return f"2{DOT}{expr}", 2 * n
    return expr, n


def _rmsnorm_formula(m: nn.Module) -> tuple[str, int]:
    expr, n = _normalized_expr(m.normalized_shape)
    return (expr, n) if m.elementwise_affine else ("0", 0)


def _groupnorm_formula(m: nn.GroupNorm) -> tuple[str, int]:
    c = int(m.num_channels)
    return (f"2{DOT}{c}", 2 * c) if m.affine else ("0", 0)


def _embedding_formula(m: nn.Module) -> tuple[str, int]:
    rows, dim = int(m.num_embeddings), int(m.embedding_dim)
    return f"{rows}{DOT}{dim}", rows * dim


def _prelu_formula(m: nn.PReLU) -> tuple[Recorded, int]:
    n = int(m.num_parameters)
    if n == 1:
        return Message("1 shared slope = 1"), 1
    return Message("{count} slopes (one per channel) = {total}", {"count": str(n), "total": thousands(n)}), n


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn_formula(m: nn.RNNBase) -> tuple[str, int]:
    gates = _GATES[m.mode]
    h, proj = int(m.hidden_size), int(getattr(m, "proj_size", 0) or 0)
    h_out = proj if proj > 0 else h
    dirs = 2 if m.bidirectional else 1
    terms: list[str] = []
    value = 0
    for layer in range(int(m.num_layers)):
        cin = int(m.input_size) if layer == 0 else h_out * dirs
        inner = f"{cin}{DOT}{h} + {h_out}{DOT}{h}" + (f" + 2{DOT}{h}" if m.bias else "")
        per_dir = f"{gates}{DOT}({inner})" if gates > 1 else inner
        per_value = gates * (cin * h + h_out * h + (2 * h if m.bias else 0))
        if proj > 0:  # weight_hr: proj × hidden
            per_dir += f" + {proj}{DOT}{h}"
            per_value += proj * h
        terms.append(per_dir if dirs == 1 else f"{dirs}{DOT}{_wrap(per_dir)}")
        value += per_value * dirs
    grouped: list[str] = []  # collapse identical consecutive layers: 3·(...)
    i = 0
    while i < len(terms):
        j = i
        while j < len(terms) and terms[j] == terms[i]:
            j += 1
        grouped.append(terms[i] if j - i == 1 else f"{j - i}{DOT}{_wrap(terms[i])}")
        i = j
    return " + ".join(grouped), value


def _known_formula(module: nn.Module) -> tuple[Recorded, int] | None:
    """(expression, value) from the module's attributes, or None for an unknown module type."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv_formula(module)
    if isinstance(module, nn.Linear):
        return _linear_formula(module)
    if isinstance(module, nn.Bilinear):
        return _bilinear_formula(module)
    if isinstance(module, nn.modules.batchnorm._NormBase):  # BatchNorm*, InstanceNorm*, SyncBatchNorm
        return _norm_base_formula(module)
    if isinstance(module, nn.LayerNorm):
        return _layernorm_formula(module)
    if hasattr(nn, "RMSNorm") and isinstance(module, nn.RMSNorm):
        return _rmsnorm_formula(module)
    if isinstance(module, nn.GroupNorm):
        return _groupnorm_formula(module)
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return _embedding_formula(module)
    if isinstance(module, nn.PReLU):
        return _prelu_formula(module)
    if isinstance(module, nn.RNNBase) and getattr(module, "mode", None) in _GATES:
        return _rnn_formula(module)
    return None


def _numel_formula(params: list[tuple[str, nn.Parameter]]) -> str:
    total = sum(p.numel() for _, p in params)
    parts = ", ".join(f"{name} {DOT.join(str(d) for d in p.shape) or '1'}" for name, p in params)
    return f"numel = {thousands(total)} ({parts})"


def _formula(module: nn.Module, params: list[tuple[str, nn.Parameter]]) -> Recorded:
    """Formula with actual numbers; falls back to `numel = N (...)` when attributes don't explain the params."""
    actual = sum(p.numel() for _, p in params)
    try:
        known = _known_formula(module)
    except Exception:  # noqa: BLE001 (an odd subclass without the usual attributes: just count)
        known = None
    if known is not None and known[1] == actual:
        text, value = known
        if isinstance(text, Message) or " = " in text:  # already carries its result (norm layers, PReLU)
            return text
        if text == "0" and not params:
            return ""
        return f"{text} = {thousands(value)}"
    if not params:
        return ""
    return _numel_formula(params)


# --------------------------------------------------------------------------- forward probe


def model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _probe(model: nn.Module, input_shape: tuple[int, ...], model_name: str, batch: int) -> list[nn.Module]:
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


def _torchinfo(
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


# --------------------------------------------------------------------------- audit


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


COMPILED_NOTE = "torch.compile'd: audited through its original module (_orig_mod), whose forward the compiled one runs"


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


def _check_expected_input(model: nn.Module, input_shape: tuple[int, ...], model_name: str) -> None:
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


def audit_model(model: nn.Module, input_shape: tuple[int, ...] = (1, 28, 28), name: str = "") -> ModelAudit:
    """Count every parameter once, layer by layer in forward order, and cross-check with torchinfo.

    Runs the model twice on random input (our probe, then torchinfo) in eval mode without gradients;
    the train/eval mode of every submodule and the global RNG state are restored afterwards.
    A forward failure raises ModelError naming the layer where the shape broke.
    """
    compiled = original_module(model) is not model
    model = original_module(model)
    model_name = name or type(model).__name__
    refuse_torchscript(model)
    input_shape = tuple(input_shape)
    if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ModelError(f"model {model_name}: input shape {input_shape!r}: expected positive integers, e.g. 1x28x28")
    batch = 2
    _check_expected_input(model, input_shape, model_name)
    with torch.random.fork_rng(devices=[]), evaluating(model):
        called = _probe(model, input_shape, model_name, batch)
        shapes, torchinfo_total, torchinfo_error, mult_adds = _torchinfo(model, input_shape, batch)

    names = {id(m): n for n, m in model.named_modules()}
    called_ids = {id(m) for m in called}
    ordered = [m for m in called if id(m) in names]
    ordered += [m for _, m in model.named_modules() if id(m) not in called_ids]

    seen_params: dict[int, str] = {}
    seen_buffers: set[int] = set()
    layers: list[LayerAudit] = []
    bn_params = 0
    for module in ordered:
        mname = names[id(module)]
        params = list(module.named_parameters(recurse=False))
        buffers = list(module.named_buffers(recurse=False))
        has_children = any(True for _ in module.children())
        if (has_children or module is model or isinstance(module, nn.Identity)) and not params and not buffers:
            continue  # containers (Sequential, the root...) group other layers; Identity is a placeholder
        layer = LayerAudit(mname, type(module).__name__, shapes.get(id(module)), _formula(module, params))
        shared_with: list[str] = []
        for pname, param in params:
            if id(param) in seen_params:
                layer.shared = True
                shared_with.append(f"{pname} shared with '{seen_params[id(param)] or '(root)'}'")
                continue
            seen_params[id(param)] = mname
            count = param.numel()
            if _is_bias(pname):
                layer.bias += count
            else:
                layer.weights += count
            if param.requires_grad:
                layer.trainable += count
            else:
                layer.frozen += count
            layer.pruned += _masked(module, pname)
        for _, buf in buffers:
            if id(buf) not in seen_buffers:
                seen_buffers.add(id(buf))
                layer.buffers += buf.numel()
        if shared_with:
            layer.formula = _followed(layer.formula, f" — {', '.join(shared_with)}, counted once there")
        if layer.frozen:
            frozen = " [frozen]" if layer.frozen == layer.params else f" [{thousands(layer.frozen)} frozen]"
            layer.formula = _followed(layer.formula, frozen)
        if layer.pruned:
            layer.formula = Message(
                "{formula} [{count} pruned]", {"formula": layer.formula, "count": thousands(layer.pruned)}
            )
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            bn_params += layer.params
        layers.append(layer)

    total = sum(layer.params for layer in layers)
    bias = sum(layer.bias for layer in layers)
    pruned = sum(layer.pruned for layer in layers)
    return ModelAudit(
        model_name=model_name,
        input_shape=input_shape,
        layers=layers,
        total=total,
        without_bias=total - bias,
        bias=bias,
        trainable=sum(layer.trainable for layer in layers),
        frozen=sum(layer.frozen for layer in layers),
        buffers=sum(layer.buffers for layer in layers),
        batchnorm_params=bn_params,
        torchinfo_total=torchinfo_total,
        mult_adds=mult_adds,
        matches_torchinfo=torchinfo_total == total,
        torchinfo_error=torchinfo_error,
        batch_size=batch,
        pruned=pruned,
        torchinfo_note=_torchinfo_note(model, total, torchinfo_total, pruned),
        notes=[COMPILED_NOTE] if compiled else [],
    )


def _followed(formula: Recorded, text: str) -> Recorded:
    """`formula` followed by `text` (a note the report shows as recorded): one text, or one message."""
    return (
        formula + text if isinstance(formula, str) else Message("{formula}{text}", {"formula": formula, "text": text})
    )


def _masked(module: nn.Module, param_name: str) -> int:
    """How many of `<name>_orig`'s entries torch.nn.utils.prune masks to zero (its `<name>_mask` buffer)."""
    if not param_name.endswith("_orig"):
        return 0
    mask = getattr(module, param_name[: -len("_orig")] + "_mask", None)
    return int((mask == 0).sum()) if isinstance(mask, torch.Tensor) else 0


SCRIPTED_NOTE = Message(
    "torchinfo counts the parameters of a scripted submodule twice, once for the scripted module and once for "
    "its layers; the model stores and trains each once: ours is right"
)


def _scripted_parameters(model: nn.Module) -> int:
    """Parameters inside the outermost scripted submodules (torchinfo lists them twice)."""
    scripted = [m for m in model.modules() if isinstance(m, torch.jit.ScriptModule) and any(m.children())]
    inner = {id(child) for m in scripted for child in m.modules() if child is not m}
    return sum(p.numel() for m in scripted if id(m) not in inner for p in m.parameters())


def _torchinfo_note(model: nn.Module, total: int, torchinfo_total: int, pruned: int) -> Recorded:
    """Say which count is right when torchinfo's differs for a known reason; "" when it agrees or the
    difference is unexplained (then it stays a mismatch)."""
    if torchinfo_total < 0 or torchinfo_total == total:
        return ""
    # named_parameters lists a tied parameter once per module holding it; torchinfo sums it that way too
    repeated = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) - total
    if repeated and torchinfo_total == total + repeated:
        return Message(
            "torchinfo counts the {repeated} shared (tied) parameters once per layer that uses them; "
            "the model stores and trains {total}: ours is right",
            {"repeated": thousands(repeated), "total": thousands(total)},
        )
    if (scripted := _scripted_parameters(model)) and torchinfo_total == total + scripted:
        return SCRIPTED_NOTE
    if pruned and torchinfo_total == total - pruned:
        return Message(
            "torchinfo counts the {left} parameters left after pruning; the model still stores {total} ({pruned} "
            "masked to zero): both are right, for different questions",
            {"left": thousands(torchinfo_total), "total": thousands(total), "pruned": thousands(pruned)},
        )
    return ""


# --------------------------------------------------------------------------- claims


def check_claim(audit: ModelAudit, expect: int | None = None, expect_no_bias: int | None = None) -> str | None:
    """None when the claimed count(s) hold, else one line saying what was counted and the likely slip."""
    problems: list[str] = []
    if expect is not None and expect != audit.total:
        diff = audit.total - expect
        msg = f"expected {thousands(expect)}, counted {thousands(audit.total)}"
        if audit.bias and expect == audit.without_bias:
            msg += f": bias terms {thousands(audit.bias)} — did you leave out biases?"
        elif audit.batchnorm_params and diff == audit.batchnorm_params:
            msg += f": BatchNorm adds {thousands(audit.batchnorm_params)} — did you count the model without BatchNorm?"
        elif audit.frozen and expect == audit.trainable:
            msg += f": frozen parameters {thousands(audit.frozen)} — did you count only trainable ones?"
        else:
            msg += f": difference {diff:+,}"
        problems.append(msg)
    if expect_no_bias is not None and expect_no_bias != audit.without_bias:
        msg = (
            f"expected {thousands(expect_no_bias)} without bias, counted {thousands(audit.without_bias)} without bias "
            f"({thousands(audit.total)} with bias)"
        )
        if audit.bias and expect_no_bias == audit.total:
            msg += " — that is the total with biases; did you include them?"
        problems.append(msg)
    return "; ".join(problems) or None
