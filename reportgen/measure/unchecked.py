"""What a MAC count or cross-check could not see, worded once: in English for `reportgen params` and archived audits
(measure/mac_text.py), in the report's language for the report (report/tables.py). Imports no torch, so the
report stage can use it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def _english(key: str, **values: Any) -> str:
    return key.format(**values)


def unchecked_text(
    entries: Iterable[Mapping[str, Any]], tr: Callable[..., str] = _english, why: Callable[[Any], str] = str
) -> str:
    """Layers of one type and reason together ("lstm (LSTM, 215,040 MACs): no formula for …", "2 BatchNorm2d
    layers (6,304 MACs): …"), joined with "; "; "" when nothing went unchecked. `tr` words the sentence (a
    report Translator), `why` the recorded reason, a message (str: in English; a Translator's .render)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((entry["type"], entry["why"]), []).append(entry)
    parts = []
    for (kind, reason), group in groups.items():
        names = list(dict.fromkeys(entry["name"] for entry in group))
        values = {"type": kind, "macs": f"{sum(entry['macs'] for entry in group):,}", "why": why(reason)}
        if len(names) == 1:
            parts.append(tr("{name} ({type}, {macs} MACs): {why}", name=names[0], **values))
        else:
            parts.append(tr("{n} {type} layers ({macs} MACs): {why}", n=len(names), **values))
    return "; ".join(parts)


def explained_text(
    entries: Iterable[Mapping[str, Any]], tr: Callable[..., str] = _english, why: Callable[[Any], str] = str
) -> str:
    """Layers where a check's figure differs from ours for a known reason, each with its figures and which side
    is right ("fc (Linear): torchinfo 3,930, ours 7,840 + 10 bias: torchinfo counts only …: ours is right")."""
    return "; ".join(
        tr(
            "{name} ({type}): torchinfo {theirs}, ours {macs} + {bias} bias: {why}",
            name=entry["name"],
            type=entry["type"],
            theirs=f"{entry['theirs']:,}",
            macs=f"{entry['macs']:,}",
            bias=f"{entry['bias_adds']:,}",
            why=why(entry["why"]),
        )
        for entry in entries
    )


def not_counted_text(entries: Iterable[str], why: Callable[[str], str] = str) -> str:
    """Ops that ran without a formula ("(root) (CdistNet): aten._cdist_forward (pairwise distances: no formula
    here)"), joined with "; ", each reason, a fixed sentence, worded by `why` (a report Translator)."""
    parts = []
    for entry in entries:
        head, _, reason = entry.rpartition(" (")
        parts.append(f"{head} ({why(reason[:-1])})" if head and reason.endswith(")") else entry)
    return "; ".join(parts)
