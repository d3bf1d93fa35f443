"""The printed report as a reader holds it: the PDFs of the golden fixture runs (the three-model default
experiment and the learning-rate sweep, tests/golden/runs) made by the real WeasyPrint and read back with
poppler. Korean is set by word: no line of the PDF ends inside a Hangul word. Every text of every figure is at
least 6 pt on paper: the SVG figures' text as the PDF draws it (its size after the layout's scaling), the
captions of the PNG contact sheets from their pixel size and the resolution the PDF prints them at."""

from __future__ import annotations

import itertools
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from reportgen.report.figure_style import CAPTION_PX
from reportgen.report.typeset import keep_words_whole

CASES = {"three-ko": ("three", "ko"), "sweep-ko": ("sweep", "ko"), "three-en": ("three", "en")}
HANGUL = re.compile(r"[\uac00-\ud7a3]")
XHTML = "{http://www.w3.org/1999/xhtml}"
MIN_PT = 6.0
ZOOM = 3  # pdftohtml's largest: font sizes come back as whole numbers of 1/3 pt
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def printed(golden_reports) -> dict[str, Path]:
    """Each case's report folder, with its PDF, rendered from copies of the fixture runs (conftest.GoldenReports)."""
    return {case: golden_reports([run], lang) for case, (run, lang) in CASES.items()}


class _VisibleText(HTMLParser):
    """The text a reader sees in report.html (figures' inline SVG, scripts and styles left out)."""

    HIDDEN = frozenset({"script", "style", "svg", "title"})
    BLOCKS = frozenset({"br", "td", "th", "p", "li", "div", "h1", "h2", "h3", "h4", "figcaption", "tr"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in self.HIDDEN
        self.parts.append(" " if tag in self.BLOCKS else "")

    def handle_endtag(self, tag):
        self.hidden -= tag in self.HIDDEN
        self.parts.append(" " if tag in self.BLOCKS else "")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def _source_words(html: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The whitespace-separated words of the document's visible text, and each pair of neighbours."""
    parser = _VisibleText()
    parser.feed(html)
    words = "".join(parser.parts).split()
    return set(words), set(itertools.pairwise(words))


def _pdf_lines(pdf: Path) -> list[list[tuple[tuple[float, float, float, float], list[str]]]]:
    """Per page, every text line poppler finds: its box (x0, y0, x1, y1) and words."""
    xml = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    pages = []
    for page in ElementTree.fromstring(xml.stdout).iter(f"{XHTML}page"):
        lines = []
        for line in page.iter(f"{XHTML}line"):
            box = tuple(float(line.get(k)) for k in ("xMin", "yMin", "xMax", "yMax"))
            lines.append((box, [word.text or "" for word in line.iter(f"{XHTML}word")]))
        pages.append(lines)
    return pages


def _wrapped_pairs(pdf: Path):
    """(line, the line it wraps onto): the nearest line directly beneath, touching it (a paragraph's or a
    table cell's next line; the next table row or paragraph sits further down, past padding or a margin) and
    overlapping it across. Geometry rather than reading order: poppler reads a table row by row, so a cell's
    second line comes after the row's other cells; rotated figure labels never sit directly beneath."""
    for lines in _pdf_lines(pdf):
        for box, words in lines:
            height = box[3] - box[1]
            beneath = [
                (other, next_words)
                for other, next_words in lines
                if box[3] - 0.3 * height <= other[1] <= box[3] + 0.25 * height
                and other[0] < box[2]
                and other[2] > box[0]
            ]
            if words and beneath:
                yield words, min(beneath, key=lambda line: line[0][1])[1]


def split_words(folder: Path) -> list[str]:
    """Hangul words the PDF breaks across two lines, as "head|tail": a line ends in Hangul, the next line
    begins with Hangul, the two joined are a word of report.html's visible text, and that text never has
    the two as neighbouring words (where it does, the break is between words, e.g. "테스트 | 정확도")."""
    words, neighbours = _source_words((folder / "report.html").read_text("utf-8"))
    splits = []
    for line, next_line in _wrapped_pairs(folder / "report.pdf"):
        head, tail = line[-1], next_line[0]
        if HANGUL.match(head[-1]) and HANGUL.match(tail[0]) and head + tail in words and (head, tail) not in neighbours:
            splits.append(f"{head}|{tail}")
    return splits


@pytest.mark.slow
@pytest.mark.parametrize("case", ["three-ko", "sweep-ko"])
def test_no_korean_word_is_split_across_lines_of_the_pdf(printed, case):
    """Before the printed HTML had word joiners inside Hangul words: 16 splits in three-ko ("정|확도", "학|습
    시|간", "(사분|위") and 7 in sweep-ko."""
    folder = printed[case]
    assert HANGUL.search((folder / "report.html").read_text("utf-8"))
    assert split_words(folder) == []


def test_the_split_detector_finds_a_split_word(tmp_path):
    """The check above can fail: a Korean paragraph in a narrow column, set without the word joiners, has
    words broken inside, and with them none."""
    import weasyprint

    text = "정확도 손실 데이터 증강 파라미터 사분위 범위 확인하지 않았습니다 " * 12
    style = "<style>body { width: 7em; font-family: 'Noto Sans CJK KR' }</style>"
    html = f'<html lang="ko"><head>{style}</head><body><p>{text}</p></body></html>'
    (tmp_path / "report.html").write_text(html, "utf-8")
    weasyprint.HTML(string=html).write_pdf(tmp_path / "report.pdf")
    assert split_words(tmp_path)
    weasyprint.HTML(string=keep_words_whole(html)).write_pdf(tmp_path / "report.pdf")
    assert split_words(tmp_path) == []


def test_word_joiners_leave_markup_attributes_and_escaping_alone():
    html = (
        '<title>정확도</title><p title="정확도 비교">LeNet-5는 &lt;b&gt; 3개 &amp; 손실(훈련)</p>'
        "<style>p::after { content: '정확도' }</style><code>a_b/c.py에서</code>"
    )
    j = "\u2060"  # WORD JOINER
    assert keep_words_whole(html) == (
        f'<title>정확도</title><p title="정확도 비교">LeNet-5{j}는 &lt;b&gt; 3{j}개 &amp; 손{j}실(훈{j}련{j})</p>'
        f"<style>p::after {{ content: '정확도' }}</style><code>a_b/{j.join('c.py에서')}</code>"
    )


def _pdf_texts(pdf: Path) -> list[tuple[int, float, str]]:
    """Every text of the PDF as (page, the least size it can have in pt, text): the size the page shows it
    at, after the layout scaled the figure that holds it, which pdftohtml reports rounded to 1/ZOOM pt."""
    xml = subprocess.run(
        ["pdftohtml", "-xml", "-i", "-stdout", "-q", "-zoom", str(ZOOM), str(pdf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = ElementTree.fromstring(xml)
    sizes = {spec.get("id"): int(spec.get("size")) / ZOOM - 0.5 / ZOOM for spec in root.iter("fontspec")}
    return [
        (int(page.get("number")), sizes[text.get("font")], "".join(text.itertext()))
        for page in root.iter("page")
        for text in page.iter("text")
    ]


def _svg_words(svg: Path) -> set[str]:
    """The words a figure draws (titles, axis labels, legend entries; not bare numbers), spaces left out."""
    texts = {"".join(t.itertext()).replace(" ", "") for t in ElementTree.parse(svg).getroot().iter(f"{SVG}text")}
    return {t for t in texts if len(t) >= 2 and not re.fullmatch(r"[\d.,%k-]+", t)}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_figure_text_prints_at_6pt_or_more(printed, case):
    """The PDF draws the SVG figures' text as text: every text on every page, figures' ticks, legends,
    titles and heatmap or confusion numbers included, is at least 6 pt as printed. (Before figures were
    drawn at their printed size: the loss overlay's legend 3.7 pt, the per-model panels' ticks 3.7 pt.)"""
    folder = printed[case]
    texts = _pdf_texts(folder / "report.pdf")
    small = sorted({(round(size, 2), page, text) for page, size, text in texts if size < MIN_PT})
    assert not small, f"{case}: text under {MIN_PT} pt (size, page, text): {small[:12]}"
    # the check covers the figures: each one's words are text of the PDF (not paths, not left out)
    shown = "".join(text for _page, _size, text in texts).replace(" ", "")
    for svg in sorted((folder / "figures").glob("*.svg")):
        words = _svg_words(svg)
        assert words and any(word in shown for word in words), f"{svg.name}: none of {sorted(words)[:5]} in the PDF"


def _printed_images(pdf: Path) -> dict[tuple[int, int], float]:
    """Each raster image of the PDF by its pixel size: the resolution (ppi) it prints at."""
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    images: dict[tuple[int, int], float] = {}
    for row in listing.splitlines()[2:]:
        cells = row.split()
        if cells[2] == "image":
            size = (int(cells[3]), int(cells[4]))
            images[size] = max(images.get(size, 0.0), float(cells[12]))
    return images


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_contact_sheet_captions_print_at_6pt_or_more(printed, case):
    """The captions of the PNG contact sheets (galleries, disagreements) are pixels: CAPTION_PX px printed at
    the PDF's resolution for that image. (Before: 12 px at 230 ppi, 3.8 pt, in the confusions' strips.)"""
    folder = printed[case]
    images = _printed_images(folder / "report.pdf")
    sheets = sorted([*(folder / "figures").glob("gallery-*.png"), *(folder / "figures").glob("disagree-*.png")])
    printed_sheets = [sheet for sheet in sheets if Image.open(sheet).size in images]
    assert printed_sheets, f"{case}: no contact sheet found in the PDF"
    for sheet in printed_sheets:
        caption_pt = CAPTION_PX * 72 / images[Image.open(sheet).size]
        assert caption_pt >= MIN_PT, f"{sheet.name}: captions print at {caption_pt:.1f} pt"
