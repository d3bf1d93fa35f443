"""The printed default experiment as a grader holds it: the golden three-model run (tests/golden/runs/three) in
English and Korean fits ten A4 pages, no page before the last is left half empty, and a number in a table is
never broken across lines. Read from the PDFs WeasyPrint makes, with poppler, never from the stylesheet."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
import weasyprint

TEMPLATES = Path(__file__).resolve().parent.parent / "reportgen" / "templates"
XHTML = "{http://www.w3.org/1999/xhtml}"
MAX_PAGES = 10


@pytest.fixture(scope="module")
def printed(golden_reports) -> dict[str, Path]:
    """The default experiment's PDF in each language, from a copy of the fixture run (conftest.GoldenReports)."""
    return {lang: golden_reports(["three"], lang) / "report.pdf" for lang in ("en", "ko")}


def _pages(pdf: Path) -> list[tuple[float, list[str]]]:
    """Per page: its height and the text of each line poppler finds, with the line's lowest point."""
    xml = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    pages = []
    for page in ElementTree.fromstring(xml.stdout).iter(f"{XHTML}page"):
        lines = [
            (float(line.get("yMax")), " ".join(word.text or "" for word in line.iter(f"{XHTML}word")))
            for line in page.iter(f"{XHTML}line")
        ]
        pages.append((float(page.get("height")), lines))
    return pages


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_default_experiment_prints_on_ten_pages_or_fewer(printed, lang):
    """(Before: 14 pages in both languages, with a 15-row published-results table, a cost table repeating
    the comparison's columns and a third of page 3 empty.)"""
    info = subprocess.run(["pdfinfo", str(printed[lang])], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages <= MAX_PAGES, f"{lang}: {pages} pages"


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_no_page_but_the_last_is_left_half_empty(printed, lang):
    """Every page before the last runs on past its middle: its lowest line of text (the page number in the
    footer left out) is in the lower half. A figure ends in its caption, so the caption stands for it."""
    pages = _pages(printed[lang])
    for number, (height, lines) in enumerate(pages[:-1], 1):
        body = [bottom for bottom, text in lines if not re.fullmatch(r"\d+ / \d+", text)]
        assert max(body) > height / 2, f"{lang}: page {number} ends at {max(body) / height:.0%} of its height"


def test_a_number_in_a_narrow_column_is_never_split(tmp_path):
    """The report's stylesheet as printed: a p-value and a throughput in columns too narrow for them stay on
    one line each ("6.88e-12", not "6.88e-" over "12"); a long note under a number may still wrap."""
    css = (TEMPLATES / "report.css").read_text("utf-8")
    cells = "".join(
        f"<td>{value}</td>" for value in ("6.88e-12", "1,305,070 /s", "0.203 ms<br><small>IQR 0.009</small>")
    )
    prose = "not counted: " + "aten.op " * 12
    html = (
        f"<html><head><style>{css}</style></head><body><table class='numbers' style='width: 40mm'>"
        f"<thead><tr><th>p</th><th>Throughput</th><th>Latency</th><th>MACs</th></tr></thead><tbody><tr>{cells}"
        f"<td>12,544<br><small class='prose'>{prose}</small></td></tr></tbody></table></body></html>"
    )
    pdf = tmp_path / "narrow.pdf"
    weasyprint.HTML(string=html).write_pdf(pdf)
    lines = [text for _height, page in _pages(pdf) for _bottom, text in page]
    for number in ("6.88e-12", "1,305,070 /s", "0.203 ms", "IQR 0.009"):
        assert any(number in line for line in lines), f"{number!r} split across lines: {lines}"
    assert sum("aten.op" in line for line in lines) > 1, "the long note should wrap onto several lines"
