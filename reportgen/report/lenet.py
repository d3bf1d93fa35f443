"""Is this model LeNet-5? Decided from its archived parameter audit — its layers in forward order, their
formulas, output shapes and parameter counts —, never from its name: a 4-conv 3×3 network called LeNet5 is
not LeNet-5, and a LeNet-5 called Net is.

The assignment's LeNet-5: C1 convolution 6@5×5 → 6×28×28 (a 32×32 image, or 28×28 with padding 2), 2×2
pooling → 6×14×14, C3 convolution 16@5×5 → 16×10×10, pooling → 16×5×5, C5 400 → 120 (a Linear, or a 5×5
convolution to 120×1×1), F6 120 → 84, output 84 → classes: 61,706 parameters for one channel and 10 classes.
Tolerated, as the assignment allows: any elementwise activation (ReLU for tanh), max or average pooling, a
(log-)softmax at the end, each as a module or a function (a function leaves no row in the audit; the output
shapes still show the pooling). Normalisation and dropout layers are not LeNet-5: a model that is LeNet-5 but
for them is a regularized variant (`regularized_variant`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reportgen.report.i18n import Message

ACTIVATIONS = {"ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "SiLU", "Tanh", "Sigmoid", "Hardtanh"}
POOLING = {"MaxPool2d", "AvgPool2d"}
PASS_THROUGH = {"Flatten", "Identity", "Softmax", "LogSoftmax"}
REGULARIZERS = re.compile(r"BatchNorm\d?d|Dropout\d?d?|AlphaDropout|LayerNorm|GroupNorm|InstanceNorm\d?d")
_CONV = re.compile(r"\(?(?P<kh>\d+)·(?P<kw>\d+)·(?P<cin>\d+)(?P<bias> \+ 1\))?·(?P<cout>\d+) = ")
_LINEAR = re.compile(r"\(?(?P<cin>\d+)(?P<bias> \+ 1\))?·(?P<cout>\d+) = ")


@dataclass(frozen=True)
class Shape:
    """A parameterised layer as LeNet-5 describes it: Conv2d 1→6 5×5 → 6×28×28, or Linear 400→120."""

    kind: str
    cin: int
    cout: int
    kernel: tuple[int, int] | None = None
    output: tuple[int, ...] | None = None  # without the batch dimension; None where the audit has none

    def text(self) -> str:
        kernel = f" {self.kernel[0]}×{self.kernel[1]}" if self.kernel else ""
        output = f" → {'×'.join(map(str, self.output))}" if self.output and self.kind == "Conv2d" else ""
        return f"{self.kind} {self.cin}→{self.cout}{kernel}{output}"


@dataclass(frozen=True)
class Verdict:
    """`difference`: None when the model is LeNet-5, else the first difference (a Message); `evidence`: what
    matched (the layers, the parameter count, the tolerances used)."""

    difference: Message | None
    evidence: Message | None = None

    @property
    def holds(self) -> bool:
        return self.difference is None


def stages(channels: int, classes: int) -> list[tuple[str, list[Shape]]]:
    """LeNet-5's parameterised layers by their names in the paper, each with the forms it may take."""
    return [
        ("C1", [Shape("Conv2d", channels, 6, (5, 5), (6, 28, 28))]),
        ("C3", [Shape("Conv2d", 6, 16, (5, 5), (16, 10, 10))]),
        ("C5", [Shape("Linear", 400, 120), Shape("Conv2d", 16, 120, (5, 5), (120, 1, 1))]),
        ("F6", [Shape("Linear", 120, 84)]),
        ("output layer", [Shape("Linear", 84, classes)]),
    ]


def expected_parameters(channels: int, classes: int) -> int:
    return (25 * channels + 1) * 6 + (25 * 6 + 1) * 16 + (400 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * classes


def layer_shape(layer: dict[str, Any]) -> Shape | None:
    """A Conv2d's or Linear's shape read from its archived formula and output shape; None for other layers or
    a formula that is not a plain one (grouped convolutions)."""
    pattern = {"Conv2d": _CONV, "Linear": _LINEAR}.get(layer["type"])
    match = pattern.match(layer.get("formula") or "") if pattern else None
    if not match:
        return None
    kernel = (int(match["kh"]), int(match["kw"])) if layer["type"] == "Conv2d" else None
    output = tuple(layer["output_shape"][1:]) if layer.get("output_shape") else None
    return Shape(layer["type"], int(match["cin"]), int(match["cout"]), kernel, output)


def _matches(found: Shape, expected: Shape) -> bool:
    """Same kind, channels and kernel; the same output where both are known. A missing bias shows in the
    parameter count, which is checked after the layers."""
    same_output = found.output is None or expected.output is None or found.output == expected.output
    return (found.kind, found.cin, found.cout, found.kernel) == (
        expected.kind,
        expected.cin,
        expected.cout,
        expected.kernel,
    ) and same_output


def _first_difference(layers: list[dict[str, Any]], channels: int, classes: int) -> Message | None:
    """Walks the audit's layers against LeNet-5's stages; the first layer that differs, in words."""
    expected = stages(channels, classes)
    position = 0
    previous = ""
    for layer in layers:
        kind = layer["type"]
        if kind in ACTIVATIONS | POOLING | PASS_THROUGH:
            continue  # tolerated; a PReLU's parameters still count in the total
        name = layer["name"] or "(root)"
        if position == len(expected):
            return Message(
                "layer '{layer}' ({type}) is not part of LeNet-5, which ends at its output layer",
                {"layer": name, "type": kind},
            )
        stage, forms = expected[position]
        found = layer_shape(layer)
        if found is None:
            return Message(
                "layer '{layer}' ({type}) is not part of LeNet-5, whose next layer is {stage} ({expected})",
                {"layer": name, "type": kind, "stage": Message(stage), "expected": forms[0].text()},
            )
        if not any(_matches(found, form) for form in forms):
            return Message(
                "layer '{layer}' is {found}, LeNet-5's {stage} is {expected}",
                {
                    "layer": name,
                    "found": found.text(),
                    "stage": Message(stage),
                    "expected": " / ".join(f.text() for f in forms),
                },
            )
        position, previous = position + 1, name
    if position < len(expected):
        stage, forms = expected[position]
        values = {"stage": Message(stage), "expected": forms[0].text(), "layer": previous}
        if not previous:
            return Message("{stage} ({expected}) is missing", values)
        return Message("{stage} ({expected}) is missing after layer '{layer}'", values)
    return None


def judge(audit: Any, classes: int, ignore: re.Pattern | None = None) -> Verdict:
    """LeNet-5 or not, from an archived audit (ModelAuditRecord): the layer sequence, then the parameter count.
    `ignore`: layer types left out of both (to ask whether a model is LeNet-5 but for its regularizers)."""
    kept = [layer for layer in audit.layers if not (ignore and ignore.fullmatch(layer["type"]))]
    channels = int(audit.input_shape[0])
    difference = _first_difference(kept, channels, classes)
    if difference is not None:
        return Verdict(difference)
    total = sum(layer["weights"] + layer["bias"] for layer in kept)
    expected = expected_parameters(channels, classes)
    if total != expected:
        return Verdict(
            Message("{total} parameters, LeNet-5 has {expected}", {"total": f"{total:,}", "expected": f"{expected:,}"})
        )
    return Verdict(None, _evidence(kept, audit.input_shape, total))


def _evidence(layers: list[dict[str, Any]], input_shape: list[int], total: int) -> Message:
    shapes = [shape for shape in map(layer_shape, layers) if shape]
    names = [name for name, _forms in stages(1, 10)]
    seen = list(dict.fromkeys(layer["type"] for layer in layers if layer["type"] in ACTIVATIONS | POOLING))
    tolerated = [Message("{type} activation", {"type": t}) for t in seen if t in ACTIVATIONS]
    tolerated += [Message("{type} pooling", {"type": t}) for t in seen if t in POOLING]
    size = "×".join(map(str, input_shape[1:]))
    padded = list(input_shape[1:]) == [28, 28]
    tolerated.append(
        Message("{size} input with padding 2", {"size": size}) if padded else Message("{size} input", {"size": size})
    )
    return Message(
        "LeNet-5's layers ({layers}) and {total} parameters; within the tolerance: {tolerated}",
        {
            "layers": [
                Message("{stage} {shape}", {"stage": Message(n), "shape": shape.text()})
                for n, shape in zip(names, shapes)
            ],
            "total": f"{total:,}",
            "tolerated": tolerated,
        },
    )


def regularized_variant(audit: Any, classes: int) -> list[str]:
    """The regularization layer types a model adds to an otherwise exact LeNet-5 (BatchNorm2d, Dropout); []
    when it is LeNet-5 itself or not LeNet-5 even without them."""
    added = list(dict.fromkeys(layer["type"] for layer in audit.layers if REGULARIZERS.fullmatch(layer["type"])))
    if not added or judge(audit, classes).holds or not judge(audit, classes, REGULARIZERS).holds:
        return []
    return added
