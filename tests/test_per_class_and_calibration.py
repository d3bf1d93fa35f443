"""Per-class precision, recall and F1, and calibration (reportgen/report/quality.py): the figures equal
scikit-learn's on a golden fixture run's archived predictions, the ECE equals a case worked by hand, and the
tables and the reliability diagram reach every format in English and Korean."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from reportgen.report.conclusions import calibration_sentences
from reportgen.report.i18n import translator
from reportgen.report.quality import expected_calibration_error, reliability_bins
from reportgen.report.summary import best_per_model, summarize_trials
from reportgen.run.archive_reading import ArchiveReader

RUNS = Path(__file__).resolve().parent / "golden" / "runs"
THREE = RUNS / "three"


def _predictions(run: Path, trial_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(run / "trials" / trial_id / "predictions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = np.array([int(r["label"]) for r in rows])
    predictions = np.array([int(r["prediction"]) for r in rows])
    return labels, predictions, np.array([float(r["confidence"]) for r in rows])


@pytest.fixture(scope="module")
def rendered_three(golden_reports) -> dict[str, Path]:
    """The three-model golden run rendered in English and Korean (shared: conftest.GoldenReports)."""
    return {lang: golden_reports(["three"], lang) for lang in ("en", "ko")}


# ------------------------------------------------------------------ ECE worked by hand


def test_expected_calibration_error_equals_a_case_worked_by_hand():
    # bins of width 1/15: 0.9 in (13/15, 14/15], 0.6 in (8/15, 9/15]. Bin of 0.9: accuracy 1/2, confidence
    # 0.9 → |0.5 − 0.9| = 0.4, weight 2/4; bin of 0.6: accuracy 1, confidence 0.6 → 0.4, weight 2/4. ECE 0.4.
    confidence = np.array([0.9, 0.9, 0.6, 0.6])
    assert expected_calibration_error(confidence, np.array([1.0, 0.0, 1.0, 1.0])) == pytest.approx(0.4)
    # confidence 0.95 right (gap 0.05) and 0.15 wrong (gap 0.15), each half the images: ECE 0.1
    assert expected_calibration_error(np.array([0.95, 0.15]), np.array([1.0, 0.0])) == pytest.approx(0.1)
    # 75% sure and 3 of 4 right, in one bin: perfectly calibrated
    assert expected_calibration_error(np.full(4, 0.75), np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(0.0)


def test_a_confidence_on_a_bin_edge_belongs_to_the_bin_below_and_nan_has_no_ece():
    """Guo et al.'s bins are ((m−1)/M, m/M]: 0.2 = 3/15 is in (2/15, 3/15], 1.0 in the last, 0.0 in the first."""
    bins = reliability_bins(np.array([0.2, 1.0, 0.0]), np.array([1.0, 1.0, 0.0]))
    assert [(round(15 * b["low"]), round(15 * b["high"]), b["count"]) for b in bins] == [
        (0, 1, 1),
        (2, 3, 1),
        (14, 15, 1),
    ]
    assert expected_calibration_error(np.array([0.5, float("nan")]), np.array([1.0, 0.0])) is None


# ------------------------------------------------------------------ when the conclusion speaks of calibration


def test_the_conclusion_speaks_of_calibration_only_above_the_threshold():
    trials = best_per_model(summarize_trials(ArchiveReader(THREE)))
    ids = [t.trial_id for t in trials]
    en = translator("en")

    def quality(*eces: float, confidence: float = 0.9) -> dict[str, dict]:
        return {i: {"ece": e, "confidence": confidence, "accuracy": confidence - e} for i, e in zip(ids, eces)}

    assert calibration_sentences(trials, quality(0.01, 0.05, 0.03), set(), en) == []
    claims = calibration_sentences(trials, quality(0.02, 0.08, 0.03), set(), en)
    over, better = (c.text for c in claims)
    assert over.startswith("Over-confident") and trials[1].label in over and trials[0].label not in over
    assert (
        better
        == f"{trials[0].label} is better calibrated than {trials[1].label}: expected calibration error 0.020 vs 0.080."
    )
    # a model that did not learn is not judged
    assert calibration_sentences(trials, quality(0.02, 0.08, 0.03), {trials[1].label}, en) == []


# ------------------------------------------------------------------ the golden run's figures


@pytest.mark.slow
def test_per_class_scores_equal_scikit_learns_on_a_golden_run(rendered_three):
    summary = json.loads((rendered_three["en"] / "summary.json").read_text("utf-8"))
    table = summary["report"]["tables"]["per_class_scores"]
    for column, (model, quality) in enumerate(summary["quality"].items(), start=1):
        trial_id = next(r["trial_id"] for r in summary["comparison"] if r["model"] == model)
        labels, predictions, _confidence = _predictions(THREE, trial_id)
        precision, recall, f1, support = precision_recall_fscore_support(
            labels, predictions, labels=range(10), zero_division=np.nan
        )
        for k, scores in enumerate(quality["per_class"]):
            assert scores["f1"] == pytest.approx(f1[k]) and scores["recall"] == pytest.approx(recall[k])
            assert scores["precision"] == (None if np.isnan(precision[k]) else pytest.approx(precision[k]))
            assert scores["support"] == support[k]
            cell = table["rows"][k]["cells"][column]
            shown = "–" if np.isnan(precision[k]) else f"{precision[k]:.3f}"
            assert cell["text"] == f"{f1[k]:.3f}" and cell["note"] == f"P {shown} · R {recall[k]:.3f}"
        macro, weighted = (row["cells"][column]["text"] for row in table["footer"])
        assert macro == f"{f1_score(labels, predictions, average='macro'):.3f}"
        assert weighted == f"{f1_score(labels, predictions, average='weighted'):.3f}"
    assert [r["cells"][0]["text"] for r in table["rows"]][:2] == ["T-shirt/top", "Trouser"]  # the run's classes


def _ece_by_hand(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Guo et al.'s sum, bin by bin with explicit edges (not quality.py's searchsorted)."""
    total = 0.0
    for m in range(15):
        low, high = m / 15, (m + 1) / 15
        inside = (confidence > low) & (confidence <= high) | ((m == 0) & (confidence == 0))
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@pytest.mark.slow
def test_comparison_csv_has_each_trials_macro_f1_and_ece(rendered_three):
    with open(rendered_three["en"] / "comparison.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    for row in rows:
        labels, predictions, confidence = _predictions(THREE, row["trial_id"])
        assert float(row["macro_f1"]) == pytest.approx(f1_score(labels, predictions, average="macro"))
        assert float(row["weighted_f1"]) == pytest.approx(f1_score(labels, predictions, average="weighted"))
        assert float(row["ece"]) == pytest.approx(_ece_by_hand(confidence, (labels == predictions).astype(float)))


@pytest.mark.slow
def test_the_reliability_diagram_is_drawn_and_shown_with_alt_text(rendered_three):
    folder = rendered_three["en"]
    svg = (folder / "figures" / "reliability.svg").read_text("utf-8")
    assert all(f'id="points-reliability-{n}"' in svg for n in range(3)) and "Perfect calibration" in svg
    alt = (  # figure_alt.reliability: the models overlaid and each one's ECE as the quality table prints it
        "Reliability diagram of LeNet-5, MLP 784-75-32-10 and LeNet-5 + BN + Dropout: accuracy against mean "
        "confidence in 15 equal-width confidence bins, beside the diagonal of perfect calibration; expected "
        "calibration error (ECE): LeNet-5 0.197; MLP 784-75-32-10 0.160; LeNet-5 + BN + Dropout 0.407."
    )
    assert f"![{alt}](figures/reliability.svg)" in (folder / "report.md").read_text("utf-8")
    html = (folder / "report.html").read_text("utf-8")
    assert re.search(rf'<svg role="img" aria-label="{re.escape(alt)}"', html)
    assert 'data-table="quality"' in html and 'data-table="per_class_scores"' in html
    tex = (folder / "tables.tex").read_text("utf-8")
    assert r"\caption{F1 and calibration}" in tex and r"\caption{Per-class precision, recall and F1}" in tex


@pytest.mark.slow
def test_the_korean_report_has_korean_headings_for_f1_and_calibration(rendered_three):
    from reportgen.api import Report

    markdown = (rendered_three["ko"] / "report.md").read_text("utf-8")
    assert "### F1 점수와 확신도 보정" in markdown and "### 클래스별 정밀도, 재현율, F1 점수" in markdown
    assert "| 모델 | 테스트 정확도 | 매크로 평균 F1 | 가중 평균 F1 | 평균 확신도 | 기대 보정 오차 |" in markdown
    assert "| 클래스 |" in markdown and "**매크로 평균**" in markdown and "정밀도 0." in markdown
    assert "figures/reliability.svg" in markdown and "확신이 부족한 모델" in markdown  # the conclusion, in Korean
    for english in ("F1 and calibration", "Per-class", "Macro", "ECE", "Reliability", "over-confident"):
        assert english not in markdown
    inline = Report(rendered_three["ko"], THREE)._repr_html_()  # the notebook view
    assert "F1 점수와 확신도 보정" in inline and "기대 보정 오차" in inline
