"""A class of hand-ins made from one small golden run (tests/golden/runs/): each copy re-saved under another
student with its own training seed, a few of its test predictions changed (so no two are one training or a
near-identical copy) and its metrics made to match, then sealed again. Shared by tests/test_grading_class.py
and benchmarks/grading_scale.py (100 hand-ins, no training needed)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from reportgen.run.manifest import write_manifest

GOLDEN_RUNS = Path(__file__).resolve().parent / "golden" / "runs"
FAMILY = "김이박최정강조윤장임한오서신권황안송류홍"
COURSE = "딥러닝 기초"  # on every authored hand-in's cover
GIVEN = ("민준", "서연", "도윤", "하은", "시우", "지유", "주원", "서윤", "예준", "지민")


def student(k: int) -> dict[str, str]:
    """The k-th student: a Korean name and a student id, both unique for k < 200."""
    return {"name": FAMILY[k % len(FAMILY)] + GIVEN[k // len(FAMILY) % len(GIVEN)], "student_id": f"2025{k:04d}"}


def hand_in(original: Path, copy: Path, author: dict[str, str] | None, seed: int) -> Path:
    """`original` re-saved as another student's hand-in (no author when None), trained with `seed` on the same
    images (the data seed kept): each trial's seed, 2 to 4 of its right test predictions made wrong (_wrong_now) and
    its final test accuracy to match, sealed again."""
    shutil.copytree(original, copy)
    spec = json.loads((copy / "spec.json").read_text("utf-8"))
    spec["cover"] = {"authors": [author], "course": COURSE} if author else {}
    spec["data"].setdefault("seed", spec["train"]["seeds"][0])  # the same images as the original: one data seed
    spec["train"]["seeds"] = [seed]
    _write_json(copy / "spec.json", spec)
    rng = np.random.default_rng(seed)
    for trial in sorted((copy / "trials").iterdir()):
        record = json.loads((trial / "trial.json").read_text("utf-8"))
        record["config"]["seed"] = seed
        _write_json(trial / "trial.json", record)
        if (trial / "predictions.csv").is_file():  # a failed trial has none
            _change_predictions(trial, seed, rng)
    write_manifest(copy)
    return copy


def resave(original: Path, copy: Path, author: dict[str, str]) -> Path:
    """A copied archive handed in under another name: the cover edited and the manifest sealed again."""
    shutil.copytree(original, copy)
    spec = json.loads((copy / "spec.json").read_text("utf-8"))
    spec["cover"] = (spec.get("cover") or {}) | {"authors": [author]}
    _write_json(copy / "spec.json", spec)
    write_manifest(copy)
    return copy


def _wrong_now(seed: int, right: int) -> set[int]:
    """Which of the `right` right predictions a hand-in of `seed` gets wrong instead: 2 to 4 of them, a set no other
    seed below 2 × right shares (random picks collide: two hand-ins would then be one training)."""
    step = 1 + seed // right
    return {(seed + j * step) % right for j in range(2 + seed % 3)}


def _change_predictions(trial: Path, seed: int, rng: np.random.Generator) -> None:
    with open(trial / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    right = [row for row in rows if row["label"] == row["prediction"]]
    for row in _wrong_now(seed, len(right)):
        right[row]["prediction"] = str((int(right[row]["label"]) + 1) % 10)
    with open(trial / "predictions.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    epochs = json.loads((trial / "metrics.json").read_text("utf-8"))
    epochs[-1]["test_acc"] = sum(row["label"] == row["prediction"] for row in rows) / len(rows)
    epochs[-1]["train_loss"] *= 1 + rng.uniform(0.001, 0.01)  # a training of its own: never identical metrics
    _write_json(trial / "metrics.json", epochs)


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "utf-8")


def make_class(root: Path, size: int, original: Path = GOLDEN_RUNS / "grade-b") -> list[Path]:
    """`size` hand-ins of `original` under root/, named s000, s001, …, each by its own student."""
    root.mkdir(parents=True, exist_ok=True)
    return [hand_in(original, root / f"s{k:03d}", student(k), seed=k + 1) for k in range(size)]
