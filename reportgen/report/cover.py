"""The report's cover rows: how the cover block (reportgen/cover.py) is laid out in every format.
Only the keys given are shown."""

from __future__ import annotations

from typing import Any

# (label, key) in the order a Korean course cover lists them; labels are catalogue keys.
COVER_ROWS = (
    ("Course", "course"),
    ("Professor", "professor"),
    ("Department", "department"),
    ("Submission date", "date"),
)


def cover_rows(cover: dict[str, Any]) -> list[tuple[str, str]]:
    """The cover as (label, text) rows: course, professor, department, date, then one row per author."""
    rows = [(label, cover[key]) for label, key in COVER_ROWS if cover.get(key)]
    for author in cover.get("authors", []):
        rows.append(("Student ID / name", " ".join(filter(None, (author.get("student_id"), author["name"])))))
    return rows
