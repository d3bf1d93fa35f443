"""Figures for the report: curves (matplotlib, SVG) and image galleries (PIL contact sheets, PNG).

Each model keeps one colour and one marker across every figure, so no figure tells models apart by colour
alone; train is dashed, test solid. The colours are Okabe and Ito's colour-blind-safe palette; matrices are
shaded with sequential maps that read in lightness alone (viridis, Blues).

Figures are drawn at the size the printed report shows them (report.css prints an SVG figure 1:1 and never
wider than the page's 7.2 inches, or half of it beside another), so the font sizes below are sizes on paper:
no text under 6.5 pt. Contact sheets (PNG) are drawn no wider than keeps their captions that size where
they are laid out (`print_width_pt`).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, ImageFont

CJK_FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",)
# Okabe & Ito, "Color Universal Design" (2008): told apart with any of the common colour-vision deficiencies.
# Ordered by contrast on white, so the first models get the strongest lines; yellow (1.1:1) comes last.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")
# A marker per model as well: nine shapes against eight colours, so no two of 72 models share both.
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h", "<")
NEUTRAL = "#656d76"  # keys and references that are no model (the split's line style, the calibration diagonal)
PAGE_IN = 7.2  # A4 less report.css's 13 mm margins: 7.24 in
HALF_IN = 3.5  # one of two figures side by side (.pair, .side-by-side)
PRINT_DPI = 200  # a figure saved as PNG (_save_svg): sharp on paper at the size it is drawn
SMALL_PT = 6.5  # ticks, legends, cell numbers; 6 pt is the least readable on paper
CAPTION_PX = 13  # contact-sheet captions, drawn at SMALL_PT or larger: no more than CAPTION_PX px a SMALL_PT
Translate = Callable[[str], str]
SVG_NS = "http://www.w3.org/2000/svg"


@functools.cache
def _font_family() -> list[str]:
    """Noto Sans CJK for Hangul (with DejaVu as fallback) so Korean labels never turn into boxes."""
    for path in CJK_FONT_FILES:
        if Path(path).exists():
            font_manager.fontManager.addfont(path)
            return [font_manager.FontProperties(fname=path).get_name(), "DejaVu Sans"]
    return ["DejaVu Sans"]


# text.parse_math off: labels and class names are the user's text, never mathtext ("$\\frac{1}$" would
# make every figure, and so the report, fail to render).
# svg.fonttype "none": text stays text (searchable, and the PDF renders in half the time of glyph paths);
# browsers and WeasyPrint draw it with the named font or the system's own Hangul font.
STYLE = {
    "svg.fonttype": "none",
    "font.size": 7,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7,
    "xtick.labelsize": SMALL_PT,
    "ytick.labelsize": SMALL_PT,
    "legend.fontsize": SMALL_PT,
    "figure.titlesize": 7.5,
    "figure.labelsize": 7,
    "lines.linewidth": 1.2,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.5,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,
}


def _figure(*args, **kwargs):
    """A figure and its axes in the report's style, outside pyplot: no global backend or rcParams change,
    so a notebook that imports reportgen keeps its own matplotlib settings. Figures are built and saved
    inside `_styled`, where the style applies."""
    fig = Figure(figsize=kwargs.pop("figsize"), layout=kwargs.pop("layout", None))
    return fig, fig.subplots(*args, **kwargs)


def _styled(draw: Callable) -> Callable:
    """Run a figure function under the report's rcParams (restored afterwards)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE | {"font.family": _font_family()}):
            return draw(*args, **kwargs)

    return wrapper


@_styled
def warm_up() -> None:
    """Draw one styled figure with text into memory and discard it: matplotlib then has its font list
    loaded and the report's fonts looked up, as the first real figure would."""
    fig, ax = _figure(figsize=(2, 1))
    ax.set_title("Loss 손실")
    ax.plot([0, 1], [1, 0], marker="o")
    for fmt in ("svg", "png"):
        fig.savefig(io.BytesIO(), format=fmt)


SPLIT_STYLES = (("train", "--"), ("test", "-"))


def _values(epochs: list[dict], key: str, scale: float = 1.0) -> list[float]:
    """One metric per epoch; a missing value (null: the loss of a diverged epoch) leaves a gap."""
    return [float("nan") if e.get(key) is None else scale * e[key] for e in epochs]


def model_colors(labels: Sequence[str]) -> dict[str, str]:
    """Each model's colour, in the order of `labels` (the run's models): the order its marker follows too."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def model_marker(colors: dict[str, str], label: str) -> str:
    """The marker of `label`'s model: by its place among the run's models (`colors`, from model_colors)."""
    return MARKERS[list(colors).index(label) % len(MARKERS)]


@_styled
def curves_svg(series: dict[str, list[dict]], metric: str, colors: dict[str, str], _: Translate, path: Path) -> None:
    """One figure, all models on shared axes: train (dashed) and test (solid) per model; half the page wide
    (it prints beside its twin), so the legend sits beneath the axes: one entry per model and one per line
    style, where six entries of "model · split" inside the axes covered the curves."""
    fig, ax = _figure(figsize=(HALF_IN, 2.7), layout="constrained")
    scale = 100.0 if metric == "acc" else 1.0
    tooltips: dict[str, list[str]] = {}
    for n, (label, epochs) in enumerate(series.items()):
        for split, style, size in (("train", "--", 2.2), ("test", "-", 3.0)):
            key, gid = f"{split}_{metric}", f"points-{n}-{split}"
            name = f"{label} · {_(split)}"
            ax.plot(
                [e["epoch"] for e in epochs],
                _values(epochs, key, scale),
                style,
                marker=model_marker(colors, label),
                markersize=size,
                color=colors[label],
                alpha=0.8 if split == "train" else 1.0,
                gid=gid,
            )
            tooltips[gid] = _point_titles(name, epochs, key, metric, _)
    ax.set_xlabel(_("Epoch"))
    ax.set_ylabel(_("Accuracy (%)") if metric == "acc" else _("Loss"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    keys = [_model_key(colors, label) for label in series]
    keys += [Line2D([], [], color=NEUTRAL, linestyle=style, label=_(split)) for split, style in SPLIT_STYLES]
    fig.legend(handles=keys, loc="outside lower center", ncol=2, frameon=False, handlelength=2.2)
    _save_svg(fig, path, tooltips)


def _model_key(colors: dict[str, str], label: str, size: float = 3) -> Line2D:
    """A legend entry for one model: its colour and its marker."""
    return Line2D([], [], color=colors[label], marker=model_marker(colors, label), markersize=size, label=label)


def _point_titles(name: str, epochs: list[dict], key: str, metric: str, _: Translate) -> list[str]:
    """Hover text per plotted point: which curve, which epoch, which value."""

    def value(v: float) -> str:
        return f"{100 * v:.2f}%" if metric == "acc" else f"{v:.4f}"

    return [f"{name} · {_('Epoch')} {e['epoch']}: {value(e[key])}" for e in epochs if e.get(key) is not None]


def _save_svg(fig, path: Path, tooltips: dict[str, list[str]]) -> None:
    """Save as SVG with a <title> on every point of the lines named in `tooltips` (by gid): browsers show
    it on hover, with no script, in the report and in the single-file HTML alike. A `.png` path gets a raster
    at print resolution instead, without hover text: a class's grading document prints a hundred of them."""
    if path.suffix == ".png":
        fig.savefig(path, format="png", dpi=PRINT_DPI)
        return
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    ElementTree.register_namespace("", SVG_NS)
    ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ElementTree.fromstring(buffer.getvalue())
    for group in root.iter(f"{{{SVG_NS}}}g"):
        titles = tooltips.get(group.get("id", ""))
        if titles:
            # markers come out as <use> elements in data order; a missing (NaN) value draws none
            # and has no title either
            for point, title in zip(group.iter(f"{{{SVG_NS}}}use"), titles):
                ElementTree.SubElement(point, f"{{{SVG_NS}}}title").text = title
    path.write_bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    for path in CJK_FONT_FILES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


@functools.lru_cache(maxsize=4096)
def _caption(text: str, color: str, size: int = CAPTION_PX) -> Image.Image:
    """A caption drawn once and pasted wherever it recurs: a sheet repeats a few class names hundreds of
    times, and drawing text is most of a sheet's cost."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((-left, -top), text, fill=color, font=font)
    return image


def _caption_lines(text: str, color: str, width: int) -> list[Image.Image]:
    """A caption as one line, or two where it is wider than the image above it ("Ankle boot" over "92.5%"):
    ten images to a row keep their captions at print size only if no caption is much wider than its image."""
    line = _caption(text, color)
    head, _space, tail = text.rpartition(" ")
    if line.width <= width or not head.strip("→ "):
        return [line]
    return [_caption(head, color), _caption(tail, color)]


def gallery_png(
    images: np.ndarray,
    captions: Sequence[tuple[str, str]],
    path: Path,
    columns: int = 10,
    scale: int = 3,
    wrong: bool = False,
    print_width_pt: float = PAGE_IN * 72,
    captioned: bool = True,
) -> None:
    """A contact sheet: each image upscaled, with 'true' and (if wrong) 'predicted' captions beneath; at most
    `columns` across, fewer where the sheet would otherwise be shrunk to fit `print_width_pt` (the width the
    printed report lays it out at) with its captions under SMALL_PT. `captioned=False`: images only, for a strip
    whose every caption would repeat the label beside it."""
    count = len(images)
    tile = images.shape[-1] * scale
    labels = [
        _caption_lines(truth, "#333333" if wrong else "#1a7f37", tile)
        + (_caption_lines(f"→ {predicted}", "#c62828", tile) if wrong else [])
        for truth, predicted in (captions if captioned else [])
    ] or [[] for _image in images]
    widest = max((label.width for lines in labels for label in lines), default=0)
    line_h = CAPTION_PX + 3
    cell_w, cell_h = max(tile, widest) + 8, tile + 6 + line_h * max(len(lines) for lines in labels)
    columns = max(1, min(columns, count, int(print_width_pt * CAPTION_PX / SMALL_PT) // cell_w))
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    # grey (N, 1, H, W) as (N, H, W); colour (N, 3, H, W) as PIL's (N, H, W, 3), shown in colour
    grey = images.shape[1] == 1
    pixels = np.asarray(images)[:, 0] if grey else np.ascontiguousarray(np.asarray(images).transpose(0, 2, 3, 1))
    for i in range(count):
        x0, y0 = (i % columns) * cell_w, (i // columns) * cell_h
        thumb = Image.fromarray(pixels[i], "L" if grey else "RGB").resize((tile, tile), Image.NEAREST)
        sheet.paste(thumb, (x0 + (cell_w - tile) // 2, y0 + 2))
        for n, label in enumerate(labels[i]):
            sheet.paste(label, (x0 + (cell_w - label.width) // 2, y0 + tile + 4 + n * line_h), label)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", compress_level=1)  # higher levels cost seconds for a few % of size
    path.write_bytes(buffer.getvalue())


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


@_styled
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
    fig, ax = _figure(figsize=size, layout=None if margins else "constrained")
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


PANELS = (
    ("train_loss", "Train loss"),
    ("test_loss", "Test loss"),
    ("train_acc", "Train accuracy"),
    ("test_acc", "Test accuracy"),
)


@_styled
def model_panels_svg(
    epochs: list[dict], label: str, color: str, _: Translate, path: Path, marker: str = "o"
) -> list[str]:
    """The assignment's four plots for one model: train/test loss and train/test accuracy, in the model's
    colour and marker (as it is drawn in every other figure)."""
    # fixed margins: this figure has the same layout for every model, and constrained layout (which
    # measures every label) cost half a second per model
    fig, axes = _figure(1, 4, figsize=(PAGE_IN, 1.55))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.24, top=0.78, wspace=0.3)
    x = [e["epoch"] for e in epochs]
    tooltips = {}
    for ax, (key, title) in zip(axes, PANELS):
        scale = 100.0 if key.endswith("acc") else 1.0
        ax.plot(
            x,
            _values(epochs, key, scale),
            "--" if key.startswith("train") else "-",
            marker=marker,
            markersize=2.5,
            color=color,
            gid=f"points-{key}",
        )
        tooltips[f"points-{key}"] = _point_titles(
            f"{label} · {_(title)}", epochs, key, "acc" if key.endswith("acc") else "loss", _
        )
        ax.set_title(_(title))
        ax.set_xlabel(_("Epoch"))
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(label, fontsize=8, fontweight="bold")
    _save_svg(fig, path, tooltips)
    return [title for _key, title in PANELS]


@_styled
def sweep_panels_svg(
    panels: dict[str, dict[str, list[dict]]],
    colors: dict[str, str],
    _: Translate,
    path: Path,
    columns: int = 3,
    marks: dict[str, str] | None = None,
) -> None:
    """Small multiples: one panel per combination of swept settings (its title), test accuracy per epoch of
    every model in it, on a shared y axis so panels compare at a glance; `marks`: a panel's note by its title
    ("diverged: mlp"), written inside it."""
    rows = -(-len(panels) // columns)
    fig, axes = _figure(
        rows,
        columns,
        figsize=(min(PAGE_IN, 1.2 + 2.4 * columns), 0.6 + 1.7 * rows),
        sharex=True,
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    tooltips = {}
    for n, (ax, (title, models)) in enumerate(zip(axes.flat, panels.items())):
        for label, epochs in models.items():
            gid = f"points-{n}-{label}"
            ax.plot(
                [e["epoch"] for e in epochs],
                _values(epochs, "test_acc", 100.0),
                "-",
                marker=model_marker(colors, label),
                markersize=2.5,
                color=colors[label],
                label=label,
                gid=gid,
            )
            tooltips[gid] = _point_titles(f"{label} · {title}", epochs, "test_acc", "acc", _)
        ax.set_title(title)
        if (marks or {}).get(title):
            ax.text(0.5, 0.5, marks[title], transform=ax.transAxes, ha="center", va="center", color="#b00020")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel(_("Epoch"))
    fig.supylabel(_("Test accuracy") + " (%)")
    drawn = [ax for ax in axes.flat if ax.lines] or [axes.flat[0]]  # a panel may be empty: nothing trained there
    handles, labels = drawn[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 4), frameon=False)
    _save_svg(fig, path, tooltips)


@_styled
def cost_scatter_svg(rows: list[dict], colors: dict[str, str], _: Translate, path: Path) -> None:
    """Final test accuracy against multiply-adds per image: equal parameters can hide very different compute."""
    fig, ax = _figure(figsize=(4.2, 2.5), layout="constrained")
    tooltips = {}
    for n, row in enumerate(r for r in rows if r["final_test_acc"] is not None):
        gid = f"points-cost-{n}"
        marker = model_marker(colors, row["model"])
        ax.plot([row["macs"]], [100 * row["final_test_acc"]], marker, markersize=5, color=colors[row["model"]], gid=gid)
        ax.annotate(
            row["model"],
            (row["macs"], 100 * row["final_test_acc"]),
            textcoords="offset points",
            xytext=(5, 3),
            fontsize=SMALL_PT,
        )
        tooltips[gid] = [f"{row['model']}: {row['macs']:,} MACs, {100 * row['final_test_acc']:.2f}%"]
    macs = [r["macs"] for r in rows if r["macs"]]
    if macs and max(macs) > 10 * min(macs):
        ax.set_xscale("log")
        # ticks at 1, 2 and 5 of each decade, labelled below; the log axis's own minor labels are mathtext
        # ("$\\mathdefault{2\\times10^{4}}$"), which text.parse_math off prints as raw source
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    # "400k", not "400,000": full numbers collide on a narrow axis
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(
            lambda x, _pos: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x >= 1e3 else f"{x:g}"
        )
    )
    ax.margins(x=0.3, y=0.15)  # room for the labels beside the outermost points
    ax.set_xlabel(_("Multiply-adds (MACs) per image"))
    ax.set_ylabel(_("Final test accuracy") + " (%)")
    _save_svg(fig, path, tooltips)


@_styled
def reliability_svg(series: dict[str, list[dict]], colors: dict[str, str], _: Translate, path: Path) -> None:
    """Reliability diagram: per model (its best trial), the test accuracy of each non-empty confidence bin
    against the bin's mean confidence (quality.reliability_bins), over the diagonal of perfect calibration;
    below it a model is over-confident, above it under-confident. A marker shape per model as well as its
    colour, and the legend beneath the axes, so no line is told apart by colour alone or hidden by a key."""
    fig, ax = _figure(figsize=(3.2, 3.0), layout="constrained")  # beside the F1 table, within its height
    ax.plot([0, 100], [0, 100], ":", color=NEUTRAL, linewidth=0.9)
    keys, tooltips = [], {}
    for n, (label, bins) in enumerate(series.items()):
        gid, marker = f"points-reliability-{n}", model_marker(colors, label)
        confidence, accuracy = [100 * b["confidence"] for b in bins], [100 * b["accuracy"] for b in bins]
        ax.plot(confidence, accuracy, "-", marker=marker, markersize=3, color=colors[label], gid=gid)
        tooltips[gid] = [
            f"{label} · {100 * b['low']:.1f}–{100 * b['high']:.1f}%: {b['count']:,} · {_('Accuracy')} "
            f"{100 * b['accuracy']:.1f}% · {_('Mean confidence')} {100 * b['confidence']:.1f}%"
            for b in bins
        ]
        keys.append(_model_key(colors, label))
    keys.append(Line2D([], [], color=NEUTRAL, linestyle=":", label=_("Perfect calibration")))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_aspect("equal")
    ax.set_xlabel(_("Mean confidence in the bin (%)"))
    ax.set_ylabel(_("Accuracy in the bin (%)"))
    fig.legend(handles=keys, loc="outside lower center", ncol=2, frameon=False, handlelength=2.2)
    _save_svg(fig, path, tooltips)
