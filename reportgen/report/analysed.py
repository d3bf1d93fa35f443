"""A run analysed: the typed result of analysis.analyse_run, which every later step of a render reads.

analyse_run fills what it reads from the archive and computes; analysis.with_figures adds the drawn figures'
files and alt texts; render.py (or grading.py, per hand-in) then judges the checklist and merges the cover.
tables.py builds the report model from it; the layouts never see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reportgen.report.i18n import Translator
from reportgen.report.model import Claim
from reportgen.report.summary import TrialSummary
from reportgen.run.archive_records import RunRecord


@dataclass
class Analysis:
    lang: str
    run_id: str
    status: RunRecord  # status.json (a combined report: each field as the runs agree on it, or per run)
    spec: dict[str, Any]  # the archived spec (a combined report: merged)
    env: dict[str, Any]  # environment.json: versions, device, command
    data: dict[str, Any]  # data.json: dataset, sizes, classes, files, normalisation
    trials: list[TrialSummary]
    models: list[dict[str, Any]]  # per model label: its trials, audit, colour, arguments, code
    colors: dict[str, str]  # per model label, the same in every figure
    settings: dict[str, Any]  # settings_check: constant, varied, identical
    warnings: list  # findings.review_trials: what the lint found, per trial
    comparison: list[dict[str, Any]]  # one row per trial, ranked
    quality: dict[str, dict[str, Any]]  # per model (its best trial): F1, calibration
    before_after: list[dict[str, Any]]
    aggregates: list[dict[str, Any]]  # across seeds
    mcnemar: list[dict[str, Any]]  # pairs of best trials tested on the same images
    heatmap_pivots: list[dict[str, Any]]
    sweep_series: dict[str, Any] | None
    costs: dict[str, Any] | None  # None for runs archived before costs
    appendix_trials: list[TrialSummary]  # a large sweep's trials besides each model's best
    literature: list[dict[str, Any]]  # published results for the dataset
    conclusion: list[Claim]
    next_steps: list[Claim]
    galleries: list[dict[str, Any]]  # per model (its best trial): what its gallery shows
    disagreements: list[dict[str, Any]]  # per pair of models: images only one got right
    problems: list[str]  # why the archive is not whole, when rendered anyway
    generated: str  # the minute of rendering
    translate: Translator
    best: list[TrialSummary]  # each model's best trial
    differences: dict[str, Any] | None  # a combined report's differences between its runs
    # drawn (analysis.with_figures)
    model_curves: list[dict[str, Any]] = field(default_factory=list)
    heatmaps: list[str] = field(default_factory=list)
    sweep_panels: str | None = None
    reliability: str | None = None
    alt: dict[str, str] = field(default_factory=dict)  # every figure file's alt text
    # judged and merged by render.py
    checklist: dict[str, Any] | None = None
    cover: dict[str, Any] = field(default_factory=dict)
    cover_rows: list[tuple[str, str]] = field(default_factory=list)
