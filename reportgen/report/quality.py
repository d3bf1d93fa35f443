"""Quality beyond accuracy, from one trial's archived test predictions (predictions.csv: label, prediction,
confidence): per-class precision, recall and F1 with their macro and weighted averages (scikit-learn), and
calibration — expected calibration error and the reliability diagram's bins.

Calibration follows Guo et al. 2017 ("On Calibration of Modern Neural Networks"): the top-label confidence
(the softmax probability of the predicted class) in 15 equal-width bins ((0, 1/15], (1/15, 2/15], …, a
confidence of 0 in the first); ECE = Σ_bins (images in bin / images) · |accuracy in bin − mean confidence in
bin|. Written with numpy, not torchmetrics: torchmetrics would load torch into every render, which reads no
tensors (render.py keeps torch out), for a sum of a few lines; tests check it on a case worked by hand.

Pure data in, plain dicts out (summary.json stores them; a value that is undefined is None, never NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

ECE_BINS = 15


def _number(value: Any) -> float | None:
    """A float for JSON: None where scikit-learn or numpy said undefined (NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def class_scores(labels: np.ndarray, predictions: np.ndarray, classes: int) -> dict[str, Any]:
    """Precision, recall, F1 and support of every class 0..classes-1, and their macro and weighted averages.
    A class the model never predicted has no precision (None: 0/0, left out of the averages' precision, as
    scikit-learn's zero_division=nan does); its F1 is still 0 when the class occurs."""
    every = list(range(classes))

    def scores(average: str | None) -> tuple:
        return precision_recall_fscore_support(labels, predictions, labels=every, average=average, zero_division=np.nan)

    precision, recall, f1, support = scores(None)
    per_class = [
        {"precision": _number(p), "recall": _number(r), "f1": _number(f), "support": int(s)}
        for p, r, f, s in zip(precision, recall, f1, support)
    ]
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _support = scores(average)
        averages[average] = {"precision": _number(p), "recall": _number(r), "f1": _number(f)}
    return {"per_class": per_class, **averages}


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Each confidence's bin: ((m-1)/bins, m/bins] is bin m-1; a confidence of exactly 0 goes to the first."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """The non-empty confidence bins: their edges, how many test images fell in each, their accuracy and
    mean confidence (what the reliability diagram plots, and what the ECE sums)."""
    index = _bin_of(confidence, bins)
    shown = []
    for m in range(bins):
        inside = index == m
        if inside.any():
            shown.append(
                {
                    "low": m / bins,
                    "high": (m + 1) / bins,
                    "count": int(inside.sum()),
                    "accuracy": float(correct[inside].mean()),
                    "confidence": float(confidence[inside].mean()),
                }
            )
    return shown


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """Guo et al.'s ECE over `bins` equal-width bins of top-label confidence; None when there is no image or a
    confidence is not finite (a diverged model's NaN)."""
    if len(confidence) == 0 or not np.isfinite(confidence).all():
        return None
    total = len(confidence)
    return sum(
        b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(confidence, correct, bins)
    )


def trial_quality(rows: list[dict[str, str]], classes: int) -> dict[str, Any]:
    """Everything quality.py reports for one trial, from its predictions.csv rows: accuracy, per-class
    scores and averages; with confidences recorded (runs archived before them have none) and finite, the mean
    confidence, the ECE and the reliability bins, else None and no bins."""
    labels = np.array([int(r["label"]) for r in rows], dtype=int)
    predictions = np.array([int(r["prediction"]) for r in rows], dtype=int)
    correct = (labels == predictions).astype(float)
    quality = {"accuracy": float(correct.mean()) if len(rows) else None} | class_scores(labels, predictions, classes)
    confidence = np.array([float(r.get("confidence") or "nan") for r in rows], dtype=float)
    calibrated = len(rows) > 0 and bool(np.isfinite(confidence).all())
    return quality | {
        "confidence": float(confidence.mean()) if calibrated else None,
        "ece": expected_calibration_error(confidence, correct) if calibrated else None,
        "ece_bins": ECE_BINS,
        "bins": reliability_bins(confidence, correct) if calibrated else [],
    }
