"""The experiment a spec describes, once validated (spec.py validates it): its models, data and settings,
the trials it expands into (models × every combination of swept settings × seeds, one at a time, never all
at once), and what spec.json records of it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reportgen.data.augment import Augment
from reportgen.errors import SpecError
from reportgen.models.registry import ModelRef, model_code
from reportgen.models.sources import local_modules
from reportgen.settings import SWEEPABLE, TrainConfig

LABEL_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")
MAX_TRIALS = 1000  # default bound on models × settings combinations × seeds; raise with max_trials / --max-trials


@dataclass(frozen=True)
class ModelEntry:
    ref: ModelRef
    label: str
    base: str | None = None  # label of the model this one regularizes, for the before/after table
    train: dict[str, Any] = field(default_factory=dict)  # deliberate per-model settings (e.g. weight_decay)


@dataclass(frozen=True)
class DataSpec:
    """Keyword arguments of data.load_dataset, validated."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    mean: float | None = None
    std: float | None = None
    format: str = "idx"
    train: str | None = None  # image formats: train archive/folder
    test: str | None = None
    validation: float | None = None  # fraction of the training data held out for model selection
    # draws the subsets and the validation split: fixed, and separate from the training seeds, so runs with
    # --seed 1 and --seed 2 train and test on the same images and combine into one seed study
    seed: int = 0


@dataclass(frozen=True)
class Trial:
    """One model trained with one combination of settings."""

    trial_id: str
    model: ModelEntry
    config: TrainConfig


@dataclass
class ExperimentSpec:
    name: str
    data: DataSpec
    models: list[ModelEntry]
    train: dict[str, list[Any]]  # each sweepable setting → its values (a single value is a 1-list)
    seeds: list[int]
    device: str = "auto"
    notes: str = ""
    lang: str = "en"
    source: str = "<embedded default>"
    checklist: str | None = None  # "assignment" (built in) or a checklist TOML path
    max_trials: int = MAX_TRIALS
    cover: dict[str, Any] = field(default_factory=dict)  # [report] title, course, authors…: see reportgen/cover.py

    def trial_count(self) -> int:
        """models × every combination of swept settings × seeds, counted without expanding anything."""
        return len(self.models) * math.prod(len(self.train[k]) for k in (*SWEEPABLE, "augment")) * len(self.seeds)

    def iter_trials(self) -> Iterator[Trial]:
        """The trials one at a time (itertools.product is lazy): nothing is built before it is needed."""
        keys = [*SWEEPABLE, "augment"]
        index = itertools.count()
        for model in self.models:
            for combo in itertools.product(*(self.train[k] for k in keys)):
                for seed in self.seeds:
                    config = TrainConfig(**(dict(zip(keys, combo)) | model.train), seed=seed)
                    yield Trial(f"{next(index):03d}-{slug(model.label)}", model, config)

    def trials(self) -> list[Trial]:
        """Every trial as a list; the count is checked first, so this is at most max_trials long."""
        check_trial_count(self)
        return list(self.iter_trials())

    def swept_keys(self) -> list[str]:
        """Settings that vary between trials (seed included when there are several)."""
        swept = [k for k in SWEEPABLE if len(self.train[k]) > 1]
        return swept + (["seed"] if len(self.seeds) > 1 else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "notes": self.notes,
            "device": self.device,
            "lang": self.lang,
            "checklist": self.checklist,
            "max_trials": self.max_trials,
            "cover": self.cover,
            "source": self.source,
            # data paths as the run read them (from the current folder): the archive records them relative to itself
            "data": {
                k: str(Path(v).expanduser().absolute()) if k in ("data_dir", "train", "test") and v else v
                for k, v in asdict(self.data).items()
            },
            "models": [
                {
                    "name": m.ref.target,
                    "kwargs": m.ref.kwargs,
                    "label": m.label,
                    "base": m.base,
                    "train": m.train,
                    "code": code_record(m.ref),
                }
                for m in self.models
            ],
            "train": {k: (v[0] if len(v) == 1 else v) for k, v in self.train.items() if k != "augment"}
            | {"seeds": self.seeds},
            "augment": _augment_table(self.train["augment"][0]),
        }


def _augment_table(text: str) -> dict[str, Any]:
    augment = Augment.from_text(text)
    table = {
        k: getattr(augment, k) for k in ("crop", "flip", "rotation", "translate", "erasing") if getattr(augment, k)
    }
    if (augment.scale_min, augment.scale_max) != (1.0, 1.0):
        table["scale"] = [augment.scale_min, augment.scale_max]
    return table


def slug(text: str) -> str:
    return LABEL_PATTERN.sub("-", text).strip("-")[:40] or "model"


def check_trial_count(spec: ExperimentSpec) -> int:
    """Refuse a sweep larger than spec.max_trials, computed arithmetically (10⁴ × 10⁴ is never built)."""
    count = spec.trial_count()
    if count > spec.max_trials:
        factors = [f"{len(spec.models)} model(s)"]
        factors += [f"{len(spec.train[k])} {k}" for k in SWEEPABLE if len(spec.train[k]) > 1]
        factors.append(f"{len(spec.seeds)} seed(s)")
        raise SpecError(
            f"{spec.source}: the sweep has {count:,} trials ({' × '.join(factors)}), more than the "
            f"limit of {spec.max_trials:,}; narrow the sweep, or raise the limit with "
            f"`max_trials = {count}` in the spec or --max-trials {count}"
        )
    return count


def code_record(ref: ModelRef) -> dict[str, Any]:
    """Which code builds the model (registry.model_code) and, for a file of the user's, the sha256 of every
    module of its folder that it imports: a helper changed between epochs must stop a resume too."""
    code = model_code(ref)
    if code.get("file"):
        code["modules"] = local_modules(Path(code["file"]))
    return code


def recorded_data(spec: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """An archived spec's data settings (load_dataset's keywords) and the seed its subsets were drawn with:
    [data] seed, or, for runs archived before it existed, the first training seed as then."""
    settings = dict(spec["data"])
    seed = settings.pop("seed", None)
    return settings, spec["train"]["seeds"][0] if seed is None else seed
