"""Statistics behind the comparison section: seed aggregates with 95% intervals, McNemar tests,
and the published figures our numbers are set beside.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from reportgen.report.summary import TrialSummary
from reportgen.settings import REPORTED

SIGNIFICANCE = 0.05
FASHION_README = Path("/usr/share/doc/dataset-fashion-mnist/README.md.gz")
# Published rows a LeNet-5 can stand beside: LeNet itself (LeCun 1998 on MNIST), or a plain two-convolution
# network with pooling and no extras (the Fashion-MNIST benchmark's "2 Conv+pooling", which is LeNet's shape);
# rows with batch norm, augmentation, more layers or another activation measure something else.
COMPARABLE_TO_LENET = re.compile(r".*lenet.*|2 conv\+pooling", re.IGNORECASE)
LECUN_1998 = [  # LeCun, Bottou, Bengio, Haffner (1998), Gradient-based learning applied to document recognition
    {
        "model": "LeNet-5 (LeCun et al. 1998)",
        "preprocessing": "None",
        "dataset": "mnist",
        "accuracy": 0.9905,
        "note": "0.95% test error",
    },
    {
        "model": "LeNet-5 (LeCun et al. 1998)",
        "preprocessing": "distorted training images",
        "dataset": "mnist",
        "accuracy": 0.992,
        "note": "0.8% test error",
    },
]


def distinct_trainings(trials: list[TrialSummary]) -> list[TrialSummary]:
    """The trials, each training once: a trial that was one training with an earlier one (same_training.py:
    `seeds = [0, 0, 0]`, a seed trained again, a copied run) is left out."""
    seen: set[str | int] = set()
    kept = []
    for trial in trials:
        if trial.training not in seen:
            seen.add(trial.training)
            kept.append(trial)
    return kept


def seed_aggregates(trials: list[TrialSummary]) -> list[dict[str, Any]]:
    """Mean ± std and a t-based 95% interval of the final test accuracy over seeds, per configuration; each
    training counts once (`repeated`: the trials left out as one training with another of the row)."""
    import pandas as pd  # here, like scipy below: loading this module stays light

    settings = [k for k in REPORTED if k != "seed"]
    ranked = distinct_trainings([t for t in trials if t.ranked])
    kept = {t.trial_id for t in ranked}
    left_out = [t for t in trials if t.ranked and t.trial_id not in kept]
    runs = pd.DataFrame(
        [(n, t.label, *(t.config[k] for k in settings), t.final["test_acc"]) for n, t in enumerate(ranked)],
        columns=["trial", "model", *settings, "accuracy"],
    )
    configuration = ["model", *settings]
    seeded = runs[runs.groupby(configuration, dropna=False)["trial"].transform("size") > 1]
    # configurations in the order first trained; fmean and stdev (the sample std, like pandas' ddof=1) are
    # correctly rounded, where pandas' mean and std may differ in the last bit
    groups = seeded.groupby(configuration, sort=False, dropna=False).agg(
        first=("trial", "first"), seeds=("accuracy", "size"), mean=("accuracy", fmean), std=("accuracy", stdev)
    )
    rows = []
    for first, seeds, mean, sd in groups.itertuples(index=False):
        from scipy import stats  # here: only seed aggregates need a t quantile, and scipy is slow to load

        half = stats.t.ppf(0.975, seeds - 1) * sd / math.sqrt(seeds)
        this = [ranked[first].label, *(ranked[first].config[k] for k in settings)]
        rows.append(
            {
                "model": ranked[first].label,
                **{k: ranked[first].config[k] for k in settings},
                "seeds": seeds,
                "repeated": [t.trial_id for t in left_out if [t.label, *(t.config[k] for k in settings)] == this],
                "mean": mean,
                "std": sd,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    return rows


def mcnemar(labels: list[int], pred_a: list[int], pred_b: list[int]) -> dict[str, Any]:
    """McNemar's test on paired predictions: exact binomial for few discordant pairs, else χ² with correction."""
    only_a = sum(1 for y, a, b in zip(labels, pred_a, pred_b) if a == y and b != y)
    only_b = sum(1 for y, a, b in zip(labels, pred_a, pred_b) if b == y and a != y)
    discordant = only_a + only_b
    if discordant == 0:
        return {"only_a": 0, "only_b": 0, "statistic": 0.0, "p_value": 1.0, "method": "no discordant pairs"}
    if discordant < 25:
        p = _exact_binomial_p(only_a, discordant)
        return {
            "only_a": only_a,
            "only_b": only_b,
            "statistic": float(min(only_a, only_b)),
            "p_value": float(p),
            "method": "exact binomial",
        }
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return {
        "only_a": only_a,
        "only_b": only_b,
        "statistic": statistic,
        "p_value": math.erfc(math.sqrt(statistic / 2)),
        "method": "chi-squared, continuity corrected",
    }


def _exact_binomial_p(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n trials at p = 0.5 (symmetric, so twice the
    smaller tail, capped at 1), as scipy.stats.binomtest computes it."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def pairwise_mcnemar(best: list[TrialSummary], predictions: dict[str, list[dict[str, str]]]) -> list[dict[str, Any]]:
    """Every pair of models (their best trials) on the same test images, except two that were one training;
    'A beats B' only when p < 0.05."""
    rows = []
    for a, b in itertools.combinations(best, 2):
        if a.training == b.training:
            continue  # one training under two labels: the report says so; a test of it against itself says nothing
        pa, pb = predictions[a.trial_id], predictions[b.trial_id]
        labels = [int(p["label"]) for p in pa]
        if labels != [int(p["label"]) for p in pb]:
            continue  # not the same test set: no paired test
        result = mcnemar(labels, [int(p["prediction"]) for p in pa], [int(p["prediction"]) for p in pb])
        acc_a, acc_b = a.final["test_acc"], b.final["test_acc"]
        winner, loser = (a, b) if acc_a >= acc_b else (b, a)
        rows.append(
            {
                "a": a.label,
                "b": b.label,
                "acc_a": acc_a,
                "acc_b": acc_b,
                **result,
                "significant": result["p_value"] < SIGNIFICANCE,
                "winner": winner.label,
                "loser": loser.label,
            }
        )
    return rows


def fashion_benchmarks(readme: Path = FASHION_README) -> list[dict[str, Any]]:
    """The convolutional rows of the benchmark table shipped in the Debian package's README."""
    if not readme.exists():
        return []
    rows = []
    with gzip.open(readme, "rt", encoding="utf-8", errors="replace") as lines:
        text = list(lines)
    for line in text:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"0\.\d+", cells[2]) and "conv" in cells[0].lower():
            rows.append(
                {
                    "model": cells[0],
                    "preprocessing": cells[1],
                    "accuracy": float(cells[2]),
                    "dataset": "fashion-mnist",
                    "note": "Fashion-MNIST README benchmark (submitted, untested)",
                }
            )
    return rows


def comparable_to_lenet(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The published rows of LeNet-5's shape (COMPARABLE_TO_LENET), matched on the English name (`name`, which a
    translated row keeps) so that every language keeps the same rows."""
    return [row for row in rows if COMPARABLE_TO_LENET.fullmatch(row.get("name", row["model"]))]


def literature(dataset: str) -> list[dict[str, Any]]:
    if dataset == "mnist":
        return LECUN_1998
    return fashion_benchmarks() if dataset == "fashion-mnist" else []
