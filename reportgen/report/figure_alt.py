"""Alt text for every figure of a report: what each one shows, in the report's language, for a reader who
cannot see it (a screen reader, a tagged PDF, a Markdown viewer with images off).

Each text is built from the same analysed context the figure is drawn from, with the report model's value
formats (model.percent, decimal, count), so an alt text states the numbers the tables print: which models a
figure compares and what stands out (the highest final accuracy, the most frequent confusion). It names no
colour or marker: those are how the figure tells models apart, not what it says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from reportgen.report.analysed import Analysis
from reportgen.report.model import count, decimal, is_number, percent

if TYPE_CHECKING:  # figures.py imports this module to describe what it drew
    from reportgen.report.figures import Figures

Translate = Callable[..., str]


def describe(context: Analysis, figures: Figures) -> dict[str, str]:
    """Alt text by figure file (as the templates link it), for every figure in `figures`."""
    tr, best = context.translate, context.best
    alt = {f"figures/{metric}.svg": curves(best, metric, tr) for metric in ("loss", "acc")}
    alt |= {c["file"]: panels(trial, tr) for c, trial in zip(figures.model_curves, best)}
    alt |= {file: heatmap(pivot, tr) for file, pivot in zip(figures.heatmaps, context.heatmap_pivots)}
    if figures.sweep_panels:
        alt[figures.sweep_panels] = sweep(context.sweep_series, tr)
    if figures.cost_scatter:
        alt[figures.cost_scatter] = cost(context.costs["rows"], tr)
    if figures.reliability:
        alt[figures.reliability] = reliability(context.quality, tr)
    for files, gallery in zip(figures.galleries, context.galleries):
        alt |= _gallery(files, gallery, tr)
    for files, pair in zip(figures.disagreements, context.disagreements):
        alt |= _disagreement(files, pair, tr)
    return alt


def listing(items: Iterable[str], tr: Translate) -> str:
    """ "A, B and C" in the report's language."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return tr("{items} and {last}", items=", ".join(items[:-1]), last=items[-1])


def _final(epochs: list[dict], key: str) -> float | None:
    value = epochs[-1].get(key) if epochs else None
    return value if is_number(value) else None


# loss.svg and acc.svg: the figure's words, the final value it names, which one is best and its format, and the
# sentence naming the best of several models or the final value of one
CURVES = {
    "acc": (
        "Train (dashed) and test (solid) accuracy per epoch of {models}",
        "test_acc",
        max,
        percent,
        "highest final test accuracy: {model}, {value}",
        "final test accuracy: {model}, {value}",
    ),
    "loss": (
        "Train (dashed) and test (solid) loss per epoch of {models}",
        "test_loss",
        min,
        decimal,
        "lowest final test loss: {model}, {value}",
        "final test loss: {model}, {value}",
    ),
}


def curves(best: list, metric: str, tr: Translate) -> str:
    """loss.svg / acc.svg: every model's train and test curve; the best final test value among them."""
    words, key, pick, form, best_of_several, final_of_one = CURVES[metric]
    text = tr(words, models=listing((t.label for t in best), tr))
    finals = {t.label: t.final.get(key) for t in best if is_number(t.final.get(key))}
    if finals:
        leader = pick(finals, key=finals.get)
        sentence = best_of_several if len(finals) > 1 else final_of_one
        text += "; " + tr(sentence, model=leader, value=form(finals[leader]))
    return text + "."


def panels(trial: Any, tr: Translate) -> str:
    """curves-N.svg: one model's four plots."""
    return tr(
        "{model}: train and test loss, train and test accuracy over {count} epochs; "
        "final test accuracy {accuracy}, final test loss {loss}.",
        model=trial.label,
        count=len(trial.epochs),
        accuracy=percent(trial.final.get("test_acc")),
        loss=decimal(trial.final.get("test_loss")),
    )


def heatmap(pivot: dict[str, Any], tr: Translate) -> str:
    """heatmap-N.svg: one model's final test accuracy for each pair of swept settings; the best cell."""
    rows, columns = tr(pivot["row_key"]), tr(pivot["column_key"])
    text = tr(
        "{model}: final test accuracy (%) for each combination of {rows} and {columns}",
        model=pivot["label"],
        rows=rows,
        columns=columns,
    )
    cells = [
        (value, row, column)
        for row, line in zip(pivot["rows"], pivot["values"])
        for column, value in zip(pivot["columns"], line)
        if not math.isnan(value)
    ]
    if cells:
        value, row, column = max(cells, key=lambda cell: cell[0])
        setting = f"{rows} {row}, {columns} {column}"
        text += "; " + tr("highest {value} at {setting}", value=f"{value:.2f}", setting=setting)
    return text + "."


def sweep(series: dict[str, Any], tr: Translate) -> str:
    """sweep.svg: a panel per combination of swept settings; the best final test accuracy and where."""
    panels_ = series["panels"]
    models = listing(dict.fromkeys(label for models in panels_.values() for label in models), tr)
    text = tr(
        "Test accuracy per epoch of {models}, one panel per combination of swept settings ({count} panels)",
        models=models,
        count=len(panels_),
    )
    finals = [
        (value, label, title)
        for title, models_ in panels_.items()
        for label, epochs in models_.items()
        if (value := _final(epochs, "test_acc")) is not None
    ]
    if finals:
        value, label, title = max(finals, key=lambda final: final[0])
        text += "; " + tr(
            "highest final test accuracy: {model} at {setting}, {value}",
            model=label,
            setting=title,
            value=percent(value),
        )
    marks = [f"{title}: {mark}" for title, mark in series["marks"].items()]
    return text + "".join(f"; {mark}" for mark in marks) + "."


def cost(rows: list[dict[str, Any]], tr: Translate) -> str:
    """cost.svg: each model's point, as the cost table states it."""
    points = [
        tr(
            "{model} {macs} MACs, {accuracy}",
            model=r["model"],
            macs=count(r["macs"]),
            accuracy=percent(r["final_test_acc"]),
        )
        for r in rows
        if r["final_test_acc"] is not None
    ]
    return tr("Final test accuracy against multiply-adds per image") + ": " + "; ".join(points) + "."


def reliability(quality: dict[str, dict[str, Any]], tr: Translate) -> str:
    """reliability.svg: the models it overlays and each one's ECE (the quality table's figure)."""
    drawn = {label: q for label, q in quality.items() if q["bins"]}
    eces = "; ".join(f"{label} {decimal(q['ece'], 3)}" for label, q in drawn.items())
    bins = next(iter(drawn.values()))["ece_bins"] if drawn else 0
    return tr(
        "Reliability diagram of {models}: accuracy against mean confidence in {bins} equal-width confidence bins, "
        "beside the diagonal of perfect calibration; expected calibration error (ECE): {eces}.",
        models=listing(drawn, tr),
        bins=bins,
        eces=eces,
    )


def confusion(label: str, matrix: list[list[int]], classes: list[str], tr: Translate) -> str:
    """confusion-N.svg: what the matrix counts, and its largest cell off the diagonal."""
    text = tr(
        "Confusion matrix of {model} over {count} test images (rows: true label, columns: predicted)",
        model=label,
        count=count(sum(map(sum, matrix))),
    )
    mistakes = [(n, i, j) for i, row in enumerate(matrix) for j, n in enumerate(row) if i != j and n]
    if not mistakes:
        return text + "; " + tr("no test image misclassified") + "."
    n, i, j = max(mistakes)
    pair = f"{classes[i]} → {classes[j]}"
    return text + "; " + tr("most frequent confusion: {pair}, {n} images", pair=pair, n=count(n)) + "."


def _captions(sheet: Any, wrong: bool) -> str:
    """A sheet's captions as the images show them: "Trouser 99.1%", or "Shirt → T-shirt/top 93.0%"."""
    return ", ".join(f"{truth} → {predicted}" if wrong else truth for truth, predicted in sheet.captions)


def _gallery(files: Any, gallery: dict[str, Any], tr: Translate) -> dict[str, str]:
    """One model's contact sheets and confusion matrix."""
    label = gallery["trial"].label
    alt = {files.confusion: confusion(label, gallery["matrix"], gallery["class_names"], tr)}
    if files.correct:
        alt[files.correct] = tr(
            "{model}: one correctly classified test image per class, with the model's confidence: {images}.",
            model=label,
            images=_captions(gallery["correct_sheet"], wrong=False),
        )
    if files.confident:
        alt[files.confident] = tr(
            "{model}: the most confident mistakes (true label → predicted label, confidence): {images}.",
            model=label,
            images=_captions(gallery["confident_sheet"], wrong=True),
        )
    for page, file in enumerate(files.wrong):
        sheet = gallery["wrong_sheets"][page]
        alt[file] = tr(
            "{model}: misclassified test images, page {page} of {pages} (true label → predicted label): {images}.",
            model=label,
            page=page + 1,
            pages=len(files.wrong),
            images=_captions(sheet, wrong=True),
        )
    for pair, file in zip(gallery["confusions"], files.confusion_sheets):
        if file:
            alt[file] = tr(
                "{n} test images of {true} that {model} classified as {predicted}, the ones it was surest of.",
                n=len(pair["examples_sheet"].indices),
                true=pair["true_name"],
                model=label,
                predicted=pair["predicted_name"],
            )
    return alt


def _disagreement(files: dict[str, Any], pair: dict[str, Any], tr: Translate) -> dict[str, str]:
    """The two strips of a model pair: images one got right and the other wrong (captioned with its answer)."""
    alt = {}
    for side, right, other in (("a_only", pair["a"], pair["b"]), ("b_only", pair["b"], pair["a"])):
        if files[side]:
            alt[files[side]] = tr(
                "Test images {right} classified correctly and {other} did not (true label → {other}'s answer): "
                "{images}.",
                right=right,
                other=other,
                images=_captions(pair[side], wrong=True),
            )
    return alt
