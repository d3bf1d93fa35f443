"""How the archive encodes its files: one strict JSON encoding, CSV rows, and atomic writes whose OSError
(disk full, read-only, I/O error) becomes one ArchiveWriteError naming the file."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reportgen.errors import ArchiveError
from reportgen.files import atomic_write
from reportgen.messages import Message, Op, encoded


class ArchiveWriteError(ArchiveError):
    """Writing the run's files failed (disk full, read-only, I/O error): an environment problem, not
    a trial's. The run ends `failed`, keeps its checkpoints and can be resumed once it is fixed."""


@contextlib.contextmanager
def writing(what: Path) -> Iterator[None]:
    """OSError while writing (ENOSPC, EROFS, EIO…) → one ArchiveWriteError naming the file."""
    try:
        yield
    except OSError as exc:
        raise ArchiveWriteError(f"{exc.filename or what}: cannot write ({exc.strerror or exc})") from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with writing(path):
        atomic_write(path, lambda handle: handle.write(data))


def json_safe(value: Any) -> Any:
    """NaN and ±inf (a diverged model's loss) become null: JSON has no NaN, and strict readers reject it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Message, Op)):
        return encoded(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def json_bytes(payload: Any) -> bytes:
    """The one JSON encoding of the archive: strict (no NaN/Infinity tokens), UTF-8, indented."""
    return (json.dumps(json_safe(payload), indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json_bytes(payload))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise ArchiveError(f"{path}: cannot read ({exc})") from exc


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (every record of a run but the metrics list)."""
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise ArchiveError(f"{path}: expected a JSON object")
    return payload


def rows_to_csv(rows: list[dict[str, Any]], fields: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
