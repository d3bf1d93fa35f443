"""manifest.json: the sha256 of every file of a run and the state it was sealed in, written last; read to verify
the run (nothing missing, added or changed since) and to know a file's checksum without hashing it again.

Format 2 (MANIFEST_FORMAT): {"format", "state", "sealed", "files": {path: sha256}}, status.json included.
Format 1, written before status.json was covered: a bare {path: sha256} without status.json or dot files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import ArchiveError
from reportgen.files import sha256_file
from reportgen.run.archive_files import atomic_write_json, read_json, writing
from reportgen.run.archive_layout import LOCK_FILE, MANIFEST_FILE, MANIFEST_FORMAT, STATUS_FILE, now
from reportgen.run.archive_records import load_status
from reportgen.states import RunState

READABLE_FORMATS = (1, MANIFEST_FORMAT)
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Manifest:
    """manifest.json as read: `files` None when it is malformed (neither format)."""

    format: Any  # 1 for a bare map; else what the file says (check_readable refuses one it does not know)
    files: dict[str, str] | None
    state: Any = None  # the state it was sealed in (format 2)
    sealed: str = ""
    covers_status: bool = True  # format 1 left status.json and dot files out

    @classmethod
    def from_json(cls, payload: Any) -> Manifest:
        found = payload.get("format", 1) if isinstance(payload, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("files"), dict):
            return cls(found, payload["files"], payload.get("state"), payload.get("sealed", ""))
        if isinstance(payload, dict) and all(isinstance(v, str) for v in payload.values()):
            return cls(found, dict(payload), covers_status=False)
        return cls(found, None)


def load_manifest(folder: Path) -> Manifest | None:
    """The run's manifest; None when there is none (not sealed, or a symbolic link in its place)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file() or path.is_symlink():
        return None
    return Manifest.from_json(read_json(path))


def recorded_checksums(folder: Path) -> dict[str, str]:
    """The sha256 of each file as the manifest recorded it; {} before the run is sealed or when malformed."""
    manifest = load_manifest(folder)
    return (manifest.files or {}) if manifest else {}


def check_readable(folder: Path) -> None:
    """A manifest of a format this reportgen does not know is refused: its files cannot be read safely."""
    manifest = load_manifest(folder)
    if manifest is not None and manifest.format not in READABLE_FORMATS:
        raise ArchiveError(
            f"{folder}: archive format {manifest.format!r} is unknown to this reportgen, which reads "
            f"format {MANIFEST_FORMAT}; render it with the reportgen version that wrote it"
        )


def entries(folder: Path) -> dict[str, Path]:
    """Every file and symlink of the run by relative path, except manifest.json and the lock file."""
    found: dict[str, Path] = {}
    for parent, dirs, files in os.walk(folder):  # does not follow symlinked folders
        here = Path(parent)
        links = [d for d in dirs if (here / d).is_symlink()]
        for name in (*files, *links):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if rel not in (MANIFEST_FILE, LOCK_FILE):
                found[rel] = path
    return found


def write_manifest(folder: Path, state: RunState | str | None = None) -> None:
    """sha256 of every file of the run (status.json included; only the lock file left out), and `state` (by
    default the one status.json records)."""
    folder = Path(folder)
    with writing(folder):
        state = RunState(state or load_status(folder).get("state"))
        files = {}
        for name, path in sorted(entries(folder).items()):
            if not path.is_symlink():  # reportgen writes none; one planted later shows up as added
                files[name] = sha256_file(path)
        atomic_write_json(
            folder / MANIFEST_FILE,
            {"format": MANIFEST_FORMAT, "state": state.value, "sealed": now(), "files": files},
        )


def verify(folder: Path) -> list[str]:
    """Problems that make the archive untrustworthy: not complete, and every file missing, added or
    changed since the run was sealed (status.json included). Empty when the run can be trusted."""
    problems = []
    status = load_status(folder)
    state = status.get("state")
    if state != RunState.COMPLETE:
        error = status.get("error")
        problems.append(f"run state is {state!r}, not 'complete'" + (f" ({error})" if error else ""))
    manifest = load_manifest(folder)
    if manifest is None:
        return problems + ["manifest.json is missing"]
    if manifest.files is None:
        return problems + ["manifest.json is malformed"]
    present = entries(folder)
    if manifest.covers_status and manifest.state != state:
        problems.append(f"status.json says the run is {state!r}, but it was sealed {manifest.state!r}")
    if not manifest.covers_status:
        present = {k: v for k, v in present.items() if k != STATUS_FILE and not Path(k).name.startswith(".")}
    return problems + _changes(manifest.files, present)


def _changes(files: dict[str, str], present: dict[str, Path]) -> list[str]:
    """Each file missing, added or changed against the checksums `files`, at most MAX_LISTED_PROBLEMS."""
    changes = [f"{name} is missing" for name in sorted(files.keys() - present.keys())]
    changes += [
        f"{name} was added after the run was sealed (not in manifest.json)"
        for name in sorted(present.keys() - files.keys())
    ]
    for name in sorted(files.keys() & present.keys()):
        if present[name].is_symlink():
            changes.append(f"{name} is a symbolic link, not the file that was sealed")
        elif sha256_file(present[name]) != files[name]:
            changes.append(f"{name} does not match its sha256 in manifest.json")
    if len(changes) > MAX_LISTED_PROBLEMS:
        changes = changes[:MAX_LISTED_PROBLEMS] + [f"… and {len(changes) - MAX_LISTED_PROBLEMS} more"]
    return changes
