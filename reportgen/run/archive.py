"""The run archive: runs/<run-id>/ with fixed file names, atomic writes and a checksum manifest.

Layout (MLflow-style: parameters written once, metrics appended per epoch, state in status.json):
    status.json        archive `format` (ARCHIVE_FORMAT; runs without it are format 1), state (RunState):
                       running → complete | partial | failed, times, error, failed trials
    spec.json          the resolved experiment spec (written once)
    environment.json   versions, device, threads, git commit
    data.json          dataset, source (a message: key and values), file checksums, normalisation, sizes,
                       class names
    test_images.npz    the test images the trials were evaluated on (uint8, N×C×H×W), so a report's
                       galleries render without the original data files
    trials/<id>/trial.json, metrics.csv, metrics.json, predictions.csv, model.pt
    manifest.json      sha256 of every other file (status.json included, only .lock left out) and the
                       sealed state; written last, when the run is sealed complete, partial or failed

States are defined once, here (RunState, TrialState); everything else compares against them.
Readers get frozen records (RunRecord, TrialRecord, ModelAuditRecord) whose `from_dict` fills in what
older formats lack and reads the English sentences formats 1–2 recorded as messages (run/recorded_text.py);
a run from a newer format is refused when it is opened.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import functools
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from reportgen.errors import ArchiveError
from reportgen.files import atomic_write, sha256_file
from reportgen.messages import Message, Op, Recorded, decoded, encoded
from reportgen.privacy import (
    portable_path,
    portable_reference,
    resolved_path,
    resolved_reference,
    shown_path,
    tilde,
)
from reportgen.run.recorded_text import recorded_message
from reportgen.settings import TrainConfig
from reportgen.states import FINISHED_TRIALS, RunState, TrialState

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # used with fullmatch: `$` would allow a final "\n"
METRIC_FIELDS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "val_loss", "val_acc", "lr"
)  # fmt: skip
# File names of a run folder, spelled only here.
STATUS_FILE = "status.json"
SPEC_FILE = "spec.json"
ENVIRONMENT_FILE = "environment.json"
DATA_FILE = "data.json"
# The header files a run is created with and `RunArchive.read` reads back, by the name callers use.
HEADER_FILES = {"spec": SPEC_FILE, "environment": ENVIRONMENT_FILE, "data": DATA_FILE}
MANIFEST_FILE = "manifest.json"
TEST_IMAGES = "test_images.npz"
TRIALS_DIR = "trials"
TRIAL_FILE = "trial.json"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
WEIGHTS_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOCK_FILE = ".lock"  # the only file of a run folder the manifest does not cover
# Version of the run folder's layout, in status.json. 1: runs written before the key existed; 2: the key
# exists; 3: recorded sentences (the data source, formula notes, MAC-check reasons) are messages, keys with
# values (reportgen/messages.py), not English text. Bump it when a reader could misread an older or newer run;
# readers handle every older format.
ARCHIVE_FORMAT = 3
MESSAGE_FORMAT = 3  # the first format that records messages: older runs' English is read by run/recorded_text.py
MANIFEST_FORMAT = 2  # manifest.json's own layout: 1 = a bare {file: sha256}, 2 = with state and files
MAX_LISTED_PROBLEMS = 20


_TRANSIENT_STATUS = ("error", "failed_trials", "trials", "finished")  # describe one ending; cleared on resume
_TRIAL_ERROR_FIELDS = ("error", "traceback")


# --- typed readers ----------------------------------------------------------------------------------
# What the report reads from a run, as frozen records. Each `from_dict` is the one place that knows how
# older runs differ (keys they lack), so no reader downstream patches compatibility itself.


def _member(kind: type[StrEnum], value: Any) -> Any:
    """The member of `kind` that `value` names, or None (an unknown or tampered value)."""
    try:
        return kind(value)
    except ValueError:
        return None


def _archive_format(status: dict[str, Any], where: Path | str) -> int:
    """status.json's `format`: 1 when absent (runs written before it existed); a newer one is refused."""
    written = status.get("format", 1)
    if not isinstance(written, int) or isinstance(written, bool) or written < 1:
        raise ArchiveError(f"{where}: status.json has a malformed archive format {written!r} (expected an integer)")
    if written > ARCHIVE_FORMAT:
        raise ArchiveError(
            f"{where}: run was written by a newer reportgen (archive format {written}); "
            f"this version reads formats 1–{ARCHIVE_FORMAT}"
        )
    return written


def recorded(value: Any, written: int) -> Recorded:
    """A recorded sentence as a message, whichever format wrote it: a message's dict (format 3 on), or English
    text (formats 1–2, read once by its known sentences). Text a newer run recorded is no sentence (a formula,
    an error's own words) and stays text; so does anything else."""
    if written < MESSAGE_FORMAT and isinstance(value, str):
        return recorded_message(value) if value else value
    return decoded(value) if isinstance(value, dict) else value


def _recorded_check(check: Any, written: int) -> Any:
    """A MAC cross-check (measure/mac_checks.CrossCheck as archived) with its reasons as messages."""
    if not isinstance(check, dict):
        return check
    reasons = {
        key: [entry | {"why": recorded(entry.get("why", ""), written)} for entry in check.get(key, [])]
        for key in ("not_checked", "explained")
        if key in check
    }
    return check | reasons | ({"error": recorded(check["error"], written)} if "error" in check else {})


def _recorded_cost(cost: dict[str, Any] | None, written: int) -> dict[str, Any] | None:
    macs = (cost or {}).get("macs")
    if not isinstance(macs, dict):
        return cost
    checks = {key: _recorded_check(macs[key], written) for key in ("flop_counter", "torchinfo") if key in macs}
    return cost | {"macs": macs | checks}


@dataclass(frozen=True)
class RunRecord:
    """status.json: the run's archive format, state and times, and how its last ending went."""

    format: int
    state: RunState | str  # the text as written when it names no RunState (tampered): verify() reports it
    started: str = ""
    updated: str = ""
    finished: str = ""
    error: str = ""  # one line: why the run is partial or failed
    failed_trials: list[str] = field(default_factory=list)
    trial_counts: dict[str, int] = field(default_factory=dict)  # total and per TrialState, set when sealed
    resumed: bool = False

    @classmethod
    def from_dict(cls, status: dict[str, Any], where: Path | str) -> RunRecord:
        """`where` names the run in the one-line error for a newer archive format."""
        written = status.get("state", "?")
        return cls(
            _archive_format(status, where),
            _member(RunState, written) or str(written),
            status.get("started", ""),
            status.get("updated", ""),
            status.get("finished", ""),
            status.get("error") or "",
            status.get("failed_trials", []),
            status.get("trials", {}),
            status.get("resumed", False),
        )


@dataclass(frozen=True)
class ModelAuditRecord:
    """A trial's parameter audit as archived (measure.params.ModelAudit.to_dict) with its cost.

    Its own class, not ModelAudit: that module imports torch, and reading a run never does. Layers stay the
    archived rows (name, type, output_shape, formula, weights, bias, …): the templates lay them out as they are."""

    model_name: str
    input_shape: list[int]
    layers: list[dict[str, Any]]  # each "formula" a Message where it says more than arithmetic
    total: int
    without_bias: int
    bias: int
    trainable: int
    frozen: int
    buffers: int
    batchnorm_params: int
    torchinfo_total: int
    matches_torchinfo: bool
    torchinfo_error: str = ""
    batch_size: int = 2
    mult_adds: int = 0
    cost: dict[str, Any] | None = None  # MACs, latency, size (measure.cost); None in runs archived before costs
    pruned: int = 0
    torchinfo_note: Recorded = ""  # why torchinfo's total differs, when that is explained (tied or pruned weights)

    @classmethod
    def from_dict(cls, audit: dict[str, Any], written: int = ARCHIVE_FORMAT) -> ModelAuditRecord:
        """Keys an older run lacks take the defaults above; keys a reader does not know are ignored; recorded
        sentences become messages, whichever archive format (`written`) recorded them."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in audit.items() if key in known}
        if "layers" in values:
            values["layers"] = [
                layer | {"formula": recorded(layer.get("formula", ""), written)} for layer in values["layers"]
            ]
        if "torchinfo_note" in values:
            values["torchinfo_note"] = recorded(values["torchinfo_note"], written)
        if "cost" in values:
            values["cost"] = _recorded_cost(values["cost"], written)
        return cls(**values)

    @property
    def parameter_counts(self) -> dict[str, int]:
        """The totals summary.json records per model."""
        names = ("total", "without_bias", "bias", "trainable", "buffers", "torchinfo_total")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class TrialRecord:
    """One archived trial as the report reads it: trials/<id>/trial.json plus its per-epoch metrics."""

    trial_id: str
    label: str
    model: str
    config: dict[str, Any]  # every TrainConfig field; runs archived before a setting existed get its default
    status: TrialState
    epochs: list[dict[str, Any]]  # METRIC_FIELDS per epoch; None where a value is not finite
    audit: ModelAuditRecord
    base: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    # {"patience", "stopped_after" (None: every epoch ran), "kept_epoch"} where [train] patience was used
    early_stopping: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, trial_id: str, info: dict[str, Any]) -> TrialRecord | None:
        """None for a trial that failed before it was registered (no label: nothing to report). `info` as
        RunArchive.trial reads it: with the run's `archive_format` (the newest when absent)."""
        if "label" not in info:
            return None
        return cls(
            trial_id,
            info["label"],
            info["model"],
            asdict(TrainConfig()) | info["config"],
            TrialState(info["status"]),
            info.get("epochs", []),
            ModelAuditRecord.from_dict(info["audit"], info.get("archive_format", ARCHIVE_FORMAT)),
            info.get("base"),
            info.get("kwargs", {}),
            info.get("error", ""),
            info.get("early_stopping"),
        )


class ArchiveWriteError(ArchiveError):
    """Writing the run's files failed (disk full, read-only, I/O error): an environment problem, not
    a trial's. The run ends `failed`, keeps its checkpoints and can be resumed once it is fixed."""


def validate_run_id(run_id: str) -> str:
    """Run ids become folder names: no separators, no '..', nothing hidden, no trailing newline."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ArchiveError(
            f"run id {run_id!r}: expected letters, digits, '_', '-', '.' "
            "(no path separators, no '..', not starting with '.')"
        )
    return run_id


def check_writable(folder: Path) -> None:
    """Fail before any training if results could not be written to this folder. Creates nothing: a
    command refused later (a bad model, missing data) must not leave an empty runs/ or output/ behind,
    so the folder, or the nearest existing folder above it, is probed with a file removed at once."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        probe = existing / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ArchiveError(f"{folder}: not writable ({exc.strerror or exc})") from exc


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@contextlib.contextmanager
def _writing(what: Path):
    """OSError while writing (ENOSPC, EROFS, EIO…) → one ArchiveWriteError naming the file."""
    try:
        yield
    except OSError as exc:
        raise ArchiveWriteError(f"{exc.filename or what}: cannot write ({exc.strerror or exc})") from exc


def _archive_write(method):
    """RunArchive writers raise ArchiveWriteError, never a bare OSError (see TrialRunner)."""

    @functools.wraps(method)
    def wrapper(self: RunArchive, *args: Any, **kwargs: Any) -> Any:
        with _writing(self.path):
            return method(self, *args, **kwargs)

    return wrapper


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _writing(path):
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


def rows_to_csv(rows: list[dict[str, Any]], fields: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- paths of the user's machine ---------------------------------------------------------------
# The archive is handed in and published: a path it records is relative to the run folder (or `~/…`), and is
# resolved against the run folder again by whatever needs the file (a resume, a worker reloading the data).
DATA_PATH_KEYS = ("data_dir", "train", "test")


def _spec_paths(spec: dict[str, Any], path, reference) -> dict[str, Any]:
    """A copy of spec.json with `path` applied to each file path (model code, data) and `reference` to each
    model reference."""
    spec = json.loads(json.dumps(spec))
    for model in spec.get("models") or []:
        model["name"] = reference(model["name"])
        if (model.get("code") or {}).get("file"):
            model["code"]["file"] = path(model["code"]["file"])
    data = spec.get("data") or {}
    for key in DATA_PATH_KEYS:
        if data.get(key):
            data[key] = path(data[key])
    return spec


def _portable_header(name: str, payload: Any, folder: Path) -> Any:
    """A header file as it is archived in `folder`: no absolute path of the user's (see reportgen/privacy.py)."""
    if name == "spec":
        spec = _spec_paths(payload, lambda p: portable_path(p, folder), lambda r: portable_reference(r, folder))
        if Path(spec.get("source", "")).is_file():  # where the spec came from; "compare()" and the like stay
            spec["source"] = portable_path(spec["source"], folder)
        if spec.get("checklist") and Path(spec["checklist"]).is_absolute():  # read from the current folder
            spec["checklist"] = shown_path(spec["checklist"])
        return spec
    if name == "data":
        files = {split: f | {"path": portable_path(f["path"], folder)} for split, f in payload.get("files", {}).items()}
        return payload | {"source": _tilde_all(json_safe(payload.get("source", ""))), "files": files}
    return payload


def _tilde_all(value: Any) -> Any:
    """Every text in `value` (a message's values too) with the home folder written `~`."""
    if isinstance(value, dict):
        return {key: _tilde_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tilde_all(item) for item in value]
    return tilde(value) if isinstance(value, str) else value


def _rename_no_replace(source: Path, target: Path) -> None:
    """rename(2) that fails with EEXIST when target exists (Linux renameat2 RENAME_NOREPLACE).

    Plain rename would silently replace an empty folder; where renameat2 is unavailable the caller's
    existence check plus rename's refusal to replace a non-empty folder still protect every real run.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the file system has no RENAME_NOREPLACE
            raise OSError(code, os.strerror(code), str(target))
    os.rename(source, target)


class RunArchive:
    """One run folder. Create with `RunArchive.create`, open an existing one with `RunArchive(path)`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run_id = self.path.name
        self._lock_fd: int | None = None

    # --- writing ---------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, root: Path, run_id: str | None, header: dict[str, Any], files: dict[str, bytes] | None = None
    ) -> RunArchive:
        """Write the run's header files (spec, environment, data, status) in a hidden staging folder and
        rename it into place: runs/<id> never exists without status.json, and a failed header write
        (disk full…) leaves nothing behind that would block the id. An existing run is never reused."""
        run_id = validate_run_id(run_id or new_run_id())
        root = Path(root)
        final = root / run_id
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"{root}: cannot create the run folder ({exc.strerror})") from exc
        if final.exists() or final.is_symlink():
            raise ArchiveError(f"{final}: a run with this id already exists")
        run = cls(root / f".{run_id}.{secrets.token_hex(4)}.staging")
        try:
            run.path.mkdir()
            run.lock()
            (run.path / TRIALS_DIR).mkdir()
            for name, payload in header.items():  # spec, environment, data: written once
                atomic_write_json(run.path / HEADER_FILES[name], _portable_header(name, payload, final))
            for name, content in (files or {}).items():  # test_images.npz: what the galleries show
                atomic_write_bytes(run.path / name, content)
            run.set_status(RunState.RUNNING, format=ARCHIVE_FORMAT)
            try:
                _rename_no_replace(run.path, final)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise ArchiveError(f"{final}: a run with this id already exists") from exc
                raise
        except BaseException as exc:
            run.unlock()
            shutil.rmtree(run.path, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ArchiveWriteError(
                    f"{final}: cannot create the run ({exc.strerror or exc}); nothing was kept"
                ) from exc
            if isinstance(exc, ArchiveWriteError):
                raise ArchiveWriteError(f"{exc}; the run {final} was not created") from exc
            raise
        run.path, run.run_id = final, run_id  # the lock is on the file, which moved with the folder
        return run

    @_archive_write
    def set_status(self, state: RunState | str, **extra: Any) -> None:
        """Write status.json; fields describing a previous ending (error, failed trials) are dropped."""
        state = RunState(state)
        previous = self.status() if (self.path / STATUS_FILE).exists() else {}
        status = {k: v for k, v in previous.items() if k not in _TRANSIENT_STATUS}
        status.setdefault("started", _now())
        extra = {key: tilde(value) if isinstance(value, str) else value for key, value in extra.items()}
        status.update(state=state.value, updated=_now(), **extra)
        if state != RunState.RUNNING:
            status["finished"] = _now()
        atomic_write_json(self.path / STATUS_FILE, status)

    def trial_dir(self, trial_id: str) -> Path:
        return self.path / TRIALS_DIR / validate_run_id(trial_id)

    @_archive_write
    def start_trial(self, trial_id: str, info: dict[str, Any]) -> None:
        folder = self.trial_dir(trial_id)
        folder.mkdir(exist_ok=True)
        if isinstance(info.get("model"), str):
            info = info | {"model": portable_reference(info["model"], self.path)}
        atomic_write_json(folder / TRIAL_FILE, info | {"status": TrialState.RUNNING.value})

    @_archive_write
    def resume_trial(self, trial_id: str) -> None:
        """A trial continued from its checkpoint (e.g. a failed one on resume) is running again."""
        path = self.trial_dir(trial_id) / TRIAL_FILE
        if path.exists():
            info = {k: v for k, v in read_json(path).items() if k not in _TRIAL_ERROR_FIELDS}
            atomic_write_json(path, info | {"status": TrialState.RUNNING.value})

    @_archive_write
    def write_epochs(self, trial_id: str, epochs: list[Any]) -> None:
        """Rewrite the trial's metrics (CSV + JSON) atomically after each epoch."""
        rows = [asdict(e) if not isinstance(e, dict) else e for e in epochs]
        folder = self.trial_dir(trial_id)
        atomic_write_bytes(folder / METRICS_CSV, rows_to_csv(rows, METRIC_FIELDS))
        atomic_write_json(folder / METRICS_JSON, rows)

    @_archive_write
    def save_checkpoint(self, trial_id: str, checkpoint: dict[str, Any]) -> None:
        """Everything needed to continue after this epoch; loaded back with weights_only=True."""
        import torch  # here: reading and rendering an archive never loads torch

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(self.trial_dir(trial_id) / CHECKPOINT_FILE, buffer.getvalue())

    def load_checkpoint(self, trial_id: str) -> dict[str, Any] | None:
        path = self.trial_dir(trial_id) / CHECKPOINT_FILE
        if not path.exists():
            return None
        import torch

        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a corrupt checkpoint must not be silently trusted
            raise ArchiveError(f"{path}: cannot load checkpoint ({exc})") from exc

    @_archive_write
    def fail_trial(self, trial_id: str, error: str, traceback: str | None = None) -> None:
        """Mark a trial failed: `error` is one line (type: message), `traceback` the full text."""
        path = self.trial_dir(trial_id) / TRIAL_FILE
        info = read_json(path) if path.exists() else {"trial_id": trial_id}
        path.parent.mkdir(exist_ok=True)
        line = " ".join(tilde(str(error)).split())[:500] or "unknown error"
        atomic_write_json(
            path, info | {"status": TrialState.FAILED.value, "error": line, "traceback": tilde(traceback or str(error))}
        )

    def trial_status(self, trial_id: str) -> TrialState | None:
        path = self.trial_dir(trial_id) / TRIAL_FILE
        return _member(TrialState, read_json(path).get("status")) if path.exists() else None

    def lock(self) -> None:
        """Hold an exclusive lock on the run for this process's lifetime: one writer per run.

        The lock file is opened without following a symlink and without truncating, so a `.lock`
        planted in a run folder can neither redirect nor damage another file."""
        import fcntl

        if self._lock_fd is not None:  # already held by this object
            return
        path = self.path / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ArchiveError(
                    f"{path}: is a symbolic link; a run's lock file must be a plain file (remove it)"
                ) from exc
            raise ArchiveError(f"{path}: cannot open the run's lock file ({exc.strerror})") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArchiveError(f"{path}: is not a plain file; a run's lock file must be one (remove it)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise ArchiveError(f"{self.path}: another reportgen process is writing this run") from exc
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self) -> None:
        self.unlock()

    @_archive_write
    def finish_trial(
        self, trial_id: str, status: str, predictions: dict[str, list], weights: dict, **extra: Any
    ) -> None:
        folder = self.trial_dir(trial_id)
        fields = list(predictions)
        rows = [dict(zip(fields, values)) for values in zip(*predictions.values())]
        atomic_write_bytes(folder / PREDICTIONS_FILE, rows_to_csv(rows, fields))
        import torch

        buffer = io.BytesIO()
        torch.save(weights, buffer)
        atomic_write_bytes(folder / WEIGHTS_FILE, buffer.getvalue())
        info = {k: v for k, v in read_json(folder / TRIAL_FILE).items() if k not in _TRIAL_ERROR_FIELDS}
        atomic_write_json(folder / TRIAL_FILE, info | {"status": TrialState(status).value} | extra)

    @_archive_write
    def reopen(self) -> None:
        """Before resuming: lock, drop the stale manifest, state running again."""
        self.lock()
        (self.path / MANIFEST_FILE).unlink(missing_ok=True)
        self.set_status(RunState.RUNNING, resumed=True)

    @_archive_write
    def seal(self, trial_ids: list[str] | None = None) -> RunState:
        """End the run: its state from its trials' states (complete / partial / failed), status.json,
        then manifest.json last, covering status.json too. Checkpoints of finished trials are dropped
        (no longer needed); a failed trial keeps its checkpoint so a resume continues from it."""
        trial_ids = self.trial_ids() if trial_ids is None else list(trial_ids)
        states = {t: self.trial_status(t) for t in trial_ids}
        finished = [t for t, s in states.items() if s in FINISHED_TRIALS]
        failed = [t for t in trial_ids if t not in finished]
        state = RunState.COMPLETE if not failed else RunState.PARTIAL if finished else RunState.FAILED
        for trial_id in finished:
            (self.trial_dir(trial_id) / CHECKPOINT_FILE).unlink(missing_ok=True)
        counts = {"total": len(trial_ids)} | {s.value: sum(v == s for v in states.values()) for s in TrialState}
        counts[TrialState.FAILED.value] = len(failed)  # never started or left running counts as failed
        counts[TrialState.RUNNING.value] = 0
        extra: dict[str, Any] = {"trials": counts}
        if failed:
            errors = []
            for trial_id in failed[:3]:
                path = self.trial_dir(trial_id) / TRIAL_FILE
                info = read_json(path) if path.exists() else {}
                errors.append(f"{trial_id}: {info.get('error') or 'did not finish'}")
            more = f"; … and {len(failed) - 3} more" if len(failed) > 3 else ""
            extra |= {
                "failed_trials": failed,
                "error": f"{len(failed)} of {len(trial_ids)} trial(s) failed: {'; '.join(errors)}{more}",
            }
        self.set_status(state, **extra)
        self.write_manifest(state)
        return state

    def complete(self) -> RunState:
        """Seal the run over every trial it holds (see `seal`)."""
        return self.seal()

    @_archive_write
    def write_manifest(self, state: RunState | str | None = None) -> None:
        """sha256 of every file of the run (status.json included; only the lock file left out)."""
        state = RunState(state or self.status().get("state"))
        files = {}
        for name, path in sorted(self._entries().items()):
            if not path.is_symlink():  # reportgen writes none; one planted later shows up as added
                files[name] = sha256_file(path)
        atomic_write_json(
            self.path / MANIFEST_FILE,
            {"format": MANIFEST_FORMAT, "state": state.value, "sealed": _now(), "files": files},
        )

    # --- reading ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        status = read_json(self.path / STATUS_FILE)
        if not isinstance(status, dict):
            raise ArchiveError(f"{self.path / STATUS_FILE}: expected a JSON object")
        return status

    def record(self) -> RunRecord:
        """status.json, typed; an ArchiveError for a newer archive format."""
        return RunRecord.from_dict(self.status(), self.path)

    def state(self) -> RunState | str:
        return self.record().state

    def read(self, name: str) -> Any:
        """A header file by its name in HEADER_FILES ("spec", "environment", "data"), as archived: paths
        relative to the run folder (what a report shows); data.json's `source` as a message."""
        payload = read_json(self.path / HEADER_FILES[name])
        if name == "data" and isinstance(payload, dict) and "source" in payload:
            payload["source"] = recorded(payload["source"], self.record().format)
        return payload

    def resolved_spec(self) -> dict[str, Any]:
        """spec.json with its model files and data paths resolved against the run folder: what a resume and
        a worker reloading the data use. Runs archived with absolute paths read back unchanged."""
        return _spec_paths(
            self.read("spec"), lambda p: resolved_path(p, self.path), lambda r: resolved_reference(r, self.path)
        )

    def test_images(self):
        """The archived test images as a numpy array, or None for runs archived before they were kept."""
        path = self.path / TEST_IMAGES
        if not path.is_file():
            return None
        import numpy as np

        with np.load(path, allow_pickle=False) as archive:
            return archive["images"]

    def trial_ids(self) -> list[str]:
        return sorted(p.name for p in (self.path / TRIALS_DIR).iterdir() if (p / TRIAL_FILE).exists())

    def trial(self, trial_id: str) -> dict[str, Any]:
        folder = self.trial_dir(trial_id)
        info = read_json(folder / TRIAL_FILE)
        info["epochs"] = read_json(folder / METRICS_JSON) if (folder / METRICS_JSON).exists() else []
        info["archive_format"] = self.record().format  # how TrialRecord reads what it recorded
        return info

    def trial_record(self, trial_id: str) -> TrialRecord | None:
        """The trial, typed; None when it failed before it was registered."""
        return TrialRecord.from_dict(trial_id, self.trial(trial_id))

    def predictions(self, trial_id: str) -> list[dict[str, str]]:
        with open(self.trial_dir(trial_id) / PREDICTIONS_FILE, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    # A report reads these too; combine.CombinedRun answers them for several runs.
    @property
    def runs(self) -> list[RunArchive]:
        """The archived runs behind a report of this run: itself."""
        return [self]

    def origin(self, trial_id: str) -> RunArchive:
        """The run a trial was archived in: this one."""
        return self

    def _entries(self) -> dict[str, Path]:
        """Every file and symlink of the run by relative path, except manifest.json and the lock file."""
        entries: dict[str, Path] = {}
        for folder, dirs, files in os.walk(self.path):  # does not follow symlinked folders
            here = Path(folder)
            links = [d for d in dirs if (here / d).is_symlink()]
            for name in (*files, *links):
                path = here / name
                rel = path.relative_to(self.path).as_posix()
                if rel not in (MANIFEST_FILE, LOCK_FILE):
                    entries[rel] = path
        return entries

    def verify(self) -> list[str]:
        """Problems that make the archive untrustworthy: not complete, and every file missing, added or
        changed since the run was sealed (status.json included). Empty when the run can be trusted."""
        problems = []
        state = self.status().get("state")
        if state != RunState.COMPLETE:
            error = self.status().get("error")
            problems.append(f"run state is {state!r}, not 'complete'" + (f" ({error})" if error else ""))
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file() or manifest_path.is_symlink():
            return problems + ["manifest.json is missing"]
        manifest = read_json(manifest_path)
        present = self._entries()
        if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
            files, sealed = manifest["files"], manifest.get("state")
            if sealed != state:
                problems.append(f"status.json says the run is {state!r}, but it was sealed {sealed!r}")
        elif isinstance(manifest, dict) and all(isinstance(v, str) for v in manifest.values()):
            files = manifest  # format 1 (before status.json was covered): status.json and dot files not listed
            present = {k: v for k, v in present.items() if k != STATUS_FILE and not Path(k).name.startswith(".")}
        else:
            return problems + ["manifest.json is malformed"]
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
        return problems + changes


def open_run(path: str | Path) -> RunArchive:
    """The run folder, resolved: `runs/<id>/trials/..` and `.` name the run, never '..' or ''."""
    given = Path(path)
    if not (given / STATUS_FILE).is_file():
        raise ArchiveError(f"{given}: not a reportgen run folder (no status.json)")
    resolved = given.resolve()
    try:
        validate_run_id(resolved.name)
    except ArchiveError as exc:
        raise ArchiveError(f"{given}: the run folder's name is not a run id ({exc})") from None
    run = RunArchive(resolved)
    RunRecord.from_dict(run.status(), given)  # refuses a newer archive format before anything reads the run
    return run


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
