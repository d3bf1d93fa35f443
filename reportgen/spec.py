"""Experiment specs: TOML → a validated ExperimentSpec (experiment.py), which expands into the trials.

Any [train] setting may be a list to sweep; trials are models × every combination × seeds.
Validation happens here, before any data is read or any model trained; spec_checker.py words its errors.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.cover import parse_cover
from reportgen.data import DATASETS, FORMATS
from reportgen.data.augment import Augment
from reportgen.errors import SpecError, did_you_mean
from reportgen.experiment import MAX_TRIALS, DataSpec, ExperimentSpec, ModelEntry, check_trial_count
from reportgen.files import sha256_file
from reportgen.languages import LANGUAGES
from reportgen.models.registry import parse_model_ref
from reportgen.models.sources import changed_modules
from reportgen.settings import DEVICE_PATTERN, SETTINGS, SWEEPABLE, TrainConfig
from reportgen.spec_checker import (
    AUGMENT_KEYS,
    DATA_KEYS,
    MODEL_KEYS,
    REPORT_KEYS,
    TOP_KEYS,
    TRAIN_KEYS,
    Checker,
)

DEFAULT_NAME = "Model comparison"  # a spec without a name (or own models on the embedded spec); translated
MAX_NESTING = 32  # tables/arrays deeper than this are never a spec; refused before anything recurses into them


def _setting(check: Checker, key: str, value: Any) -> Any:
    """One value of a [train] setting, checked against its field's metadata in reportgen.settings."""
    setting = SETTINGS[key]
    if setting.choices:
        return check.choice(f"train.{key}", value, setting.choices)
    return check.number(f"train.{key}", value, setting.low, setting.high, integer=setting.integer)


def _parse_train(check: Checker, table: dict) -> tuple[dict[str, list[Any]], list[int]]:
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


def _check_code_unchanged(check: Checker, key: str, code: Any) -> None:
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


def _parse_models(check: Checker, entries: Any) -> list[ModelEntry]:
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


def _parse_data(check: Checker, table: Any) -> DataSpec:
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


def _parse_augment(check: Checker, table: Any) -> str:
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
    check = Checker(source, flags)
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


def _check_patience(check: Checker, spec: ExperimentSpec) -> None:
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


def _check_effective(check: Checker, spec: ExperimentSpec) -> None:
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
