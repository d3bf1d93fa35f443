"""A class of hand-ins in one grading document (issue 35): page 1 is the class, then one section per student.

Runs handed in by different people (combine.submissions) are graded, not compared: each run is analysed on
its own (render.analyse_run), judged by the checklist given to `render` or archived by `run`, and drawn as its
own curves; the class page says who handed in what, how each did on its own test images, and which hand-ins
are copies (same_training.py). Different students' numbers meet only in the class distribution, and only over
identical test images. Writes report.html/pdf/md, tables.tex, summary.json, comparison.csv, metrics.csv and
grades.csv (UTF-8 with a BOM, so Excel reads Korean names right).
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from reportgen.cover import merge_cover
from reportgen.errors import ReportgenError
from reportgen.report import figure_alt
from reportgen.report.analysed import Analysis
from reportgen.report.analysis import analyse_run
from reportgen.report.checklist import judged_checklist
from reportgen.report.claims import findings
from reportgen.report.combine import CombinedRun, authors, test_set_checksum
from reportgen.report.figures import FOLDER
from reportgen.report.findings import format_finding
from reportgen.report.grading_tables import GradedClass, build_class_model, grades_rows
from reportgen.report.i18n import Translator, translator
from reportgen.report.markdown import escape_markdown, latex_table
from reportgen.report.model import ReportModel, public_text
from reportgen.report.plots import model_panels_svg
from reportgen.report.same_training import trainings
from reportgen.report.tables_results import comparison_table
from reportgen.report.templating import TEMPLATES, inline_assets, jinja_environment, restricted_fetcher
from reportgen.report.typeset import keep_words_whole
from reportgen.run.archive_files import atomic_write_json
from reportgen.run.archive_reading import ArchiveReader

# What can go wrong reading one hand-in that the class outlives: a broken archive, a file gone, bad JSON, a key
# an old or edited archive lacks. The hand-in is then listed as not graded on page 1.
UNREADABLE = (ReportgenError, OSError, ValueError, KeyError)
PARALLEL_FROM = 8  # hand-ins from which a class is graded in worker processes (_grade_all)
TROUBLES = ("failed", "diverged")  # findings that are flags on page 1: a trial that did not train to the end
LATEX_TABLES = ("grading", "distribution")  # tables.tex: page 1's tables (a student's are in their section)


def grade_class(
    run: CombinedRun, broken: list[dict[str, str]], lang: str, checklist: str | None, folder: Path
) -> GradedClass:
    """The class analysed: one entry per hand-in (its own analysis, checklist, curves drawn into
    folder/figures/<run id>/), sorted by student id, and the folders that could not be graded."""
    translate = translator(lang)
    copies = trainings(run).copies(translate)
    jobs = [(source.path, lang, checklist, copies[source.run_id], folder) for source in run.runs]
    graded = _grade_all(jobs)
    students = [g for g in graded if "error" not in g]
    left_out = [dict(b) for b in broken]
    left_out += [
        {"folder": g["run_id"], "reason": "could not be read", "detail": g["error"]} for g in graded if "error" in g
    ]
    _flag_other_test_images(students, translate)
    for student in students:
        student["flags"] = _flags(student, translate)
        student["findings"] = [c for c in student["findings"] if c.text not in student["flags"]]  # said once
    return GradedClass(
        lang=lang,
        translate=translate,
        run_id=run.run_id,
        students=sorted(students, key=_order),
        not_graded=[b | {"reason": translate(b["reason"]), "detail": public_text(b["detail"])} for b in left_out],
        generated=time.strftime("%Y-%m-%d %H:%M"),
        version=run.runs[0].read("environment").get("reportgen", ""),
    )


def _grade_all(jobs: list[tuple]) -> list[dict[str, Any]]:
    """Every hand-in graded (_grade_one), in order: from PARALLEL_FROM hand-ins in worker processes, one per CPU,
    where a fork is safe (_fork)."""
    workers = min(len(os.sched_getaffinity(0)), len(jobs))
    context = _fork()
    if len(jobs) < PARALLEL_FROM or workers < 2 or context is None:
        return [_grade_one(*job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_grade_one, *zip(*jobs), chunksize=max(1, len(jobs) // (4 * workers))))


def _fork() -> multiprocessing.context.BaseContext | None:
    """Forked workers start at once and run no one's script again (spawned ones import the caller's __main__, which
    in a script without a main guard would render again). Only on Linux, and only while torch is not loaded (its
    thread pools do not survive a fork; `reportgen render` never loads it): None means grade here."""
    if sys.platform != "linux" or "torch" in sys.modules:
        return None
    return multiprocessing.get_context("fork")


def _grade_one(path: Path, lang: str, checklist: str | None, copies: list[dict], folder: Path) -> dict[str, Any]:
    """One hand-in graded, or {"run_id", "error"} when it cannot be read: an answer, never an exception, so one
    broken hand-in does not stop a worker's others."""
    source = ArchiveReader(path)
    try:
        return _student(source, lang, checklist, copies, folder)
    except UNREADABLE as exc:
        return {"run_id": source.run_id, "error": str(exc)}


def _order(student: dict[str, Any]) -> tuple:
    """By student id; hand-ins without one after them, by run id."""
    return (not student["student_id"], student["student_id"], student["run_id"])


def _student(source: ArchiveReader, lang: str, checklist: str | None, copies: list[dict], folder: Path) -> dict:
    """One hand-in on its own: who, its models, its best accuracy on its own test images, its checklist, curves."""
    ctx = analyse_run(source, lang, source.verify())
    translate = ctx.translate
    ctx.model_curves = _curves(ctx, source.run_id, folder)
    people = (ctx.spec.get("cover") or {}).get("authors") or []
    ranked = [t for t in ctx.best if t.ranked]
    best = max(ranked, key=lambda t: t.final["test_acc"], default=None)
    judged, not_judged = _checklist(ctx, checklist, translate)
    return {
        "run_id": source.run_id,
        "authors": authors(source),
        "names": [a["name"] for a in people],
        "student_id": ", ".join(a["student_id"] for a in people if a.get("student_id")),
        "models": [m["label"] for m in ctx.models],
        "best": best and {"model": best.label, "accuracy": best.final["test_acc"], "parameters": best.audit.total},
        "test_images": ctx.data.get("test_size"),
        "test_set": test_set_checksum(source),
        "checklist": judged,
        "not_judged": not_judged,
        "copies": copies,
        "problems": ctx.problems,
        "findings": findings(ctx.warnings, translate),
        "troubles": [c.text for c in findings([w for w in ctx.warnings if w.code in TROUBLES], translate)],
        "warnings": [format_finding(w) for w in ctx.warnings],
        "models_table": comparison_table(ctx, translate),
        "curves": ctx.model_curves,
        "comparison": [row | {"run_id": source.run_id} for row in ctx.comparison],
        "epochs": [
            {"run_id": source.run_id, "trial_id": t.trial_id, "model": t.label, **e}
            for t in ctx.trials
            for e in t.epochs
        ],
    }


def _curves(ctx: Analysis, run_id: str, folder: Path) -> list[dict[str, Any]]:
    """Each model's four plots (figures.model_curves' figure), as PNG at print resolution in figures/<run id>/: a
    class prints a hundred of them, which as SVG would cost the PDF seconds each to draw."""
    (folder / FOLDER / run_id).mkdir(parents=True)
    curves = []
    for n, trial in enumerate(ctx.best):
        name = f"{FOLDER}/{run_id}/curves-{n}.png"
        panels = model_panels_svg(trial.epochs, trial.label, ctx.colors[trial.label], ctx.translate, folder / name)
        alt = figure_alt.panels(trial, ctx.translate)  # the words the course report gives the same figure
        curves.append({"label": trial.label, "file": name, "panels": panels, "alt": alt})
    return curves


def _checklist(ctx: Analysis, name: str | None, translate: Translator) -> tuple[dict | None, str]:
    """The hand-in's checklist judged, or why it was not: none given to `run` or `render`, or one unreadable."""
    if not (name or ctx.spec.get("checklist")):
        return None, translate("checklist not judged: none was given to run or render")
    try:
        return judged_checklist(ctx, name), ""
    except ReportgenError as exc:
        return None, translate("checklist not judged: {error}", error=public_text(exc))


def _flag_other_test_images(students: list[dict[str, Any]], translate: Translator) -> None:
    """Hand-ins tested on other images than most of the class: their accuracy is not comparable with the rest."""
    sets = Counter(s["test_set"] for s in students)
    if len(sets) < 2:
        return
    common, count = sets.most_common(1)[0]
    for student in students:
        if student["test_set"] != common:
            student["other_images"] = [
                translate(
                    "different test images from {n} of the class's {total} hand-ins: its accuracy is not comparable",
                    n=count,
                    total=len(students),
                )
            ]


def _flags(student: dict[str, Any], translate: Translator) -> list[str]:
    """What a grader must know about a hand-in, in words: copies (with the evidence), a missing author, failed or
    diverged trials, an archive that is not whole, a checklist not judged."""
    flags = [copy["text"] for copy in student["copies"]]
    if not student["authors"]:
        flags.append(translate("no author on the cover: graded under its run id"))
    flags += student.pop("other_images", []) + student["troubles"]
    if student["problems"]:
        flags.append(
            translate("incomplete, or changed after it was sealed: {problems}", problems="; ".join(student["problems"]))
        )
    return flags + ([student["not_judged"]] if student["not_judged"] else [])


def class_cover(run: CombinedRun, options: dict[str, Any] | None) -> dict[str, Any]:
    """The cover of the whole class: what every hand-in's cover agrees on (the course), the courses named when
    they differ, and the render's cover options; never one student's authors."""
    cover = dict(run.read("spec").get("cover") or {})  # combine keeps only the fields every run agrees on
    courses = sorted({(r.read("spec").get("cover") or {}).get("course") or "" for r in run.runs} - {""})
    if courses and "course" not in cover:
        cover["course"] = " · ".join(courses)
    cover = merge_cover(cover, {k: v for k, v in (options or {}).items() if k != "authors"})
    return {k: v for k, v in cover.items() if k != "authors"}


def write_class(
    run: CombinedRun,
    broken: list[dict[str, str]],
    folder: Path,
    *,
    lang: str,
    checklist: str | None,
    cover: dict[str, Any] | None,
    documents: Collection[str],
    single_file: bool,
    summary_only: bool,
) -> None:
    """The grading document and its files, written into `folder` (the render's staging folder): the class's report
    model is built once, and every document lays it out."""
    graded = grade_class(run, broken, lang, checklist, folder)
    report = build_class_model(graded, class_cover(run, cover), summary_only)
    _write_documents(report, folder, documents, single_file)
    _write_files(graded, report, folder)


def _write_documents(report: ReportModel, folder: Path, documents: Collection[str], single_file: bool) -> None:
    """report.html (and its PDF), report.md and tables.tex: layouts of `report` and nothing else."""
    environment = jinja_environment(report.header.lang)
    template = environment.get_template("grading.html.j2")
    if documents & {"html", "pdf"}:
        html = template.render(report=report)
        (folder / "report.css").write_bytes(TEMPLATES.joinpath("report.css").read_bytes())
        (folder / "report.html").write_text(inline_assets(html, folder) if single_file else html, "utf-8")
        if "pdf" in documents:
            import weasyprint

            printed = keep_words_whole(template.render(report=report))
            # tagged like the course report's PDF (render.py): headings, tables, each student's curves with /Alt
            weasyprint.HTML(
                string=printed, base_url=str(folder / "report.html"), url_fetcher=restricted_fetcher(folder)
            ).write_pdf(folder / "report.pdf", pdf_tags=True)
    if "md" in documents:
        markdown = environment.overlay(autoescape=False)
        markdown.filters["md"] = escape_markdown
        text = markdown.get_template("grading.md.j2").render(report=report)
        (folder / "report.md").write_text(re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", "utf-8")
        tables = [report.tables[key] for key in LATEX_TABLES if key in report.tables]
        preamble = "% Generated by reportgen; needs \\usepackage{booktabs} and \\usepackage{amssymb}.\n\n"
        (folder / "tables.tex").write_text(preamble + "\n".join(latex_table(t) for t in tables if t.rows), "utf-8")


def _write_files(graded: GradedClass, report: ReportModel, folder: Path) -> None:
    """summary.json (the report model and each hand-in's record), comparison.csv and metrics.csv (every run's
    trials, with the run id) and grades.csv."""
    students = graded.students
    pd.DataFrame([row for s in students for row in s["comparison"]]).to_csv(folder / "comparison.csv", index=False)
    pd.DataFrame([row for s in students for row in s["epochs"]]).to_csv(folder / "metrics.csv", index=False)
    header, *rows = grades_rows(graded)
    with open(folder / "grades.csv", "w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel reads UTF-8
        csv.writer(handle).writerows([header, *rows])
    keep = ("run_id", "authors", "student_id", "models", "best", "test_images", "checklist", "copies", "flags")
    atomic_write_json(
        folder / "summary.json",
        {
            "run_id": graded.run_id,
            "lang": graded.lang,
            "title": report.header.title,
            "grading": [{key: s[key] for key in keep} for s in students],
            "not_graded": graded.not_graded,
            "comparison": [row for s in students for row in s["comparison"]],
            "conclusion": [],  # no sentence compares one student's model with another's
            "checklist": None,
            "report": report.to_dict(),
            "warnings": [
                {"run_id": s["run_id"], "message": f"{s['run_id']}: {text}"} for s in students for text in s["warnings"]
            ],
        },
    )
