"""Reading a run folder: the RunReader interface a report reads a run through, and ArchiveReader, one archived
run read through it (report/combine.py's CombinedRun reads several as one through the same interface).

Reading never loads torch and never writes; the files are read by archive_records.py's loaders and checked
against manifest.json by manifest.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from reportgen.errors import ArchiveError
from reportgen.privacy import resolved_path, resolved_reference
from reportgen.run import manifest
from reportgen.run.archive_layout import STATUS_FILE, TRIAL_FILE, TRIALS_DIR, trial_folder, validate_run_id
from reportgen.run.archive_records import (
    RunRecord,
    SpecRecord,
    TrialRecord,
    load_header,
    load_predictions,
    load_status,
    load_test_images,
    load_trial,
    load_trial_file,
    spec_paths,
    trial_state,
)
from reportgen.states import RunState, TrialState


class RunReader(Protocol):
    """What the report reads from a run: one archived run (ArchiveReader) or several read as one (CombinedRun).

    `trial_record` and `trial_records` are written here once, from `trial`, for every reader."""

    run_id: str
    path: Path  # the run folder; a combined run has none: its id, for messages

    @property
    def runs(self) -> Sequence[ArchiveReader]:
        """The archived runs behind the report: the run itself, or each combined one."""
        ...

    def origin(self, trial_id: str) -> ArchiveReader:
        """The archived run a trial was trained in."""
        ...

    def read(self, name: str) -> dict[str, Any]:
        """A header record by name: "spec", "environment" or "data" (archive_records.py)."""
        ...

    def record(self) -> RunRecord:
        """status.json, typed."""
        ...

    def trial_ids(self) -> list[str]: ...

    def trial(self, trial_id: str) -> dict[str, Any]:
        """trial.json with its epochs, as archive_records.load_trial reads it."""
        ...

    def predictions(self, trial_id: str) -> list[dict[str, str]]: ...

    def verify(self) -> list[str]:
        """Why the archive cannot be trusted (manifest.verify); empty when it can."""
        ...

    def trial_record(self, trial_id: str) -> TrialRecord | None:
        """The trial, typed; None when it failed before it was registered."""
        return TrialRecord.from_dict(trial_id, self.trial(trial_id))

    def trial_records(self) -> list[TrialRecord]:
        """Every trial that got as far as being registered (it has a label), in trial order."""
        return [record for trial_id in self.trial_ids() if (record := self.trial_record(trial_id)) is not None]


class ArchiveReader(RunReader):
    """One run folder, read. `open_run` checks the folder first; the writer (archive_writing.RunArchive) is one
    too, so a run can be read while it is written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run_id = self.path.name

    @property
    def runs(self) -> list[ArchiveReader]:
        return [self]

    def origin(self, trial_id: str) -> ArchiveReader:
        return self

    def status(self) -> dict[str, Any]:
        """status.json as written."""
        return load_status(self.path)

    def record(self) -> RunRecord:
        """status.json, typed; an ArchiveError for a newer archive format."""
        return RunRecord.from_dict(self.status(), self.path)

    def state(self) -> RunState | str:
        return self.record().state

    def read(self, name: str) -> dict[str, Any]:
        return load_header(self.path, name, self.record().format)

    def resolved_spec(self) -> SpecRecord:
        """spec.json with its model files and data paths resolved against the run folder: what a resume and
        a worker reloading the data use. Runs archived with absolute paths read back unchanged."""
        return spec_paths(
            self.read("spec"), lambda p: resolved_path(p, self.path), lambda r: resolved_reference(r, self.path)
        )

    def test_images(self):
        """The archived test images as a numpy array, or None for runs archived before they were kept."""
        return load_test_images(self.path)

    def trial_dir(self, trial_id: str) -> Path:
        return trial_folder(self.path, trial_id)

    def trial_ids(self) -> list[str]:
        return sorted(p.name for p in (self.path / TRIALS_DIR).iterdir() if (p / TRIAL_FILE).exists())

    def trial(self, trial_id: str) -> dict[str, Any]:
        return load_trial(self.trial_dir(trial_id), self.record().format)

    def trial_status(self, trial_id: str) -> TrialState | None:
        folder = self.trial_dir(trial_id)
        return trial_state(load_trial_file(folder).get("status")) if (folder / TRIAL_FILE).exists() else None

    def predictions(self, trial_id: str) -> list[dict[str, str]]:
        return load_predictions(self.trial_dir(trial_id))

    def verify(self) -> list[str]:
        return manifest.verify(self.path)


def run_folder(path: str | Path) -> Path:
    """The run folder, checked and resolved: `runs/<id>/trials/..` and `.` name the run, never '..' or ''; a
    run of a newer archive format is refused before anything reads it."""
    given = Path(path)
    if not (given / STATUS_FILE).is_file():
        raise ArchiveError(f"{given}: not a reportgen run folder (no status.json)")
    resolved = given.resolve()
    try:
        validate_run_id(resolved.name)
    except ArchiveError as exc:
        raise ArchiveError(f"{given}: the run folder's name is not a run id ({exc})") from None
    RunRecord.from_dict(load_status(resolved), given)
    return resolved


def open_run(path: str | Path) -> ArchiveReader:
    """An existing run folder, to read (archive_writing.open_for_writing opens one to write)."""
    return ArchiveReader(run_folder(path))
