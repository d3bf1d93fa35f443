"""Experiment specs: TOML → validated ExperimentSpec → list of Trials (the sweep expanded).

Any [train] setting may be a list to sweep; trials are models × every combination × seeds.
Validation happens here, before any data is read or any model trained.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.cover import COVER_KEYS, parse_cover
from reportgen.data import DATASETS, FORMATS
from reportgen.data.augment import Augment
from reportgen.errors import SpecError, close_names, did_you_mean
from reportgen.files import sha256_file
from reportgen.languages import LANGUAGES
from reportgen.models.registry import ModelRef, model_code, parse_model_ref
from reportgen.models.sources import changed_modules, local_modules
from reportgen.settings import DEVICE_PATTERN, SETTINGS, SWEEPABLE, TrainConfig

LABEL_PATTERN = re.compile(r"[^A-Za-z0-9._-]+")
MAX_TRIALS = 1000  # default bound on models × settings combinations × seeds; raise with max_trials / --max-trials
DEFAULT_NAME = "Model comparison"  # a spec without a name (or own models on the embedded spec); translated
MAX_NESTING = 32  # tables/arrays deeper than this are never a spec; refused before anything recurses into them
# Bidirectional-text controls can make a label read differently from what it is (Trojan Source).
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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


# --- validation -----------------------------------------------------------------------------------

TOP_KEYS = {
    "name",
    "notes",
    "device",
    "lang",
    "data",
    "models",
    "train",
    "report",
    "source",
    "augment",
    "checklist",
    "max_trials",
    "cover",
}  # cover: as spec.json records [report]'s cover keys
AUGMENT_KEYS = {"rotation", "translate", "scale", "erasing", "crop", "flip"}
DATA_KEYS = {f for f in DataSpec.__dataclass_fields__}
MODEL_KEYS = {"name", "kwargs", "label", "base", "train", "code"}  # code: recorded by the archive, not user input
TRAIN_KEYS = set(SWEEPABLE) | {"seeds", "seed"}
REPORT_KEYS = {"lang", "checklist", *COVER_KEYS}
# The tables a key can belong to: a key written in the wrong one is pointed to its own (`epochs` at the top).
_TABLES = {"": TOP_KEYS, "train.": TRAIN_KEYS, "data.": DATA_KEYS, "augment.": AUGMENT_KEYS, "report.": REPORT_KEYS}


def _key_hint(key: str, allowed: set[str], prefix: str) -> str | None:
    """ "did you mean 'train.epochs'?" for an unknown key: the close keys of its own table; else the key of that
    name in a neighbouring table (`epochs` at the top, or in a [[models]] entry), or failing that a close one."""
    names = [prefix + name for name in close_names(key, allowed)]
    if not names:
        tables = _neighbours(prefix)
        elsewhere = [table + name for table, keys in tables.items() for name in close_names(key, keys, 1)]
        names = [name for name in elsewhere if name.endswith(f".{key}")] or elsewhere[:1]
    return f"did you mean {', '.join(map(repr, names))}?" if names else None


def _neighbours(prefix: str) -> dict[str, set[str]]:
    """The other tables a key written under `prefix` may have been meant for."""
    if prefix in _TABLES:
        return {table: keys for table, keys in _TABLES.items() if table != prefix}
    if prefix.startswith("models[") and not prefix.endswith(".train."):
        return {f"{prefix}train.": set(SWEEPABLE)}
    return {}


def _unquoted_hint(value: Any, kind: type | tuple) -> str | None:
    """A number written in quotes (`epochs = "5"`) is TOML text: say how to write it."""
    numeric = {int, float} & set(kind if isinstance(kind, tuple) else (kind,))
    if not numeric or not isinstance(value, str):
        return None
    try:
        number = int(value) if int in numeric and float not in numeric else float(value)
    except ValueError:
        return None
    return f"write the number without quotes: {value.strip()}" if math.isfinite(number) else None


class _Checker:
    """Validates one spec source, naming the file and the dotted key in every error."""

    def __init__(self, source: str, flags: dict[str, str] | None = None) -> None:
        self.source = source
        self.flags = flags or {}  # dotted key → the CLI flag that overrode it
        # model files named in a spec are relative to the spec's own folder
        self.folder = Path(source).resolve().parent if Path(source).is_file() else None

    def fail(self, key: str, expected: str, got: Any, hint: str | None = None) -> SpecError:
        return SpecError(f"{self.where(key)}: expected {expected}, got {got!r}" + (f"; {hint}" if hint else ""))

    def where(self, key: str) -> str:
        """Where a value came from: the command-line flag that gave it, else the spec file and key."""
        flag = self.flags.get(key)
        return f"{flag} (spec key '{key}')" if flag else f"{self.source}: key '{key}'"

    def unknown(self, table: dict, allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                hint = _key_hint(key, allowed, prefix) or f"allowed: {', '.join(sorted(allowed))}"
                raise SpecError(f"{self.source}: unknown key '{prefix}{key}'; {hint}")

    def typed(self, key: str, value: Any, kind: type | tuple, expected: str) -> Any:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise self.fail(key, expected, value, _unquoted_hint(value, kind))
        return value

    def number(self, key: str, value: Any, low: float, high: float = float("inf"), integer: bool = False) -> Any:
        bound = (lambda x: str(int(x))) if integer and math.isfinite(high) else (lambda x: f"{x:g}")
        expected = f"{'an integer' if integer else 'a number'} in [{bound(low)}, {bound(high)}]"
        self.typed(key, value, int if integer else (int, float), expected)
        if not low <= value <= high:
            raise self.fail(key, expected, value)
        return value if integer else float(value)

    def choice(self, key: str, value: Any, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            hint = did_you_mean(value, options, quote=True) if isinstance(value, str) else None
            raise self.fail(key, f"one of {', '.join(options)}", value, hint)
        return value

    def label(self, key: str, value: Any) -> str:
        """A model label is shown in tables, figures, file names and the console: printable, one line."""
        self.typed(key, value, str, "a string")
        if not value.strip():
            raise self.fail(key, "a non-empty label", value)
        bad = sorted(
            {
                f"U+{ord(c):04X}"
                for c in value
                if unicodedata.category(c) in ("Cc", "Cs", "Co", "Zl", "Zp") or c in _BIDI_CONTROLS
            }
        )
        if bad:
            raise self.fail(key, f"a label without control characters (found {', '.join(bad)})", value)
        return value


def _setting(check: _Checker, key: str, value: Any) -> Any:
    """One value of a [train] setting, checked against its field's metadata in reportgen.settings."""
    setting = SETTINGS[key]
    if setting.choices:
        return check.choice(f"train.{key}", value, setting.choices)
    return check.number(f"train.{key}", value, setting.low, setting.high, integer=setting.integer)


def _parse_train(check: _Checker, table: dict) -> tuple[dict[str, list[Any]], list[int]]:
    check.unknown(table, TRAIN_KEYS, "train.")
    defaults = asdict(TrainConfig())
    train: dict[str, list[Any]] = {}
    for key in SWEEPABLE:
        raw = table.get(key, defaults[key])
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            raise check.fail(f"train.{key}", "a value or a non-empty list", raw)
        train[key] = [_setting(check, key, v) for v in values]
    if "seed" in table and "seeds" in table:
        raise SpecError(f"{check.source}: give either 'train.seed' or 'train.seeds', not both")
    key = "train.seed" if "seed" in table else "train.seeds"  # errors name the key the spec wrote
    raw_seeds = table.get(key.removeprefix("train."), defaults["seed"])
    seeds = raw_seeds if isinstance(raw_seeds, list) else [raw_seeds]
    if not seeds:
        raise check.fail(key, "a non-empty list of integers", raw_seeds)
    seed = SETTINGS["seed"]  # every seed is a value of the seed setting, so its range is the setting's
    seeds = [check.number(key, s, seed.low, seed.high, integer=seed.integer) for s in seeds]
    return train, seeds


def code_record(ref: ModelRef) -> dict[str, Any]:
    """Which code builds the model (registry.model_code) and, for a file of the user's, the sha256 of every
    module of its folder that it imports: a helper changed between epochs must stop a resume too."""
    code = model_code(ref)
    if code.get("file"):
        code["modules"] = local_modules(Path(code["file"]))
    return code


def _check_code_unchanged(check: _Checker, key: str, code: Any) -> None:
    """A resumed run must train with the code it started with: the archive recorded each model file's sha256
    and those of the local modules it imports (runs archived before that recorded the file alone)."""
    if not isinstance(code, dict) or not code.get("file") or not code.get("sha256"):
        return
    file = Path(code["file"])
    if not file.is_file():
        raise check.fail(key, f"the model file {file} the run was started with", "a missing file")
    changed = [file.name] if sha256_file(file) != code["sha256"] else []
    if isinstance(code.get("modules"), dict):
        changed += changed_modules(file, code["modules"])
    if changed:
        raise SpecError(
            f"{check.source}: key '{key}': {', '.join(changed)} changed since the run started (in {file.parent}); "
            "resuming would mix two versions of the model's code — restore it, or start a new run"
        )


def _parse_models(check: _Checker, entries: Any) -> list[ModelEntry]:
    if not isinstance(entries, list) or not entries:
        raise check.fail("models", "a non-empty array of [[models]] tables", entries)
    models: list[ModelEntry] = []
    for i, entry in enumerate(entries):
        prefix = f"models[{i}]."
        if isinstance(entry, str):
            entry = {"name": entry}
        check.typed(f"models[{i}]", entry, dict, "a table with 'name' or a model name string")
        check.unknown(entry, MODEL_KEYS, prefix)
        name = check.typed(prefix + "name", entry.get("name"), str, "a registry name or 'module:Class'")
        kwargs = check.typed(prefix + "kwargs", entry.get("kwargs", {}), dict, "a table of constructor arguments")
        ref = parse_model_ref(name, kwargs, base_dir=check.folder)
        _check_code_unchanged(check, prefix + "code", entry.get("code"))
        label = check.label(prefix + "label", entry.get("label", ref.label))
        base = entry.get("base")
        if base is not None:
            check.typed(prefix + "base", base, str, "the label of another model")
        overrides = check.typed(prefix + "train", entry.get("train", {}), dict, "a table of training settings")
        check.unknown(overrides, set(SWEEPABLE), prefix + "train.")
        overrides = {k: _setting(check, k, v) for k, v in overrides.items()}
        models.append(ModelEntry(ref, label, base, overrides))
    labels = [m.label for m in models]
    for i, model in enumerate(models):
        if labels.count(model.label) > 1:
            raise check.fail(f"models[{i}].label", "labels that are unique within the spec", model.label)
        if model.base is not None and model.base not in labels:
            raise check.fail(f"models[{i}].base", f"one of the labels {labels}", model.base)
    return models


def _parse_data(check: _Checker, table: Any) -> DataSpec:
    check.typed("data", table, dict, "a table")
    check.unknown(table, DATA_KEYS, "data.")
    dataset = check.choice("data.dataset", table.get("dataset", "fashion-mnist"), DATASETS)
    paths = {}
    for key in ("data_dir", "train", "test"):
        if table.get(key) is not None:
            paths[key] = check.typed(f"data.{key}", table[key], str, "a path")
    fmt = check.choice("data.format", table.get("format", "idx"), FORMATS)
    if fmt != "idx" and not {"train", "test"} <= paths.keys():
        raise check.fail("data.train", f"train and test paths for format {fmt!r}", paths.get("train"))
    sizes = {
        k: check.number(f"data.{k}", table[k], 1, 10_000_000, integer=True)
        for k in ("train_subset", "test_subset")
        if table.get(k) is not None
    }
    stats = {
        k: check.number(f"data.{k}", table[k], 1e-6 if k == "std" else 0.0, 1.0)
        for k in ("mean", "std")
        if table.get(k) is not None
    }
    if table.get("validation") is not None:
        stats["validation"] = check.number("data.validation", table["validation"], 0.01, 0.5)
    if table.get("seed") is not None:
        stats["seed"] = check.number("data.seed", table["seed"], 0, 2**31 - 1, integer=True)
    return DataSpec(dataset, format=fmt, **paths, **sizes, **stats)


def _parse_augment(check: _Checker, table: Any) -> str:
    """[augment] table → the canonical text every trial's TrainConfig carries."""
    check.typed("augment", table, dict, "a table")
    check.unknown(table, AUGMENT_KEYS, "augment.")
    scale = table.get("scale", [1.0, 1.0])
    if not (isinstance(scale, list) and len(scale) == 2):
        raise check.fail("augment.scale", "[min, max], e.g. [0.9, 1.1]", scale)
    low, high = (check.number("augment.scale", v, 0.1, 10.0) for v in scale)
    if low > high:
        raise check.fail("augment.scale", "min ≤ max", scale)
    return Augment(
        rotation=check.number("augment.rotation", table.get("rotation", 0.0), 0.0, 180.0),
        translate=check.number("augment.translate", table.get("translate", 0.0), 0.0, 0.5),
        scale_min=low,
        scale_max=high,
        erasing=check.number("augment.erasing", table.get("erasing", 0.0), 0.0, 1.0),
        crop=check.number("augment.crop", table.get("crop", 0), 0, 16, integer=True),
        flip=check.number("augment.flip", table.get("flip", 0.0), 0.0, 1.0),
    ).text()


def _check_nesting(raw: Any, source: str) -> None:
    """Iteratively (no recursion of our own): refuse values nested deeper than MAX_NESTING."""
    stack = [(raw, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SpecError(f"{source}: values nested more than {MAX_NESTING} levels deep; a spec needs a few")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_spec(raw: dict[str, Any], source: str, flags: dict[str, str] | None = None) -> ExperimentSpec:
    """Validate a spec dictionary (from TOML, plus CLI overrides) into an ExperimentSpec; `flags`: the
    command-line flag of each overridden key, named in errors about its value instead of the file."""
    check = _Checker(source, flags)
    check.typed("<spec>", raw, dict, "a table of settings")
    _check_nesting(raw, source)
    check.unknown(raw, TOP_KEYS, "")
    report = check.typed("report", raw.get("report", {}), dict, "a table")
    check.unknown(report, REPORT_KEYS, "report.")
    checklist = report.get("checklist", raw.get("checklist"))
    if checklist is not None:  # its contents are checked with the request (request.py), which loads report code
        check.typed("report.checklist", checklist, str, "'assignment' or a checklist TOML path")
    train, seeds = _parse_train(check, check.typed("train", raw.get("train", {}), dict, "a table"))
    train["augment"] = [_parse_augment(check, raw.get("augment", {}))]
    device = raw.get("device", "auto")
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        hint = did_you_mean(device, ("auto", "cpu", "cuda"), quote=True) if isinstance(device, str) else None
        raise check.fail("device", "auto, cpu, cuda or cuda:N", device, hint)
    max_trials = check.number("max_trials", raw.get("max_trials", MAX_TRIALS), 1, 10_000_000, integer=True)
    spec = ExperimentSpec(
        name=check.typed("name", raw.get("name", DEFAULT_NAME), str, "a string"),
        data=_parse_data(check, raw.get("data", {})),
        models=_parse_models(check, raw.get("models")),
        train=train,
        seeds=seeds,
        device=device,
        notes=check.typed("notes", raw.get("notes", ""), str, "a string"),
        lang=check.choice("report.lang", report.get("lang", raw.get("lang", "en")), LANGUAGES),
        source=raw.get("source", source),
        checklist=checklist,
        max_trials=max_trials,
        cover=parse_cover(check.typed("cover", raw.get("cover", {}), dict, "a table") | report, source),
    )
    _check_effective(check, spec)
    _check_patience(check, spec)
    check_trial_count(spec)
    return spec


def _check_patience(check: _Checker, spec: ExperimentSpec) -> None:
    """Early stopping decides on the validation split: on the test set it would make the test figures
    optimistic (the test images would have chosen the epoch), so without [data] validation it is refused."""
    if spec.data.validation is not None:
        return
    for model in spec.models:
        if any((model.train.get("patience") or 0, *(spec.train.get("patience") or [0]))):
            raise SpecError(
                f"{check.where('train.patience')}: early stopping needs a validation split to decide on — add "
                "[data] validation = 0.1 (a tenth of the training images held out); stopping on the test set "
                "would make its figures optimistic"
            )


def _check_effective(check: _Checker, spec: ExperimentSpec) -> None:
    """Refuse a setting given where it has no effect (momentum with Adam): the report would show a value
    that training never used. Checked on each model's sets of values, never by expanding the sweep."""
    for model in spec.models:
        values = spec.train | {key: [value] for key, value in model.train.items()}
        for name, setting in SETTINGS.items():
            if setting.only_with is None or name not in values:
                continue
            other, allowed = setting.only_with
            used = [v for v in values[name] if v != getattr(TrainConfig(), name)]
            without = [v for v in values[other] if v not in allowed]
            if used and without:
                raise SpecError(
                    f"{check.where(f'train.{name}')}: {used[0]!r} has no effect with {other} {without[0]!r} "
                    f"({name} is used by {other} {' and '.join(allowed)} only); drop it, or give it only to "
                    f"models trained with those (their own [models.train] table)"
                )


def recorded_data(spec: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """An archived spec's data settings (load_dataset's keywords) and the seed its subsets were drawn with:
    [data] seed, or, for runs archived before it existed, the first training seed as then."""
    settings = dict(spec["data"])
    seed = settings.pop("seed", None)
    return settings, spec["train"]["seeds"][0] if seed is None else seed


def read_spec_file(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """Raw TOML of a spec file, or of the embedded default when path is None."""
    if path is None:
        text, source = (
            resources.files("reportgen").joinpath("default_spec.toml").read_text("utf-8"),
            "<embedded default spec>",
        )
    else:
        source = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SpecError(f"{source}: cannot read spec ({exc.strerror})") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the spec as UTF-8"
            ) from exc
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML ({exc})") from exc
    except RecursionError as exc:
        raise SpecError(f"{source}: invalid TOML (arrays or tables nested too deeply to parse)") from exc


def set_override(raw: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Apply a CLI override such as train.epochs=3 to the raw spec before validation."""
    *parents, leaf = dotted_key.split(".")
    table = raw
    for part in parents:
        table = table.setdefault(part, {})
    table[leaf] = value


def _anchor_data_paths(raw: dict[str, Any], folder: Path) -> None:
    """Data paths written in a spec file are relative to the spec's folder, like its model files (the
    command line's --data-dir stays relative to the current folder)."""
    table = raw.get("data")
    if isinstance(table, dict):
        for key in ("data_dir", "train", "test"):
            value = table.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                table[key] = str(folder / value)


def describe_own_models(raw: dict[str, Any]) -> None:
    """The default experiment's title and notes describe its own three models: with other models
    they would mislabel the report, so the generic title is used instead."""
    raw.pop("name", None)
    raw.pop("notes", None)


def load_spec(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> ExperimentSpec:
    raw, source = read_spec_file(path)
    if path is not None:
        _anchor_data_paths(raw, Path(path).resolve().parent)
    elif (overrides or {}).get("models") is not None:
        describe_own_models(raw)
    for key, value in (overrides or {}).items():
        if value is not None:
            set_override(raw, key, value)
    return parse_spec(raw, source, flags)
