"""Line and point figures for the report (matplotlib, SVG): training curves, each model's four panels, a
sweep's small multiples, accuracy against multiply-adds, and the reliability diagram; drawn in the style
figure_style.py sets (a colour and a marker per model; train dashed, test solid)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D

from reportgen.report.figure_style import (
    HALF_IN,
    NEUTRAL,
    PAGE_IN,
    SMALL_PT,
    model_marker,
    new_figure,
    save_svg,
    styled,
)

Translate = Callable[[str], str]


SPLIT_STYLES = (("train", "--"), ("test", "-"))


def _values(epochs: list[dict], key: str, scale: float = 1.0) -> list[float]:
    """One metric per epoch; a missing value (null: the loss of a diverged epoch) leaves a gap."""
    return [float("nan") if e.get(key) is None else scale * e[key] for e in epochs]


@styled
def curves_svg(series: dict[str, list[dict]], metric: str, colors: dict[str, str], _: Translate, path: Path) -> None:
    """One figure, all models on shared axes: train (dashed) and test (solid) per model; half the page wide
    (it prints beside its twin), so the legend sits beneath the axes: one entry per model and one per line
    style, where six entries of "model · split" inside the axes covered the curves."""
    fig, ax = new_figure(figsize=(HALF_IN, 2.7), layout="constrained")
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
    save_svg(fig, path, tooltips)


def _model_key(colors: dict[str, str], label: str, size: float = 3) -> Line2D:
    """A legend entry for one model: its colour and its marker."""
    return Line2D([], [], color=colors[label], marker=model_marker(colors, label), markersize=size, label=label)


def _point_titles(name: str, epochs: list[dict], key: str, metric: str, _: Translate) -> list[str]:
    """Hover text per plotted point: which curve, which epoch, which value."""

    def value(v: float) -> str:
        return f"{100 * v:.2f}%" if metric == "acc" else f"{v:.4f}"

    return [f"{name} · {_('Epoch')} {e['epoch']}: {value(e[key])}" for e in epochs if e.get(key) is not None]


PANELS = (
    ("train_loss", "Train loss"),
    ("test_loss", "Test loss"),
    ("train_acc", "Train accuracy"),
    ("test_acc", "Test accuracy"),
)


@styled
def model_panels_svg(
    epochs: list[dict], label: str, color: str, _: Translate, path: Path, marker: str = "o"
) -> list[str]:
    """The assignment's four plots for one model: train/test loss and train/test accuracy, in the model's
    colour and marker (as it is drawn in every other figure)."""
    # fixed margins: this figure has the same layout for every model, and constrained layout (which
    # measures every label) cost half a second per model
    fig, axes = new_figure(1, 4, figsize=(PAGE_IN, 1.55))
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
    save_svg(fig, path, tooltips)
    return [title for _key, title in PANELS]


@styled
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
    fig, axes = new_figure(
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
    save_svg(fig, path, tooltips)


@styled
def cost_scatter_svg(rows: list[dict], colors: dict[str, str], _: Translate, path: Path) -> None:
    """Final test accuracy against multiply-adds per image: equal parameters can hide very different compute."""
    fig, ax = new_figure(figsize=(4.2, 2.5), layout="constrained")
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
    save_svg(fig, path, tooltips)


@styled
def reliability_svg(series: dict[str, list[dict]], colors: dict[str, str], _: Translate, path: Path) -> None:
    """Reliability diagram: per model (its best trial), the test accuracy of each non-empty confidence bin
    against the bin's mean confidence (quality.reliability_bins), over the diagonal of perfect calibration;
    below it a model is over-confident, above it under-confident. A marker shape per model as well as its
    colour, and the legend beneath the axes, so no line is told apart by colour alone or hidden by a key."""
    fig, ax = new_figure(figsize=(3.2, 3.0), layout="constrained")  # beside the F1 table, within its height
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
    save_svg(fig, path, tooltips)
