"""Draws every figure file of a report from its analysed context (render.analyse_run) into figures/.

The one module of the report that writes figures: it reads no archive and computes no result, it only
lays out what the analysis picked (curves, pivots, cost rows, gallery picks) through plots.py,
matrix_plots.py and contact_sheets.py, names the files and hands back their paths relative to the report
folder, which the templates then show, each with its alt text (figure_alt.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reportgen.report import figure_alt
from reportgen.report.analysed import Analysis
from reportgen.report.contact_sheets import gallery_png, pngs_written_meanwhile
from reportgen.report.drawn_aside import drawn_aside
from reportgen.report.figure_style import model_marker
from reportgen.report.matrix_plots import confusion_svg, heatmap_svg
from reportgen.report.plots import cost_scatter_svg, curves_svg, model_panels_svg, reliability_svg, sweep_panels_svg

FOLDER = "figures"  # beside the documents: every path handed back starts with it
# A disagreement's strip prints in half the page (pt, report.css .pair): drawn for that width, its captions
# keep their print size (contact_sheets.gallery_png).
HALF_PT = 250


@dataclass(frozen=True)
class Sheet:
    """One contact sheet the analysis picked: which test images, their captions (true, predicted)."""

    indices: list[int]
    captions: list[tuple[str, str]]
    wrong: bool  # misclassified images: drawn with the mistake's colour


@dataclass(frozen=True)
class GalleryFiles:
    """One model's gallery figures; None where its sheet had no image to show."""

    correct: str | None
    confident: str | None
    wrong: list[str]  # the misclassified images, GALLERY_PAGE per sheet
    confusion: str  # the confusion matrix
    confusion_sheets: list[str | None]  # examples of each frequent confusion, in the analysis' order


@dataclass(frozen=True)
class Figures:
    """Every figure file of one report, as the templates link them."""

    model_curves: list[dict[str, Any]]  # label, file, panels (the titles drawn: the checklist counts them)
    heatmaps: list[str]
    sweep_panels: str | None
    cost_scatter: str | None
    galleries: list[GalleryFiles]
    disagreements: list[dict[str, Any]]  # a, b and the strips of images only one of them got right
    reliability: str | None = None  # the reliability diagram, overlaying the models
    alt: dict[str, str] = field(default_factory=dict)  # every file's alt text, in the report's language


def draw_figures(context: Analysis, folder: Path) -> Figures:
    """Write every figure of the analysed `context` into `folder` (the report's figures/). The galleries are
    drawn in a copy of this process meanwhile where that is allowed (drawn_aside.py), else here, first."""
    translate = context.translate
    colors = context.colors
    # In this order: the copy starts before this process's PNG thread (a copy has none of its parent's threads),
    # whose writes are those of the contact sheets drawn here, encoded while the next figures are drawn.
    with (
        drawn_aside(lambda: _galleries(context.galleries, translate, folder)) as galleries,
        pngs_written_meanwhile(),
    ):
        # drawn here, first: its many PNGs are then encoded while the SVG figures below are drawn
        gallery_files = None if galleries.aside else galleries.result()
        _curves(context.best, colors, translate, folder)
        figures = Figures(
            disagreements=[_disagreement(n, pair, folder) for n, pair in enumerate(context.disagreements)],
            model_curves=model_curves(context.best, colors, translate, folder),
            heatmaps=_heatmaps(context.heatmap_pivots, translate, folder),
            sweep_panels=_sweep_panels(context.sweep_series, colors, translate, folder),
            cost_scatter=_cost_scatter(context.costs, colors, translate, folder),
            reliability=_reliability(context.quality or {}, colors, translate, folder),
            galleries=gallery_files if gallery_files is not None else galleries.result(),
        )
    return replace(figures, alt=figure_alt.describe(context, figures))


def _galleries(galleries: list[dict[str, Any]], translate, folder: Path) -> list[GalleryFiles]:
    """Every model's gallery figures (`_gallery`), their PNGs encoded while the next ones are drawn."""
    with pngs_written_meanwhile():
        return [_gallery(n, gallery, translate, folder) for n, gallery in enumerate(galleries)]


def _disagreement(n: int, pair: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The two strips of one model pair: images only A got right (captioned with B's answer), and the reverse."""
    files = {}
    for side in ("a_only", "b_only"):
        sheet = pair[side]
        if sheet is not None:
            name = f"disagree-{n}-{side[0]}.png"
            images = pair["images"][sheet.indices]
            gallery_png(images, sheet.captions, folder / name, columns=8, wrong=True, print_width_pt=HALF_PT)
        files[side] = _relative(name) if sheet is not None else None
    return {"a": pair["a"], "b": pair["b"], **files}


def _relative(name: str) -> str:
    return f"{FOLDER}/{name}"


def _curves(best: list, colors: dict[str, str], translate, folder: Path) -> None:
    """loss.svg and acc.svg: one curve per model (its best trial); a sweep's other trials are in sweep.svg."""
    series = {t.label: t.epochs for t in best}
    for metric in ("loss", "acc"):
        curves_svg(series, metric, colors, translate, folder / f"{metric}.svg")


def model_curves(best: list, colors: dict[str, str], translate, folder: Path) -> list[dict[str, Any]]:
    """Per model, the assignment's four plots (train/test loss and accuracy) in one figure."""
    curves = []
    for n, trial in enumerate(best):
        name = f"curves-{n}.svg"
        color, marker = colors[trial.label], model_marker(colors, trial.label)
        panels = model_panels_svg(trial.epochs, trial.label, color, translate, folder / name, marker)
        curves.append({"label": trial.label, "file": _relative(name), "panels": panels})
    return curves


def _heatmaps(pivots: list[dict[str, Any]], translate, folder: Path) -> list[str]:
    """One heatmap per model, all on one colour scale (the lowest to the highest accuracy of any of them)."""
    finite = [v for p in pivots for row in p["values"] for v in row if not math.isnan(v)]
    scale = (min(finite), max(finite)) if finite else None
    return [_heatmap(n, pivot, translate, folder, scale) for n, pivot in enumerate(pivots)]


def _heatmap(n: int, pivot: dict[str, Any], translate, folder: Path, scale: tuple[float, float] | None) -> str:
    name = f"heatmap-{n}.svg"
    heatmap_svg(
        pivot["values"],
        pivot["rows"],
        pivot["columns"],
        translate(pivot["row_key"]),
        translate(pivot["column_key"]),
        f"{pivot['label']}\n{translate('Final test accuracy')} (%)",
        folder / name,
        scale,
        [[translate(pivot["marks"].get((r, c), "")) for c in pivot["columns"]] for r in pivot["rows"]],
    )
    return _relative(name)


def _sweep_panels(series: dict[str, Any] | None, colors, translate, folder: Path) -> str | None:
    """Small multiples of a sweep; None when nothing but the seed was swept."""
    if series is None:
        return None
    sweep_panels_svg(series["panels"], colors, translate, folder / "sweep.svg", series["columns"], series["marks"])
    return _relative("sweep.svg")


def _cost_scatter(costs: dict[str, Any] | None, colors, translate, folder: Path) -> str | None:
    """Accuracy against MACs; none for runs archived before costs, or one model (nothing to set it against)."""
    if not costs or len(costs["rows"]) < 2:
        return None
    cost_scatter_svg(costs["rows"], colors, translate, folder / "cost.svg")
    return _relative("cost.svg")


def _gallery(n: int, gallery: dict[str, Any], translate, folder: Path) -> GalleryFiles:
    """One model's contact sheets (PNG) and confusion matrix (SVG)."""
    images = gallery["images"]

    def draw(sheet: Sheet | None, name: str, captioned: bool = True) -> str | None:
        if sheet is None:
            return None
        # an uncaptioned strip is as wide as its images: drawn smaller, it prints at the page sheets' scale
        scale = 3 if captioned else 2
        gallery_png(
            images[sheet.indices], sheet.captions, folder / name, scale=scale, wrong=sheet.wrong, captioned=captioned
        )
        return _relative(name)

    matrix_name = f"confusion-{n}.svg"
    confusion_svg(
        gallery["matrix"],
        gallery["class_names"],
        gallery["trial"].label,
        translate("True label"),
        translate("Predicted label"),
        folder / matrix_name,
    )
    return GalleryFiles(
        correct=draw(gallery["correct_sheet"], f"gallery-{n}-correct.png"),
        confident=draw(gallery["confident_sheet"], f"gallery-{n}-confident.png"),
        wrong=[draw(sheet, f"gallery-{n}-wrong-{page + 1}.png") for page, sheet in enumerate(gallery["wrong_sheets"])],
        confusion=_relative(matrix_name),
        confusion_sheets=[
            # the row's label says "true → predicted" once: the same words under each image would only repeat it
            draw(pair["examples_sheet"], f"confusion-{n}-{k}.png", captioned=False)
            for k, pair in enumerate(gallery["confusions"])
        ],
    )


def _reliability(quality: dict[str, dict[str, Any]], colors, translate, folder: Path) -> str | None:
    """reliability.svg: each model's best trial with confidences (quality.trial_quality's bins); None when no
    model has any (a run archived before confidences were recorded, or every model diverged)."""
    series = {label: q["bins"] for label, q in quality.items() if q["bins"]}
    if not series:
        return None
    reliability_svg(series, colors, translate, folder / "reliability.svg")
    return _relative("reliability.svg")
