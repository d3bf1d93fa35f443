"""The report model's own rules that every format then shows: a value combined runs disagree on, and the
notebook's audit marking torchinfo's figure as the report's parameter table does."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
from torch import nn

import reportgen
from reportgen.report.combine import PerRun
from reportgen.report.model import count, decimal, percent

RUNS = Path(__file__).resolve().parent / "golden" / "runs"


def test_a_value_combined_runs_disagree_on_shows_each_runs_value_not_a_dash():
    sizes = PerRun({"a": 600, "b": 1200})
    assert count(sizes) == "600 (a) · 1,200 (b)"
    assert percent(PerRun({"a": 0.5, "b": 0.25})) == "50.00% (a) · 25.00% (b)"
    assert decimal(PerRun({"a": 0.1234567, "b": None}), 2) == "0.12 (a) · – (b)"
    assert count(600) == "600" and count(None) == "–"  # one value as before


class _Tied(nn.Module):
    """Two layers sharing one weight: torchinfo counts it twice, for a reason the audit explains."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


def test_the_notebook_audit_marks_an_explained_torchinfo_difference_as_the_report_does():
    for lang, why in (("en", "ours is right"), ("ko", "이 보고서의 수가 맞습니다")):
        shown = reportgen.audit(_Tied(), input_size=(1, 4), lang=lang)._repr_html_()
        assert "torchinfo 40 ≠" in shown and why in shown and "✗" not in shown


@pytest.mark.slow  # renders a report
def test_the_notebook_shows_a_korean_reports_warnings_in_korean(tmp_path):
    from reportgen.api import Report
    from reportgen.report.documents import RenderOptions
    from reportgen.report.render import render_report

    shutil.copytree(RUNS / "sweep", tmp_path / "sweep")
    folder = render_report(tmp_path / "sweep", RenderOptions(tmp_path / "out", "ko", formats=("md",)))
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    english = [warning["message"] for warning in summary["warnings"]]  # the archive's wording, for the terminal
    shown = Report(folder, tmp_path / "sweep")._repr_html_()
    assert english and not any(html.escape(text) in shown for text in english)
    assert all(html.escape(f["text"]) in shown for f in summary["report"]["findings"]) and "경고" in shown
