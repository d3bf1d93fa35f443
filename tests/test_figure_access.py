"""Figures people can read (issue #37, item 5): every figure has alt text that says what it shows, in the
report's language, in HTML, Markdown and the tagged PDF; models are told apart by Okabe and Ito's
colour-blind-safe colours and, besides colour, by a marker each."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pdf_objects import alt_texts, is_tagged, pdf_objects

from reportgen.report import figure_style, plots

MODELS = ("LeNet-5", "MLP 784-75-32-10", "LeNet-5 + BN + Dropout")  # the golden run's model labels
OKABE_ITO = {"#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"}
SVG = "{http://www.w3.org/2000/svg}"
HANGUL = re.compile("[가-힣]")


@pytest.fixture(scope="module")
def documents(golden_reports) -> dict[str, Path]:
    """The three-model golden run rendered in English and in Korean (with their PDFs), and what WeasyPrint logged
    as errors while writing the Korean PDF ("pdf_errors"); shared renders (conftest.GoldenReports)."""
    korean = golden_reports(["three"], "ko")
    return {"en": golden_reports(["three"], "en"), "ko": korean, "pdf_errors": golden_reports.pdf_errors[korean]}


def _html_alts(folder: Path) -> dict[str, str]:
    """Figure file → alt text, from every <img> of report.html and misclassified.html and every inline SVG
    (its aria-label; the inline figures are the files loss.svg, acc.svg, curves-N.svg and the like, whose
    names report.html no longer holds, so they are matched by their aria-label to the Markdown's)."""
    alts = {}
    for page in ("report.html", "misclassified.html"):
        text = (folder / page).read_text("utf-8")
        for tag in re.findall(r"<img [^>]*>", text):
            src = re.search(r'src="([^"]*)"', tag).group(1)
            alt = re.search(r'alt="([^"]*)"', tag)
            alts[src] = html_lib.unescape(alt.group(1)) if alt else ""
    return alts


def _svg_labels(folder: Path) -> list[str]:
    text = (folder / "report.html").read_text("utf-8")
    return [html_lib.unescape(label) for label in re.findall(r'<svg role="img" aria-label="([^"]*)"', text)]


def _markdown_alts(folder: Path) -> dict[str, str]:
    """Figure file → alt text of every image of report.md, the Markdown escapes undone."""
    text = (folder / "report.md").read_text("utf-8")
    found = re.findall(r"!\[((?:\\.|[^\]\\])*)\]\(([^)\s]+)\)", text)
    return {src: re.sub(r"\\(.)", r"\1", alt) for alt, src in found}


def _is_descriptive(alt: str, src: str, lang: str) -> bool:
    """Says what the figure shows: several words, naming a model of the run, not the file's name, and in
    the report's language (Hangul in a Korean report)."""
    name = Path(src).name
    words = len(alt.split()) >= 6
    named = any(model in alt for model in MODELS)
    return (
        words and named and name not in alt and alt.strip() != Path(name).stem and (lang == "en" or HANGUL.search(alt))
    )


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_figure_in_html_and_markdown_has_descriptive_alt_text(documents, lang):
    folder = documents[lang]
    drawn = {f"figures/{p.name}" for p in (folder / "figures").iterdir()}
    html_alts, markdown_alts, labels = _html_alts(folder), _markdown_alts(folder), _svg_labels(folder)

    assert drawn <= set(markdown_alts) | set(html_alts)  # misclassified pages: in misclassified.html only
    for src, alt in markdown_alts.items():
        assert _is_descriptive(alt, src, lang), f"report.md: {src}: {alt!r}"
        # the same words in HTML: on its <img>, or as the inline SVG's accessible name
        assert html_alts.get(src) == alt or alt in labels, f"report.html: {src} lacks {alt!r}"
    for src, alt in html_alts.items():
        assert _is_descriptive(alt, src, lang), f"report.html: {src}: {alt!r}"
    assert len(labels) >= 6 and all(_is_descriptive(label, "figure.svg", lang) for label in labels)
    if lang == "ko":  # fully Korean: no English word left but the model names and acronyms (MAC)
        names = re.compile("|".join(re.escape(m) for m in sorted(MODELS, key=len, reverse=True)))
        for alt in [*markdown_alts.values(), *html_alts.values(), *labels]:
            assert not re.findall(r"[A-Za-z]*[a-z]{2,}", names.sub("", alt)), alt


def test_every_alt_text_sentence_has_a_korean_entry():
    """Each sentence figure_alt.py hands the translator (tr("…"), and the CURVES table's) is in ko.json."""
    import ast
    import json

    from reportgen.report import figure_alt

    tree = ast.parse(Path(figure_alt.__file__).read_text("utf-8"))
    called = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "tr"
        and isinstance(node.args[0], ast.Constant)
    }
    tabled = {text for row in figure_alt.CURVES.values() for text in row if isinstance(text, str) and " " in text}
    korean = json.loads((Path(figure_alt.__file__).parents[1] / "templates" / "i18n" / "ko.json").read_text("utf-8"))
    assert len(called) >= 15 and len(tabled) == 6
    assert sorted((called | tabled) - korean.keys()) == []


@pytest.mark.slow
def test_alt_text_states_the_numbers_the_tables_print(documents):
    """acc.svg's alt names the model with the highest final test accuracy and its value as the comparison
    prints it; a confusion matrix's names its most frequent confusion."""
    alts = _markdown_alts(documents["en"])
    comparison = (documents["en"] / "report.md").read_text("utf-8")
    acc = alts["figures/acc.svg"]
    assert acc.startswith("Train (dashed) and test (solid) accuracy per epoch of LeNet-5, MLP 784-75-32-10 and")
    best, value = re.search(r"highest final test accuracy: (.+), (\d+\.\d\d%)\.$", acc).groups()
    assert best == "LeNet-5 + BN + Dropout" and value in comparison
    assert re.search(r"most frequent confusion: \S.* → \S.*, \d+ images\.$", alts["figures/confusion-0.svg"])


def _series(svg: Path) -> dict[str, tuple[str, str, str]]:
    """Each plotted series (a group whose id starts with "points-") → (stroke colour, marker shape as its
    path data, dash pattern)."""
    root = ElementTree.parse(svg).getroot()
    series = {}
    for group in root.iter(f"{SVG}g"):
        if not group.get("id", "").startswith("points-"):
            continue
        paths = list(group.iter(f"{SVG}path"))
        styles = " ".join(p.get("style", "") for p in paths)
        colour = re.search(r"stroke: (#[0-9a-f]{6})", styles).group(1)
        marker = next((p.get("d") for p in paths if p.get("id")), "")  # the marker's <defs> path
        dashes = re.search(r"stroke-dasharray: ([^;]+)", styles)
        series[group.get("id")] = (colour, marker, dashes.group(1) if dashes else "solid")
    return series


def _epochs(n: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 1 / e + n,
            "test_loss": 1 / e + n,
            "train_acc": 0.1 * e,
            "test_acc": 0.1 * e + n / 50,
        }
        for e in (1, 2, 3)
    ]


def test_models_are_told_apart_by_okabe_ito_colours_and_a_marker_each(tmp_path):
    """Nine models: every series is drawn in an Okabe–Ito colour, and no two models share both colour and
    marker, on the curves, the sweep's panels, the cost scatter and the reliability diagram."""
    labels = [f"model {n}" for n in range(9)]
    colors = figure_style.model_colors(labels)
    series = {label: _epochs(n) for n, label in enumerate(labels)}
    plots.curves_svg(series, "acc", colors, str, tmp_path / "acc.svg")
    plots.sweep_panels_svg({"lr 0.1": series, "lr 0.01": series}, colors, str, tmp_path / "sweep.svg")
    rows = [{"model": label, "macs": 1000 * (n + 1), "final_test_acc": 0.5} for n, label in enumerate(labels)]
    plots.cost_scatter_svg(rows, colors, str, tmp_path / "cost.svg")
    bins = [{"low": 0.5, "high": 0.6, "count": 3, "accuracy": 0.5, "confidence": 0.55}]
    plots.reliability_svg(dict.fromkeys(labels, bins), colors, str, tmp_path / "reliability.svg")

    for name, per_model in (
        ("acc.svg", lambda gid: gid.split("-")[1] if gid.endswith("-test") else None),
        ("sweep.svg", lambda gid: gid.split("-", 2)[2] if gid.startswith("points-0-") else None),
        ("cost.svg", lambda gid: gid.rsplit("-", 1)[1]),
        ("reliability.svg", lambda gid: gid.rsplit("-", 1)[1]),
    ):
        drawn = _series(tmp_path / name)
        assert {colour for colour, _marker, _dash in drawn.values()} <= OKABE_ITO, name
        looks = {per_model(gid): (colour, marker) for gid, (colour, marker, _dash) in drawn.items() if per_model(gid)}
        assert len(looks) == 9 and len(set(looks.values())) == 9, f"{name}: two models look alike"
        assert len({marker for _colour, marker in looks.values()}) == 9, f"{name}: a marker shared"


@pytest.mark.slow
def test_the_reports_curves_use_the_palette_and_a_marker_per_model(documents):
    """In the rendered golden report: each of the three models' test curves in acc.svg and loss.svg has its
    own Okabe–Ito colour and its own marker; train and test differ in dash pattern."""
    for name in ("acc.svg", "loss.svg"):
        drawn = _series(documents["en"] / "figures" / name)
        assert {colour for colour, _m, _d in drawn.values()} <= OKABE_ITO
        tests = [drawn[f"points-{n}-test"] for n in range(3)]
        assert len({colour for colour, _m, _d in tests}) == 3 and len({m for _c, m, _d in tests}) == 3
        assert drawn["points-0-train"][2] != drawn["points-0-test"][2] == "solid"


@pytest.mark.slow
def test_the_pdf_is_tagged_and_each_figure_carries_its_alt_text(documents):
    """report.pdf has a structure tree (StructTreeRoot, MarkInfo /Marked true), its figures' /Alt entries are
    the Korean report's alt texts, and WeasyPrint found no image without one (it logs an error for each)."""
    objects = pdf_objects((documents["ko"] / "report.pdf").read_bytes())
    assert is_tagged(objects)
    alts = alt_texts(objects)
    expected = set(_markdown_alts(documents["ko"]).values())
    assert expected <= alts, sorted(expected - alts)[:3]
    assert all(HANGUL.search(alt) for alt in alts)
    assert not [message for message in documents["pdf_errors"] if "alt" in message]
