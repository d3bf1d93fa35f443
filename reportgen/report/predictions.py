"""Which test images a report shows: the galleries' picks, the most frequent confusions with examples, the most
confident mistakes, the confusion matrix and per-class accuracy — from a trial's archived predictions."""

from __future__ import annotations

import math
import random
from typing import Any

GALLERY_CORRECT = 10  # images per sheet row: one correct image per class (up to 10 classes), 10 confident mistakes
CONFUSIONS_SHOWN = 3  # most frequent (true → predicted) pairs per model in the report; misclassified.html has all
EXAMPLES_PER_CONFUSION = 8


def gallery_picks(predictions: list[dict[str, str]], seed: int) -> tuple[list[int], list[int]]:
    """Indices of one correctly classified test image per class (drawn with `seed`, in class order; a class the
    model never got right has none) and of every misclassified one."""
    correct = [p for p in predictions if p["label"] == p["prediction"]]
    random.Random(seed).shuffle(correct)
    first_of_class: dict[int, int] = {}
    for p in correct:
        first_of_class.setdefault(int(p["label"]), int(p["index"]))
    picked = [first_of_class[label] for label in sorted(first_of_class)][:GALLERY_CORRECT]
    wrong = [int(p["index"]) for p in predictions if p["label"] != p["prediction"]]
    return picked, wrong


def top_confusions(
    predictions: list[dict[str, str]], limit: int = CONFUSIONS_SHOWN, examples: int = EXAMPLES_PER_CONFUSION
) -> list[dict[str, Any]]:
    """The most frequent (true → predicted) mistakes, most frequent first, each with its most confident
    examples: which classes the model mixes up, and on what kind of image."""
    import pandas as pd

    wrong = pd.DataFrame(
        [
            (int(p["label"]), int(p["prediction"]), int(p["index"]), prediction_confidence(p))
            for p in predictions
            if p["label"] != p["prediction"]
        ],
        columns=["true", "predicted", "index", "confidence"],
    )
    pair = ["true", "predicted"]
    # groupby orders the pairs and stable sorts keep ties as they were: equal counts in (true, predicted)
    # order, equal confidences in test-set order (as in runs archived before confidences were recorded)
    counts = wrong.groupby(pair).size().sort_values(ascending=False, kind="stable").iloc[:limit]
    surest = wrong.sort_values("confidence", ascending=False, kind="stable").groupby(pair)["index"].agg(list)
    return [
        {"true": true, "predicted": predicted, "count": count, "examples": surest[true, predicted][:examples]}
        for (true, predicted), count in counts.items()
    ]


def confident_mistakes(predictions: list[dict[str, str]], count: int = GALLERY_CORRECT) -> list[int]:
    """Indices of the misclassified test images the model was surest of."""
    return [int(p["index"]) for p in _most_confident([p for p in predictions if p["label"] != p["prediction"]])[:count]]


def _most_confident(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Highest softmax confidence first; runs archived before confidences were recorded keep test-set order."""
    return sorted(rows, key=lambda p: -prediction_confidence(p))


def prediction_confidence(p: dict[str, str]) -> float:
    """The softmax confidence; 0 when unrecorded or not finite (a diverged model's NaN sorts last)."""
    value = float(p.get("confidence") or 0)
    return value if math.isfinite(value) else 0.0


def confusion_matrix(predictions: list[dict[str, str]], num_classes: int) -> list[list[int]]:
    """matrix[true][predicted] counts; a class that never occurs has its row and column of zeros."""
    import pandas as pd

    counts = pd.crosstab(*(pd.Series([int(p[k]) for p in predictions], dtype=int) for k in ("label", "prediction")))
    classes = range(num_classes)
    return counts.reindex(index=classes, columns=classes, fill_value=0).to_numpy(dtype=int).tolist()


def per_class_accuracy(matrix: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    return [
        {"class": name, "correct": row[i], "total": sum(row), "accuracy": row[i] / sum(row) if sum(row) else None}
        for i, (name, row) in enumerate(zip(classes, matrix))
    ]
