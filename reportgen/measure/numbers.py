"""How the audit writes a count and a shape, shared by the audit (params.py) and its layouts (audit_text.py):
here, so neither imports the other for them."""

import unicodedata
from collections.abc import Callable
from typing import Any


def thousands(value: int) -> str:
    return f"{value:,}"


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(d) for d in shape)


# How a layout words a recorded sentence (a reportgen.messages.Message) or a fixed phrase: `str` in English;
# reportgen.report.i18n.wording(lang) in another language (measure/ never imports the report).
Words = Callable[[Any], str]


def text_width(text: str) -> int:
    """Columns `text` takes in a terminal: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """`text` filled with spaces to `width` terminal columns, on the left when `right`."""
    fill = " " * max(0, width - text_width(text))
    return fill + text if right else text + fill
