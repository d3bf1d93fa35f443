"""Which trials are one training, and which hand-ins copy another's: judged from what the archive holds.

Two trials are one training (issue 33) when the archive shows it by any of:
- the same predicted class on every one of the same test images (the run's archived test images and their
  labels), each with the same confidence (to CONFIDENCE_TOLERANCE; runs archived before confidences were
  recorded: at least MIN_MISTAKES mistakes made alike). A model that predicts almost one class, or NaN, says
  nothing about how it was trained and is never matched this way; two seeds that both get every image right
  still differ in their confidences;
- identical weights (the sha256 of model.pt in the manifest);
- identical per-epoch metrics apart from timing, every loss finite (17 digits do not repeat by chance);
- the same recipe: the same model as the report labels it, every setting and the seed alike, on the same
  training images (`seeds = [0, 0, 0]`, a seed trained again: hardware may change the low bits, not the draw).
Seed aggregates, paired comparisons and "n seeds" count each training once (TrialSummary.training), and
the report names the trials that were one training, with what matched.

Between hand-ins of different people (the grading view, issue 35) a pair of runs is flagged as copies when
any of their trials are one training by the evidence above (the recipe aside: two people's labels never
match), when two models agree on at least AGREEMENT of the same test images and make the same mistakes
(NEAR_MISTAKES of either's, at least MIN_MISTAKES of them), or when both ran the same model code they wrote
themselves (its source parsed, so comments and layout do not matter). The same built-in or published model
code is the assignment's, not a copy: only an identical training of it is.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import itertools
import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.files import sha256_file
from reportgen.privacy import resolved_path
from reportgen.report.combine import authors, data_checksum, submissions
from reportgen.report.i18n import Message, Translator
from reportgen.report.model import Claim
from reportgen.run.archive_layout import WEIGHTS_FILE
from reportgen.run.archive_reading import ArchiveReader, RunReader
from reportgen.run.archive_records import TrialRecord, load_epochs, load_prediction_columns
from reportgen.run.manifest import recorded_checksums
from reportgen.states import TrialState

if TYPE_CHECKING:
    import numpy as np

CONFIDENCE_TOLERANCE = 1e-3  # archived to 5 places; a seed trained again on other hardware moves the 6th
AGREEMENT = 0.995  # near-copies: the share of the same test images two models predict alike
NEAR_MISTAKES = 0.9  # ... and the share of their mistakes (image and wrong class) they make alike
MIN_MISTAKES = 10  # mistakes made alike before they say anything: two near-perfect models agree anyway
TIMING = ("seconds",)  # metrics that differ between two runs of one training

PREDICTIONS = Message("identical predictions on all {n} test images")
WEIGHTS = Message("identical weights")
METRICS = Message("identical metrics apart from timing")
RECIPE = Message("the same model, settings and seed on the same training images")
EVIDENCE_ORDER = (PREDICTIONS.key, WEIGHTS.key, METRICS.key, RECIPE.key)


@dataclass(frozen=True)
class Predictions:
    """One trial's final predictions on its run's test images."""

    images: str  # digest of the test images they were made on
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray | None  # None: archived before confidences were recorded

    @property
    def wrong(self) -> np.ndarray:
        return self.predicted != self.labels

    def informative(self) -> bool:
        """Enough to tell trainings apart: finite confidences, and at least half the classes predicted (a model
        that collapsed to one class, or diverged to NaN, predicts alike whatever trained it)."""
        import numpy as np

        if self.confidence is not None and not np.isfinite(self.confidence).all():
            return False
        return len(np.unique(self.predicted)) >= max(2, len(np.unique(self.labels)) // 2)

    def comparable(self, other: Predictions) -> bool:
        import numpy as np

        return self.images == other.images and np.array_equal(self.labels, other.labels)


@dataclass(frozen=True)
class Fingerprint:
    """What identifies one trial's training, as the archive shows it."""

    trial_id: str
    run_id: str
    label: str
    model: str
    config: dict[str, Any]
    weights: str | None
    metrics: str | None
    recipe: str
    code: str | None  # normalised hash of model code the hand-in wrote itself; None for built-in or published code
    code_name: str


@dataclass(frozen=True)
class Group:
    """Trials that are one training, in archive order, and what showed it."""

    trial_ids: tuple[str, ...]
    evidence: tuple[Message, ...]

    def claim(self, translate: Translator) -> Claim:
        text = translate(
            "Trials {trials} are one training ({evidence}): each counts once in seed aggregates, seed counts and "
            "paired comparisons.",
            trials=", ".join(self.trial_ids),
            evidence=", ".join(m.render(translate) for m in self.evidence),
        )
        return Claim(text, False, ", ".join(self.trial_ids), "same training")


# ------------------------------------------------------------------ reading what identifies a training


def _weights(source: ArchiveReader, original: str, manifest: dict[str, str]) -> str | None:
    """The sha256 of model.pt (hashed here for a run not sealed yet); None where the weights were not kept."""
    recorded = manifest.get(f"trials/{original}/{WEIGHTS_FILE}")
    if isinstance(recorded, str):
        return recorded
    path = source.trial_dir(original) / WEIGHTS_FILE
    return sha256_file(path) if path.is_file() else None


def _metrics(source: ArchiveReader, original: str) -> str | None:
    """The per-epoch metrics without timing; None unless every loss is finite (diverged epochs repeat)."""
    epochs = load_epochs(source.trial_dir(original))
    if not epochs or any(e.get(k) is None for e in epochs for k in ("train_loss", "test_loss")):
        return None
    kept = [{k: v for k, v in e.items() if k not in TIMING} for e in epochs]
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def normalised_source_hash(text: str) -> str:
    """sha256 of Python source as parsed: comments, blank lines and layout do not change it."""
    try:
        return hashlib.sha256(ast.dump(ast.parse(text)).encode()).hexdigest()
    except (SyntaxError, ValueError):
        return hashlib.sha256(text.encode()).hexdigest()


def _code(source: ArchiveReader, reference: str, code: dict[str, Any] | None) -> tuple[str | None, str]:
    """(hash of the model code the hand-in wrote, its file name). A registry name (built-in) or a zoo package
    is the assignment's or a library's code: None. The archived file is read when it is still there unchanged,
    so a copy with comments added still matches; else its recorded sha256 is compared as it is."""
    code = code or {}
    if ":" not in reference or code.get("package"):
        return None, reference
    name = Path(code["file"]).name if code.get("file") else reference
    if code.get("file") and code.get("sha256"):
        path = Path(resolved_path(code["file"], source.path))
        if path.is_file() and sha256_file(path) == code["sha256"]:
            return normalised_source_hash(path.read_text("utf-8", errors="replace")), name
    return code.get("sha256") or code.get("source_sha256"), name


def _test_images(source: ArchiveReader) -> str:
    """The run's test images as archived (their pixels, not the file's bytes: the npz records a time);
    runs archived before the images were kept: the checksum of the files and subset they were drawn by."""
    images = source.test_images()
    if images is None:
        from reportgen.report.combine import test_set_checksum

        return test_set_checksum(source)
    digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
    digest.update(images.tobytes())
    return digest.hexdigest()


def _read_predictions(trial_folder: Path, images: str) -> Predictions | None:
    columns = load_prediction_columns(trial_folder)
    if columns is None:
        return None
    confidence = columns["confidence"].astype(float) if "confidence" in columns else None
    return Predictions(images, columns["label"], columns["prediction"], confidence)


# ------------------------------------------------------------------ grouping


class _Groups:
    """Union-find over trial ids, remembering what joined them."""

    def __init__(self, ids: list[str]) -> None:
        self.parent = {i: i for i in ids}
        self.evidence: dict[str, list[Message]] = {i: [] for i in ids}

    def find(self, i: str) -> str:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: str, b: str, why: Message) -> None:
        ra, rb = self.find(a), self.find(b)
        moved = self.evidence.pop(rb) if ra != rb else []
        self.parent[rb] = ra
        for message in [*moved, why]:
            if message not in self.evidence[ra]:
                self.evidence[ra].append(message)

    def groups(self, order: list[str]) -> list[Group]:
        members: dict[str, list[str]] = {}
        for i in order:
            members.setdefault(self.find(i), []).append(i)
        return [
            Group(tuple(ids), tuple(sorted(self.evidence[root], key=lambda m: EVIDENCE_ORDER.index(m.key))))
            for root, ids in members.items()
            if len(ids) > 1
        ]


def _one_training(a: Predictions, b: Predictions) -> bool:
    """The same predictions on the same images; confidences alike where both were recorded, else the same
    mistakes, enough of them to be a fingerprint."""
    import numpy as np

    if not (a.comparable(b) and np.array_equal(a.predicted, b.predicted) and a.informative() and b.informative()):
        return False
    if a.confidence is not None and b.confidence is not None:
        return bool(np.max(np.abs(a.confidence - b.confidence), initial=0.0) <= CONFIDENCE_TOLERANCE)
    return int(a.wrong.sum()) >= MIN_MISTAKES


class Trainings:
    """Every registered trial of a run (or of combined runs) fingerprinted once, its predictions read once."""

    def __init__(self, run: RunReader) -> None:
        self.run = run
        spec_models = run.read("spec").get("models", [])
        models = {(m.get("run"), m.get("label")): m for m in spec_models}
        self.prints: dict[str, Fingerprint] = {}
        self.predictions: dict[str, Predictions | None] = {}
        self.status: dict[str, TrialState] = {}
        images = {source.run_id: _test_images(source) for source in run.runs}
        manifests = {source.run_id: recorded_checksums(source.path) for source in run.runs}
        trains = {source.run_id: data_checksum(source, "train") for source in run.runs}
        for trial_id in run.trial_ids():
            info = run.trial(trial_id)
            record = TrialRecord.from_dict(trial_id, info)
            if record is None:
                continue
            source, original = run.origin(trial_id), info.get("archived_as", trial_id)
            model = models.get((info.get("run_id"), record.label)) or models.get((None, record.label)) or {}
            code, code_name = _code(source, record.model, model.get("code"))
            recipe = json.dumps([record.label, record.config, trains[source.run_id]], sort_keys=True, default=str)
            self.prints[trial_id] = Fingerprint(
                trial_id,
                source.run_id,
                record.label,
                record.model,
                record.config,
                _weights(source, original, manifests[source.run_id]),
                _metrics(source, original),
                recipe,
                code,
                code_name,
            )
            self.status[trial_id] = record.status
            self.predictions[trial_id] = _read_predictions(source.trial_dir(original), images[source.run_id])

    @functools.cached_property
    def groups(self) -> list[Group]:
        """Trials that are one training, each group with what showed it (in the report's trial order)."""
        ids = list(self.prints)
        joined = _Groups(ids)
        for why, key in (
            (WEIGHTS, lambda p: p.weights),
            (METRICS, lambda p: p.metrics),
            (RECIPE, lambda p: p.recipe if self.status[p.trial_id] == TrialState.COMPLETE else None),
        ):
            self._join_equal(joined, why, key)
        self._join_predictions(joined)
        return joined.groups(ids)

    def _join_equal(self, joined: _Groups, why: Message, key) -> None:
        first: dict[str, str] = {}
        for trial_id, fingerprint in self.prints.items():
            value = key(fingerprint)
            if value is not None and first.setdefault(value, trial_id) != trial_id:
                joined.join(first[value], trial_id, why)

    def _join_predictions(self, joined: _Groups) -> None:
        buckets: dict[tuple, list[str]] = {}
        for trial_id, p in self.predictions.items():
            if p is not None:
                buckets.setdefault((p.images, p.labels.tobytes(), p.predicted.tobytes()), []).append(trial_id)
        for members in buckets.values():
            for a, b in itertools.combinations(members, 2):
                pa, pb = self.predictions[a], self.predictions[b]
                if _one_training(pa, pb):
                    joined.join(a, b, Message(PREDICTIONS.key, {"n": len(pa.labels)}))

    # -------------------------------------------------------------- copies between different people's runs

    def copies(self, translate: Translator) -> dict[str, list[dict[str, str]]]:
        """Run id → the other people's runs it is a copy of: {"run_id", "who", "text"}, the text in the report's
        language with the evidence ("copy of Lee (2024) — lenet5 (a) = lenet5 (b): identical predictions on
        all 300 test images; …"). Only between runs handed in by different people (a grading view)."""
        runs = self.run.runs
        found: dict[str, list[dict[str, str]]] = {run.run_id: [] for run in runs}
        if not submissions(runs):
            return found
        people = {run.run_id: authors(run) or run.run_id for run in runs}  # unnamed: graded under its run id
        for p, q in itertools.combinations(people, 2):
            if people[p] == people[q]:
                continue
            evidence = self._between(p, q, self.groups)
            if evidence:
                text = "; ".join(m.render(translate) for m in evidence)
                for this, other in ((p, q), (q, p)):
                    who = people[other]
                    found[this].append(
                        {
                            "run_id": other,
                            "who": who,
                            "text": translate("copy of {who}: {evidence}", who=who, evidence=text),
                        }
                    )
        return found

    @functools.cached_property
    def _by_run(self) -> dict[str, list[str]]:
        by_run: dict[str, list[str]] = {}
        for trial_id, fingerprint in self.prints.items():
            by_run.setdefault(fingerprint.run_id, []).append(trial_id)
        return by_run

    def _of(self, run_id: str) -> list[str]:
        return self._by_run.get(run_id, [])

    def _between(self, a: str, b: str, groups: list[Group]) -> list[Message]:
        """What shows that runs a and b are copies: trainings they share, near-identical predictions, model code
        they wrote alike."""
        evidence = []
        for group in groups:
            ours = [t for t in group.trial_ids if self.prints[t].run_id == a]
            theirs = [t for t in group.trial_ids if self.prints[t].run_id == b]
            kept = [m for m in group.evidence if m.key != RECIPE.key]
            if ours and theirs and kept:
                kept += self._assignment_model(ours[0], theirs[0])
                evidence.append(Message("{pair}: {what}", {"pair": self._pair(ours[0], theirs[0]), "what": kept}))
        shared = {t for g in groups for t in g.trial_ids}
        for x, y in itertools.product(self._of(a), self._of(b)):
            near = None if {x, y} & shared else self._near_copy(x, y)
            if near:
                evidence.append(Message("{pair}: {what}", {"pair": self._pair(x, y), "what": near}))
        codes = {self.prints[t].code: self.prints[t].code_name for t in self._of(a)}
        for t in self._of(b):
            code = self.prints[t].code
            if code is not None and code in codes:
                evidence.append(
                    Message("the same model code ({file}), comments and layout aside", {"file": codes[code]})
                )
                codes.pop(code)
        return evidence

    def _assignment_model(self, x: str, y: str) -> list[Message]:
        """Said beside an identical training of a built-in model with the same settings and seed: what two
        people running the assignment's defaults would also hand in, for the grader to weigh."""
        a, b = self.prints[x], self.prints[y]
        if a.code is None and b.code is None and a.model == b.model and a.config == b.config:
            return [Message("both trained the built-in {model} with the same settings and seed", {"model": a.model})]
        return []

    def _pair(self, x: str, y: str) -> str:
        return f"{self.prints[x].label} = {self.prints[y].label}"

    def _near_copy(self, x: str, y: str) -> Message | None:
        """≥ AGREEMENT of the same test images predicted alike and the same mistakes (image and wrong class):
        at least MIN_MISTAKES of them, NEAR_MISTAKES of all either made."""

        a, b = self.predictions.get(x), self.predictions.get(y)
        if a is None or b is None or not (a.comparable(b) and a.informative() and b.informative()):
            return None
        alike = a.predicted == b.predicted
        same_mistakes = int((alike & a.wrong).sum())
        mistakes = int((a.wrong | b.wrong).sum())
        if alike.mean() < AGREEMENT or same_mistakes < MIN_MISTAKES or same_mistakes < NEAR_MISTAKES * mistakes:
            return None
        return Message(
            "{alike} of {n} test images predicted alike, {same} of {mistakes} mistakes the same",
            {"alike": int(alike.sum()), "n": len(alike), "same": same_mistakes, "mistakes": mistakes},
        )


# One detector per run object a render reads: the report's trials and its grading view share it.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def trainings(run: RunReader) -> Trainings:
    """The run's trials fingerprinted (once per run object)."""
    if run not in _CACHE:
        _CACHE[run] = Trainings(run)
    return _CACHE[run]
