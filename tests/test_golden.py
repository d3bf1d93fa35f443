"""Golden documents: archived fixture runs (tests/golden/runs, made by tests/golden/make_runs.py) rendered and
compared with committed files, the way torchinfo compares summaries with expected output. After a deliberate
change: `.venv/bin/pytest tests/test_golden.py --update-golden`, which prints the diff, then review
`git diff tests/golden/expected`.

Also: every number of the Markdown comparison equals the HTML one, and the LaTeX tables hold the same cells."""

from __future__ import annotations

import difflib
import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from format_parsers import HtmlReport, latex_tables, markdown_headings, markdown_parts, markdown_tables, norm

from reportgen.report.documents import RenderOptions
from reportgen.report.render import render_report

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNS = GOLDEN / "runs"
EXPECTED = GOLDEN / "expected"
FILES = ("report.md", "summary.json", "comparison.csv", "tables.tex", "report.html")
CASES = {  # case → (runs rendered together, language, allow an incomplete run)
    "three": (["three"], "en", False),
    "three-ko": (["three"], "ko", False),
    "sweep": (["sweep"], "en", False),
    "failed": (["failed"], "en", True),
    "pair": (["pair-a", "pair-b"], "en", False),
    "grading": (["grade-a", "grade-b"], "ko", False),
    "class-ko": (["grade-a", "grade-b", "grade-c"], "ko", False),  # three students, grade-c a copy of grade-a
}


def normalised(name: str, text: str) -> str:
    """What may change between two renders of one archive: the time of rendering, and matplotlib's random
    ids inside inline SVG figures (the figures themselves are checked elsewhere)."""
    text = re.sub(r"(Generated|생성) \d{4}-\d\d-\d\d \d\d:\d\d", r"\1 <time>", text)
    if name == "report.html":
        text = re.sub(r"<svg .*?</svg>", "<svg/>", text, flags=re.DOTALL)
    return text


@pytest.fixture(scope="module")
def rendered(golden_reports) -> dict[str, Path]:
    """Each case rendered once, from copies of the runs (conftest.GoldenReports: shared with the PDF's tests)."""
    return {case: golden_reports(runs, lang, incomplete) for case, (runs, lang, incomplete) in CASES.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_documents_match_the_golden_files(rendered, case, request):
    update = request.config.getoption("--update-golden")
    changed = []
    for name in FILES:
        actual = normalised(name, (rendered[case] / name).read_text("utf-8"))
        golden = EXPECTED / case / name
        expected = golden.read_text("utf-8") if golden.exists() else ""
        if actual == expected:
            continue
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), f"golden/{name}", name, n=1)
        )
        changed.append(diff[:4000])
        if update:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(actual, "utf-8")
    if update and changed:
        print(f"\n{case}: updated\n" + "\n".join(changed))
    assert update or not changed, f"{case}: documents differ from tests/golden/expected/{case}:\n" + "\n".join(changed)


def _markdown_table(markdown: str, heading: str) -> list[list[str]]:
    block = markdown.split(f"## {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split(" | ") for line in block.splitlines()[2:]]
    return [[cell.strip().replace("\\", "") for cell in row] for row in rows]


def _html_table(html: str, key: str) -> list[list[str]]:
    table = html.split(f'data-table="{key}"', 1)[1].split("</tbody>", 1)[0]
    table = re.sub(r"<br><small[^>]*>(.*?)</small>", r" (\1)", table)  # a cell's note, as Markdown writes it
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.DOTALL)[1:]  # [0]: the header
    return [
        [html_lib.unescape(re.sub(r"<[^>]+>", " ", cell)).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in rows
    ]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["three", "sweep", "failed", "pair"])
def test_markdown_and_html_comparisons_show_the_same_cells(rendered, case):
    markdown = (rendered[case] / "report.md").read_text("utf-8")
    html = (rendered[case] / "report.html").read_text("utf-8")
    md_rows = _markdown_table(markdown, "Comparison")
    html_rows = _html_table(html, "comparison")
    assert len(md_rows) == len(html_rows) > 0
    for md_row, html_row in zip(md_rows, html_rows):
        assert [" ".join(cell.split()) for cell in md_row[1:]] == [" ".join(cell) for cell in html_row[1:]]
    numbers = re.findall(r"\d[\d,.]*%?", " ".join(" ".join(r) for r in md_rows))
    assert numbers and all(n in html for n in numbers)


def _cells(name: str, text: str) -> list[str]:
    if name == "report.md":
        return [line for line in text.splitlines() if line.startswith("|")]
    if name == "tables.tex":
        return [line for line in text.splitlines() if " & " in line]
    return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", text, re.DOTALL)


@pytest.mark.slow
def test_no_document_holds_an_absolute_path_or_a_bare_nan(rendered):
    """Table cells never show nan, NaN, None or inf (a diverged or failed trial's values are "–"), and no
    document names a folder of the machine it was made on."""
    for case, folder in rendered.items():
        for name in ("report.md", "report.html", "tables.tex"):
            text = (folder / name).read_text("utf-8")
            assert "/tmp/" not in text and "/work/" not in text and "/home/" not in text, (case, name)
            bare = [c for c in _cells(name, text) if re.search(r"\b(nan|NaN|None|inf)\b", c)]
            assert bare == [], (case, name, bare[:3])
        json.loads((folder / "summary.json").read_text("utf-8"), parse_constant=pytest.fail)  # no NaN/Infinity


@pytest.mark.slow
def test_a_diverged_trial_reads_diverged_at_its_epoch_and_wins_nothing(rendered):
    summary = json.loads((rendered["sweep"] / "summary.json").read_text("utf-8"))
    comparison = summary["report"]["tables"]["comparison"]
    notes = [row["cells"][0].get("note", "") for row in comparison["rows"]]
    assert notes == ["", "", "diverged at epoch 1", "diverged at epoch 1"]  # ranked last, whatever their accuracy
    assert [row.get("style") for row in comparison["rows"]] == [None, None, "flagged", "flagged"]
    assert summary["report"]["settings_claim"]["holds"] is True
    assert "swept combination of Learning rate" in summary["report"]["settings_claim"]["text"]


def test_combining_a_run_with_a_copy_of_itself_counts_each_training_once(tmp_path):
    shutil.copytree(RUNS / "pair-a", tmp_path / "pair-a")
    shutil.copytree(RUNS / "pair-a", tmp_path / "pair-a-copy")
    out = render_report([tmp_path / "pair-a", tmp_path / "pair-a-copy"], RenderOptions(tmp_path / "out", pdf=False))
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["seed_aggregates"] == []  # one training each, not "2 seeds ± 0.00%"
    findings = [claim["text"] for claim in summary["report"]["findings"]]
    assert any(text.startswith("Trials 000-pair-a-mlp, 001-pair-a-copy-mlp are one training") for text in findings)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("pdflatex") is None, reason="no TeX installed (apt-get install texlive-latex-recommended)"
)
@pytest.mark.parametrize("case", ["three", "sweep", "failed", "pair"])
def test_latex_tables_compile(rendered, case, tmp_path):
    document = tmp_path / "tables-doc.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs,amssymb}\n"
        "\\begin{document}\n\\input{" + str(rendered[case] / "tables.tex") + "}\n\\end{document}\n",
        "utf-8",
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.slow
def test_every_claim_holds_alike_in_english_and_korean(rendered):
    """A ✓ may not depend on the language: the checklist, the settings claim and the MAC checks of the Korean
    report are those of the English one (the known-accuracy item once matched published rows by their
    translated names, ✓ in English and ✗ in Korean)."""
    english, korean = (
        json.loads((rendered[case] / "summary.json").read_text("utf-8"))["report"] for case in ("three", "three-ko")
    )
    assert [c["holds"] for c in english["checklist"]] == [c["holds"] for c in korean["checklist"]]
    assert english["settings_claim"]["holds"] == korean["settings_claim"]["holds"]
    verdicts = [
        [cell.get("verdict") for t in report["tables"].values() for row in t["rows"] + t.get("footer", [])
         for cell in row["cells"]]
        for report in (english, korean)
    ]  # fmt: skip
    assert verdicts[0] == verdicts[1] and True in verdicts[0]


@pytest.mark.slow
def test_submissions_open_with_the_class_and_a_checklist_per_student(rendered):
    """Two students' runs: one row per run (authors from each run's archived cover, its models, its best accuracy,
    its checklist score), each student's checklist judged on their run alone, with its reasons."""
    report = json.loads((rendered["grading"] / "summary.json").read_text("utf-8"))["report"]
    grading = report["tables"]["grading"]
    assert [row["cells"][0]["text"] for row in grading["rows"]] == ["20241234", "20245678"]
    assert [row["cells"][1]["text"] for row in grading["rows"]] == ["김민지", "Lee Jun"]
    assert [row["cells"][3]["text"] for row in grading["rows"]] == ["lenet5, mlp", "mlp"]
    for row, section in zip(grading["rows"], report["sections"]):
        items = report["tables"][section["tables"][0]]["rows"]
        marks = [item["cells"][0]["text"] for item in items]
        assert row["cells"][5]["text"] == f"{marks.count('✓')} / {len(marks)}"
    assert report.get("checklist", []) == []  # not judged over the pool of both runs
    grade_b = report["tables"][report["sections"][1]["tables"][0]]["rows"][0]["cells"]
    assert grade_b[0]["text"] == "✗" and "LeNet-5가 없습니다" in grade_b[2]["text"]  # its own ✗, with the reason


@pytest.mark.slow
def test_a_class_of_three_names_the_copy_on_both_rows_and_compares_no_two_students(rendered):
    summary = json.loads((rendered["class-ko"] / "summary.json").read_text("utf-8"))
    assert summary["title"] == "과제 채점: 3명 제출" and summary["conclusion"] == []
    rows = summary["report"]["tables"]["grading"]["rows"]
    flags = {row["cells"][2]["text"]: row["cells"][6]["text"] for row in rows}
    assert flags["grade-a"].startswith("박서준 (20243456)의 사본: ")
    assert flags["grade-c"].startswith("김민지 (20241234)의 사본: ")
    assert flags["grade-b"] == "–"
    grades = (rendered["class-ko"] / "grades.csv").read_text("utf-8")
    assert grades.startswith("\ufeff이름,학번,실행,") and "박서준 (20243456)의 사본" in grades


@pytest.mark.slow
def test_the_notebook_view_lays_out_the_report_model_in_the_reports_language(rendered):
    """Report._repr_html_ (what a Jupyter cell shows) reads summary.json's report model: the Korean report's
    headings and comparison table are Korean, and its cells are the HTML report's."""
    from reportgen.api import Report

    folder = rendered["three-ko"]
    inline = Report(folder, RUNS / "three")._repr_html_()
    assert "결론" in inline and "모델 비교" in inline and "Conclusion" not in inline and "Comparison" not in inline
    table = json.loads((folder / "summary.json").read_text("utf-8"))["report"]["tables"]["comparison"]
    assert all(cell["text"] in inline for row in table["rows"] for cell in row["cells"] if cell["text"])


# the parts the notebook view shows: a course report's first screen, a class's page 1
NOTEBOOK_PARTS = ("warnings", "checklist", "comparison", "conclusion", "next-steps")
NOTEBOOK_PARTS += ("not-graded", "grading", "distribution")


def _shown(table: dict, notes: bool = False, spans: bool = False) -> list[list[str]]:
    """A summary.json table's heading row and cells as a format shows them: Markdown writes a cell's note in
    brackets after it and a cell over several columns as that many cells; HTML writes the note on a line of its
    own (left out here) and one cell over the columns."""

    def cells(cell: dict) -> list[str]:
        text = cell.get("text", "") + (f" ({cell['note']})" if notes and cell.get("note") else "")
        return [norm(text)] + [""] * ((cell.get("span", 1) - 1) if spans else 0)

    header = [[norm(c) for c in table["columns"]]] if table.get("columns") else []
    return header + [
        [t for c in row["cells"] for t in cells(c)] for row in table.get("rows", []) + table.get("footer", [])
    ]


def _in_order(expected: list, found: list, what: str) -> None:
    """Every expected item among `found`, in the same order (other items may stand between them)."""
    rest = iter(found)
    for item in expected:
        assert any(item == candidate for candidate in rest), f"{what}: {item!r} missing or out of order"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_format_shows_the_same_parts_in_the_same_order_with_the_same_cells(rendered, case):
    """summary.json's report model against the documents as read back: report.html's sections (id and heading)
    are the model's parts, in its order; report.md's headings hold them in the same order; every table of the
    model is in the HTML with the same cells, and in Markdown in the HTML's order; a grading document's warnings
    and each student's flags, findings and curves are the same in both; tables.tex holds the same cells; the
    notebook view shows its parts in the same order, with the same comparison or class table."""
    from reportgen.api import Report
    from reportgen.report import grading
    from reportgen.report.markdown import LATEX_TABLES, escape_latex

    folder = rendered[case]
    report = json.loads((folder / "summary.json").read_text("utf-8"))["report"]
    tables, parts = report["tables"], [[p["key"], p["title"]] for p in report["parts"]]
    html = HtmlReport((folder / "report.html").read_text("utf-8"))
    markdown = (folder / "report.md").read_text("utf-8")

    assert parts and html.parts == parts
    _in_order([title for _key, title in parts], markdown_headings(markdown), "report.md's headings")
    shown = Report(folder, RUNS / CASES[case][0][0])._repr_html_()
    inline = HtmlReport(shown)
    assert inline.parts == [p for p in parts if p[0] in NOTEBOOK_PARTS]
    # the warnings as the report words them (a Korean report's in Korean), not the archive's English
    assert all(html_lib.escape(finding["text"]) in shown for finding in report.get("findings", []))
    for key in ("comparison", "grading"):
        assert key not in tables or inline.tables[key] == _shown(tables[key]), f"the notebook's {key}"
    _same_lists_and_figures(report, html, markdown_parts(markdown))

    assert set(html.tables) == set(tables)
    for key, rows in html.tables.items():
        assert rows == _shown(tables[key]), f"report.html, table {key}"
    written = [_shown(tables[key], notes=True, spans=True) for key in html.tables if tables[key].get("rows")]
    _in_order(written, markdown_tables(markdown), "report.md's tables")

    latex = latex_tables((folder / "tables.tex").read_text("utf-8"))
    keys = [k for k in LATEX_TABLES if k in tables] + [k for k in tables if k.startswith(("layers/", "epochs/"))]
    if "grading" in tables:  # a grading document: page 1's tables
        keys = [k for k in grading.LATEX_TABLES if k in tables]
    expected = [(escape_latex(tables[k]["title"]), tables[k]) for k in keys if tables[k].get("rows")]
    assert [caption for caption, _rows in latex] == [caption for caption, _table in expected]
    for (caption, rows), (_caption, table) in zip(latex, expected):
        assert rows == [[escape_latex(t) for t in row] for row in _shown(table, notes=True)], f"tables.tex: {caption}"


def _same_lists_and_figures(report: dict, html: HtmlReport, markdown: dict[str, dict[str, list]]) -> None:
    """A grading document's warnings, and each student's flags and findings (in order) and curves (file and alt
    text), as the model has them, in the HTML part and under the Markdown heading of the same title."""
    sections = {s["key"]: s for s in report.get("sections", [])}
    for part in report["parts"]:
        if part["key"] == "warnings" and "grading" in report["tables"]:
            claims, figures = report["findings"], []
        elif part.get("section"):
            section = sections[part["section"]]
            claims, figures = section.get("claims", []), section.get("figures", [])
        else:
            continue
        items, images = [norm(c["text"]) for c in claims], [[f["file"], norm(f["alt"])] for f in figures]
        assert html.items.get(part["key"], []) == items, f"report.html, {part['key']}"
        assert html.images.get(part["key"], []) == images, f"report.html, {part['key']}"
        assert markdown[norm(part["title"])] == {"items": items, "images": images}, f"report.md, {part['title']}"
