"""An audit laid out for people and programs: a fixed-width table, Markdown, CSV or JSON.

print(format_audit(audit_model(create_model("lenet5"), (1, 28, 28), name="lenet5")))
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from reportgen.errors import ModelError
from reportgen.measure.numbers import Words, pad, shape_text, text_width, thousands
from reportgen.messages import Message, Op, decoded, english

if TYPE_CHECKING:  # the text needs no torch: `reportgen params --help` lists FORMATS without loading it
    from reportgen.measure.params import ModelAudit

FORMATS = ("table", "csv", "json", "markdown")
_COLUMNS = ("layer", "type", "output shape", "formula", "weights", "bias", "trainable", "buffers")


def _shape_cell(shape: list[int] | None) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape else "-"


def _say(translate: Words, key: str, **values: object) -> str:
    """A fixed phrase of the layout, worded by `translate` (str: the English key, formatted)."""
    return translate(Message(key, values))


def _rows(audit: ModelAudit, numbers: bool, translate: Words = str) -> list[list[str]]:
    fmt = thousands if numbers else str
    return [
        [
            layer.label + (" *" if layer.shared else ""),
            layer.type,
            _shape_cell(layer.output_shape),
            translate(layer.formula),  # a recorded message (str: in English); arithmetic stays as it is
            fmt(layer.weights),
            fmt(layer.bias),
            fmt(layer.trainable),
            fmt(layer.buffers),
        ]
        for layer in audit.layers
    ]


def _check(audit: ModelAudit, translate: Words) -> str:
    figure = thousands(audit.torchinfo_total)
    if audit.torchinfo_total < 0:
        return _say(translate, "unavailable ({why})", why=translate(audit.torchinfo_error))
    if audit.matches_torchinfo:
        return f"{figure} ✓"
    if audit.torchinfo_note:
        return _say(translate, "{figure} ≠ ours, explained: {why}", figure=figure, why=translate(audit.torchinfo_note))
    return _say(translate, "{figure} ✗ MISMATCH (ours {ours})", figure=figure, ours=thousands(audit.total))


def _totals(audit: ModelAudit, translate: Words = str) -> list[tuple[str, str]]:
    totals = [
        ("all parameters", thousands(audit.total)),
        ("without bias", thousands(audit.without_bias)),
        ("trainable", thousands(audit.trainable)),
        ("frozen", thousands(audit.frozen)),
        ("BatchNorm adds", thousands(audit.batchnorm_params)),
        ("buffers", thousands(audit.buffers)),
        *([("left after pruning", _pruned_text(audit, translate))] if audit.pruned else []),
        ("torchinfo total", _check(audit, translate)),
    ]
    return [(_say(translate, key), value) for key, value in totals]


def _pruned_text(audit: ModelAudit, translate: Words = str) -> str:
    return _say(
        translate,
        "{nonzero} nonzero ({stored} stored, {pruned} of the *_orig entries masked to zero)",
        nonzero=thousands(audit.total - audit.pruned),
        stored=thousands(audit.total),
        pruned=thousands(audit.pruned),
    )


def _notes(audit: ModelAudit, translate: Words = str) -> list[str]:
    notes = [translate(note) for note in audit.notes]
    notes.append(_say(translate, "output shapes are for a batch of {n}", n=audit.batch_size))
    if any(layer.shared for layer in audit.layers):
        notes.append(_say(translate, "* holds a parameter already counted by an earlier layer (counted once)"))
    return notes


def _heading(audit: ModelAudit, name: str, translate: Words) -> str:
    return _say(translate, "model {name} · input {shape}", name=name, shape=shape_text(audit.input_shape))


def _format_table(audit: ModelAudit, translate: Words = str) -> str:
    rows = _rows(audit, numbers=True, translate=translate)
    columns = [_say(translate, column) for column in _COLUMNS]
    widths = [max([text_width(h)] + [text_width(r[i]) for r in rows]) for i, h in enumerate(columns)]
    right = {4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        return "  ".join(pad(c, w, i in right) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [_heading(audit, audit.model_name, translate), "", line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    totals = _totals(audit, translate)
    label_w = max(text_width(k) for k, _ in totals) + 1
    num_w = max(len(v.split(" ")[0]) for _, v in totals)
    out.append("")
    for key, value in totals:
        head, _, tail = value.partition(" ")
        out.append(f"{pad(key + ':', label_w)} {head.rjust(num_w)}{' ' + tail if tail else ''}")
    out += [""] + _notes(audit, translate)
    return "\n".join(out) + "\n"


def _format_markdown(audit: ModelAudit, translate: Words = str) -> str:
    rows = _rows(audit, numbers=True, translate=translate)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        _heading(audit, f"**{esc(audit.model_name)}**", translate),
        "",
        "| " + " | ".join(_say(translate, column) for column in _COLUMNS) + " |",
        "|" + "|".join("---:" if i >= 4 else "---" for i in range(len(_COLUMNS))) + "|",
    ]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    out.append("")
    out += [f"- {key}: {esc(value)}" for key, value in _totals(audit, translate)]
    out += [""] + [f"_{esc(note)}_" for note in _notes(audit, translate)]
    return "\n".join(out) + "\n"


def _worded(record: object, translate: Words) -> object:
    """A record as `encoded` writes it, every message and op worded by `translate`: keys stay as they are."""
    if isinstance(record, dict):
        if set(record) in ({"key", "values"}, {"op"}):
            return translate(decoded(record))
        return {name: _worded(value, translate) for name, value in record.items()}
    if isinstance(record, list):
        return [_worded(item, translate) for item in record]
    return translate(record) if isinstance(record, (Message, Op)) else record


def _format_csv(audit: ModelAudit, translate: Words = str) -> str:
    """Column names stay as programs read them (as JSON keys do); the formulas' words are worded."""
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
                translate(layer.formula),
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


def format_audit(audit: ModelAudit, fmt: str = "table", translate: Words = str) -> str:
    """Lay out an audit as `table` (fixed-width text), `csv`, `json` or `markdown`, its words worded by `translate`
    (str: English; reportgen.report.i18n.wording(lang) for another language). JSON keys stay English."""
    if fmt == "table":
        return _format_table(audit, translate)
    if fmt == "markdown":
        return _format_markdown(audit, translate)
    if fmt == "csv":
        return _format_csv(audit, translate)
    if fmt == "json":
        record = english(audit.to_dict()) if translate is str else _worded(audit.to_dict(), translate)
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    raise ModelError(f"audit format {fmt!r}: expected one of {', '.join(FORMATS)}")
