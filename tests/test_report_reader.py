"""The report as a reader sees it: Korean and English PDFs read back with poppler, the HTML loaded in
headless Chromium (no console errors, no network), a self-contained single file."""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import requires_fashion

from reportgen.report.documents import RenderOptions
from reportgen.report.render import render_report

pytestmark = [requires_fashion, pytest.mark.slow]
CHROMIUM = shutil.which("chromium")
KOREAN_HEADINGS = (
    "개요 및 실험 설정",
    "모델 구조 및 파라미터 수",
    "훈련 과정 모니터링",
    "손실 및 정확도 곡선",
    "모델 비교",
    "예측 샘플",
    "재현성 정보",
    "과제 체크리스트",
)


@pytest.fixture(scope="module")
def korean(finished) -> Path:
    return render_report(finished / "runs" / "e2e", RenderOptions(finished / "ko", lang="ko"))


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_korean_pdf_has_korean_headings_and_the_csv_numbers(korean):
    text = pdf_text(korean / "report.pdf")
    for heading in KOREAN_HEADINGS:
        assert heading in text, heading
    with open(korean / "metrics.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            assert f"{100 * float(row['test_acc']):.2f}%" in text
            assert f"{float(row['test_loss']):.4f}" in text
    assert "평균" in text and "티셔츠/탑" in text  # average row; class names translated


def test_pdf_embeds_the_cjk_font(korean):
    fonts = subprocess.run(["pdffonts", str(korean / "report.pdf")], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if "CJK" in line]
    assert cjk and all(line.split()[-5] == "yes" for line in cjk)  # the 'emb' column


def test_pdf_is_a4_with_page_numbers(finished):
    pdf = finished / "output" / "e2e" / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "595.276 x 841.89 pts (A4)" in info
    pages = int(next(l for l in info.splitlines() if l.startswith("Pages:")).split()[1])
    assert f"1 / {pages}" in pdf_text(pdf)


def load_in_chromium(html: Path, screenshot: Path, width: int = 390) -> tuple[list[str], list[str]]:
    """Console errors and every requested URL while headless Chromium loads the page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": width, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        page.goto(html.as_uri())
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return errors, requests


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test`")
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_html_loads_offline_without_errors(finished, korean, tmp_path, lang):
    folder = finished / "output" / "e2e" if lang == "en" else korean
    shot = tmp_path / f"{lang}.png"
    errors, requests = load_in_chromium(folder / "report.html", shot)
    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests)
    assert any(url.endswith(".svg") for url in requests) and any(url.endswith(".png") for url in requests)
    assert shot.stat().st_size > 50_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test`")
def test_single_file_report_needs_nothing_beside_it(finished, tmp_path):
    out = render_report(finished / "runs" / "e2e", RenderOptions(tmp_path / "single", pdf=False, single_file=True))
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")
    errors, requests = load_in_chromium(alone / "report.html", tmp_path / "single.png", width=1280)
    assert errors == [] and requests == [(alone / "report.html").as_uri()]
    assert 'src="figures/' not in (alone / "report.html").read_text("utf-8")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test`")
def test_comparison_table_sorts_by_a_clicked_column(finished):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto((finished / "output" / "e2e" / "report.html").as_uri())
        header = page.locator("table.sortable thead th", has_text="Parameters")
        column = header.evaluate("th => th.cellIndex") + 1
        cells = lambda: page.locator(f"table.sortable tbody td:nth-child({column})").all_text_contents()
        header.click()
        assert cells() == ["62,158", "61,706", "61,637"]
        header.click()
        assert cells() == ["61,637", "61,706", "62,158"]
        browser.close()
