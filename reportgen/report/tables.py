"""Builds the report model (model.py) from the analysed run: every table's cells, formatted and worded once.

Input is analysis.analyse_run's context (plus the drawn figures' checklist); output is a ReportModel that
report.html.j2, report.md.j2, the LaTeX writer, summary.json and the notebook view lay out as it is. The
tables are built by job: tables_setup.py (settings, parameters, layers, reproducibility), tables_results.py
(epochs, comparison, quality, seeds, significance), tables_cost.py (cost) and claims.py (findings).
"""

from __future__ import annotations

from reportgen.report.analysed import Analysis
from reportgen.report.claims import findings, same_training, settings_claim
from reportgen.report.model import Claim, ReportModel
from reportgen.report.outline import add_document
from reportgen.report.tables_cost import cost_table
from reportgen.report.tables_results import (
    aggregates_table,
    before_after_table,
    comparison_table,
    epochs_table,
    literature_table,
    mcnemar_table,
    per_class_scores_table,
    per_class_table,
    quality_table,
)
from reportgen.report.tables_setup import (
    architecture_table,
    data_files_table,
    parameters_table,
    reproducibility_table,
    settings_table,
)


def build_report_model(ctx: Analysis) -> ReportModel:
    """The tables and claims of the report, in the order the documents show them."""
    tr = ctx.translate
    tables = [
        settings_table(ctx, tr),
        parameters_table(ctx, tr),
        *[architecture_table(m, tr) for m in ctx.models],
        *[epochs_table(t, ctx, tr) for t in ctx.trials],
        comparison_table(ctx, tr),
        quality_table(ctx, tr),
        per_class_scores_table(ctx, tr),
        cost_table(ctx, tr),
        aggregates_table(ctx, tr),
        mcnemar_table(ctx, tr),
        literature_table(ctx, tr),
        before_after_table(ctx, tr),
        *[per_class_table(g, tr) for g in ctx.galleries],
        reproducibility_table(ctx, tr),
        data_files_table(ctx, tr),
    ]
    checklist = ctx.checklist or {}
    report = ReportModel(
        tables={t.key: t for t in tables if t is not None},
        settings_claim=settings_claim(ctx.settings, tr),
        conclusion=ctx.conclusion,
        findings=findings(ctx.warnings, tr) + same_training(ctx, tr),
        next_steps=ctx.next_steps,
        checklist_title=checklist.get("title", ""),
        checklist=[
            Claim(tr(item["text"]), item["passed"], item["evidence"], item["check"], item["section"])
            for item in checklist.get("items", [])
        ],
    )
    return add_document(report, ctx)
