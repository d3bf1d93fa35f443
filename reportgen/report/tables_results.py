"""The report model's tables of results: each trial's epochs, the comparison, F1 and calibration, per-class
scores, seeds, McNemar, published results, before/after and each model's per-class accuracy."""

from __future__ import annotations

from typing import Any

from reportgen.report.analysed import Analysis
from reportgen.report.claims import status_text
from reportgen.report.model import Cell, Row, Table, count, decimal, label, percent, public_text, setting_text
from reportgen.report.regularization import shown_figures
from reportgen.report.significance import comparable_to_lenet
from reportgen.report.summary import TrialSummary
from reportgen.report.tables_cost import COST_COLUMNS, cost_caption, cost_cells, macs_cell, macs_of, merged_costs
from reportgen.settings import mixed_loss_scales
from reportgen.states import TrialState


def _epoch_cells(e: dict[str, Any], has_val: bool, has_lr: bool = False) -> list[Cell]:
    values = [decimal(e.get("train_loss")), percent(e.get("train_acc"))]
    if has_val:
        values += [decimal(e.get("val_loss")), percent(e.get("val_acc"))]
    values += [decimal(e.get("test_loss")), percent(e.get("test_acc")), decimal(e.get("seconds"), 1)]
    if has_lr:
        values.append(f"{e['lr']:.3g}" if e.get("lr") is not None else "")
    return [Cell(v) for v in values]


def epochs_table(t: TrialSummary, ctx: Analysis, tr) -> Table:
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
    swept = [f"{tr(k)} {t.config[k]}" for k in ctx.settings["varied"]]
    title = t.label + (f" ({', '.join(swept)})" if swept and len(ctx.trials) > len(ctx.models) else "")
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


def comparison_table(ctx: Analysis, tr) -> Table:
    """One row per trial; where each model trained once, its cost (cost_columns) joins its row, and the report
    has one table for accuracy and cost instead of two that repeat the model, parameters and timing."""
    varied = list(ctx.settings["varied"])
    best_heading = (
        "Test accuracy at the best validation epoch" if ctx.data.get("validation_size") else "Best test accuracy"
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
    by_id = {t.trial_id: t for t in ctx.trials}
    rows = []
    for r in ctx.comparison:
        trial, cost = by_id[r["trial_id"]], costs.get(r["model"])
        rows.append(
            Row(
                [label(r["model"], status_text(trial, tr), ctx.colors.get(r["model"], ""))]
                + [label(setting_text(r[k], tr)) for k in varied]
                + [
                    Cell(percent(r["best_test_acc"])),
                    Cell(count(r["best_epoch"])),
                    Cell(percent(r["final_test_acc"])),
                    Cell(decimal(r["final_test_loss"])),
                    Cell(count(r["parameters"])),
                    *([macs_cell(cost["macs"], macs_of(ctx, r["model"]), tr)] if cost else []),
                    Cell(decimal(r["seconds_per_epoch"], 2)),
                    *(cost_cells(cost, tr) if cost else []),
                ],
                "" if trial.status == TrialState.COMPLETE else "flagged",
            )
        )
    caption = tr("Sorted by final test accuracy.")
    if not costs:  # else the cost's notes say it, with what the median includes
        caption += " " + tr("Seconds per epoch: the median over the epochs.")
    if mixed_loss_scales(ctx.settings["varied"].get("loss", [])):
        caption += " " + tr("Loss values of different loss functions are on different scales: compare accuracy.")
    if costs:
        caption += " " + cost_caption(ctx.costs, tr)
    return Table("comparison", tr("Comparison"), [tr(c) for c in columns], rows, caption=caption)


# The cost table's columns that the comparison lacks; beside the comparison's in a merged table.


def aggregates_table(ctx: Analysis, tr) -> Table | None:
    if not ctx.aggregates:
        return None
    varied = [k for k in ctx.settings["varied"] if k != "seed"]
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
        for r in ctx.aggregates
    ]
    return Table("aggregates", tr("Across seeds"), columns, rows)


def _repeated(trial_ids: list[str] | None, tr) -> str:
    """Under a seed count: the trials it left out as one training with another (the findings say why)."""
    if not trial_ids:
        return ""
    return tr("counted once: {trials} (one training with another row)", trials=", ".join(trial_ids))


def mcnemar_table(ctx: Analysis, tr) -> Table | None:
    if not ctx.mcnemar:
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
        for r in ctx.mcnemar
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


def literature_table(ctx: Analysis, tr) -> Table | None:
    """Each model's best trial beside the published figures of LeNet-5's shape (the rows the checklist's known
    accuracy rests on); the other networks' results are counted, with their range, in the caption. A source
    shared by every published row is said once, in the caption, rather than on every row."""
    if not ctx.literature:
        return None
    shown = comparable_to_lenet(ctx.literature) or ctx.literature
    best_ids = {t.trial_id for t in ctx.best}
    sources = {row["note"] for row in shown}
    shared = len(sources) == 1
    own = [
        Row(
            [label(f"{tr('This report')}: {r['model']}"), Cell(percent(r["final_test_acc"]))]
            + ([] if shared else [label(tr("final epoch"))]),
            "best",
        )
        for r in ctx.comparison
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
    others = [row["accuracy"] for row in ctx.literature if row not in shown]
    if others:  # left out of the table, not out of the report: how many, and what they reached
        caption += " " + tr(
            "Shown: the published networks of LeNet-5's shape; the source lists {n} more, of other networks "
            "({low} to {high}).",
            n=len(others),
            low=percent(min(others)),
            high=percent(max(others)),
        )
    return Table("literature", tr("Published results"), columns, own + published, caption=caption.strip())


def before_after_table(ctx: Analysis, tr) -> Table | None:
    """Each regularized model beside its base: accuracy, and the evidence of regularization — the gap between
    train and test accuracy at the final epoch, and the test loss. Figures come from shown_figures, as the
    checklist and the conclusion quote them: the gap is the difference of the printed accuracies."""
    if not ctx.before_after:
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
    for r in ctx.before_after:
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


def per_class_table(gallery: dict[str, Any], tr) -> Table:
    rows = [
        Row([label(c["class"]), Cell(f"{c['correct']} / {c['total']}"), Cell(percent(c["accuracy"], 1))])
        for c in gallery["per_class"]
    ]
    label_ = gallery["trial"].label
    return Table(f"per_class/{label_}", label_, [tr("Class"), tr("Correct"), tr("Accuracy")], rows)


def quality_table(ctx: Analysis, tr) -> Table | None:
    """Beside the comparison: each model's best trial's macro and weighted F1 and its calibration (quality.py),
    with the rule by which the conclusion speaks of calibration (summary.calibration_sentences)."""
    quality = ctx.quality
    if not quality:
        return None
    trial_of = {t.label: t for t in ctx.best}
    columns = ["Model", "Test accuracy", "Macro F1", "Weighted F1", "Mean confidence", "ECE"]
    rows = [
        Row(
            [
                label(model, status_text(trial_of[model], tr), ctx.colors.get(model, "")),
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


def per_class_scores_table(ctx: Analysis, tr) -> Table | None:
    """Class × model: each class's F1 per model (its best trial), precision and recall beneath it; the macro
    and weighted averages as the footer."""
    quality = ctx.quality
    if not quality:
        return None
    classes = [tr(c) for c in ctx.data["classes"]]
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
