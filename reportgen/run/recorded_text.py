"""Runs of archive formats 1 and 2 recorded their sentences as English text ("IDX files in data/", "2·6 = 12
(+12 running stats, not trainable)"); newer runs record messages, keys with values (reportgen/messages.py).
This is the one reader that turns such text into messages, by the sentences those versions wrote, once, when
the archive's records are read (run/archive_records.py); nothing downstream ever matches text against a pattern.

Only the sentences below are matched as patterns, so no user text (a model label, a path) is taken for one;
any other text becomes a message whose key is the text itself (a fixed sentence the catalogue translates, or
text such as a formula that it leaves as it is).
"""

from __future__ import annotations

import re
import string
from functools import cache

from reportgen.messages import Message, Op

# The sentences with values that formats 1–2 wrote in English (data/datasets.py's source, measure/params.py's
# formula notes and torchinfo notes, measure/mac_checks.py's reasons).
PATTERNS = (
    "no formula for {ops}",  # why a MAC cross-check could not see a layer (measure/mac_checks.py)
    "its rule counts a Linear once per first dimension ({n})",
    "IDX files in {path}",
    "torchvision {dataset} download",
    "{formula} (+{count} running stats, not trainable)",
    "{count} slopes (one per channel) = {total}",
    "{formula} [{count} pruned]",
    (
        "torchinfo counts the {repeated} shared (tied) parameters once per layer that uses them; the model stores and "
        "trains {total}: ours is right"
    ),
    (
        "torchinfo counts the {left} parameters left after pruning; the model still stores {total} ({pruned} masked to "
        "zero): both are right, for different questions"
    ),
)
OP_PREFIXES = ("aten.", "prims.")


def recorded_message(text: str) -> Message:
    """English text a format 1–2 run recorded, as the message a newer run records for it; its values are read
    the same way ("no affine parameters (+12 running stats, …)": the formula is a message too)."""
    for key, pattern in _compiled():
        match = pattern.fullmatch(text)
        if match:
            return Message(key, {name: _value(name, value) for name, value in match.groupdict().items()})
    return Message(text)


def _value(name: str, text: str) -> Message | list[Message | Op]:
    if name == "ops":  # "aten.native_batch_norm, aten.foo": each op said in words in a report
        return [Op(op) if op.startswith(OP_PREFIXES) else Message(op) for op in text.split(", ")]
    return recorded_message(text)


@cache
def _compiled() -> list[tuple[str, re.Pattern]]:
    return [(key, _key_pattern(key)) for key in PATTERNS]


def _key_pattern(key: str) -> re.Pattern:
    parts = [
        re.escape(text) + (f"(?P<{name}>.+?)" if name else "")
        for text, name, _spec, _conv in string.Formatter().parse(key)
    ]
    return re.compile("".join(parts), re.DOTALL)
