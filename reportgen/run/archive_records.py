"""One schema per record of a run folder, and the one loader that reads each (manifest.json: manifest.py).

    status.json        RunRecord (load_status: as written, for the writer that updates it)
    spec.json          SpecRecord: spec.py's resolved spec (parse_spec is its schema); spec_paths its file paths
    environment.json   EnvironmentRecord
    data.json          DataRecord
    trial.json         TrialRecord with its ModelAuditRecord, plus metrics.json's EpochRow per epoch
    predictions.csv    one row per test image (load_predictions; load_prediction_columns: as arrays)
    test_images.npz    an array (load_test_images)

Records are frozen, and each `from_dict` or loader is the one place that knows how older runs differ (keys they
lack, the English sentences formats 1–2 recorded, read as messages by run/recorded_text.py), so no reader
downstream patches compatibility itself; a run from a newer format is refused when its status is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from reportgen.errors import ArchiveError
from reportgen.messages import Recorded, decoded
from reportgen.run.archive_files import read_csv_rows, read_json, read_json_object
from reportgen.run.archive_layout import (
    ARCHIVE_FORMAT,
    HEADER_FILES,
    MESSAGE_FORMAT,
    METRICS_JSON,
    PREDICTIONS_FILE,
    STATUS_FILE,
    TEST_IMAGES,
    TRIAL_FILE,
)
from reportgen.run.recorded_text import recorded_message
from reportgen.settings import TrainConfig
from reportgen.states import RunState, TrialState

if TYPE_CHECKING:
    import numpy as np

# spec.json: the resolved spec as spec.py writes it (ExperimentSpec.to_dict) and parse_spec reads it back.
SpecRecord = dict[str, Any]
# metrics.json, one per epoch: archive_layout.METRIC_FIELDS, None where a value is not finite.
EpochRow = dict[str, Any]
DATA_PATH_KEYS = ("data_dir", "train", "test")  # spec.json's data paths: relative to the run folder


class EnvironmentRecord(TypedDict, total=False):
    """environment.json: where the numbers came from (run/environment.py, plus the runner's executor)."""

    reportgen: str
    python: str
    torch: str
    torchvision: str
    torchinfo: str
    platform: str
    processor: str
    device: str
    device_name: str
    threads: int  # format 1 recorded only this
    threads_per_trial: int
    cpu_count: int
    git_commit: str
    command: str
    executor: str
    workers: int  # the executor's processes (1: this process); runs before 2026-12-07 lack it
    worker_start: str  # worker processes only: "fork" (copies of the command) or "spawn"; absent before it
    device_choice: dict[str, Any]  # run/device_choice.py: requested, chosen, reason[, estimates]


class DataRecord(TypedDict, total=False):
    """data.json: the dataset as trained on (run/environment.data_record)."""

    dataset: str
    source: Recorded  # a message as read, whichever format recorded it
    files: dict[str, dict[str, Any]]  # split file → {"path", "sha256", …}
    classes: list[str]
    mean: list[float]
    std: list[float]
    input_shape: list[int]
    train_size: int
    test_size: int
    validation_size: int


def _member(kind: type[StrEnum], value: Any) -> Any:
    """The member of `kind` that `value` names, or None (an unknown or tampered value)."""
    try:
        return kind(value)
    except ValueError:
        return None


def trial_state(value: Any) -> TrialState | None:
    """A trial.json `status` as its TrialState; None for an unknown (tampered) one."""
    return _member(TrialState, value)


def archive_format(status: dict[str, Any], where: Path | str) -> int:
    """The `format` status.json records: 1 when absent (runs written before it existed); a newer one is refused."""
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
            archive_format(status, where),
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
    epochs: list[EpochRow]
    audit: ModelAuditRecord
    base: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    # {"patience", "stopped_after" (None: every epoch ran), "kept_epoch"} where [train] patience was used
    early_stopping: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, trial_id: str, info: dict[str, Any]) -> TrialRecord | None:
        """None for a trial that failed before it was registered (no label: nothing to report). `info` as
        load_trial reads it: with the run's `archive_format` (the newest when absent)."""
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


def spec_paths(spec: SpecRecord, path: Callable[[str], str], reference: Callable[[str], str]) -> SpecRecord:
    """A copy of spec.json with `path` applied to each file path (model code, data) and `reference` to each
    model reference: how the writer makes them portable and a resume resolves them again."""
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


# --- one loader per file: the only code that opens a run folder's records -------------------------------


def load_status(folder: Path) -> dict[str, Any]:
    """status.json as written (RunRecord.from_dict types it; the writer updates it)."""
    return read_json_object(Path(folder) / STATUS_FILE)


def load_header(folder: Path, name: str, written: int) -> dict[str, Any]:
    """A header file by its name in HEADER_FILES ("spec", "environment", "data"), as archived: paths relative
    to the run folder (what a report shows); data.json's `source` as a message, whichever format (`written`)
    recorded it."""
    payload = read_json_object(Path(folder) / HEADER_FILES[name])
    if name == "data" and "source" in payload:
        payload["source"] = recorded(payload["source"], written)
    return payload


def load_trial_file(trial_folder: Path) -> dict[str, Any]:
    """trial.json as written (the writer updates it; load_trial adds what a reader needs)."""
    return read_json_object(Path(trial_folder) / TRIAL_FILE)


def load_epochs(trial_folder: Path) -> list[EpochRow]:
    """metrics.json: one row per epoch trained; [] before the first epoch ended."""
    path = Path(trial_folder) / METRICS_JSON
    return read_json(path) if path.is_file() else []


def load_trial(trial_folder: Path, written: int) -> dict[str, Any]:
    """trial.json with its `epochs` and the run's `archive_format` (how TrialRecord.from_dict reads it)."""
    return load_trial_file(trial_folder) | {"epochs": load_epochs(trial_folder), "archive_format": written}


def load_predictions(trial_folder: Path) -> list[dict[str, str]]:
    """predictions.csv: one row per test image, as text."""
    return read_csv_rows(Path(trial_folder) / PREDICTIONS_FILE)


def load_prediction_columns(trial_folder: Path) -> dict[str, np.ndarray] | None:
    """predictions.csv as arrays by column (pandas: a class of hand-ins compares every pair of trials); None when
    it is missing or empty, or lacks the label and prediction of each image."""
    import pandas as pd

    try:
        frame = pd.read_csv(Path(trial_folder) / PREDICTIONS_FILE)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    if not {"label", "prediction"} <= set(frame.columns):
        return None
    return {column: frame[column].to_numpy() for column in frame.columns}


def load_test_images(folder: Path) -> np.ndarray | None:
    """The archived test images as a numpy array, or None for runs archived before they were kept."""
    path = Path(folder) / TEST_IMAGES
    if not path.is_file():
        return None
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return archive["images"]
