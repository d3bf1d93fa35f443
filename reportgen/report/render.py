"""Lays out a run's report: HTML (Jinja2, autoescaped), PDF (WeasyPrint), CSV and JSON.

One way through: `analyse_run` reads the archive and computes what the report shows (writing nothing),
figures.draw_figures draws it into figures/, then the documents and tables are written from both.
The output folder is built under a temporary name and renamed into place at the end, so a failed
render never leaves a half-written report in output/.
"""

from __future__ import annotations

import re
from pathlib import Path

import markupsafe
import pandas as pd

from reportgen.cover import merge_cover
from reportgen.errors import ArchiveError
from reportgen.languages import report_language
from reportgen.messages import english
from reportgen.report.analysed import Analysis
from reportgen.report.analysis import analyse_run, with_figures
from reportgen.report.checklist import judged_checklist
from reportgen.report.combine import (
    CombinedRun,
    open_class,
    submissions,
)
from reportgen.report.cover import cover_rows
from reportgen.report.documents import RenderOptions
from reportgen.report.figures import draw_figures
from reportgen.report.findings import format_finding
from reportgen.report.markdown import render_markdown, write_latex_tables
from reportgen.report.model import ReportModel
from reportgen.report.publishing import staged_report
from reportgen.report.tables import build_report_model
from reportgen.report.templating import TEMPLATES, inline_assets, jinja_environment, restricted_fetcher
from reportgen.report.typeset import keep_words_whole
from reportgen.run.archive_files import atomic_write_json
from reportgen.run.archive_reading import RunReader


def _write_tables(context: Analysis, report: ReportModel, folder: Path) -> None:
    """metrics.csv, comparison.csv and summary.json (its `report` key: the model every document lays out)."""
    rows = [{"trial_id": t.trial_id, "model": t.label, **e} for t in context.trials for e in t.epochs]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(context.comparison).to_csv(folder / "comparison.csv", index=False)
    atomic_write_json(
        folder / "summary.json",
        {
            "run_id": context.run_id,
            "lang": context.lang,
            "spec": context.spec,
            "settings": context.settings,
            "comparison": context.comparison,
            "quality": context.quality,
            "before_after": context.before_after,
            "seed_aggregates": context.aggregates,
            "mcnemar": context.mcnemar,
            "differences": context.differences,
            "conclusion": [claim.text for claim in context.conclusion],
            "checklist": context.checklist,
            "report": report.to_dict(),
            "warnings": [
                {"code": w.code, "trial_id": w.trial_id, "message": format_finding(w)} for w in context.warnings
            ],
            "epochs": {t.trial_id: t.epochs for t in context.trials},
            "averages": {t.trial_id: t.average for t in context.trials},
            "parameters": {m["label"]: m["audit"].parameter_counts for m in context.models},
            "cost": {m["label"]: english(m["audit"].cost) for m in context.models},  # reasons as English text
        },
    )


def _interactive_svg(folder: Path):
    """A figure written into the HTML itself rather than as <img>: browsers show an SVG's <title> tooltips
    (epoch and value of each point) only for inline SVG. The SVG is our own matplotlib output, whose text
    matplotlib escapes; the label becomes its accessible name."""

    def inline(relative: str, label: str) -> markupsafe.Markup:
        svg = (folder / relative).read_text("utf-8")
        svg = svg[svg.index("<svg") :]  # drop the XML declaration
        svg = re.sub(r"<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)  # creator text is not content
        return markupsafe.Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{markupsafe.escape(label)}" ', 1))

    return inline


def _figure_img(relative: str, label: str) -> markupsafe.Markup:
    """interactive_svg's stand-in for print: the figure file as an image, styled as the inline SVG is."""
    return markupsafe.Markup(
        f'<img class="vector" src="{markupsafe.escape(relative)}" alt="{markupsafe.escape(label)}">'
    )


def _write_documents(report: ReportModel, folder: Path, formats: set[str], single_file: bool) -> None:
    """The documents, each a layout of the report model and nothing else (plus layout helpers: the catalogue's
    fixed words, how a figure is drawn)."""
    environment = jinja_environment(report.header.lang)
    page = environment.get_template("report.html.j2")
    if formats & {"html", "pdf"}:
        html = page.render(report=report, interactive_svg=_interactive_svg(folder))
        (folder / "report.css").write_bytes(TEMPLATES.joinpath("report.css").read_bytes())
        (folder / "report.html").write_text(html, "utf-8")
        if any(g.wrong for g in report.galleries):
            (folder / "misclassified.html").write_text(
                environment.get_template("misclassified.html.j2").render(report=report), "utf-8"
            )
        if single_file:
            (folder / "report.html").write_text(inline_assets(html, folder), "utf-8")
        if "pdf" in formats:
            import weasyprint

            # For print the figures go in as <img>: the same SVG files, drawn the same, but WeasyPrint then
            # does not cascade the page's CSS over every one of their thousands of elements (0.4 s a report).
            printed = page.render(report=report, interactive_svg=_figure_img)
            printed = keep_words_whole(printed)  # Korean breaks between words only (typeset.py)
            # pdf_tags: a tagged PDF (headings, tables, each figure with its alt text as /Alt) that screen readers
            # can follow; measured +0.3-0.7 s and +6% size on the golden `three` run (docs/outputs.md)
            weasyprint.HTML(
                string=printed, base_url=str(folder / "report.html"), url_fetcher=restricted_fetcher(folder)
            ).write_pdf(folder / "report.pdf", pdf_tags=True)
    if "md" in formats:
        (folder / "report.md").write_text(render_markdown(environment, report), "utf-8")
        write_latex_tables(report, folder / "tables.tex", report.header.lang)


def _write_report(
    run: RunReader,
    lang: str,
    problems: list[str],
    options: RenderOptions,
    documents: set[str],
    staging: Path,
) -> None:
    """analyse → draw figures → judge the checklist (it counts drawn panels) → write the documents."""
    analysis = analyse_run(run, lang, problems)
    analysis = with_figures(analysis, draw_figures(analysis, staging / "figures"))
    analysis.checklist = judged_checklist(analysis, options.checklist)
    analysis.cover = merge_cover(analysis.spec.get("cover", {}), options.cover or {})
    analysis.cover_rows = cover_rows(analysis.cover)
    report = build_report_model(analysis)
    _write_documents(report, staging, documents, options.single_file)
    _write_tables(analysis, report, staging)


def render_report(run_path: str | Path | list[str | Path], options: RenderOptions | None = None) -> Path:
    """Render runs/<id> into options.output_root/<id>/: report.html, report.pdf, report.md with figures/,
    tables.tex, metrics.csv, comparison.csv, summary.json (the documents options.documents() picks; the PDF is
    made from the HTML; options.cover adds to or overrides the spec's cover). Different people's runs are a
    class: a grading document (grading.py), without the per-student sections when options.summary_only; a
    folder of the class that cannot be graded is listed there, not fatal."""
    options = options or RenderOptions()
    run, broken = open_class(run_path, options.allow_incomplete)  # several run folders: one combined report
    problems = run.verify()
    if problems and not options.allow_incomplete:
        raise ArchiveError(
            f"{run.path}: refusing to render: {'; '.join(problems)} "
            "(use --allow-incomplete to render it anyway, marked as such)"
        )
    lang = report_language(options.lang, run.read("spec").get("lang"))
    with staged_report(Path(options.output_root), run) as (staging, final):
        documents = options.documents()
        if isinstance(run, CombinedRun) and submissions(run.runs):  # different people's runs: graded, not compared
            from reportgen.report.grading import write_class  # it builds on analyse_run: imported when used

            write_class(run, broken, staging, lang=lang, checklist=options.checklist, cover=options.cover,
                        documents=documents, single_file=options.single_file,
                        summary_only=options.summary_only)  # fmt: skip
        else:
            _write_report(run, lang, problems, options, documents, staging)
    return final
