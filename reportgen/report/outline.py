"""The report model's document: its header, its parts in the order every format shows them, the figures with
their alt texts and captions, each model's gallery, the pairs of models that disagree, and the combined
report's differences — everything besides the tables of results, worded once in the report's language.

Input is the analysed context with its figures drawn (analysis.with_figures); tables.build_report_model
adds what this returns to the model, and the layouts (HTML, Markdown, the notebook view) read nothing else.
"""

from __future__ import annotations

from typing import Any

from reportgen.report.analysed import Analysis
from reportgen.report.model import (
    SECTION_HEADINGS,
    Cell,
    Disagreement,
    Figure,
    Gallery,
    Header,
    Part,
    ReportModel,
    Row,
    Table,
    count,
    label,
)
from reportgen.report.tables_setup import spec_json

PROBLEMS = "This run is incomplete or was altered after it finished; its numbers may not be trustworthy:"
MAC_RULE = (
    "1 MAC = 1 multiply + 1 add = 2 FLOPs, per image, forward pass; bias additions are not MACs; "
    "BatchNorm at inference is one multiply-add per element."
)
RELIABILITY = (
    "Reliability diagram: each model's test accuracy against its mean confidence in each of 15 "
    "equal-width confidence bins (empty bins left out). On the dotted diagonal confidence matches accuracy; "
    "below it a model is over-confident, above it under-confident."
)


def add_document(report: ReportModel, ctx: Analysis) -> ReportModel:
    """`report` (its tables and claims built) with the document around them."""
    tr = ctx.translate
    report.header = _header(ctx, tr)
    report.problems = list(ctx.problems)
    cover = _cover(ctx.cover_rows or [], tr)
    differences = _differences(ctx.differences, tr)
    report.tables.update({t.key: t for t in (cover, differences) if t is not None})
    report.training = [f"epochs/{t.trial_id}" for t in ctx.trials if t not in ctx.appendix_trials]
    report.appendix = [f"epochs/{t.trial_id}" for t in ctx.appendix_trials]
    for key in report.training + report.appendix:
        trial = next(t for t in ctx.trials if key == f"epochs/{t.trial_id}")
        report.tables[key].color = ctx.colors[trial.label]
    report.figures = _figures(ctx, tr)
    report.galleries = [_gallery(g, ctx, report, tr) for g in ctx.galleries]
    report.disagreements = [_disagreement(d, ctx.alt, tr) for d in ctx.disagreements]
    report.captions = _captions(ctx, tr)
    report.spec = spec_json(ctx.spec)
    report.parts = _parts(report, ctx, tr)
    return report


def _header(ctx: Analysis, tr) -> Header:
    cover, spec = ctx.cover or {}, ctx.spec
    return Header(
        title=cover.get("title") or tr(spec["name"]),
        run_id=ctx.run_id,
        lang=ctx.lang,
        dataset=tr(ctx.data["dataset"]),
        generated=ctx.generated,
        version=ctx.env["reportgen"],
        notes=tr(spec["notes"]) if spec.get("notes") else "",
    )


def _cover(rows: list[tuple[str, str]], tr) -> Table | None:
    """The cover block (course, professor, authors …) as names and values."""
    if not rows:
        return None
    return Table("cover", "", [], [Row([label(tr(name)), label(value)]) for name, value in rows])


def _differences(found: dict[str, Any] | None, tr) -> Table | None:
    """A combined report's differences between its runs: kind, what, each run's value, what it invalidates.
    Its caption says what the table shows, or that nothing differs."""
    if not found:
        return None
    runs = found["runs"]
    rows = [
        Row(
            [
                label(tr(row["kind"])),
                label(tr(row["what"]) + (f": {row['subject']}" if row["subject"] else "")),
                *[label(row["by_run"].get(run_id, "–")) for run_id in runs],
                label(tr(row["effect"]) if row["effect"] else ""),
            ]
        )
        for row in found["rows"]
    ]
    caption = (
        tr("What differs between them, and what that means for the comparisons below:")
        if rows
        else tr("Their settings, data, code and environment are the same.")
    )
    return Table("differences", tr("This report combines several runs."), ["", "", *runs, ""], rows, caption=caption)


def _figure(file: str | None, alt: dict[str, str], caption: str = "") -> Figure | None:
    return Figure(file, alt[file], caption) if file else None


def _figures(ctx: Analysis, tr) -> dict[str, Figure]:
    """The report's figures besides the galleries, by role, in the order they are shown."""
    alt = ctx.alt
    seeds = f" ({tr('mean over seeds')})" if ctx.settings["varied"].get("seed") else ""
    figures = {
        "loss": _figure("figures/loss.svg", alt, tr("Loss per epoch: train dashed, test solid.")),
        "acc": _figure("figures/acc.svg", alt, tr("Accuracy per epoch: train dashed, test solid.")),
        **{f"curves/{c['label']}": _figure(c["file"], alt) for c in ctx.model_curves},
        "cost": _figure(
            (ctx.costs or {}).get("scatter"), alt, tr("Final test accuracy against multiply-adds per image")
        ),
        "reliability": _figure(ctx.reliability, alt, tr(RELIABILITY)),
        **{f"heatmap/{n}": _figure(file, alt) for n, file in enumerate(ctx.heatmaps)},
        "sweep": _figure(
            ctx.sweep_panels,
            alt,
            tr("Test accuracy per epoch, one panel per combination of swept settings") + seeds + ".",
        ),
    }
    return {role: figure for role, figure in figures.items() if figure is not None}


def _gallery(g: dict[str, Any], ctx: Analysis, report: ReportModel, tr) -> Gallery:
    alt, model = ctx.alt, g["trial"].label
    confusions = _confusions(g, alt, tr)
    if confusions is not None:
        report.tables[confusions.key] = confusions
    wrong = count(g["wrong_count"])
    return Gallery(
        label=model,
        color=ctx.colors[model],
        confusion=Figure(
            g["confusion"], alt[g["confusion"]], tr("Confusion matrix (rows: true label, columns: predicted)")
        ),
        per_class=f"per_class/{model}",
        correct=_figure(
            g["correct"],
            alt,
            tr("One correctly classified test image per class (drawn at random), with the model's confidence"),
        ),
        confusions=confusions.key if confusions else "",
        confident=_figure(g["confident"], alt, tr("true label, then → predicted label and the model's confidence")),
        wrong=[Figure(sheet, alt[sheet]) for sheet in g["wrong"]],
        wrong_count=wrong,
        test_count=count(g["test_count"]),
        wrong_link=f"{tr('All misclassified test images')} ({wrong})",
        wrong_print=tr("All {n} misclassified test images are on the HTML report's companion page.", n=wrong),
    )


def _confusions(g: dict[str, Any], alt: dict[str, str], tr) -> Table | None:
    """A model's most frequent confusions: true → predicted, how often, and the examples it was surest of."""
    if not g["confusions"]:
        return None
    rows = [
        Row(
            [
                label(f"{c['true_name']} → {c['predicted_name']}"),
                Cell(count(c["count"])),
                Cell(alt[c["sheet"]], "image", image=c["sheet"]) if c["sheet"] else label(""),
            ]
        )
        for c in g["confusions"]
    ]
    caption = f"{tr('Misclassified')}: {count(g['wrong_count'])} / {count(g['test_count'])}. " + tr(
        "Each row: true label → predicted label, how often, and the examples the model was surest of."
    )
    columns = [f"{tr('True label')} → {tr('Predicted label')}", tr("images"), ""]
    return Table(f"confusions/{g['trial'].label}", tr("Most frequent confusions"), columns, rows, caption=caption)


def _disagreement(d: dict[str, Any], alt: dict[str, str], tr) -> Disagreement:
    sides = [(d["a_only"], d["a"], d["b"]), (d["b_only"], d["b"], d["a"])]
    figures = [
        Figure(file, alt[file], tr("Right for {right}, wrong for {other}", right=right, other=other))
        for file, right, other in sides
        if file
    ]
    return Disagreement(d["a"], d["b"], figures)


def _captions(ctx: Analysis, tr) -> dict[str, str]:
    """The texts between the tables and figures, by the place they stand."""
    highlighted = (
        tr("Highlighted row: epoch with the best validation accuracy.")
        if ctx.data.get("validation_size")
        else tr("Highlighted row: epoch with the best test accuracy.")
    )
    appendix = ctx.appendix_trials
    return {
        "macs": tr(MAC_RULE) if ctx.costs else "",
        "training": highlighted
        + " "
        + tr("Train loss and accuracy are averaged over the epoch's batches while the model was training."),
        "appendix_link": f"{tr('Every other trial of the sweep, per epoch: appendix')} ({len(appendix)})"
        if appendix
        else "",
        "curves": tr("Per model: train and test loss, train and test accuracy"),
        "confident": tr("Most confident mistakes"),
        "disagreements": tr(
            "Test images only one of the two got right, the ones it was surest of first; "
            "under each image its true class and → the other model's answer."
        ),
        "spec": tr("Resolved spec"),
        "spec_print": tr("The resolved spec is in the HTML report and in the run's spec.json."),
    }


def _parts(report: ReportModel, ctx: Analysis, tr) -> list[Part]:
    """The document's parts in order; a part with nothing to show is left out."""
    section = {key: Part(key, tr(title)) for key, title in SECTION_HEADINGS.items()}
    shown = [
        (report.problems, Part("problems", tr(PROBLEMS), 0)),
        (report.findings, Part("warnings", tr("Warnings"), 0)),
        ("differences" in report.tables, Part("differences", tr("This report combines several runs."), 0)),
        (report.checklist, Part("checklist", f"{tr('Assignment checklist')}: {report.checklist_title}", 3)),
        *[(True, section[key]) for key in ("settings", "models", "training", "curves", "comparison")],
        ("before_after" in report.tables, section["improvement"]),
        (report.conclusion, section["conclusion"]),
        (report.next_steps, Part("next-steps", tr("Next steps"), 3)),
        (True, section["galleries"]),
        (report.disagreements, Part("disagreements", tr("Where two models disagree"), 3)),
        (report.appendix, section["all-trials"]),
        (True, section["appendix"]),
    ]
    return [part for wanted, part in shown if wanted]
