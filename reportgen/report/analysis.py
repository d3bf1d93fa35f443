"""Analysis of a run: what the report says, read from the archive, computed once; writes nothing.

analyse_run turns a run (or several combined) into the Analysis (analysed.py) every later step reads: trials,
settings, comparisons, significance, costs, galleries, sweeps. with_figures adds the figures drawn from it;
render.py then judges the checklist, builds the report model and writes the documents.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from reportgen.errors import ArchiveError
from reportgen.experiment import recorded_data
from reportgen.report.analysed import Analysis
from reportgen.report.combine import differences, test_set_checksum
from reportgen.report.conclusions import (
    calibration_sentences,
    conclusion,
    cost_sentences,
    did_not_learn,
    next_steps,
    significant_first,
)
from reportgen.report.figure_style import model_colors
from reportgen.report.figures import Figures, Sheet
from reportgen.report.findings import review_trials
from reportgen.report.i18n import Translator, translator
from reportgen.report.model import setting_text
from reportgen.report.predictions import (
    confident_mistakes,
    confusion_matrix,
    gallery_picks,
    per_class_accuracy,
    prediction_confidence,
    top_confusions,
)
from reportgen.report.significance import literature, pairwise_mcnemar, seed_aggregates
from reportgen.report.summary import (
    TrialSummary,
    before_after,
    best_per_model,
    cost_rows,
    quality_by_trial,
    ranked_rows,
    seed_mean,
    settings_check,
    summarize_trials,
    sweep_pivot,
    with_quality,
)
from reportgen.report.sweep import sweep_claims
from reportgen.run.archive_reading import ArchiveReader, RunReader
from reportgen.settings import HEATMAP_AXES, value_order
from reportgen.states import TrialState

# Templates, stylesheet and catalogues ship inside the package: found the same way in a checkout and a wheel.
GALLERY_PAGE = 120  # misclassified images per contact sheet (10 columns × 12 rows)


def _reload_test_images(run: ArchiveReader):
    """The test images for the galleries: archived with the run (test_images.npz, covered by the manifest);
    for runs archived before that, re-read from the original files and checked against the archive."""
    images = run.test_images()
    if images is not None:
        return images
    from reportgen.data.datasets import load_recorded_dataset  # loads torch: only for older runs

    spec = run.read("spec")
    return load_recorded_dataset(*recorded_data(spec), run.read("data")["files"]).test_images.numpy()


def _gallery_sheet(
    indices: list[int], rows: dict[int, dict[str, str]], names: list[str], wrong: bool, confidence: bool = False
) -> Sheet | None:
    """The images at `indices` captioned with their true and predicted class and how sure the model was (on
    a sheet of correct images, beside the class it shows); None when there is nothing to show."""
    if not indices:
        return None

    def sure(i: int) -> str:
        return _confidence_text(rows[i]["confidence"]) if confidence else ""

    captions = [
        (
            names[int(rows[i]["label"])] + ("" if wrong else sure(i)),
            names[int(rows[i]["prediction"])] + (sure(i) if wrong else ""),
        )
        for i in indices
    ]
    return Sheet(indices, captions, wrong)


def _confidence_text(value: str) -> str:
    """ " 97.3%" (rounded down, so 99.96% never reads 100.0%); "" for a diverged model's NaN confidence."""
    confidence = float(value or "nan")
    return f" {math.floor(1000 * confidence) / 10:.1f}%" if math.isfinite(confidence) else ""


def _galleries(
    run: RunReader,
    best: list[TrialSummary],
    predictions: dict[str, list[dict[str, str]]],
    images_of: dict[str, Any],
    names: list[str],
    seed: int,
) -> list[dict[str, Any]]:
    """Per model (its best trial), what its gallery shows; picks only: figures.py draws the sheets.
    `images_of`: each run's test images by run id; `names`: the class names in the report's language."""
    return [
        _gallery(trial, predictions[trial.trial_id], images_of[run.origin(trial.trial_id).run_id], names, seed)
        for trial in best
    ]


def _gallery(
    trial: TrialSummary, rows: list[dict[str, str]], images: Any, names: list[str], seed: int
) -> dict[str, Any]:
    """10 random correct images, the most frequent confusions with examples, the most confident mistakes,
    confusion matrix and per-class accuracy. Every misclassified image goes on contact sheets of their own
    (misclassified.html), not in the report's body."""
    by_index = {int(p["index"]): p for p in rows}
    correct, wrong = gallery_picks(rows, seed)
    matrix = confusion_matrix(rows, len(names))
    return {
        "trial": trial,
        "images": images,  # the test images the trial was evaluated on, which the sheets show
        "class_names": names,
        "correct_sheet": _gallery_sheet(correct, by_index, names, wrong=False, confidence="confidence" in rows[0]),
        "confusions": [
            pair
            | {
                "true_name": names[pair["true"]],
                "predicted_name": names[pair["predicted"]],
                "examples_sheet": _gallery_sheet(pair["examples"], by_index, names, wrong=True),
            }
            for pair in top_confusions(rows)
        ],
        "confident_sheet": _gallery_sheet(
            confident_mistakes(rows), by_index, names, wrong=True, confidence="confidence" in rows[0]
        ),
        "wrong_sheets": [
            _gallery_sheet(wrong[start : start + GALLERY_PAGE], by_index, names, wrong=True)
            for start in range(0, len(wrong), GALLERY_PAGE)
        ],
        "wrong_count": len(wrong),
        "test_count": len(rows),
        "matrix": matrix,
        "per_class": per_class_accuracy(matrix, names),
    }


DISAGREEMENTS_SHOWN = 8  # images per "right for A, wrong for B" strip


def _disagreements(
    run: RunReader,
    best: list[TrialSummary],
    tests: list[dict[str, Any]],
    predictions: dict[str, list[dict[str, str]]],
    untrained: set[str],
    images_of: dict[str, Any],
    classes: list[str],
) -> list[dict[str, Any]]:
    """For each pair of models the McNemar table tests (both learned): the test images only one of them got
    right, surest first — what the 'only A correct' count is made of."""
    trial_of = {t.label: t for t in best}
    shown = []
    for row in tests:
        if {row["a"], row["b"]} & untrained:
            continue
        a, b = trial_of[row["a"]], trial_of[row["b"]]
        rows_a, rows_b = predictions[a.trial_id], predictions[b.trial_id]
        shown.append(
            {
                "a": a.label,
                "b": b.label,
                "images": images_of[run.origin(a.trial_id).run_id],
                "a_only": _only_right(rows_a, rows_b, classes),
                "b_only": _only_right(rows_b, rows_a, classes),
            }
        )
    return shown


def _only_right(right: list[dict[str, str]], wrong: list[dict[str, str]], classes: list[str]) -> Sheet | None:
    """Images `right` classified correctly and `wrong` did not, captioned with the true class and the other
    model's answer; the ones `right` was surest of first."""
    picked = [(r, w) for r, w in zip(right, wrong) if r["label"] == r["prediction"] and w["prediction"] != w["label"]]
    picked.sort(key=lambda pair: -prediction_confidence(pair[0]))
    picked = picked[:DISAGREEMENTS_SHOWN]
    if not picked:
        return None
    captions = [(classes[int(r["label"])], classes[int(w["prediction"])]) for r, w in picked]
    return Sheet([int(r["index"]) for r, _w in picked], captions, True)


def _heatmap_pivots(trials: list[TrialSummary], varied: dict[str, list]) -> list[dict[str, Any]]:
    """One lr × batch-style pivot per model when at least two numeric settings were swept."""
    axes = [k for k in HEATMAP_AXES if k in varied]
    if len(axes) < 2:
        return []
    row_key, column_key = axes[0], axes[1]
    return [
        {"label": label, "row_key": row_key, "column_key": column_key}
        | sweep_pivot([t for t in trials if t.label == label], row_key, column_key)
        for label in dict.fromkeys(t.label for t in trials)
    ]


def _sweep_series(trials: list[TrialSummary], varied: dict[str, list], translate) -> dict[str, Any] | None:
    """Small multiples of a sweep laid out as a grid of its swept factors: one panel per combination of swept
    settings (seeds averaged), in the order of their values, a row per value of the first factors and a column
    per value of the last (optimizer × loss: a row per optimizer), every model's test accuracy in it; a
    combination without a trained epoch keeps its place, empty. None when only seeds were swept."""
    keys = [k for k in varied if k != "seed"]
    if not keys:
        return None

    def title(values: tuple) -> str:
        return ", ".join(f"{translate(k)} {setting_text(v, translate)}" for k, v in zip(keys, values))

    runs: dict[tuple, dict[str, list[list[dict]]]] = {}
    diverged: dict[str, dict[str, None]] = {}  # a panel's models that diverged: it says so, not only a gap
    for t in trials:
        if t.epochs:
            runs.setdefault(tuple(t.config[k] for k in keys), {}).setdefault(t.label, []).append(t.epochs)
        if t.status == TrialState.DIVERGED:
            diverged.setdefault(title(tuple(t.config[k] for k in keys)), {})[t.label] = None
    grid = itertools.product(*(sorted(varied[k], key=value_order) for k in keys))
    panels = {
        title(values): {label: seed_mean(epochs) for label, epochs in runs.get(values, {}).items()} for values in grid
    }
    marks = {name: translate("diverged: {models}", models=", ".join(labels)) for name, labels in diverged.items()}
    columns = len(varied[keys[-1]]) if len(keys) > 1 else min(3, len(panels))
    return {"panels": panels, "columns": columns, "marks": marks}


def _localized_audits(trials: list[TrialSummary], translate: Translator) -> list[TrialSummary]:
    """Per-layer formula notes are recorded messages ("+{count} running stats, not trainable"): worded in the
    report's language here, on a copy of each audit."""
    for t in trials:
        t.audit = replace(
            t.audit,
            layers=[layer | {"formula": translate.render(layer["formula"])} for layer in t.audit.layers],
            torchinfo_note=translate.render(t.audit.torchinfo_note),
        )
    return trials


def _localized_source(row: dict[str, Any], translate: Translator) -> dict[str, Any]:
    """A published result's model, preprocessing and source note in the report's language; `name` keeps the
    model's English name, which the checklist matches on, so its verdict is the same in every language."""
    return row | {key: translate(row[key]) for key in ("model", "preprocessing", "note")} | {"name": row["model"]}


def _costs(run: RunReader, models: list[dict[str, Any]], best: list[TrialSummary]) -> dict[str, Any] | None:
    """The cost table's rows (runs archived before costs: None); figures.py adds the scatter."""
    # images per second of each model over its own run's training set: combined runs may differ in size
    train_sizes = {t.label: run.origin(t.trial_id).read("data")["train_size"] for t in best}
    rows = cost_rows(models, best, train_sizes)
    if not rows:
        return None
    return {"rows": rows, "device": rows[0]["device"], "threads": rows[0]["threads"]}


def analyse_run(run: RunReader, lang: str, problems: list[str]) -> Analysis:
    """Everything the report shows, read from the archive and computed; writes nothing. The figures
    (with_figures) and the checklist (checklist.judged_checklist) are added to it afterwards."""
    translate = translator(lang)
    spec, env, data = run.read("spec"), run.read("environment"), run.read("data")
    data = data | {"source": translate.render(data["source"])}  # a recorded message
    trials = _localized_audits(summarize_trials(run), translate)
    if not trials:
        raise ArchiveError(f"{run.path}: the run has no trials to report")
    settings = settings_check(trials)
    labels = list(dict.fromkeys(t.label for t in trials))
    colors = model_colors(labels)
    best = best_per_model(trials)
    read_predictions = functools.cache(run.predictions)  # the sweep's claims read them too: each file once
    predictions = {t.trial_id: read_predictions(t.trial_id) for t in best}
    warnings = review_trials(trials, len(data["classes"]), settings["identical"])
    untrained = did_not_learn(best, warnings)
    quality = quality_by_trial(trials, read_predictions, len(data["classes"]))  # per-class F1, calibration
    images_of = {source.run_id: _reload_test_images(source) for source in run.runs}  # combined: one per run
    class_names = [translate(c) for c in data["classes"]]
    tests = _comparable_tests(run, best, predictions)
    improvements = before_after(trials)
    models = _models(trials, labels, colors, spec.get("models", []))
    costs = _costs(run, models, best)
    context = {
        "lang": lang,
        "run_id": run.run_id,
        "status": run.record(),
        "spec": spec,
        "env": env,
        "data": data,
        "trials": trials,
        "models": models,
        "colors": colors,
        "settings": settings,
        "warnings": warnings,
        "comparison": with_quality(ranked_rows([t.comparison_row() for t in trials]), quality),
        "quality": {t.label: quality[t.trial_id] for t in best if t.trial_id in quality},  # each model's best
        "before_after": improvements,
        "aggregates": seed_aggregates(trials),
        "mcnemar": tests,
        "heatmap_pivots": _heatmap_pivots(trials, settings["varied"]),
        "sweep_series": _sweep_series(trials, settings["varied"], translate),
        "costs": costs,
        # a large sweep shows each model's best trial per epoch; every other trial moves to the appendix
        "appendix_trials": [t for t in trials if t not in best] if len(trials) > 2 * len(labels) else [],
        "literature": [_localized_source(row, translate) for row in literature(data["dataset"])],
        "conclusion": _sweep_claims(trials, settings["varied"], read_predictions, warnings, translate)
        + conclusion(best, tests, improvements, warnings, translate, trials, _macs(costs)),
        "next_steps": next_steps(trials, translate),
        "galleries": _galleries(run, best, predictions, images_of, class_names, recorded_data(spec)[1]),
        "disagreements": _disagreements(run, best, tests, predictions, untrained, images_of, class_names),
        "problems": problems,
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "translate": translate,
        "best": best,
        "differences": differences(run.runs),
    }
    if costs:  # close in accuracy, far apart in compute: the conclusion says so
        context["conclusion"] += cost_sentences(tests, costs["rows"], translate, untrained)
    context["conclusion"] += calibration_sentences(best, quality, untrained, translate)
    context["conclusion"] = significant_first(context["conclusion"])
    return Analysis(**context)


def _macs(costs: dict[str, Any] | None) -> dict[str, int]:
    """Multiply-adds per image by model label (none for a run archived before costs were measured)."""
    return {row["model"]: row["macs"] for row in costs["rows"]} if costs else {}


def _sweep_claims(
    trials: list[TrialSummary], varied: dict[str, list], read_predictions, warnings: list, translate
) -> list:
    """What the sweep shows about each swept setting (sweep.py)."""
    stalled = {w.trial_id for w in warnings if w.code == "chance"}
    return sweep_claims(trials, varied, read_predictions, stalled, translate)


def _comparable_tests(
    run: RunReader, best: list[TrialSummary], predictions: dict[str, list[dict[str, str]]]
) -> list[dict[str, Any]]:
    """McNemar between each pair of best trials evaluated on the same test images (combined runs may differ).
    Only trials that trained to the end take part: a diverged model never wins (or loses) a comparison."""
    ranked = [t for t in best if t.ranked]
    test_set = {t.label: test_set_checksum(run.origin(t.trial_id)) for t in ranked}
    return [row for row in pairwise_mcnemar(ranked, predictions) if test_set[row["a"]] == test_set[row["b"]]]


def _models(
    trials: list[TrialSummary], labels: list[str], colors: dict[str, str], specified: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per model label: its trials, audit, colour and how it was built (constructor arguments,
    and the code that built it from the archived spec's models[].code)."""
    by_label = {label: [t for t in trials if t.label == label] for label in labels}
    code = {}
    for m in specified:  # a combined run lists each run's models: the first under a label
        code.setdefault(m.get("label"), m.get("code") or {})
    return [
        {
            "label": label,
            "trials": by_label[label],
            "audit": by_label[label][0].audit,
            "color": colors[label],
            "name": by_label[label][0].model,
            "kwargs": by_label[label][0].kwargs,
            "arguments": ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                for k, v in by_label[label][0].kwargs.items()
            ),
            "code": _code_identity(code.get(label, {})),
            "base_label": by_label[label][0].base,
        }
        for label in labels
    ]


def _code_identity(code: dict[str, Any]) -> dict[str, Any] | None:
    """The code that built a model, short: its file's name and sha256, or the sha256 of source typed in Python
    (a notebook); None when nothing identifies it (an instance, code whose source Python could not read)."""
    if code.get("sha256"):
        return {"file": Path(code["file"]).name if code.get("file") else None, "sha256": code["sha256"][:12]}
    if code.get("source_sha256"):
        return {"file": None, "sha256": code["source_sha256"][:12]}
    return None


def with_figures(analysis: Analysis, figures: Figures) -> Analysis:
    """The analysis with the drawn figures' files where the documents link them."""
    galleries = [
        gallery
        | {
            "correct": files.correct,
            "confident": files.confident,
            "wrong": files.wrong,
            "confusion": files.confusion,
            "confusions": [
                pair | {"sheet": sheet} for pair, sheet in zip(gallery["confusions"], files.confusion_sheets)
            ],
        }
        for gallery, files in zip(analysis.galleries, figures.galleries)
    ]
    return replace(
        analysis,
        model_curves=figures.model_curves,
        heatmaps=figures.heatmaps,
        sweep_panels=figures.sweep_panels,
        costs=analysis.costs and analysis.costs | {"scatter": figures.cost_scatter},
        galleries=galleries,
        disagreements=figures.disagreements,
        reliability=figures.reliability,
        alt=figures.alt,
    )
