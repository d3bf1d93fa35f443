"""Builds the report model (model.py) from the analysed run: every table's cells, formatted and worded once.

Input is render.analyse_run's context (plus the drawn figures' checklist); output is a ReportModel that
report.html.j2, report.md.j2, the LaTeX writer, summary.json and the notebook view lay out as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reportgen.measure.unchecked import explained_text, not_counted_text, unchecked_text
from reportgen.report.findings import format_finding, settings_words, who
from reportgen.report.model import (
    Cell,
    Claim,
    ReportModel,
    Row,
    Table,
    code,
    count,
    decimal,
    is_number,
    label,
    percent,
    public_text,
    setting_text,
)
from reportgen.report.regularization import shown_figures
from reportgen.report.significance import comparable_to_lenet
from reportgen.report.summary import TrialSummary
from reportgen.settings import mixed_loss_scales
from reportgen.states import TrialState


def build_report_model(ctx: dict[str, Any]) -> ReportModel:
    """The tables and claims of the report, in the order the documents show them."""
    tr = ctx["translate"]
    tables = [
        _settings(ctx, tr),
        _parameters(ctx, tr),
        *[_architecture(m, tr) for m in ctx["models"]],
        *[_epochs(t, ctx, tr) for t in ctx["trials"]],
        _comparison(ctx, tr),
        _quality(ctx, tr),
        _per_class_scores(ctx, tr),
        _costs(ctx, tr),
        _aggregates(ctx, tr),
        _mcnemar(ctx, tr),
        _literature(ctx, tr),
        _before_after(ctx, tr),
        *[_per_class(g, tr) for g in ctx["galleries"]],
        _reproducibility(ctx, tr),
        _data_files(ctx, tr),
    ]
    checklist = ctx.get("checklist") or {}
    return ReportModel(
        tables={t.key: t for t in tables if t is not None},
        settings_claim=settings_claim(ctx["settings"], tr),
        conclusion=ctx["conclusion"],
        findings=findings(ctx["warnings"], tr) + same_training(ctx, tr),
        next_steps=ctx.get("next_steps", []),
        checklist_title=checklist.get("title", ""),
        checklist=[
            Claim(tr(item["text"]), item["passed"], item["evidence"], item["check"], item["section"])
            for item in checklist.get("items", [])
        ],
    )


GROUPED = {  # a finding of three or more trials is said once, with the swept setting they share
    "diverged": "{n} trials diverged{shared}: {trials}.",
    "chance": "{n} trials stayed at chance level (did not learn){shared}: {trials}.",
    "failed": "{n} trials failed{shared}: {trials}.",
    "overfit": "{n} trials are likely overfitting (train accuracy far above test){shared}: {trials}.",
    "no_decrease": "{n} trials never lowered their training loss below the first epoch{shared}: {trials}.",
}


def findings(warnings: list, tr) -> list[Claim]:
    """The lint's findings as claims; three or more trials with the same finding are one line that names the
    swept setting they all share (the likely cause), instead of one warning per trial."""
    by_code: dict[object, list] = {}  # by kind; a finding that is not grouped is its own key
    for w in warnings:
        by_code.setdefault(w.code if w.trial_id and w.code in GROUPED else id(w), []).append(w)
    claims = []
    for group in by_code.values():
        if len(group) < 3:
            claims += [Claim(format_finding(w, tr), False, w.trial_id, w.code) for w in group]
            continue
        ids = [w.trial_id for w in group]
        # each trial by its model and settings, every one of them (a reader knows settings, not trial ids)
        shared = [pair for pair in group[0].settings if all(pair in w.settings for w in group)]
        listed = ", ".join(
            who(w.values["model"], [pair for pair in w.settings if pair not in shared], tr) for w in group
        )
        where = tr(", all with {settings}", settings=settings_words(shared, tr)) if shared else ""
        kind = group[0].code
        claims.append(Claim(tr(GROUPED[kind], n=len(ids), shared=where, trials=listed), False, ", ".join(ids), kind))
    return claims


def status_text(trial: TrialSummary, tr) -> str:
    """ "" for a complete trial; "diverged at epoch 3", "failed" otherwise (one wording in every format)."""
    if trial.status == TrialState.COMPLETE:
        return ""
    if trial.status == TrialState.DIVERGED:
        return tr("diverged at epoch {n}", n=len(trial.epochs))
    return tr(str(trial.status))


def settings_claim(settings: dict[str, Any], tr) -> Claim:
    """ "Identical settings" names what every trial shared and, in a sweep, what the sweep varied — the same
    for every model — so a ✓ never claims a swept setting was held fixed."""
    shared = ", ".join(tr(key) for key in settings["constant"])
    varied = ", ".join(tr(key) for key in settings["varied"])
    if not settings["identical"]:
        return Claim(tr("The models were not trained with identical settings; see the comparison table."), False)
    text = (
        tr(
            "Identical settings: every model was trained under every swept combination of {varied}; shared by "
            "all trials: {shared} — checked from the archived settings of each trial.",
            varied=varied,
            shared=shared or tr("none"),
        )
        if varied
        else tr(
            "Identical settings: every model was trained with the same {shared} — checked from the archived "
            "settings of each trial.",
            shared=shared,
        )
    )
    return Claim(text, True, test="archived settings of each trial")


def _settings(ctx: dict[str, Any], tr) -> Table:
    data, env = ctx["data"], ctx["env"]
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
        *[(tr(key), _constant(key, value, tr)) for key, value in ctx["settings"]["constant"].items()],
        *[
            (tr(key), f"{tr('swept')}: {', '.join(setting_text(v, tr) for v in values)}")
            for key, values in ctx["settings"]["varied"].items()
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


def _parameters(ctx: dict[str, Any], tr) -> Table:
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
        for m in ctx["models"]
    ]
    return Table("parameters", tr("Model architectures and parameters"), [tr(c) for c in columns], rows)


def _architecture(m: dict[str, Any], tr) -> Table:
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
    return [Cell(text, "label", " ".join(_mac_caveats(macs, tr)), span=2)]


def _mac_caveats(macs: dict[str, Any], tr) -> list[str]:
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


def _epoch_cells(e: dict[str, Any], has_val: bool, has_lr: bool = False) -> list[Cell]:
    values = [decimal(e.get("train_loss")), percent(e.get("train_acc"))]
    if has_val:
        values += [decimal(e.get("val_loss")), percent(e.get("val_acc"))]
    values += [decimal(e.get("test_loss")), percent(e.get("test_acc")), decimal(e.get("seconds"), 1)]
    if has_lr:
        values.append(f"{e['lr']:.3g}" if e.get("lr") is not None else "")
    return [Cell(v) for v in values]


def _epochs(t: TrialSummary, ctx: dict[str, Any], tr) -> Table:
    has_val = bool(t.epochs) and t.epochs[0].get("val_acc") is not None
    has_lr = t.config.get("schedule", "none") != "none" and any(e.get("lr") is not None for e in t.epochs)
    columns = ["Epoch", "Train loss", "Train accuracy"]
    columns += ["Validation loss", "Validation accuracy"] if has_val else []
    columns += ["Test loss", "Test accuracy", "Seconds"] + (["Learning rate"] if has_lr else [])
    best = t.best.get("epoch")
    rows = [
        Row([Cell(str(e["epoch"])), *_epoch_cells(e, has_val, has_lr)], "best" if e["epoch"] == best else "")
        for e in t.epochs
    ]
    average = [label(tr("Average")), *_epoch_cells(t.average, has_val), *([Cell("")] if has_lr else [])]
    footer = [Row(average)] if t.epochs else []
    swept = [f"{tr(k)} {t.config[k]}" for k in ctx["settings"]["varied"]]
    title = t.label + (f" ({', '.join(swept)})" if swept and len(ctx["trials"]) > len(ctx["models"]) else "")
    caption = " · ".join(filter(None, [status_text(t, tr), _early_stopping_text(t, tr), public_text(t.error)]))
    return Table(f"epochs/{t.trial_id}", title, [tr(c) for c in columns], rows, footer, caption)


def _early_stopping_text(t: TrialSummary, tr) -> str:
    """Where early stopping ended the trial and which epoch's weights it kept (the final figures' epoch)."""
    early = t.early_stopping
    if not early:
        return ""
    kept = tr("the weights of epoch {kept} (best validation accuracy) were kept", kept=early["kept_epoch"])
    if early.get("stopped_after") is None:
        return tr("Early stopping (patience {n}) did not stop it", n=early["patience"]) + "; " + kept
    stopped = tr(
        "Stopped early after epoch {after}: no better validation accuracy for {n} epochs",
        after=early["stopped_after"],
        n=early["patience"],
    )
    return stopped + "; " + kept


def _comparison(ctx: dict[str, Any], tr) -> Table:
    """One row per trial; where each model trained once, its cost (cost_columns) joins its row, and the report
    has one table for accuracy and cost instead of two that repeat the model, parameters and timing."""
    varied = list(ctx["settings"]["varied"])
    best_heading = (
        "Test accuracy at the best validation epoch" if ctx["data"].get("validation_size") else "Best test accuracy"
    )
    costs = merged_costs(ctx)
    columns = [
        "Model",
        *varied,
        best_heading,
        "Epoch of best",
        "Final test accuracy",
        "Final test loss",
        "Parameters",
        *(["MACs per image"] if costs else []),
        "Seconds per epoch",
        *(COST_COLUMNS if costs else []),
    ]
    by_id = {t.trial_id: t for t in ctx["trials"]}
    rows = []
    for r in ctx["comparison"]:
        trial, cost = by_id[r["trial_id"]], costs.get(r["model"])
        rows.append(
            Row(
                [label(r["model"], status_text(trial, tr), ctx["colors"].get(r["model"], ""))]
                + [label(setting_text(r[k], tr)) for k in varied]
                + [
                    Cell(percent(r["best_test_acc"])),
                    Cell(count(r["best_epoch"])),
                    Cell(percent(r["final_test_acc"])),
                    Cell(decimal(r["final_test_loss"])),
                    Cell(count(r["parameters"])),
                    *([_macs_cell(cost["macs"], _macs_of(ctx, r["model"]), tr)] if cost else []),
                    Cell(decimal(r["seconds_per_epoch"], 2)),
                    *(_cost_cells(cost, tr) if cost else []),
                ],
                "" if trial.status == TrialState.COMPLETE else "flagged",
            )
        )
    caption = tr("Sorted by final test accuracy.")
    if not costs:  # else the cost's notes say it, with what the median includes
        caption += " " + tr("Seconds per epoch: the median over the epochs.")
    if mixed_loss_scales(ctx["settings"]["varied"].get("loss", [])):
        caption += " " + tr("Loss values of different loss functions are on different scales: compare accuracy.")
    if costs:
        caption += " " + _cost_caption(ctx["costs"], tr)
    return Table("comparison", tr("Comparison"), [tr(c) for c in columns], rows, caption=caption)


# The cost table's columns that the comparison lacks; beside the comparison's in a merged table.
COST_COLUMNS = [
    "Training images per second",
    "Total training time",
    "Latency, batch 1",
    "Throughput, batch 256",
    "Size (fp32 state_dict)",
]


def merged_costs(ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cost rows by model when they join the comparison: every model trained once (its one row is its
    best trial, whose accuracy the cost table would repeat) and every model measured. Otherwise (sweeps,
    seeds, a failed trial, no costs) {}, and the cost table stands on its own."""
    costs = ctx.get("costs")
    models = [r["model"] for r in ctx["comparison"]]
    if not costs or len(set(models)) != len(models):
        return {}
    by_model = {r["model"]: r for r in costs["rows"]}
    return by_model if set(by_model) == set(models) else {}


def _macs_of(ctx: dict[str, Any], model: str) -> dict[str, Any]:
    audit = next(m["audit"] for m in ctx["models"] if m["label"] == model)
    return (audit.cost or {}).get("macs") or {}


def _macs_cell(total: int, macs: dict[str, Any], tr) -> Cell:
    """MACs per image in the cost table: "≥ N" when ops ran without a formula, noted when input-dependent."""
    caveats = _mac_caveats(macs, tr)
    return Cell(("≥ " if macs.get("not_counted") else "") + count(total), note=" ".join(caveats))


def _cost_cells(r: dict[str, Any], tr) -> list[Cell]:
    """The cells of COST_COLUMNS for one model's cost row."""
    return [
        Cell(count(r["train_images_per_second"])),
        Cell(_unit(decimal(r["total_train_seconds"], 1), "s")),
        _latency(r, tr),
        Cell(_unit(count(r["throughput_b256"]), "/s")),
        Cell(_unit(decimal(r["state_dict_bytes"] / 1024, 1), "KiB")),
    ]


def _costs(ctx: dict[str, Any], tr) -> Table | None:
    """Each model's cost beside its best trial's accuracy, where the comparison could not take it in."""
    costs = ctx.get("costs")
    if not costs or merged_costs(ctx):
        return None
    columns = ["Model", "Parameters", "MACs per image", "Final test accuracy", "Seconds per epoch", *COST_COLUMNS]
    rows = [
        Row(
            [
                label(r["model"]),
                Cell(count(r["parameters"])),
                _macs_cell(r["macs"], _macs_of(ctx, r["model"]), tr),
                Cell(percent(r["final_test_acc"])),
                Cell(decimal(r["seconds_per_epoch"], 2)),
                *_cost_cells(r, tr),
            ]
        )
        for r in costs["rows"]
    ]
    return Table("cost", tr("Cost beside accuracy"), [tr(c) for c in columns], rows, caption=_cost_caption(costs, tr))


def _cost_caption(costs: dict[str, Any], tr) -> str:
    """How the cost columns were measured, and which latencies are within noise of each other."""
    return " ".join(
        part
        for part in [
            tr(
                "Latency: median and interquartile range over repetitions after a warm-up, in inference mode "
                "(no gradients), measured once per model before training on"
            ),
            f"{costs['device']} ({tr('threads')}: {costs['threads']}).",
            tr("Seconds per epoch (median) include the test evaluation."),
            _latency_noise(costs["rows"], tr),
            tr("Multiply-adds as counted in the model tables above."),
        ]
        if part
    )


def _latency_noise(rows: list[dict[str, Any]], tr) -> str:
    """Pairs of models whose batch-1 latencies differ by less than their spread (half their interquartile
    ranges together): such a difference is measurement noise, and the caption says so."""
    timed = [r for r in rows if is_number(r["latency_b1_ms"]) and is_number(r["latency_b1_iqr_ms"])]
    pairs = [
        f"{a['model']} / {b['model']}"
        for i, a in enumerate(timed)
        for b in timed[i + 1 :]
        if abs(a["latency_b1_ms"] - b["latency_b1_ms"]) < (a["latency_b1_iqr_ms"] + b["latency_b1_iqr_ms"]) / 2
    ]
    if not pairs:
        return ""
    return tr("Latencies within the measurement's spread, not different: {pairs}.", pairs="; ".join(pairs))


def _unit(text: str, unit: str) -> str:
    return text if text == "–" else f"{text} {unit}"


def _latency(row: dict[str, Any], tr) -> Cell:
    """The median, its interquartile range as the cell's second line, named as such (a ± would read as an error
    bar); each line short enough to stay whole in a narrow column."""
    if not is_number(row["latency_b1_ms"]):
        return Cell("–")
    return Cell(f"{decimal(row['latency_b1_ms'], 3)} ms", note=f"{tr('IQR')} {decimal(row['latency_b1_iqr_ms'], 3)}")


def _aggregates(ctx: dict[str, Any], tr) -> Table | None:
    if not ctx["aggregates"]:
        return None
    varied = [k for k in ctx["settings"]["varied"] if k != "seed"]
    columns = [
        tr("Model"),
        *[tr(k) for k in varied],
        tr("Seeds"),
        tr("Mean final test accuracy"),
        "± " + tr("std"),
        tr("95% interval"),
    ]
    rows = [
        Row(
            [
                label(r["model"]),
                *[label(setting_text(r[k], tr)) for k in varied],
                Cell(str(r["seeds"]), note=_repeated(r.get("repeated"), tr)),
                Cell(percent(r["mean"])),
                Cell(percent(r["std"])),
                Cell(f"{percent(r['ci_low'])} – {percent(r['ci_high'])}"),
            ]
        )
        for r in ctx["aggregates"]
    ]
    return Table("aggregates", tr("Across seeds"), columns, rows)


def _repeated(trial_ids: list[str] | None, tr) -> str:
    """Under a seed count: the trials it left out as one training with another (the findings say why)."""
    if not trial_ids:
        return ""
    return tr("counted once: {trials} (one training with another row)", trials=", ".join(trial_ids))


def same_training(ctx: dict[str, Any], tr) -> list[Claim]:
    """A finding per group of trials that were one training: which rows, and what matched."""
    groups = {t.same_training.trial_ids: t.same_training for t in ctx["trials"] if t.same_training}
    return [group.claim(tr) for group in groups.values()]


def _mcnemar(ctx: dict[str, Any], tr) -> Table | None:
    if not ctx["mcnemar"]:
        return None
    columns = [
        tr("Model") + " A",
        tr("Model") + " B",
        tr("Accuracy") + " A",
        tr("Accuracy") + " B",
        tr("Only A correct"),
        tr("Only B correct"),
        "p",
        tr("Verdict"),
    ]
    rows = [
        Row(
            [
                label(r["a"]),
                label(r["b"]),
                Cell(percent(r["acc_a"])),
                Cell(percent(r["acc_b"])),
                Cell(count(r["only_a"])),
                Cell(count(r["only_b"])),
                Cell(f"{r['p_value']:.3g}"),
                _verdict(r, tr),
            ]
        )
        for r in ctx["mcnemar"]
    ]
    caption = tr("Each model's best trial; significant at p < 0.05.")
    return Table(
        "mcnemar",
        tr("Is the difference significant? (McNemar test on the same test images)"),
        columns,
        rows,
        caption=caption,
    )


def _verdict(row: dict[str, Any], tr) -> Cell:
    if row["significant"]:
        return Cell(tr("{winner} better", winner=row["winner"]), "label", verdict=True)
    return label(tr("no significant difference"))


def _literature(ctx: dict[str, Any], tr) -> Table | None:
    """Each model's best trial beside the published figures of LeNet-5's shape (the rows the checklist's known
    accuracy rests on); the other networks' results are counted, with their range, in the caption. A source
    shared by every published row is said once, in the caption, rather than on every row."""
    if not ctx["literature"]:
        return None
    shown = comparable_to_lenet(ctx["literature"]) or ctx["literature"]
    best_ids = {t.trial_id for t in ctx["best"]}
    sources = {row["note"] for row in shown}
    shared = len(sources) == 1
    own = [
        Row(
            [label(f"{tr('This report')}: {r['model']}"), Cell(percent(r["final_test_acc"]))]
            + ([] if shared else [label(tr("final epoch"))]),
            "best",
        )
        for r in ctx["comparison"]
        if r["trial_id"] in best_ids and r["status"] == TrialState.COMPLETE
    ]
    published = [
        Row(
            [
                label(row["model"], row["preprocessing"] if row["preprocessing"] not in ("", "None") else ""),
                Cell(percent(row["accuracy"])),
            ]
            + ([] if shared else [label(row["note"])])
        )
        for row in shown
    ]
    columns = [tr("Model"), tr("Test accuracy")] + ([] if shared else [tr("Source")])
    caption = f"{tr('This report')}: {tr('final epoch')}. {tr('Source')}: {sources.pop()}." if shared else ""
    others = [row["accuracy"] for row in ctx["literature"] if row not in shown]
    if others:  # left out of the table, not out of the report: how many, and what they reached
        caption += " " + tr(
            "Shown: the published networks of LeNet-5's shape; the source lists {n} more, of other networks "
            "({low} to {high}).",
            n=len(others),
            low=percent(min(others)),
            high=percent(max(others)),
        )
    return Table("literature", tr("Published results"), columns, own + published, caption=caption.strip())


def _before_after(ctx: dict[str, Any], tr) -> Table | None:
    """Each regularized model beside its base: accuracy, and the evidence of regularization — the gap between
    train and test accuracy at the final epoch, and the test loss. Figures come from shown_figures, as the
    checklist and the conclusion quote them: the gap is the difference of the printed accuracies."""
    if not ctx["before_after"]:
        return None
    columns = [
        "",
        tr("Parameters"),
        tr("Final train accuracy"),
        tr("Final test accuracy"),
        tr("Train–test gap (points)"),
        tr("Best test accuracy"),
        tr("Average test accuracy"),
        tr("Final test loss"),
    ]
    rows = []
    for r in ctx["before_after"]:
        shown = shown_figures(r)
        for side, name, model in (("before", tr("Before"), r["base"]), ("after", tr("After"), r["model"])):
            rows.append(
                Row(
                    [
                        label(f"{name}: {model}"),
                        Cell(count(r[f"parameters_{side}"])),
                        Cell(shown[f"final_train_acc_{side}"]),
                        Cell(shown[f"final_acc_{side}"]),
                        Cell(shown[f"gap_{side}"]),
                        Cell(percent(r[f"best_acc_{side}"])),
                        Cell(percent(r[f"average_acc_{side}"])),
                        Cell(shown[f"final_loss_{side}"]),
                    ]
                )
            )
    caption = tr(
        "Train–test gap: final train accuracy minus final test accuracy, as printed. A before/after pair that "
        "differs is printed with as many digits as it takes to show which way it changed."
    )
    return Table("before_after", tr("Improvement"), columns, rows, caption=caption)


def _per_class(gallery: dict[str, Any], tr) -> Table:
    rows = [
        Row([label(c["class"]), Cell(f"{c['correct']} / {c['total']}"), Cell(percent(c["accuracy"], 1))])
        for c in gallery["per_class"]
    ]
    label_ = gallery["trial"].label
    return Table(f"per_class/{label_}", label_, [tr("Class"), tr("Correct"), tr("Accuracy")], rows)


def _quality(ctx: dict[str, Any], tr) -> Table | None:
    """Beside the comparison: each model's best trial's macro and weighted F1 and its calibration (quality.py),
    with the rule by which the conclusion speaks of calibration (summary.calibration_sentences)."""
    quality = ctx.get("quality")
    if not quality:
        return None
    trial_of = {t.label: t for t in ctx["best"]}
    columns = ["Model", "Test accuracy", "Macro F1", "Weighted F1", "Mean confidence", "ECE"]
    rows = [
        Row(
            [
                label(model, status_text(trial_of[model], tr), ctx["colors"].get(model, "")),
                Cell(percent(q["accuracy"])),
                Cell(decimal(q["macro"]["f1"], 3)),
                Cell(decimal(q["weighted"]["f1"], 3)),
                Cell(percent(q["confidence"])),
                Cell(decimal(q["ece"], 3)),
            ]
        )
        for model, q in quality.items()
    ]
    caption = " ".join(
        [
            tr("Each model's best trial, on its archived test predictions."),
            tr(
                "F1 with scikit-learn: the macro average weighs every class alike, the weighted average weighs "
                "each class by its test images."
            ),
            tr(
                "ECE (expected calibration error, Guo et al. 2017): the top-label confidence in 15 equal-width "
                "bins; the mean of |accuracy − mean confidence| over the bins, weighted by their images (0: "
                "confidence matches accuracy)."
            ),
            tr(
                "The conclusion speaks of calibration only when a model's ECE is above 0.05 or two models' ECEs "
                "differ by more than 0.05."
            ),
        ]
    )
    return Table("quality", tr("F1 and calibration"), [tr(c) for c in columns], rows, caption=caption)


def _per_class_scores(ctx: dict[str, Any], tr) -> Table | None:
    """Class × model: each class's F1 per model (its best trial), precision and recall beneath it; the macro
    and weighted averages as the footer."""
    quality = ctx.get("quality")
    if not quality:
        return None
    classes = [tr(c) for c in ctx["data"]["classes"]]
    rows = [
        Row([label(name)] + [_score_cell(q["per_class"][i], tr) for q in quality.values()])
        for i, name in enumerate(classes)
    ]
    footer = [
        Row([label(tr(name))] + [_score_cell(q[key], tr) for q in quality.values()])
        for key, name in (("macro", "Macro average"), ("weighted", "Weighted average"))
    ]
    caption = tr(
        "F1 of each class on each model's best trial, with its precision (P) and recall (R); computed with "
        "scikit-learn. A class a model never predicted has no precision (–); the averages of precision leave "
        "it out."
    )
    return Table(
        "per_class_scores",
        tr("Per-class precision, recall and F1"),
        [tr("Class"), *quality],
        rows,
        footer=footer,
        caption=caption,
    )


def _score_cell(scores: dict[str, Any], tr) -> Cell:
    """F1, with precision and recall as the cell's second line."""
    note = tr("P {p} · R {r}", p=decimal(scores["precision"], 3), r=decimal(scores["recall"], 3))
    return Cell(decimal(scores["f1"], 3), note=note)


def _reproducibility(ctx: dict[str, Any], tr) -> Table:
    env, spec, status = ctx["env"], ctx["spec"], ctx["status"]
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


def _data_files(ctx: dict[str, Any], tr) -> Table:
    rows = [
        Row([code(public_text(f["path"])), code(f["sha256"]), Cell("✓" if f.get("verified") == "true" else "–")])
        for f in ctx["data"]["files"].values()
    ]
    return Table("data_files", tr("Data files"), [tr("File"), "sha256", tr("Known checksum")], rows)


def spec_json(spec: dict[str, Any]) -> str:
    """The resolved spec as the documents show it: Hangul as Hangul, paths shortened."""
    return public_text(json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False))
