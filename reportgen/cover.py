"""The cover block a spec or the command line gives: title, course, professor, department, date, authors.

Read from the spec's `[report]` table (recorded in spec.json) and from command-line options, which win.
An unknown key or a wrong shape is one error naming the key. At the spec's level (parsing a spec loads no
report code); report/cover.py lays the cover out.
"""

from __future__ import annotations

import datetime
from typing import Any

from reportgen.errors import SpecError

TEXT_KEYS = ("title", "course", "professor", "department", "date")
COVER_KEYS = (*TEXT_KEYS, "authors")
AUTHOR_SHAPE = 'a list of tables like { name = "Hong Gildong", student_id = "20241234" }'
_MAX_TEXT = 200


def _text(source: str, key: str, value: Any) -> str:
    if isinstance(value, datetime.date):  # TOML dates: `date = 2026-11-24`
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT or "\n" in value:
        raise SpecError(
            f"{source}: key 'report.{key}': expected one line of text (at most {_MAX_TEXT} characters), got {value!r}"
        )
    return value.strip()


def _author(source: str, index: int, value: Any) -> dict[str, str]:
    key = f"authors[{index}]"  # _text names it under report.
    if isinstance(value, str):
        return {"name": _text(source, key, value)}
    if not isinstance(value, dict) or "name" not in value or set(value) - {"name", "student_id"}:
        raise SpecError(f"{source}: key 'report.{key}': expected {AUTHOR_SHAPE}, got {value!r}")
    author = {"name": _text(source, f"{key}.name", value["name"])}
    if "student_id" in value:
        author["student_id"] = _text(source, f"{key}.student_id", str(value["student_id"]))
    return author


def parse_cover(table: dict[str, Any], source: str) -> dict[str, Any]:
    """The validated cover fields of a `[report]` table (other report keys are the caller's)."""
    cover: dict[str, Any] = {key: _text(source, key, table[key]) for key in TEXT_KEYS if key in table}
    if "authors" in table:
        authors = table["authors"]
        if not isinstance(authors, list) or not authors:
            raise SpecError(f"{source}: key 'report.authors': expected {AUTHOR_SHAPE}, got {authors!r}")
        cover["authors"] = [_author(source, i, a) for i, a in enumerate(authors)]
    return cover


def parse_author_option(text: str) -> dict[str, str]:
    """`--author "Name"` or `--author "Name:20241234"` (name, then the student id after the last colon)."""
    name, _, student_id = text.rpartition(":") if ":" in text else (text, "", "")
    table = {"name": name} | ({"student_id": student_id} if student_id else {})
    return _author("--author", 0, table)


def merge_cover(recorded: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Command-line cover options over the spec's: a render may add what the run did not record."""
    given = {k: v for k, v in options.items() if v}
    return parse_cover(recorded | given, "command line") if given else recorded
