"""Issue 36, item 3: no internal identifier in what a reader sees, in English or Korean — no PyTorch op or API
name, no file name of another document, no option value as the spec spells it, no trial id in a sentence, no
list cut off with "…". Every document of every golden case (tests/test_golden.py's cases, rendered here with
their PDFs) is read as a person reads it: report.html's text, report.md without code, the PDF through
pdftotext, and summary.json's claims.

Left out, by name: code a document shows as it is (<pre>/<code> in HTML, code spans and blocks in Markdown —
the command line and the resolved spec) and the archive's own integrity line ("run state is 'partial' …"),
which quotes the recorded error of an incomplete run."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from test_golden import CASES
from test_korean import visible_html, visible_markdown

pytestmark = pytest.mark.slow

DENIED = {
    "a PyTorch op": re.compile(r"\b(?:aten|prims)\.\w"),
    "a torch API": re.compile(r"\btorch\.\w|FlopCounterMode|inference_mode"),
    "another document's file name": re.compile(r"\b[\w-]+\.html\b"),
    "an option value as the spec spells it": re.compile(
        r"\b(?:bce_with_logits|cross_entropy|adam|adamw|sgd|rmsprop)\b|아담|알엠에스프롭|확률적 경사 하강법"
    ),
    "a trial id": re.compile(r"\b\d{3}-[a-z][\w.-]*"),
    "a list cut off": re.compile("…"),
}
INTEGRITY_LINE = re.compile(r"^\W*(run state is|status\.json says|manifest\.json is missing).*$", re.MULTILINE)


@pytest.fixture(scope="module")
def documents(golden_reports) -> dict[str, Path]:
    """Each golden case rendered with its PDF, from copies of the fixture runs (shared: conftest.GoldenReports)."""
    return {case: golden_reports(runs, lang, incomplete) for case, (runs, lang, incomplete) in CASES.items()}


def _claims(summary: Path) -> str:
    report = json.loads(summary.read_text("utf-8"))["report"]
    claims = [report["settings_claim"]]
    for key in ("conclusion", "findings", "checklist", "next_steps"):
        claims += report.get(key, [])
    return "\n".join(claim["text"] for claim in claims)


def _pdf_text(pdf: Path) -> str:
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def _visible(folder: Path) -> dict[str, str]:
    texts = {
        "report.html": visible_html(folder / "report.html"),
        "report.md": visible_markdown(folder / "report.md"),
        "summary.json": _claims(folder / "summary.json"),
    }
    if (folder / "report.pdf").exists():
        texts["report.pdf"] = _pdf_text(folder / "report.pdf")
    return {name: INTEGRITY_LINE.sub(" ", text) for name, text in texts.items()}


@pytest.mark.parametrize("case", CASES)
def test_no_document_shows_an_internal_identifier(documents, case):
    texts = _visible(documents[case])
    assert "report.pdf" in texts, "the PDF was not made: nothing to read"
    hits = [
        f"{name}: {why}: …{text[max(0, m.start() - 40) : m.end() + 40]}…".replace("\n", " ")
        for name, text in texts.items()
        for why, pattern in DENIED.items()
        for m in pattern.finditer(text)
    ]
    assert hits == [], "\n".join(hits[:20])


def test_a_finding_names_a_trial_by_its_settings(documents):
    """The sweep's diverged trials: by model and learning rate, in every document."""
    for name, text in _visible(documents["sweep"]).items():
        assert "mlp (Learning rate 10.0) diverged" in " ".join(text.split()), name


def test_the_printed_report_sends_readers_to_the_html_for_every_misclassified_image(documents):
    pdf = " ".join(_pdf_text(documents["three"] / "report.pdf").split())
    assert "misclassified test images are on the HTML report's companion page" in pdf
    assert "misclassified.html" not in pdf
