"""One report over several archived runs: `reportgen render runs/a runs/b`.

`CombinedRun` reads several runs through RunReader, the interface a report reads one run with
(run/archive_reading.py), so the report lays it out unchanged.
Trials are renumbered with their run's id (`000-a-mlp`, `001-b-mlp`). A label that several runs use
stays one model only when the runs trained the same model the same way (registry name, arguments,
base, code sha256, settings except the seed, test images), so its seeds aggregate across runs;
otherwise each way it was trained is labelled with its runs (`mlp (a, b)`, `mlp (c)`), never merged.
A run given twice (a copy, re-saved or not) is combined like any other: same_training.py finds its trials
to be one training with their originals, the report counts each training once and says which rows they are.

`differences` lists what differs between the runs (settings, data, code, environment) and what each
difference invalidates; the report shows it before any result.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from reportgen.errors import ArchiveError, short
from reportgen.experiment import recorded_data
from reportgen.report.cover import COVER_ROWS
from reportgen.run.archive_layout import validate_run_id
from reportgen.run.archive_reading import ArchiveReader, RunReader, open_run
from reportgen.run.archive_records import RunRecord
from reportgen.run.manifest import check_readable
from reportgen.settings import REPORTED

MISSING = "–"

# What a difference invalidates, said beside it (translated with the `tr` filter; keys in i18n/ko.json).
WITHHELD_MCNEMAR = "McNemar tests between models of these runs are withheld: they were not tested on the same images."
OTHER_TRAINING_IMAGES = "Trained on different images: accuracy differences may come from the data, not the model."
OTHER_EPOCHS = (
    "Accuracies are after different numbers of epochs (shown beside each accuracy in the comparison "
    "table): compare with care."
)
KEPT_APART = "The same model trained differently is kept apart: each run's rows are labelled with the run."
ATTRIBUTED = "The runs were handed in by different people: every model is labelled with its run, nothing is pooled."
NOT_IDENTICAL = "The models of these runs were not trained under identical settings: compare with care."
SLOWER_OR_FASTER = "Seconds per epoch are not comparable between these runs."
OTHER_TORCH = "Another torch version can give slightly different numbers for the same seed."


class PerRun(str):
    """A value that differs between runs, shown with each run's id: `2.14.1 (a) · 2.13.0 (b)`.

    It is text wherever a report shows it (templates, JSON); a format spec applies to each run's value,
    so the templates' number filters (`f"{x:,}"`) still format numbers."""

    values: dict[str, Any]

    def __new__(cls, values: dict[str, Any]) -> Self:
        text = super().__new__(cls, _join(values, ""))
        text.values = dict(values)
        return text

    def __format__(self, spec: str) -> str:
        return _join(self.values, spec)


def _join(values: dict[str, Any], spec: str) -> str:
    return " · ".join(
        f"{MISSING if value is None else format(value, spec)} ({run_id})" for run_id, value in values.items()
    )


def merge(values: dict[str, Any]) -> Any:
    """One value for several runs' values (run id → value): equal ones as they are, dicts key by key,
    anything else that differs as a PerRun."""
    first, *rest = values.values()
    if all(value == first for value in rest):
        return first
    tables = {run_id: value for run_id, value in values.items() if value is not None}
    if all(isinstance(value, dict) for value in tables.values()):  # a table a run lacks counts as empty
        keys = dict.fromkeys(key for value in tables.values() for key in value)
        return {key: merge({run_id: (value or {}).get(key) for run_id, value in values.items()}) for key in keys}
    return PerRun(values)


# ------------------------------------------------------------------ opening and checking runs


def _readable(path: str | Path) -> ArchiveReader:
    """The run folder opened, refused when its manifest has a format this reportgen does not know."""
    run = open_run(path)
    check_readable(run.path)
    return run


def open_runs(paths: str | Path | Sequence[str | Path]) -> RunReader:
    """One run folder → its ArchiveReader; several → a CombinedRun over them."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ArchiveError("no run folder given")
    runs = [_readable(path) for path in paths]
    return runs[0] if len(runs) == 1 else CombinedRun(runs)


def open_class(
    paths: str | Path | Sequence[str | Path], allow_incomplete: bool = False
) -> tuple[RunReader, list[dict[str, str]]]:
    """The runs to render, and the folders left out. Runs handed in by different people are a class, which one
    broken hand-in does not block: a folder that is not a readable run, a run changed after it was sealed
    (unless `allow_incomplete`), a second run of one id or a run over other classes is left out and listed
    ({"folder", "reason", "detail"}). Any other set of runs opens as open_runs does, refused whole."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    opened, broken = [], []
    for path in paths if len(paths) > 1 else []:
        try:
            opened.append(_readable(path))
        except ArchiveError as exc:
            broken.append(_left_out(path, "not a reportgen run this version can read", str(exc)))
    if len(opened) < 2 or not submissions(opened):
        return open_runs(paths), []
    trusted = []
    for run in opened:
        problems = [] if allow_incomplete else run.verify()
        if problems:
            broken.append(_left_out(run.path, "incomplete, or changed after it was sealed", "; ".join(problems)))
        else:
            trusted.append(run)
    runs: list[ArchiveReader] = []
    shapes = Counter(_task(run) for run in trusted)
    for run in trusted:
        if run.run_id in {kept.run_id for kept in runs}:
            broken.append(_left_out(run.path, "a second run of the same name: rename one to grade both", ""))
        elif _task(run) != shapes.most_common(1)[0][0]:
            broken.append(_left_out(run.path, "other classes or image shape than the rest of the class", ""))
        else:
            runs.append(run)
    if len(runs) < 2:
        raise ArchiveError(
            "too few runs to grade: " + "; ".join(f"{b['folder']}: {b['reason']} {b['detail']}" for b in broken)
        )
    return CombinedRun(runs), broken


def _task(run: ArchiveReader) -> str:
    """What a run classifies: its classes and image shape (a class's runs share them)."""
    data = run.read("data")
    return json.dumps([data.get("classes"), data.get("input_shape")])


def _left_out(path: str | Path, reason: str, detail: str) -> dict[str, str]:
    """A folder of a class that is not graded: its name (never the path above it), why, and the error."""
    return {"folder": Path(path).name, "reason": reason, "detail": detail}


def combined_id(runs: list[ArchiveReader]) -> str:
    """`combined-a-b`, or `combined-<sha256 prefix>` when the ids do not fit in a run id."""
    ids = [run.run_id for run in runs]
    try:
        return validate_run_id("combined-" + "-".join(ids))
    except ArchiveError:
        return "combined-" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _check_combinable(runs: list[ArchiveReader]) -> None:
    """Distinct run ids (they name the rows) and one classification task (same classes, same image shape)."""
    seen: dict[str, Path] = {}
    for run in runs:
        if run.run_id in seen:
            raise ArchiveError(
                f"{run.path} and {seen[run.run_id]}: two runs named {run.run_id!r}; a combined report "
                "names each run by its folder name, so give each run once (rename a copy)"
            )
        seen[run.run_id] = run.path
    first = runs[0].read("data")
    for run in runs[1:]:
        data = run.read("data")
        for key in ("classes", "input_shape"):
            if data.get(key) != first.get(key):
                raise ArchiveError(
                    f"{run.path}: its {key} differ from those of {runs[0].path} "
                    f"({short(data.get(key))} vs {short(first.get(key))}); only runs over the "
                    "same classes and image shape make one report"
                )


# ------------------------------------------------------------------ what identifies a test set and a model


def data_checksum(run: ArchiveReader, split: str) -> str:
    """sha256 naming the images of a split: its files' checksums (data.json) and the seeded subset drawn
    from them (data.<split>_subset, drawn with the run's data seed)."""
    data, spec = run.read("data"), run.read("spec")
    files = {name: info["sha256"] for name, info in data["files"].items() if name.startswith(split)}
    subset = spec["data"].get(f"{split}_subset")
    key = {"files": files, "subset": subset, "seed": recorded_data(spec)[1] if subset else None}
    if split == "train":  # the validation split is carved from the training images
        key["validation"] = spec["data"].get("validation")
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def test_set_checksum(run: ArchiveReader) -> str:
    """Equal for two runs exactly when their models were tested on the same images (McNemar pairs them)."""
    return data_checksum(run, "test")


def _identities(run: ArchiveReader) -> dict[str, str]:
    """label → what makes it the same model in another run: registry name, arguments, base, code sha256,
    settings except the seed, and the test images it was scored on."""
    code = {m.get("label"): (m.get("code") or {}).get("sha256") for m in run.read("spec").get("models", [])}
    test_set = test_set_checksum(run)
    parts: dict[str, dict[str, Any]] = {}
    for trial in run.trial_records():
        label = trial.label
        entry = parts.setdefault(
            label,
            {
                "model": trial.model,
                "kwargs": trial.kwargs,
                "base": trial.base,
                "code": code.get(label),
                "test_set": test_set,
                "settings": set(),
            },
        )
        entry["settings"].add(json.dumps({k: v for k, v in trial.config.items() if k != "seed"}, sort_keys=True))
    return {
        label: json.dumps(entry | {"settings": sorted(entry["settings"])}, sort_keys=True, default=str)
        for label, entry in parts.items()
    }


def authors(run: ArchiveReader) -> str:
    """Who handed the run in, from its archived cover: "김민지 (20241234), Lee (2024)"; "" when unnamed."""
    people = (run.read("spec").get("cover") or {}).get("authors") or []
    return ", ".join(a["name"] + (f" ({a['student_id']})" if a.get("student_id") else "") for a in people)


def submissions(runs: list[ArchiveReader]) -> bool:
    """Runs handed in by different people (their covers name different authors): a grading view, in which
    every model is attributed to its run and nothing is pooled across runs. A run without an author is
    someone's too, graded under its run id: one hand-in that forgot its name never pools a class."""
    named = [authors(run) for run in runs]
    return any(named) and len({name or run.run_id for name, run in zip(named, runs)}) > 1


def report_labels(runs: list[ArchiveReader]) -> dict[tuple[str, str], str]:
    """(run id, label) → the label the report shows: unchanged when every run that uses it trained the same
    model the same way; else each way it was trained is named with its runs (`mlp (a, b)`, `mlp (c)`), so
    runs that agree still aggregate their seeds. Different people's runs (submissions) never share a label:
    every model is named with its run."""
    by_label: dict[str, dict[str, list[str]]] = {}  # label → identity → run ids
    apart = submissions(runs)
    for run in runs:
        for label, identity in _identities(run).items():
            key = f"{identity}\n{run.run_id}" if apart else identity
            by_label.setdefault(label, {}).setdefault(key, []).append(run.run_id)
    shown = {
        (run_id, label): label if len(groups) == 1 and not apart else f"{label} ({', '.join(run_ids)})"
        for label, groups in by_label.items()
        for run_ids in groups.values()
        for run_id in run_ids
    }
    taken: dict[str, tuple[str, str]] = {}
    for (run_id, label), name in shown.items():
        first = taken.setdefault(name, (run_id, label))
        if first[1] != label:  # e.g. a model literally labelled "mlp (b)": merging it would be silent
            raise ArchiveError(
                f"label {name!r} would name a model of run {first[0]!r} and one of run {run_id!r}; "
                "relabel one of them to combine these runs"
            )
    return shown


# ------------------------------------------------------------------ the combined run


class CombinedRun(RunReader):
    """Several runs read as one. It has no folder of its own: `path` is its id, for messages."""

    def __init__(self, runs: list[ArchiveReader]) -> None:
        _check_combinable(runs)
        self._runs = runs
        self.run_id = combined_id(runs)
        self.path = Path(self.run_id)
        self.labels = report_labels(runs)
        self._trials: dict[str, tuple[ArchiveReader, str]] = {}
        for run in runs:
            for trial_id in run.trial_ids():
                short = re.sub(r"^\d+-", "", trial_id)  # its number is replaced by one over all runs
                self._trials[f"{len(self._trials):03d}-{run.run_id}-{short}"] = (run, trial_id)

    @property
    def runs(self) -> list[ArchiveReader]:
        return self._runs

    def trial_ids(self) -> list[str]:
        return list(self._trials)

    def origin(self, trial_id: str) -> ArchiveReader:
        """The run a trial was archived in."""
        return self._trials[trial_id][0]

    def trial(self, trial_id: str) -> dict[str, Any]:
        """The trial under its combined id and the labels the report shows."""
        run, original = self._trials[trial_id]
        info = run.trial(original) | {"trial_id": trial_id, "run_id": run.run_id, "archived_as": original}
        for key in ("label", "base"):
            if info.get(key) is not None:
                info[key] = self.labels.get((run.run_id, info[key]), info[key])
        return info

    def predictions(self, trial_id: str) -> list[dict[str, str]]:
        run, original = self._trials[trial_id]
        return run.predictions(original)

    def read(self, name: str) -> Any:
        merged = merge({run.run_id: run.read(name) for run in self.runs})
        return self._spec(merged) if name == "spec" else merged

    def _spec(self, merged: dict[str, Any]) -> dict[str, Any]:
        """The merged spec, with the keys a report acts on made usable: one language and checklist, the cover
        fields every run agrees on, every seed, and each run's models under the labels the report shows."""
        specs = [run.read("spec") for run in self.runs]
        models = [
            m | {"label": self.labels.get((run.run_id, m.get("label")), m.get("label")), "run": run.run_id}
            for run, spec in zip(self.runs, specs)
            for m in spec.get("models", [])
        ]
        seeds = sorted({seed for spec in specs for seed in spec["train"]["seeds"]})
        checklist = merged.get("checklist")
        cover = {key: value for key, value in (merged.get("cover") or {}).items() if not isinstance(value, PerRun)}
        return merged | {
            "lang": specs[0].get("lang", "en"),
            "models": models,
            "cover": cover,
            "checklist": None if isinstance(checklist, PerRun) else checklist,
            "train": merged["train"] | {"seeds": seeds},
        }

    def record(self) -> RunRecord:
        """The runs' status.json as one record: each field as every run agrees on it, or each run's value beside
        its id (merge), like the other merged values; a time a run lacks shows as –."""
        records = {run.run_id: run.record() for run in self.runs}

        def merged(name: str) -> Any:
            return merge({run_id: getattr(record, name) for run_id, record in records.items()})

        def merged_text(name: str) -> str:  # "" is text a run lacks: None, so merge shows it as missing (–)
            value = merge({run_id: getattr(record, name) or None for run_id, record in records.items()})
            return "" if value is None else value

        return RunRecord(
            format=min(record.format for record in records.values()),  # the oldest layout among them
            state=merged("state"),
            started=merged_text("started"),
            updated=merged_text("updated"),
            finished=merged_text("finished"),
            error=merged_text("error"),
            failed_trials=[trial for record in records.values() for trial in record.failed_trials],
            trial_counts=merged("trial_counts"),
            resumed=any(record.resumed for record in records.values()),
        )

    def verify(self) -> list[str]:
        return [f"{run.run_id}: {problem}" for run in self.runs for problem in run.verify()]


# ------------------------------------------------------------------ what differs between the runs


def _row(kind: str, what: str, values: dict[str, Any], effect: str = "", subject: str = "") -> dict[str, Any]:
    return {
        "kind": kind,
        "what": what,
        "subject": subject,
        "effect": effect,
        "by_run": {run_id: MISSING if value is None else str(value) for run_id, value in values.items()},
    }


def _differing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if len(set(row["by_run"].values())) > 1]


def _settings_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    trials = {run.run_id: run.trial_records() for run in runs}
    effects = {"epochs": OTHER_EPOCHS, "seed": ""}  # seeds differ by design: a model's seeds are aggregated
    return [
        _row(
            "Settings",
            key,
            {
                run_id: ", ".join(sorted({str(t.config.get(key)) for t in records}))
                for run_id, records in trials.items()
            },
            effects.get(key, NOT_IDENTICAL),
        )
        for key in REPORTED
    ]


def _data_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    data = {run.run_id: run.read("data") for run in runs}
    images = {
        run.run_id: {
            split: f"{data[run.run_id].get(f'{split}_size')} · sha256 {data_checksum(run, split)[:12]}"
            for split in ("train", "test")
        }
        for run in runs
    }
    return [
        _row("Data", "Dataset", {r: d.get("dataset") for r, d in data.items()}),
        _row("Data", "Test images", {r: i["test"] for r, i in images.items()}, WITHHELD_MCNEMAR),
        _row("Data", "Training images", {r: i["train"] for r, i in images.items()}, OTHER_TRAINING_IMAGES),
        _row("Data", "Validation images", {r: d.get("validation_size") or 0 for r, d in data.items()}),
        _row("Data", "Normalisation (mean, std)", {r: f"{d.get('mean')}, {d.get('std')}" for r, d in data.items()}),
    ]


def _code_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    code: dict[str, dict[str, Any]] = {}
    for run in runs:
        for model in run.read("spec").get("models", []):
            sha = (model.get("code") or {}).get("sha256")
            code.setdefault(model.get("label"), {})[run.run_id] = sha[:12] if sha else None
    rows = [_row("Code", "reportgen", {run.run_id: run.read("environment").get("reportgen") for run in runs})]
    return rows + [
        _row("Code", "Model code (sha256)", values, KEPT_APART, subject=str(label))
        for label, values in code.items()
        if len(values) > 1
    ]


def _environment_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    env = {run.run_id: run.read("environment") for run in runs}
    return [
        _row("Environment", "Python", {r: e.get("python") for r, e in env.items()}),
        _row("Environment", "torch", {r: e.get("torch") for r, e in env.items()}, OTHER_TORCH),
        _row(
            "Environment",
            "Device",
            {r: f"{e.get('device')} ({e.get('device_name')})" for r, e in env.items()},
            SLOWER_OR_FASTER,
        ),
        _row(
            "Environment",
            "threads",
            {r: e.get("threads_per_trial", e.get("threads")) for r, e in env.items()},
            SLOWER_OR_FASTER,
        ),
    ]


def _label_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    """A label that names differently trained models in different runs: how the report tells them apart."""
    shown = report_labels(runs)
    labels = dict.fromkeys(label for _, label in shown)
    why = ATTRIBUTED if submissions(runs) else KEPT_APART
    return [
        _row("Models", "Label", {run.run_id: shown.get((run.run_id, label)) for run in runs}, why, subject=label)
        for label in labels
        if any(shown[key] != label for key in shown if key[1] == label)
    ]


def _cover_rows(runs: list[ArchiveReader]) -> list[dict[str, Any]]:
    """Who handed each run in and for what (the cover): a combined report keeps each run's, never one of them."""
    covers = {run.run_id: run.read("spec").get("cover") or {} for run in runs}
    rows = [_row("Cover", "Authors", {run.run_id: authors(run) or None for run in runs})]
    return rows + [
        _row("Cover", name, {run_id: cover.get(key) for run_id, cover in covers.items()})
        for name, key in (("Title", "title"), *COVER_ROWS)
    ]


def differences(runs: list[ArchiveReader]) -> dict[str, Any] | None:
    """What differs between the runs of a combined report, each with what it invalidates; None for one run."""
    if len(runs) < 2:
        return None
    rows = _differing(
        _cover_rows(runs) + _settings_rows(runs) + _data_rows(runs) + _code_rows(runs) + _environment_rows(runs)
    )
    return {"runs": [run.run_id for run in runs], "rows": rows + _label_rows(runs)}
