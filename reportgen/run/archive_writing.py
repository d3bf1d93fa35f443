"""Writing a run folder during a run: created whole or not at all, one writer at a time (a lock), each file
replaced atomically, and sealed last with its manifest (manifest.py). The layout is archive_layout.py's.

Every writer raises ArchiveWriteError (disk full, read-only, I/O error), never a bare OSError: the run then
ends `failed`, keeps its checkpoints and can be resumed once the cause is fixed.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import io
import os
import secrets
import shutil
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reportgen.errors import ArchiveError
from reportgen.privacy import portable_path, portable_reference, shown_path, tilde
from reportgen.run import manifest
from reportgen.run.archive_files import (
    ArchiveWriteError,
    atomic_write_bytes,
    atomic_write_json,
    json_safe,
    rows_to_csv,
    writing,
)
from reportgen.run.archive_layout import (
    ARCHIVE_FORMAT,
    CHECKPOINT_FILE,
    HEADER_FILES,
    LOCK_FILE,
    MANIFEST_FILE,
    METRIC_FIELDS,
    METRICS_CSV,
    METRICS_JSON,
    PREDICTIONS_FILE,
    STATUS_FILE,
    TRIAL_FILE,
    TRIALS_DIR,
    WEIGHTS_FILE,
    new_run_id,
    now,
    validate_run_id,
)
from reportgen.run.archive_reading import ArchiveReader, run_folder
from reportgen.run.archive_records import load_trial_file, spec_paths
from reportgen.states import FINISHED_TRIALS, RunState, TrialState

_TRANSIENT_STATUS = ("error", "failed_trials", "trials", "finished")  # describe one ending; cleared on resume
_TRIAL_ERROR_FIELDS = ("error", "traceback")


def _archive_write(method):
    """RunArchive writers raise ArchiveWriteError, never a bare OSError (see TrialRunner)."""

    @functools.wraps(method)
    def wrapper(self: RunArchive, *args: Any, **kwargs: Any) -> Any:
        with writing(self.path):
            return method(self, *args, **kwargs)

    return wrapper


class RunLock:
    """An exclusive lock on a run folder's lock file, held for the holder's lifetime: one writer per run.

    The lock file is opened without following a symlink and without truncating, so a `.lock` planted in a
    run folder can neither redirect nor damage another file."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def acquire(self, folder: Path) -> None:
        import fcntl

        if self._fd is not None:  # already held by this object
            return
        path = folder / LOCK_FILE
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
            raise ArchiveError(f"{folder}: another reportgen process is writing this run") from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


class RunArchive(ArchiveReader):
    """One run folder, written. Create with `RunArchive.create`, open an existing one with `open_for_writing`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = RunLock()

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
            run._stage(header, files or {}, final)
        except BaseException as exc:
            run.unlock()
            shutil.rmtree(run.path, ignore_errors=True)
            # a failed write names the run, not the staging folder's file: that is gone, and was never the user's
            cause = exc.__cause__ if isinstance(exc, ArchiveWriteError) else exc
            if isinstance(cause, OSError):
                raise ArchiveWriteError(
                    f"{final}: cannot create the run ({cause.strerror or cause}); nothing was kept"
                ) from exc
            raise
        run.path, run.run_id = final, run_id  # the lock is on the file, which moved with the folder
        return run

    def _stage(self, header: dict[str, Any], files: dict[str, bytes], final: Path) -> None:
        """The new run written in this (staging) folder, then renamed to `final`."""
        self.path.mkdir()
        self.lock()
        (self.path / TRIALS_DIR).mkdir()
        for name, payload in header.items():  # spec, environment, data: written once
            atomic_write_json(self.path / HEADER_FILES[name], _portable_header(name, payload, final))
        for name, content in files.items():  # test_images.npz: what the galleries show
            atomic_write_bytes(self.path / name, content)
        self.set_status(RunState.RUNNING, format=ARCHIVE_FORMAT)
        try:
            _rename_no_replace(self.path, final)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise ArchiveError(f"{final}: a run with this id already exists") from exc
            raise

    def lock(self) -> None:
        """Hold the run's lock for this object's lifetime (RunLock): one writer per run."""
        self._lock.acquire(self.path)

    def unlock(self) -> None:
        self._lock.release()

    @_archive_write
    def set_status(self, state: RunState | str, **extra: Any) -> None:
        """Write status.json; fields describing a previous ending (error, failed trials) are dropped."""
        state = RunState(state)
        previous = self.status() if (self.path / STATUS_FILE).exists() else {}
        status = {k: v for k, v in previous.items() if k not in _TRANSIENT_STATUS}
        status.setdefault("started", now())
        extra = {key: tilde(value) if isinstance(value, str) else value for key, value in extra.items()}
        status.update(state=state.value, updated=now(), **extra)
        if state != RunState.RUNNING:
            status["finished"] = now()
        atomic_write_json(self.path / STATUS_FILE, status)

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
        folder = self.trial_dir(trial_id)
        if (folder / TRIAL_FILE).exists():
            info = {k: v for k, v in load_trial_file(folder).items() if k not in _TRIAL_ERROR_FIELDS}
            atomic_write_json(folder / TRIAL_FILE, info | {"status": TrialState.RUNNING.value})

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
        atomic_write_bytes(self.trial_dir(trial_id) / CHECKPOINT_FILE, _torch_bytes(checkpoint))

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
        folder = self.trial_dir(trial_id)
        info = load_trial_file(folder) if (folder / TRIAL_FILE).exists() else {"trial_id": trial_id}
        folder.mkdir(exist_ok=True)
        line = " ".join(tilde(str(error)).split())[:500] or "unknown error"
        atomic_write_json(
            folder / TRIAL_FILE,
            info | {"status": TrialState.FAILED.value, "error": line, "traceback": tilde(traceback or str(error))},
        )

    @_archive_write
    def finish_trial(
        self, trial_id: str, status: str, predictions: dict[str, list], weights: dict, **extra: Any
    ) -> None:
        folder = self.trial_dir(trial_id)
        columns = list(predictions)
        rows = [dict(zip(columns, values)) for values in zip(*predictions.values())]
        atomic_write_bytes(folder / PREDICTIONS_FILE, rows_to_csv(rows, columns))
        atomic_write_bytes(folder / WEIGHTS_FILE, _torch_bytes(weights))
        info = {k: v for k, v in load_trial_file(folder).items() if k not in _TRIAL_ERROR_FIELDS}
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
        self.set_status(state, trials=counts, **_failures(self, failed, len(trial_ids)))
        manifest.write_manifest(self.path, state)
        return state


def open_for_writing(path: str | Path) -> RunArchive:
    """An existing run folder, checked as archive_reading.open_run checks it, to resume or train trials in."""
    return RunArchive(run_folder(path))


def _failures(run: ArchiveReader, failed: list[str], total: int) -> dict[str, Any]:
    """What status.json says of the failed trials: which, and the first three errors."""
    if not failed:
        return {}
    errors = []
    for trial_id in failed[:3]:
        folder = run.trial_dir(trial_id)
        info = load_trial_file(folder) if (folder / TRIAL_FILE).exists() else {}
        errors.append(f"{trial_id}: {info.get('error') or 'did not finish'}")
    more = f"; … and {len(failed) - 3} more" if len(failed) > 3 else ""
    return {"failed_trials": failed, "error": f"{len(failed)} of {total} trial(s) failed: {'; '.join(errors)}{more}"}


def _torch_bytes(payload: dict[str, Any]) -> bytes:
    import torch  # here: reading and rendering an archive never loads torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _portable_header(name: str, payload: Any, folder: Path) -> Any:
    """A header file as it is archived in `folder`: no absolute path of the user's (see reportgen/privacy.py)."""
    if name == "spec":
        spec = spec_paths(payload, lambda p: portable_path(p, folder), lambda r: portable_reference(r, folder))
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
