"""The run folder's layout: its file names, format versions and run ids, spelled only here.

runs/<run-id>/ (MLflow-style: parameters written once, metrics appended per epoch, state in status.json):
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

Who does what with it: archive_records.py holds one schema and one loader per record, manifest.py the
checksums, archive_reading.py reads a run folder (the RunReader a report reads), archive_writing.py writes it
during a run, archive_files.py is the one JSON encoding and the atomic writes.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from reportgen.errors import ArchiveError

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # used with fullmatch: `$` would allow a final "\n"
METRIC_FIELDS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "val_loss", "val_acc", "lr"
)  # fmt: skip
# File names of a run folder, spelled only here.
STATUS_FILE = "status.json"
SPEC_FILE = "spec.json"
ENVIRONMENT_FILE = "environment.json"
DATA_FILE = "data.json"
# The header files a run is created with and read back, by the name callers use.
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


def validate_run_id(run_id: str) -> str:
    """Run ids become folder names: no separators, no '..', nothing hidden, no trailing newline."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ArchiveError(
            f"run id {run_id!r}: expected letters, digits, '_', '-', '.' "
            "(no path separators, no '..', not starting with '.')"
        )
    return run_id


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def trial_folder(run_folder: Path, trial_id: str) -> Path:
    """trials/<id>/ of a run; the id is checked like a run id, so it names a folder inside trials/."""
    return Path(run_folder) / TRIALS_DIR / validate_run_id(trial_id)


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


def now() -> str:
    """A time as status.json and manifest.json record it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
