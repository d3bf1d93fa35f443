"""An audit laid out for people and programs: a fixed-width table, Markdown, CSV or JSON.

print(format_audit(audit_model(create_model("lenet5"), (1, 28, 28), name="lenet5")))
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from reportgen.errors import ModelError
from reportgen.measure.numbers import shape_text, thousands
from reportgen.messages import english

if TYPE_CHECKING:  # the text needs no torch: `reportgen params --help` lists FORMATS without loading it
    from reportgen.measure.params import ModelAudit

FORMATS = ("table", "csv", "json", "markdown")
_COLUMNS = ("layer", "type", "output shape", "formula", "weights", "bias", "trainable", "buffers")


def _shape_cell(shape: list[int] | None) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape else "-"


def _rows(audit: ModelAudit, numbers: bool) -> list[list[str]]:
    fmt = thousands if numbers else str
    return [
        [
            layer.label + (" *" if layer.shared else ""),
            layer.type,
            _shape_cell(layer.output_shape),
            str(layer.formula),  # in English: a recorded message as `str()` words it
            fmt(layer.weights),
            fmt(layer.bias),
            fmt(layer.trainable),
            fmt(layer.buffers),
        ]
        for layer in audit.layers
    ]


def _totals(audit: ModelAudit) -> list[tuple[str, str]]:
    if audit.torchinfo_total < 0:
        check = f"unavailable ({audit.torchinfo_error})"
    elif audit.matches_torchinfo:
        check = f"{thousands(audit.torchinfo_total)} ✓"
    elif audit.torchinfo_note:
        check = f"{thousands(audit.torchinfo_total)} ≠ ours, explained: {audit.torchinfo_note}"
    else:
        check = f"{thousands(audit.torchinfo_total)} ✗ MISMATCH (ours {thousands(audit.total)})"
    return [
        ("all parameters", thousands(audit.total)),
        ("without bias", thousands(audit.without_bias)),
        ("trainable", thousands(audit.trainable)),
        ("frozen", thousands(audit.frozen)),
        ("BatchNorm adds", thousands(audit.batchnorm_params)),
        ("buffers", thousands(audit.buffers)),
        *([("left after pruning", _pruned_text(audit))] if audit.pruned else []),
        ("torchinfo total", check),
    ]


def _pruned_text(audit: ModelAudit) -> str:
    return (
        f"{thousands(audit.total - audit.pruned)} nonzero ({thousands(audit.total)} stored, {thousands(audit.pruned)} of the "
        "*_orig entries masked to zero)"
    )


def _notes(audit: ModelAudit) -> list[str]:
    notes = [*audit.notes, f"output shapes are for a batch of {audit.batch_size}"]
    if any(layer.shared for layer in audit.layers):
        notes.append("* holds a parameter already counted by an earlier layer (counted once)")
    return notes


def _format_table(audit: ModelAudit) -> str:
    rows = _rows(audit, numbers=True)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_COLUMNS)]
    right = {4, 5, 6, 7}

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [
        f"model {audit.model_name} · input {shape_text(audit.input_shape)}",
        "",
        line(_COLUMNS),
        "  ".join("-" * w for w in widths),
    ]
    out += [line(r) for r in rows]
    totals = _totals(audit)
    label_w = max(len(k) for k, _ in totals) + 1
    num_w = max(len(v.split(" ")[0]) for _, v in totals)
    out.append("")
    for key, value in totals:
        head, _, tail = value.partition(" ")
        out.append(f"{(key + ':').ljust(label_w)} {head.rjust(num_w)}{' ' + tail if tail else ''}")
    out += [""] + _notes(audit)
    return "\n".join(out) + "\n"


def _format_markdown(audit: ModelAudit) -> str:
    rows = _rows(audit, numbers=True)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        f"**{esc(audit.model_name)}** · input {shape_text(audit.input_shape)}",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join("---:" if i >= 4 else "---" for i in range(len(_COLUMNS))) + "|",
    ]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    out.append("")
    out += [f"- {key}: {esc(value)}" for key, value in _totals(audit)]
    out += [""] + [f"_{esc(note)}_" for note in _notes(audit)]
    return "\n".join(out) + "\n"


def _format_csv(audit: ModelAudit) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "layer",
            "type",
            "output_shape",
            "formula",
            "weights",
            "bias",
            "trainable",
            "frozen",
            "buffers",
            "shared",
            "pruned",
            "macs",
            "macs_formula",
        ]
    )
    macs = _macs_by_layer(((audit.cost or {}).get("macs") or {}).get("layers", []))
    for layer in audit.layers:
        counted = macs.get(layer.name, {})
        writer.writerow(
            [
                layer.name,
                layer.type,
                shape_text(layer.output_shape or []),
                layer.formula,
                layer.weights,
                layer.bias,
                layer.trainable,
                layer.frozen,
                layer.buffers,
                int(layer.shared),
                layer.pruned,
                counted.get("macs", ""),
                counted.get("formula", ""),
            ]
        )
    return buf.getvalue()


def _macs_by_layer(calls: list[dict]) -> dict[str, dict]:
    """MAC records by layer name: a layer called several times (an LSTMCell in a loop) sums its calls."""
    merged: dict[str, dict] = {}
    for call in calls:
        known = merged.get(call["name"])
        if known is None:
            merged[call["name"]] = dict(call)
        elif call["formula"] != known["formula"] or call["macs"]:
            formulas = (
                known["formula"] if call["formula"] == known["formula"] else f"{known['formula']} + {call['formula']}"
            )
            merged[call["name"]] = known | {"macs": known["macs"] + call["macs"], "formula": formulas}
    return merged


def format_audit(audit: ModelAudit, fmt: str = "table") -> str:
    """Lay out an audit as `table` (fixed-width text), `csv`, `json` or `markdown`."""
    if fmt == "table":
        return _format_table(audit)
    if fmt == "markdown":
        return _format_markdown(audit)
    if fmt == "csv":
        return _format_csv(audit)
    if fmt == "json":
        return json.dumps(english(audit.to_dict()), indent=2, ensure_ascii=False) + "\n"  # messages as English text
    raise ModelError(f"audit format {fmt!r}: expected one of {', '.join(FORMATS)}")
