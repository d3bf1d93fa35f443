"""How every figure of the report looks: each model's colour and marker, the print sizes, matplotlib's style
for the report (outside pyplot), and SVG saved with hover text.

Each model keeps one colour and one marker across every figure, so no figure tells models apart by colour
alone; train is dashed, test solid. The colours are Okabe and Ito's colour-blind-safe palette; matrices are
shaded with sequential maps that read in lightness alone (viridis, Blues).

Figures are drawn at the size the printed report shows them (report.css prints an SVG figure 1:1 and never
wider than the page's 7.2 inches, or half of it beside another), so the font sizes below are sizes on paper:
no text under 6.5 pt. Contact sheets (PNG, contact_sheets.py) are drawn no wider than keeps their captions
that size where they are laid out (`print_width_pt`).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure

CJK_FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",)
# Okabe & Ito, "Color Universal Design" (2008): told apart with any of the common colour-vision deficiencies.
# Ordered by contrast on white, so the first models get the strongest lines; yellow (1.1:1) comes last.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")
# A marker per model as well: nine shapes against eight colours, so no two of 72 models share both.
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h", "<")
NEUTRAL = "#656d76"  # keys and references that are no model (the split's line style, the calibration diagonal)
PAGE_IN = 7.2  # A4 less report.css's 13 mm margins: 7.24 in
HALF_IN = 3.5  # one of two figures side by side (.pair, .side-by-side)
PRINT_DPI = 200  # a figure saved as PNG (save_svg): sharp on paper at the size it is drawn
SMALL_PT = 6.5  # ticks, legends, cell numbers; 6 pt is the least readable on paper
CAPTION_PX = 13  # contact-sheet captions, drawn at SMALL_PT or larger: no more than CAPTION_PX px a SMALL_PT
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


def new_figure(*args, **kwargs):
    """A figure and its axes in the report's style, outside pyplot: no global backend or rcParams change,
    so a notebook that imports reportgen keeps its own matplotlib settings. Figures are built and saved
    inside `styled`, where the style applies."""
    fig = Figure(figsize=kwargs.pop("figsize"), layout=kwargs.pop("layout", None))
    return fig, fig.subplots(*args, **kwargs)


def styled(draw: Callable) -> Callable:
    """Run a figure function under the report's rcParams (restored afterwards)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE | {"font.family": _font_family()}):
            return draw(*args, **kwargs)

    return wrapper


@styled
def warm_up() -> None:
    """Draw one styled figure with text into memory and discard it: matplotlib then has its font list
    loaded and the report's fonts looked up, as the first real figure would."""
    fig, ax = new_figure(figsize=(2, 1))
    ax.set_title("Loss 손실")
    ax.plot([0, 1], [1, 0], marker="o")
    for fmt in ("svg", "png"):
        fig.savefig(io.BytesIO(), format=fmt)


def model_colors(labels: Sequence[str]) -> dict[str, str]:
    """Each model's colour, in the order of `labels` (the run's models): the order its marker follows too."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def model_marker(colors: dict[str, str], label: str) -> str:
    """The marker of `label`'s model: by its place among the run's models (`colors`, from model_colors)."""
    return MARKERS[list(colors).index(label) % len(MARKERS)]


def save_svg(fig, path: Path, tooltips: dict[str, list[str]]) -> None:
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
