"""Each layer type's parameter formula, written with the layer's own numbers: `(5·5·1 + 1)·6 = 156`.

A formula is shown only where it explains the parameters the layer holds; otherwise the layer's count is
`numel = N (weight 6·1·5·5, bias 6)`, never a formula that would give another figure.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from reportgen.measure.numbers import thousands
from reportgen.messages import Message, Recorded

DOT = "·"  # multiplication in formulas: 6·(1·5·5) + 6


def _prod(values: Any) -> int:
    return int(math.prod(int(v) for v in values))


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


def param_formula(module: nn.Module, params: list[tuple[str, nn.Parameter]]) -> Recorded:
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
