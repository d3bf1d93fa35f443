"""A class of hand-ins in one grading document (issue 35 items 1, 2, 4, 5): page 1 is the class, sorted by student
id, with flags in words; one section per student with the checklist's reasons; grades.csv beside it; a broken
or foreign folder is listed, not fatal; a hand-in without an author is graded under its run id; `--summary-only`
leaves the sections out. The hand-ins are copies of a golden run re-saved by other students (class_fixtures.py)."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from class_fixtures import COURSE, GOLDEN_RUNS, hand_in, make_class, resave, student
from pdf_objects import alt_texts, is_tagged, pdf_objects

from reportgen.cli import main
from reportgen.report import grading
from reportgen.run.manifest import write_manifest

pytestmark = pytest.mark.slow  # every test renders a class


def _render(runs: list[Path], out: Path, *options: str) -> Path:
    assert main(["render", *map(str, runs), "--lang", "ko", "-o", str(out), *options]) == 0
    [folder] = out.glob("combined-*")
    return folder


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text("utf-8"))


def _column(table: dict, name: str) -> list[str]:
    index = table["columns"].index(name)
    return [row["cells"][index]["text"] for row in table["rows"]]


@pytest.fixture(scope="module")
def school(tmp_path_factory) -> dict:
    """Four hand-ins made in reverse student-id order, one of them without an author, one copy re-saved by a
    fifth student, a run altered after it was sealed and a folder that is no run at all; rendered once."""
    root = tmp_path_factory.mktemp("class")
    runs = make_class(root / "runs", 3)[::-1]
    runs.append(hand_in(GOLDEN_RUNS / "grade-b", root / "runs" / "nameless", None, seed=50))
    runs.append(resave(runs[0], root / "runs" / "copied", student(7)))
    altered = hand_in(GOLDEN_RUNS / "grade-b", root / "runs" / "altered", student(8), seed=60)
    (altered / "trials" / "000-mlp" / "metrics.csv").write_text("epoch\n1\n", "utf-8")
    foreign = root / "runs" / "photos"
    foreign.mkdir()
    (foreign / "cat.txt").write_text("not a run", "utf-8")
    folder = _render([*runs, altered, foreign], root / "out")
    return {"root": root, "runs": runs, "folder": folder, "summary": _summary(folder)}


def test_page_one_is_the_class_sorted_by_student_id_with_a_korean_title(school):
    summary = school["summary"]
    assert summary["title"] == "과제 채점: 5명 제출"
    table = summary["report"]["tables"]["grading"]
    assert _column(table, "학번") == ["20250000", "20250001", "20250002", "20250007", "–"]  # without an id: last
    assert _column(table, "실행") == ["s000", "s001", "s002", "copied", "nameless"]
    assert all(
        text.endswith("테스트 이미지 100장") for text in [row["cells"][4].get("note", "") for row in table["rows"]]
    )
    html = (school["folder"] / "report.html").read_text("utf-8")
    assert html.index('data-table="grading"') < html.index('class="student"')  # the class before any student
    markdown = (school["folder"] / "report.md").read_text("utf-8")
    assert markdown.index(COURSE) < markdown.index("## 학급")  # the course from the covers, under the title


def test_no_sentence_compares_two_students(school):
    summary = school["summary"]
    assert summary["conclusion"] == [] and "conclusion" not in summary["report"]
    markdown = (school["folder"] / "report.md").read_text("utf-8")
    assert "McNemar" not in markdown and "가장 높" not in markdown


def test_a_copy_is_flagged_on_both_rows_naming_the_other_student(school):
    flags = dict(zip(*(_column(school["summary"]["report"]["tables"]["grading"], c) for c in ("실행", "주의"))))
    assert flags["s002"].startswith(f"{student(7)['name']} (20250007)의 사본: ")
    assert flags["copied"].startswith(f"{student(2)['name']} (20250002)의 사본: ")
    assert flags["s000"] == flags["s001"] == "–"  # each trained with its own seed and predicts its own way


def test_a_hand_in_without_an_author_is_graded_under_its_run_id(school):
    [row] = [g for g in school["summary"]["grading"] if g["run_id"] == "nameless"]
    assert row["authors"] == "" and row["models"] == ["mlp"]
    assert "표지에 작성자가 없어 실행 ID로 채점했습니다" in row["flags"]
    headings = [section["title"] for section in school["summary"]["report"]["sections"]]
    assert headings[-1] == "nameless" and headings[0] == f"{student(0)['name']} (20250000) · s000"


def test_a_broken_and_a_foreign_folder_are_listed_and_the_rest_graded(school):
    table = school["summary"]["report"]["tables"]["not_graded"]
    assert _column(table, "폴더") == ["photos", "altered"]
    reasons = _column(table, "이유")
    assert reasons[0] == "이 버전의 reportgen이 읽을 수 있는 실행 폴더가 아닙니다"
    assert reasons[1] == "완료되지 않았거나 봉인 후 변경되었습니다"
    assert "metrics.csv" in table["rows"][1]["cells"][1]["note"]  # which file changed
    assert len(school["summary"]["grading"]) == 5


def test_each_student_section_gives_every_checklist_item_its_reason(school):
    report = school["summary"]["report"]
    [section] = [s for s in report["sections"] if s["key"] == "s001"]
    checklist = report["tables"][section["tables"][0]]
    assert checklist["columns"] == ["", "요구 사항", "이유"]
    assert len(checklist["rows"]) == 8 and all(row["cells"][2]["text"] for row in checklist["rows"])
    assert report["tables"][section["tables"][1]]["title"] == "모델"
    assert (school["folder"] / "figures" / "s001" / "curves-0.png").is_file()


def test_grades_csv_opens_in_excel_with_one_row_per_hand_in(school):
    raw = (school["folder"] / "grades.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())  # the BOM: Excel then reads UTF-8, Korean names included
    header, *rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert header[:3] == ["이름", "학번", "실행"] and header[-4:] == [
        "통과 항목 수",
        "판정 항목 수",
        "최고 최종 테스트 정확도 (%)",
        "주의",
    ]
    assert [row[2] for row in rows] == ["s000", "s001", "s002", "copied", "nameless"]
    assert rows[0][0] == student(0)["name"] and set(rows[0][3:11]) <= {"0", "1"}
    assert int(rows[0][11]) == sum(map(int, rows[0][3:11])) and rows[0][12] == "8"
    assert f"{student(7)['name']} (20250007)의 사본" in rows[2][-1]


def test_the_class_pdf_is_tagged_and_each_students_curves_carry_their_alt_text(school):
    """report.pdf of the class has a structure tree, and each student's curves figure has as /Alt the Korean
    sentence the Markdown gives the same image (not the model's name alone)."""
    objects = pdf_objects((school["folder"] / "report.pdf").read_bytes())
    assert is_tagged(objects)
    markdown = (school["folder"] / "report.md").read_text("utf-8")
    curves = {path: alt for alt, path in re.findall(r"!\[([^\]]*)\]\((figures/[^)]*curves-\d+\.png)\)", markdown)}
    assert len(curves) >= 5 and all("최종 테스트 정확도" in alt for alt in curves.values())
    assert set(curves.values()) <= alt_texts(objects)


def test_only_identical_test_images_make_the_class_distribution(school, tmp_path):
    table = school["summary"]["report"]["tables"]["distribution"]
    assert table["rows"][0]["cells"][1]["text"] == "5"
    other = hand_in(GOLDEN_RUNS / "grade-b", tmp_path / "other", student(9), seed=70)
    spec = json.loads((other / "spec.json").read_text("utf-8"))
    spec["data"]["test_subset"] = 99  # tested on other images than the class
    (other / "spec.json").write_text(json.dumps(spec), "utf-8")
    write_manifest(other)
    summary = _summary(_render([*school["runs"][:2], other], tmp_path / "out", "--format", "md"))
    table = summary["report"]["tables"]["distribution"]
    assert table["rows"][0]["cells"][1]["text"] == "2" and "다른 이미지로 평가한 1개는 뺐습니다" in table["caption"]
    [flagged] = [g for g in summary["grading"] if g["run_id"] == "other"]
    assert any("다른 테스트 이미지" in flag for flag in flagged["flags"])


def test_summary_only_leaves_out_the_sections_and_prints_a_few_pages(school, tmp_path):
    folder = _render(school["runs"], tmp_path / "out", "--summary-only")
    assert "sections" not in _summary(folder)["report"]
    info = subprocess.run(["pdfinfo", str(folder / "report.pdf")], capture_output=True, text=True, check=True).stdout
    assert int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:"))) <= 2
    page_one = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(folder / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "과제 채점: 5명 제출" in page_one and "학번" in page_one


def test_the_notebook_view_shows_the_class(school):
    """Report._repr_html_ (a Jupyter cell) lays out the class page from summary.json: the title and the class
    table, no comparison of models across students."""
    from reportgen.api import Report

    inline = Report(school["folder"], school["runs"][0])._repr_html_()
    assert "과제 채점: 5명 제출" in inline and 'data-table="grading"' in inline
    assert 'data-table="comparison"' not in inline


def test_the_notebook_view_lists_each_students_warnings_in_the_reports_language(school, tmp_path):
    """What each student's section says (its flags, the lint's findings) is listed in the notebook view by run id,
    in Korean as the report words it: here an overfitting model (train accuracy far above test) beside a copy."""
    from reportgen.api import Report

    overfit = hand_in(GOLDEN_RUNS / "grade-b", tmp_path / "overfit", student(12), seed=90)
    metrics = overfit / "trials" / "000-mlp"
    epochs = json.loads((metrics / "metrics.json").read_text("utf-8"))
    epochs[-1]["train_acc"] = 0.99
    (metrics / "metrics.json").write_text(json.dumps(epochs), "utf-8")
    table = (metrics / "metrics.csv").read_text("utf-8").splitlines()
    last = table[-1].split(",")
    table[-1] = ",".join([*last[:2], "0.99", *last[3:]])
    (metrics / "metrics.csv").write_text("\n".join(table) + "\n", "utf-8")
    write_manifest(overfit)
    folder = _render([school["runs"][0], school["runs"][4], overfit], tmp_path / "out", "--format", "md")
    report = _summary(folder)["report"]
    said = {s["key"]: [c["text"] for c in s.get("claims", [])] for s in report["sections"]}
    assert any("과적합" in text for text in said["overfit"]) and said["copied"]  # a finding, and a copy's flag
    inline = Report(folder, overfit)._repr_html_()
    assert "<h4>경고</h4>" in inline and "overfitting" not in inline
    for run_id, texts in said.items():
        assert all(html.escape(f"{run_id}: {text}") in inline for text in texts), run_id


def test_a_failed_trial_is_a_flag_and_an_unfinished_run_is_graded_only_when_allowed(school, tmp_path):
    partial = hand_in(GOLDEN_RUNS / "failed", tmp_path / "partial", student(11), seed=80)  # one trial failed
    runs = [*school["runs"][:2], partial]
    summary = _summary(_render(runs, tmp_path / "refused", "--format", "md"))
    assert [row["folder"] for row in summary["not_graded"]] == ["partial"]
    summary = _summary(_render(runs, tmp_path / "allowed", "--format", "md", "--allow-incomplete"))
    [row] = [g for g in summary["grading"] if g["run_id"] == "partial"]
    assert any(flag.startswith("완료되지 않았거나 봉인 후 변경되었습니다: ") for flag in row["flags"])
    assert any("FailsAtOnce" in flag and "실패" in flag for flag in row["flags"]), row["flags"]


def test_a_large_class_is_graded_in_worker_processes_alike(tmp_path):
    """From PARALLEL_FROM hand-ins `reportgen render` (which never loads torch) grades each in a forked worker
    process: the same rows, flags and sections as this process grades one after another (torch is loaded here)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: the class is graded in one process")
    runs = make_class(tmp_path / "runs", grading.PARALLEL_FROM)
    command = [
        str(Path(sys.executable).parent / "reportgen"),
        "render",
        *map(str, runs),
        "--format",
        "md",
        "--lang",
        "ko",
    ]
    subprocess.run([*command, "-o", str(tmp_path / "workers")], check=True, capture_output=True)
    [forked] = (tmp_path / "workers").glob("combined-*")
    here = _render(runs, tmp_path / "here", "--format", "md")
    assert _summary(forked)["grading"] == _summary(here)["grading"]
    assert _summary(forked)["report"]["sections"] == _summary(here)["report"]["sections"]
    assert len(list(forked.glob("figures/*/curves-0.png"))) == grading.PARALLEL_FROM
