"""Sizing an MLP to a parameter budget: the hidden widths whose count is closest to a target (the
"parameter-matched MLP" of a fair CNN-vs-MLP comparison)."""

from __future__ import annotations

import itertools
import math

from reportgen.errors import ModelError


def _mlp_count(hidden: list[int], in_features: int, num_classes: int) -> int:
    widths = [in_features, *hidden, num_classes]
    return sum((a + 1) * b for a, b in itertools.pairwise(widths))


def match_mlp(target: int, in_features: int = 784, num_classes: int = 10, depth: int = 2) -> tuple[list[int], int]:
    """Hidden widths of a `depth`-hidden-layer MLP (Linear with bias) whose count is closest to `target`.

    Widths shrink: hidden layers 1..depth-1 follow a halving pyramid from the first width, and the
    last width is solved exactly (count is linear in it) and kept no wider than the one before.
    Ties go to the shape closest to the halving pyramid. Returns (hidden widths, achieved count).
    """
    if depth < 1:
        raise ModelError(f"match_mlp depth {depth}: expected at least one hidden layer")
    if target < 1 or in_features < 1 or num_classes < 1:
        raise ModelError(
            f"match_mlp: target, in_features and num_classes must be positive (got "
            f"{target}, {in_features}, {num_classes})"
        )
    if depth == 1:
        per_unit = in_features + 1 + num_classes
        candidates = {max(1, (target - num_classes) // per_unit + d) for d in (0, 1)}
        h = min(candidates, key=lambda w: (abs(_mlp_count([w], in_features, num_classes) - target), w))
        return [h], _mlp_count([h], in_features, num_classes)

    best: tuple[tuple[int, int], list[int], int] | None = None
    h1_max = max(1, target // (in_features + 1) + 1)
    for h1 in range(1, h1_max + 1):
        middle = [max(1, round(h1 / 2**i)) for i in range(1, depth - 1)]
        prefix = [h1, *middle]
        prev = prefix[-1]
        base = _mlp_count(prefix, in_features, 0)  # layers up to the last hidden width's input side
        # count = base + (prev + 1)·h + (h + 1)·classes, linear in the last width h
        slope = prev + 1 + num_classes
        ideal = (target - base - num_classes) / slope
        for h in {math.floor(ideal), math.ceil(ideal)}:
            h = min(max(1, h), prev)
            hidden = [*prefix, h]
            count = _mlp_count(hidden, in_features, num_classes)
            key = (abs(count - target), abs(h - round(h1 / 2 ** (depth - 1))))
            if best is None or key < best[0]:
                best = (key, hidden, count)
    assert best is not None
    return best[1], best[2]
