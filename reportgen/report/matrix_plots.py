"""Annotated matrix figures: a sweep's heatmap (final test accuracy for each pair of swept settings) and the
confusion matrix, every cell's value written in black or white, whichever reads on the cell's own colour."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.patches import Rectangle

from reportgen.report.figure_style import PALETTE, SMALL_PT, new_figure, styled


def _annotated_grid(
    ax, values, fmt: str, cmap: str, shading=None, scale: tuple[float, float] | None = None, marks=None
):
    """imshow of `shading` (default: the values) with each cell's value written in black or white, whichever
    reads better on that cell's own colour (its luminance), so no number is white on yellow. A cell without a
    value shows its mark, if any ("diverged"), and is blank otherwise (an untried combination)."""
    shading = values if shading is None else shading
    vmin, vmax = scale or (None, None)
    image = ax.imshow(shading, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if math.isnan(value) and marks and marks[i][j]:
                ax.text(j, i, marks[i][j], ha="center", va="center", fontsize=SMALL_PT, color="#b00020")
            if not math.isnan(value):
                red, green, blue, _alpha = image.cmap(image.norm(shading[i][j]))
                luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
                color = "black" if luminance > 0.45 else "white"
                ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=SMALL_PT, color=color)
    return image


def _outline_best(ax, values) -> None:
    """A frame around the highest value (the sweep's best cell)."""
    finite = [(v, i, j) for i, row in enumerate(values) for j, v in enumerate(row) if not math.isnan(v)]
    if finite:
        _value, i, j = max(finite)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=PALETTE[1], linewidth=2.2))


@styled
def _grid_figure(
    values,
    fmt: str,
    cmap: str,
    size: tuple[float, float],
    x_labels: list[str],
    y_labels: list[str],
    x_name: str,
    y_name: str,
    title: str,
    path: Path,
    x_rotation: int = 0,
    margins: dict[str, float] | None = None,
    shading=None,
    scale: tuple[float, float] | None = None,
    colorbar: bool = False,
    marks: list[list[str]] | None = None,
) -> None:
    """An annotated matrix figure (heatmap or confusion matrix), saved as SVG; fixed `margins` skip the
    constrained layout's measuring of every label where the layout is known in advance."""
    fig, ax = new_figure(figsize=size, layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    image = _annotated_grid(ax, values, fmt, cmap, shading, scale, marks)
    if colorbar:
        fig.colorbar(image, ax=ax, shrink=0.85).ax.tick_params(labelsize=SMALL_PT)
        _outline_best(ax, values)
    ax.set_xticks(range(len(x_labels)), x_labels, rotation=x_rotation, ha="right" if x_rotation else "center")
    ax.set_yticks(range(len(y_labels)), y_labels)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title)
    ax.grid(False)
    fig.savefig(path, format="svg")


def heatmap_svg(
    values: list[list[float]],
    rows: list,
    columns: list,
    row_name: str,
    column_name: str,
    title: str,
    path: Path,
    scale: tuple[float, float] | None = None,
    marks: list[list[str]] | None = None,
) -> None:
    """Sweep pivot: final test accuracy (%) for each pair of swept settings, on `scale` (shared by every
    model's heatmap, with its colour bar), the best cell framed; `marks`: a cell's word where it has no value
    ("diverged")."""
    _grid_figure(
        values,
        ".2f",
        "viridis",
        (1.5 + 0.55 * len(columns), 0.9 + 0.3 * len(rows)),  # two fit side by side up to 3 columns
        [str(c) for c in columns],
        [str(r) for r in rows],
        column_name,
        row_name,
        title,
        path,
        scale=scale,
        colorbar=True,
        marks=marks,
    )


def confusion_svg(
    matrix: list[list[int]], classes: list[str], title: str, true_label: str, predicted_label: str, path: Path
) -> None:
    """Counts in each cell, shaded by the share of its true class (row-normalised): a class's mistakes show
    even when the diagonal holds most images, and a rare class weighs as much as a common one."""
    shares = [[count / sum(row) if sum(row) else 0.0 for count in row] for row in matrix]
    # class names of up to ~12 characters fit the fixed margins (Fashion-MNIST's longest: "T-shirt/top")
    _grid_figure(
        matrix,
        "d",
        "Blues",
        (3.0, 2.7),  # ten classes' counts at SMALL_PT in 5.5 mm cells: beside its per-class table, not a half page
        classes,
        classes,
        predicted_label,
        true_label,
        title,
        path,
        x_rotation=45,
        margins={"left": 0.25, "right": 0.98, "bottom": 0.25, "top": 0.93},
        shading=shares,
        scale=(0.0, 1.0),
    )
