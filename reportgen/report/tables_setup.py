"""The report model's tables of how a run was set up: the settings, each model's parameters and layers (with
their formulas and multiply-adds, cross-checked), and what reproduces the run (command, versions, data files)."""

from __future__ import annotations

import json
import re
from typing import Any

from reportgen.measure.unchecked import explained_text, not_counted_text, unchecked_text
from reportgen.report.analysed import Analysis
from reportgen.report.model import Cell, Row, Table, code, count, label, public_text, setting_text


def settings_table(ctx: Analysis, tr) -> Table:
    data, env = ctx.data, ctx.env
    evaluation = (
        tr(
            "validation split of {n} training images (seeded) for model selection; the test set is reported "
            "after every epoch",
            n=data["validation_size"],
        )
        if data.get("validation_size")
        else tr("the test set, evaluated after every epoch (used as validation, as the assignment allows)")
    )
    rows = [
        (tr("Dataset"), f"{tr(data['dataset'])} — {public_text(data['source'])}"),
        (
            tr("Images"),
            tr("{train} train / {test} test", train=count(data["train_size"]), test=count(data["test_size"]))
            + f", {'×'.join(map(str, data['input_shape']))}, "
            + tr("{n} classes", n=len(data["classes"])),
        ),
        (tr("Normalisation"), f"{tr('mean')} {data['mean']}, {tr('std')} {data['std']}"),
        (tr("Evaluation"), evaluation),
        *[(tr(key), _constant(key, value, tr)) for key, value in ctx.settings["constant"].items()],
        *[
            (tr(key), f"{tr('swept')}: {', '.join(setting_text(v, tr) for v in values)}")
            for key, values in ctx.settings["varied"].items()
        ],
        (tr("Device"), _device(env, tr)),
    ]
    return _key_values("settings", tr("Overview and settings"), rows)


def _constant(key: str, value: Any, tr) -> str:
    text = setting_text(value, tr)
    return f"{text} ({tr('training batches only; never the test set')})" if key == "augment" and value else text


def thread_count(count: int, tr) -> str:
    """ "1 thread", "4 threads" in the report's language (스레드 1개)."""
    return tr("{count} thread" if count == 1 else "{count} threads", count=count)


def _device(env: dict[str, Any], tr) -> str:
    threads = thread_count(env.get("threads_per_trial", env.get("threads")), tr)
    text = f"{env['device']} ({env.get('device_name', '')}), {threads}"
    return text + (f" · {tr(env['executor'])}" if env.get("executor") else "")


def _key_values(key: str, title: str, rows: list[tuple[str, str | Cell]]) -> Table:
    """A key/value list; a value given as text is a label, a Cell (an identifier: code) stays as it is."""
    return Table(key, title, [], [Row([label(name), v if isinstance(v, Cell) else label(v)]) for name, v in rows])


def _model_cell(m: dict[str, Any], tr) -> Cell:
    """A model's registry name (paths shortened) with its arguments and the code that built it as a note."""
    notes = [m["arguments"]] if m["arguments"] else []
    if m["code"]:
        notes.append(f"{m['code']['file'] or tr('source typed in Python')} · sha256 {m['code']['sha256']}")
    return code(public_text(m["name"]), " · ".join(notes))


def _torchinfo_cell(audit) -> Cell:
    figure = count(audit.torchinfo_total)
    if audit.matches_torchinfo:
        return Cell(f"✓ {figure}", verdict=True)
    if audit.torchinfo_note:  # explained (tied or pruned weights): both figures are right
        return Cell(f"≠ {figure}", note=audit.torchinfo_note, verdict=True)
    return Cell(f"✗ {figure}", verdict=False)


def parameters_table(ctx: Analysis, tr) -> Table:
    columns = ["Model", "Registry name", "Parameters", "Without bias", "BatchNorm adds", "Buffers", "torchinfo"]
    rows = [
        Row(
            [
                label(m["label"], color=m["color"]),
                _model_cell(m, tr),
                *[
                    Cell(count(getattr(m["audit"], k)))
                    for k in ("total", "without_bias", "batchnorm_params", "buffers")
                ],
                _torchinfo_cell(m["audit"]),
            ]
        )
        for m in ctx.models
    ]
    return Table("parameters", tr("Model architectures and parameters"), [tr(c) for c in columns], rows)


def architecture_table(m: dict[str, Any], tr) -> Table:
    """One table per model: each layer's parameter formula and counts (weights, bias) beside its multiply-add
    formula and count. Layers with neither (activations, pooling, reshapes) are folded into the caption."""
    audit = m["audit"]
    macs = (audit.cost or {}).get("macs")
    per_layer = _macs_by_layer(macs["layers"]) if macs else {}
    columns = ["Layer", "Type", "Output shape", "Formula", "Weights", "Bias"]
    columns += ["Multiply-adds formula", "MACs"] if macs else []
    rows, folded = [], []
    for layer in audit.layers:
        mac = per_layer.pop(layer["name"], None)
        if not (layer["weights"] or layer["bias"] or layer["buffers"] or _did_work(mac)):
            folded.append((layer["type"], tr(mac["note"]) if mac and mac.get("note") else ""))
            continue
        rows.append(Row(_layer_cells(layer, tr) + (_mac_cells(mac, tr) if macs else [])))
    rows += [Row(_forward_cells(name, mac, tr)) for name, mac in per_layer.items() if _did_work(mac)]  # in forward
    footer = [Row(_parameter_totals(audit, tr) + (_mac_totals(macs, tr) if macs else []))]
    if macs:
        footer.append(_mac_checks(macs, tr))
    return Table(f"layers/{m['label']}", m["label"], [tr(c) for c in columns], rows, footer, _folded(folded, tr))


_FORMULA_NOTE = re.compile(r"(?P<formula>.+= [\d,]+) [(\[](?P<note>.+)[)\]]")


def _macs_by_layer(layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """MAC records by layer name; a layer called more than once is one row with its calls' sum."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if layer["name"] in merged:
            known = merged[layer["name"]]
            formulas = " + ".join(filter(None, [known["formula"], layer["formula"]]))
            uncounted = known.get("uncounted", []) + layer.get("uncounted", [])
            merged[layer["name"]] = known | {
                "macs": known["macs"] + layer["macs"],
                "formula": formulas,
                "uncounted": uncounted,
            }
        else:
            merged[layer["name"]] = dict(layer)
    return merged


def _layer_cells(layer: dict[str, Any], tr) -> list[Cell]:
    shape = "×".join(map(str, layer["output_shape"][1:])) if layer.get("output_shape") else ""
    counts = [Cell(count(n) if n else "") for n in (layer["weights"], layer["bias"])]
    name = layer["name"] or "(root)"  # the model's own parameters and forward work, outside its layers
    return [Cell(name, "layer"), label(layer["type"]), label(shape), _formula_cell(layer, tr), *counts]


def _formula_cell(layer: dict[str, Any], tr) -> Cell:
    """The formula, with what it says besides the count ("+12 running stats, not trainable", "shared") as its
    note, so the formula itself never wraps."""
    match = _FORMULA_NOTE.fullmatch(layer["formula"])
    formula, note = (match["formula"], match["note"]) if match else (layer["formula"], "")
    notes = [note] + ([tr("shared, counted once")] if layer.get("shared") else [])
    return Cell(formula, "formula", "; ".join(filter(None, notes)))


def _did_work(mac: dict[str, Any] | None) -> bool:
    """Multiply-adds counted in it, or ops with multiply-adds that ran in it without a formula."""
    return bool(mac and (mac["macs"] or mac.get("uncounted")))


def _mac_cells(mac: dict[str, Any] | None, tr) -> list[Cell]:
    """Its formula and MACs; ops that ran without a formula are "not counted", named, never an empty 0."""
    uncounted = sorted(set(mac.get("uncounted", []))) if mac else []
    missing = tr("not counted: {ops}", ops=not_counted_text(uncounted, tr)) if uncounted else ""
    if not mac or not mac["macs"]:
        return [label(tr("not counted") if uncounted else "", missing), Cell("")]
    return [Cell(mac["formula"], "formula", missing), Cell(count(mac["macs"]))]


def _forward_cells(name: str, mac: dict[str, Any], tr) -> list[Cell]:
    cells = [Cell(name, "layer"), label(mac["type"]), label(""), label(""), Cell(""), Cell("")]
    return cells + _mac_cells(mac, tr)


def _parameter_totals(audit, tr) -> list[Cell]:
    total = tr("Total") + f": {count(audit.total)} ({tr('without bias')} {count(audit.without_bias)})"
    return [Cell(total, "label", span=4), Cell(count(audit.without_bias)), Cell(count(audit.bias))]


def _mac_totals(macs: dict[str, Any], tr) -> list[Cell]:
    """The total per image; "at least" it, with what was not counted, when ops ran without a formula; both
    figures when the forward's work depends on its input's values."""
    figure = count(macs["total"])
    if macs.get("not_counted"):
        figure = tr("at least {count}", count=figure)
    text = tr("Total per image") + f": {figure} MACs = {count(2 * macs['total'])} FLOPs"
    return [Cell(text, "label", " ".join(mac_caveats(macs, tr)), span=2)]


def mac_caveats(macs: dict[str, Any], tr) -> list[str]:
    """What a MAC total does not cover: ops not counted, and a count that depends on the input."""
    notes = []
    if macs.get("not_counted"):
        ops = [f"{layer['name'] or '(root)'} ({layer['type']}): {op}" for layer in macs["layers"] for op in
               layer.get("uncounted", [])]  # fmt: skip
        notes.append(tr("not counted: {ops}", ops=not_counted_text(ops, tr)))
    if macs.get("input_dependent"):
        first, second = macs["input_dependent"]
        notes.append(tr("input-dependent: {first} MACs for one random input, {second} for another (its negation); "
                        "the total is the first", first=count(first), second=count(second)))  # fmt: skip
    return notes


def _mac_checks(macs: dict[str, Any], tr) -> Row:
    return Row(
        [
            Cell(tr("Multiply-adds cross-checked by"), "label", span=4),
            _mac_check(tr("PyTorch's FLOP counter"), macs, "flop_counter", tr),
            _mac_check("torchinfo", macs, "torchinfo", tr),
        ]
    )


def _folded(folded: list[tuple[str, str]], tr) -> str:
    """ "Not shown, without parameters or multiply-adds: 4 × ReLU (elementwise activation), 2 × MaxPool2d …"."""
    if not folded:
        return ""
    kinds = {kind: sum(1 for k in folded if k == kind) for kind in dict.fromkeys(folded)}
    parts = [f"{n} × {kind}" + (f" ({note})" if note else "") for (kind, note), n in kinds.items()]
    return tr("Not shown, without parameters or multiply-adds: {layers}.", layers=", ".join(parts))


def _mac_check(name: str, macs: dict[str, Any], key: str, tr) -> Cell:
    """One cross-check of the MAC total (a footer cell over two columns): ✓ or ✗ for what the check could
    see; what it could not see (an LSTM kernel on the CPU) is said as "not checked" and why — a check that
    saw nothing, or could not run, is "not checked" and never ✓."""
    figure = macs.get(f"{key}_flops" if key == "flop_counter" else f"{key}_mult_adds", -1)
    check = macs.get(key) if isinstance(macs.get(key), dict) else {}
    unseen = _unchecked_text(check, tr) if check else macs.get(f"{key}_not_checked", "")
    checked = check.get("checked_macs")
    if figure is None or figure < 0 or (unseen and not checked):
        return Cell(f"{name}: {tr('not checked')}", "label", unseen, span=2)
    holds = bool(macs.get(f"matches_{key}"))
    unit = " FLOPs" if key == "flop_counter" else ""
    notes = []
    if check.get("explained"):  # its rule is wrong for these layers: said with which side is right and why
        why = explained_text(check["explained"], tr, tr.render)
        notes.append(tr("differs where its rule is wrong: {why}", why=why))
        if not checked and holds:
            return Cell(f"{name}: ≠ {count(figure)}{unit}", "label", " ".join(notes), verdict=True, span=2)
    if unseen:  # a partial check: what it confirmed, and what it could not see
        notes.append(tr("{checked} of {total} MACs checked; not checked: {why}", checked=count(checked),
                        total=count(macs["total"]), why=unseen))  # fmt: skip
    if key == "torchinfo" and holds:
        notes.append(tr("torchinfo counts by its own rule: bias additions too, BatchNorm by its parameters"))
    text = f"{name}: {'✓' if holds else '✗'} {count(figure)}{unit}"
    return Cell(text, "label", " ".join(notes), verdict=holds, span=2)


def _unchecked_text(check: dict[str, Any], tr) -> str:
    """What a MAC check could not see, in the report's language ("2 BatchNorm2d layers (6,304 MACs): no
    formula for aten.native_batch_norm"); its error when it could not run at all."""
    if check.get("figure", 0) < 0:
        return tr.render(check.get("error", ""))
    return unchecked_text(check.get("not_checked", []), tr, tr.render)


def reproducibility_table(ctx: Analysis, tr) -> Table:
    env, spec, status = ctx.env, ctx.spec, ctx.status
    versions = (
        f"Python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}, "
        f"torchinfo {env['torchinfo']}, reportgen {env['reportgen']}"
    )
    rows = [
        (tr("Command"), code(public_text(env["command"]))),
        (tr("Spec"), code(public_text(tr(spec["source"])))),
        (tr("Seeds"), ", ".join(map(str, spec["train"]["seeds"]))),
        (tr("Versions"), versions),
        (tr("Platform"), f"{env['platform']}, {env['cpu_count']} CPU"),
        (tr("Git commit"), code(tr(env["git_commit"]))),
        (tr("Run state"), f"{tr(status.state)} ({status.started} → {status.finished or '…'})"),
    ]
    return _key_values("reproducibility", tr("Reproducibility"), rows)


def data_files_table(ctx: Analysis, tr) -> Table:
    rows = [
        Row([code(public_text(f["path"])), code(f["sha256"]), Cell("✓" if f.get("verified") == "true" else "–")])
        for f in ctx.data["files"].values()
    ]
    return Table("data_files", tr("Data files"), [tr("File"), "sha256", tr("Known checksum")], rows)


def spec_json(spec: dict[str, Any]) -> str:
    """The resolved spec as the documents show it: Hangul as Hangul, paths shortened."""
    return public_text(json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False))
