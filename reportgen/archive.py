"""The run archive: runs/<run-id>/ with fixed file names, atomic writes and a checksum manifest.

Layout (MLflow-style: parameters written once, metrics appended per epoch, state in status.json):
    status.json        state running → complete | failed, times, command line
    spec.json          the resolved experiment spec (written once)
    environment.json   versions, device, threads, git commit
    data.json          dataset, source, file checksums, normalisation, sizes, class names
    trials/<id>/trial.json, metrics.csv, metrics.json, predictions.csv, model.pt
    manifest.json      sha256 of every file above, written when the run completes
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import secrets
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .errors import ArchiveError

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "val_loss", "val_acc")
STATES = ("running", "complete", "failed")


def validate_run_id(run_id: str) -> str:
    """Run ids become folder names: no separators, no '..', nothing hidden."""
    if not RUN_ID.match(run_id) or ".." in run_id:
        raise ArchiveError(f"run id {run_id!r}: expected letters, digits, '_', '-', '.' "
                           "(no path separators, no '..', not starting with '.')")
    return run_id


def check_writable(folder: Path) -> None:
    """Fail before any training if results could not be written to this folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ArchiveError(f"{folder}: not writable ({exc.strerror or exc})") from exc


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{path}: cannot read ({exc})") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rows_to_csv(rows: list[dict[str, Any]], fields: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


class RunArchive:
    """One run folder. Create with `RunArchive.create`, open an existing one with `RunArchive(path)`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run_id = self.path.name

    # --- writing ---------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, run_id: str | None, header: dict[str, Any]) -> "RunArchive":
        """Make the folder (never reusing one: mkdir fails if it exists) and write the run's header files."""
        run_id = validate_run_id(run_id or new_run_id())
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / run_id).mkdir()
        except FileExistsError as exc:
            raise ArchiveError(f"{root / run_id}: a run with this id already exists") from exc
        except OSError as exc:
            raise ArchiveError(f"{root}: cannot create the run folder ({exc.strerror})") from exc
        run = cls(root / run_id)
        run.lock()
        (run.path / "trials").mkdir()
        for name, payload in header.items():  # spec, environment, data: written once
            atomic_write_json(run.path / f"{name}.json", payload)
        run.set_status("running")
        return run

    def set_status(self, state: str, **extra: Any) -> None:
        status = self.status() if (self.path / "status.json").exists() else {"started": _now()}
        status.update(state=state, updated=_now(), **extra)
        if state != "running":
            status["finished"] = _now()
        atomic_write_json(self.path / "status.json", status)

    def trial_dir(self, trial_id: str) -> Path:
        return self.path / "trials" / validate_run_id(trial_id)

    def start_trial(self, trial_id: str, info: dict[str, Any]) -> None:
        folder = self.trial_dir(trial_id)
        folder.mkdir(exist_ok=True)
        atomic_write_json(folder / "trial.json", info | {"status": "running"})

    def write_epochs(self, trial_id: str, epochs: list[Any]) -> None:
        """Rewrite the trial's metrics (CSV + JSON) atomically after each epoch."""
        rows = [asdict(e) if not isinstance(e, dict) else e for e in epochs]
        folder = self.trial_dir(trial_id)
        atomic_write_bytes(folder / "metrics.csv", rows_to_csv(rows, METRIC_FIELDS))
        atomic_write_json(folder / "metrics.json", rows)

    def save_checkpoint(self, trial_id: str, checkpoint: dict[str, Any]) -> None:
        """Everything needed to continue after this epoch; loaded back with weights_only=True."""
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(self.trial_dir(trial_id) / "checkpoint.pt", buffer.getvalue())

    def load_checkpoint(self, trial_id: str) -> dict[str, Any] | None:
        path = self.trial_dir(trial_id) / "checkpoint.pt"
        if not path.exists():
            return None
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a corrupt checkpoint must not be silently trusted
            raise ArchiveError(f"{path}: cannot load checkpoint ({exc})") from exc

    def fail_trial(self, trial_id: str, error: str) -> None:
        path = self.trial_dir(trial_id) / "trial.json"
        info = read_json(path) if path.exists() else {"trial_id": trial_id}
        path.parent.mkdir(exist_ok=True)
        atomic_write_json(path, info | {"status": "failed", "error": error})

    def trial_status(self, trial_id: str) -> str | None:
        path = self.trial_dir(trial_id) / "trial.json"
        return read_json(path).get("status") if path.exists() else None

    def lock(self) -> None:
        """Hold an exclusive lock on the run for this process's lifetime: one writer per run."""
        import fcntl

        self._lock = open(self.path / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ArchiveError(f"{self.path}: another reportgen process is writing this run") from exc

    def finish_trial(self, trial_id: str, status: str, predictions: dict[str, list], weights: dict,
                     **extra: Any) -> None:
        folder = self.trial_dir(trial_id)
        fields = list(predictions)
        rows = [dict(zip(fields, values)) for values in zip(*predictions.values())]
        atomic_write_bytes(folder / "predictions.csv", rows_to_csv(rows, fields))
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        atomic_write_bytes(folder / "model.pt", buffer.getvalue())
        info = read_json(folder / "trial.json") | {"status": status} | extra
        atomic_write_json(folder / "trial.json", info)

    def complete(self) -> None:
        """Seal the run: manifest of every file's sha256, then state complete."""
        for checkpoint in self.path.glob("trials/*/checkpoint.pt"):
            checkpoint.unlink()  # resume state is useless once the run is complete
        files = sorted(p for p in self.path.rglob("*") if p.is_file()
                       and p.name not in ("manifest.json", "status.json") and not p.name.startswith("."))
        manifest = {str(p.relative_to(self.path)): sha256_file(p) for p in files}
        atomic_write_json(self.path / "manifest.json", manifest)
        self.set_status("complete")

    # --- reading ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return read_json(self.path / "status.json")

    def read(self, name: str) -> Any:
        return read_json(self.path / f"{name}.json")

    def trial_ids(self) -> list[str]:
        return sorted(p.name for p in (self.path / "trials").iterdir() if (p / "trial.json").exists())

    def trial(self, trial_id: str) -> dict[str, Any]:
        folder = self.trial_dir(trial_id)
        info = read_json(folder / "trial.json")
        info["epochs"] = read_json(folder / "metrics.json") if (folder / "metrics.json").exists() else []
        return info

    def predictions(self, trial_id: str) -> list[dict[str, str]]:
        with open(self.trial_dir(trial_id) / "predictions.csv", newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def verify(self) -> list[str]:
        """Problems that make the archive untrustworthy: not complete, missing or altered files."""
        problems = []
        state = self.status().get("state")
        if state != "complete":
            problems.append(f"run state is {state!r}, not 'complete'")
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            return problems + ["manifest.json is missing"]
        for name, digest in read_json(manifest_path).items():
            file = self.path / name
            if not file.is_file():
                problems.append(f"{name} is missing")
            elif sha256_file(file) != digest:
                problems.append(f"{name} does not match its sha256 in manifest.json")
        return problems


def open_run(path: str | Path) -> RunArchive:
    path = Path(path)
    if not (path / "status.json").is_file():
        raise ArchiveError(f"{path}: not a reportgen run folder (no status.json)")
    return RunArchive(path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
