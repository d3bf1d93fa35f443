"""The report model (model.py) of a grading document (grading.py): its header, its parts in order (the folders not
graded, the warnings, the class table, the class distribution, then one per student), and one section per student
(flags and findings, checklist with each reason, models, curves); grades.csv's rows.

Input is grading.grade_class's GradedClass; every cell, heading and sentence is worded here once, in the report's
language, and every layout (HTML/PDF, Markdown, LaTeX, summary.json, the notebook view) shows it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import fmean, quantiles
from typing import Any

from reportgen.report.cover import cover_rows
from reportgen.report.i18n import Translator
from reportgen.report.model import (
    MISSING,
    Cell,
    Claim,
    Figure,
    Header,
    Part,
    ReportModel,
    Row,
    Section,
    Table,
    code,
    count,
    label,
    percent,
)


@dataclass
class GradedClass:
    """A class as grading.grade_class analysed it: each hand-in's record (grading._student, with its flags), sorted
    by student id, and the folders that could not be graded, their reasons translated."""

    lang: str
    translate: Translator
    run_id: str
    students: list[dict[str, Any]]
    not_graded: list[dict[str, str]]
    generated: str
    version: str


def build_class_model(graded: GradedClass, cover: dict[str, Any], summary_only: bool) -> ReportModel:
    """The grading document: page 1 (the folders not graded, the class table, the distribution), then a section
    per student unless the render asked for the summary only."""
    tr, students = graded.translate, graded.students
    tables = [_cover(cover, tr), _not_graded(graded.not_graded, tr), _class_table(students, tr)]
    distribution, note = _distribution(students, tr)
    tables.append(distribution)
    sections = [] if summary_only else [_section(s, tr, tables) for s in students]
    report = ReportModel(
        tables={t.key: t for t in tables if t is not None},
        settings_claim=Claim(
            tr(
                "Each hand-in is graded on its own test images: no sentence compares one student's model with another's."
            )
        ),
        conclusion=[],
        findings=[Claim(note)] if note else [],
        sections=sections,
        header=Header(
            title=cover.get("title") or tr("Grading: {n} submissions", n=len(students)),
            run_id=graded.run_id,
            lang=graded.lang,
            generated=graded.generated,
            version=graded.version,
        ),
    )
    report.parts = _parts(report, tr)
    return report


def _parts(report: ReportModel, tr: Translator) -> list[Part]:
    """The document's parts in order; a part with nothing to show is left out."""
    tables = report.tables
    shown = [
        ("not_graded" in tables, lambda: Part("not-graded", tables["not_graded"].title, 0)),
        (report.findings, lambda: Part("warnings", tr("Warnings"), 0)),
        (True, lambda: Part("grading", tables["grading"].title)),
        ("distribution" in tables, lambda: Part("distribution", tables["distribution"].title, 3)),
    ]
    page_one = [part() for wanted, part in shown if wanted]
    return page_one + [Part(f"student-{s.key}", s.title, section=s.key) for s in report.sections]


def _section(student: dict[str, Any], tr: Translator, tables: list[Table | None]) -> Section:
    """One student's section: flags then findings, the checklist and models tables (added to `tables`), and each
    model's curves."""
    own = [
        _checklist(student, tr),
        replace(student["models_table"], key=f"models/{student['run_id']}", title=tr("Models")),
    ]
    tables += own
    return Section(
        student["run_id"],
        _who(student),
        [Claim(flag, False) for flag in student["flags"]] + student["findings"],
        [t.key for t in own if t is not None],
        [Figure(c["file"], c["alt"]) for c in student["curves"]],
    )


def _cover(cover: dict[str, Any], tr: Translator) -> Table | None:
    """The class's cover (the course, the render's cover options) as names and values."""
    rows = cover_rows(cover)
    return Table("cover", "", [], [Row([label(tr(name)), label(value)]) for name, value in rows]) if rows else None


def _who(student: dict[str, Any]) -> str:
    """A student's heading: their names and ids, then the run; the run id alone for a hand-in without an author."""
    return f"{student['authors']} · {student['run_id']}" if student["authors"] else student["run_id"]


def _not_graded(left_out: list[dict[str, str]], tr) -> Table | None:
    if not left_out:
        return None
    rows = [Row([code(b["folder"]), label(b["reason"], b["detail"])], "flagged") for b in left_out]
    return Table("not_graded", tr("Folders not graded"), [tr("Folder"), tr("Reason")], rows)


def _class_table(students: list[dict[str, Any]], tr) -> Table:
    """One row per hand-in, by student id: who, which run, its models, its best final test accuracy on its own
    test images, its checklist score and its flags in words."""
    columns = ["Student ID", "Authors", "Run", "Models", "Best final test accuracy", "Checklist", "Flags"]
    rows = [
        Row(
            [
                label(s["student_id"] or MISSING),
                label(", ".join(s["names"]) or MISSING),
                code(s["run_id"]),
                label(", ".join(s["models"])),
                _best(s, tr),
                _score(s["checklist"]),
                label(" · ".join(s["flags"]) or MISSING),
            ],
            "flagged" if s["copies"] else "",
        )
        for s in students
    ]
    title = tr("The class: one row per hand-in, by student id")
    caption = tr("Each accuracy is the hand-in's best model's, on its own test images.")
    return Table("grading", title, [tr(c) for c in columns], rows, caption=caption)


def _best(student: dict[str, Any], tr) -> Cell:
    best = student["best"]
    if not best:
        return Cell(MISSING)
    return Cell(
        percent(best["accuracy"]),
        note=tr("{model}, {n} test images", model=best["model"], n=count(student["test_images"])),
    )


def _score(checklist: dict[str, Any] | None) -> Cell:
    if not checklist:
        return Cell(MISSING)
    passed = sum(item["passed"] for item in checklist["items"])
    return Cell(f"{passed} / {len(checklist['items'])}", verdict=passed == len(checklist["items"]))


def _distribution(students: list[dict[str, Any]], tr) -> tuple[Table | None, str]:
    """Accuracy and parameters over the hand-ins tested on the most common test images (at least two of them);
    the others are left out and said so. A note instead when no two were tested alike."""
    scored = [s for s in students if s["best"]]
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in scored:
        groups.setdefault(s["test_set"], []).append(s)
    group = max(groups.values(), key=len, default=[])
    if len(group) < 2:
        return None, tr("No class distribution: no two hand-ins were tested on the same images.") if scored else ""
    columns = ["Hand-ins", "Lowest", "Lower quartile", "Median", "Upper quartile", "Highest", "Mean"]
    rows = [
        _spread_row(tr("Best final test accuracy"), [s["best"]["accuracy"] for s in group], percent),
        _spread_row(tr("Parameters"), [s["best"]["parameters"] for s in group], count),
    ]
    left_out = len(scored) - len(group)
    caption = tr(
        "Over the {n} hand-ins tested on the same {images} test images.",
        n=len(group),
        images=count(group[0]["test_images"]),
    )
    if left_out:
        caption += " " + tr("{n} tested on other images are left out.", n=left_out)
    return Table(
        "distribution", tr("The class distribution"), [""] + [tr(c) for c in columns], rows, caption=caption
    ), ""


def _spread_row(name: str, values: list[float], form) -> Row:
    lower, middle, upper = quantiles(values, n=4, method="inclusive")
    figures = [min(values), lower, middle, upper, max(values), fmean(values)]
    return Row([label(name), Cell(str(len(values)))] + [Cell(form(v)) for v in figures])


def _checklist(student: dict[str, Any], tr) -> Table | None:
    """The student's checklist: each item's ✓ or ✗ with the reason its check gave."""
    judged = student["checklist"]
    if not judged:
        return None
    rows = [
        Row(
            [
                Cell("✓" if item["passed"] else "✗", verdict=item["passed"]),
                label(tr(item["text"])),
                label(item["evidence"]),
            ]
        )
        for item in judged["items"]
    ]
    score = _score(judged).text
    title = f"{tr('Assignment checklist')}: {judged['title']} ({score})"
    return Table(f"checklist/{student['run_id']}", title, ["", tr("Requirement"), tr("Reason")], rows)


def grades_rows(graded: GradedClass) -> list[list[str]]:
    """grades.csv: a header, then one row per hand-in — names, ids, run, each checklist item 1 or 0 (empty where
    not judged), items passed and judged, best accuracy in percent, flags (a copy names the other student)."""
    tr, students = graded.translate, graded.students
    items = list(
        dict.fromkeys(tr(item["text"]) for s in students if s["checklist"] for item in s["checklist"]["items"])
    )
    header = [tr("Name"), tr("Student ID"), tr("Run"), *items, tr("Items passed"), tr("Items judged")]
    header += [tr("Best final test accuracy") + " (%)", tr("Flags")]
    rows = [header]
    for s in students:
        marks = {tr(item["text"]): str(int(item["passed"])) for item in (s["checklist"] or {}).get("items", [])}
        passed = sum(mark == "1" for mark in marks.values())
        accuracy = f"{100 * s['best']['accuracy']:.2f}" if s["best"] else ""
        judged = [str(passed), str(len(marks))] if s["checklist"] else ["", ""]
        rows.append(
            [
                ", ".join(s["names"]),
                s["student_id"],
                s["run_id"],
                *[marks.get(i, "") for i in items],
                *judged,
                accuracy,
                " · ".join(s["flags"]),
            ]
        )
    return rows
