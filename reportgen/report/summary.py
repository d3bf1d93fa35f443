"""Turns an archived run into the report's content: tables, comparisons, gallery picks.

Pure data in, pure data out (no templates, no files): render.py lays it out; the same numbers
feed HTML, PDF, CSV and JSON, so they cannot disagree. pandas is imported inside the functions that use
it: reportgen.spec imports this module (through the checklist), and reading a spec should not load pandas.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import fmean, median
from typing import TYPE_CHECKING, Any

from reportgen.report.i18n import Translator
from reportgen.report.model import Claim, points_between
from reportgen.report.regularization import TEST as REGULARIZATION_TEST
from reportgen.report.regularization import conclusion_sentence, judge_row
from reportgen.run.archive import ModelAuditRecord, RunArchive
from reportgen.settings import REPORTED, value_order, worth_showing
from reportgen.states import FINISHED_TRIALS, TrialState

if TYPE_CHECKING:
    from reportgen.report.same_training import Group

GALLERY_CORRECT = 10  # images per sheet row: one correct image per class (up to 10 classes), 10 confident mistakes
CONFUSIONS_SHOWN = 3  # most frequent (true → predicted) pairs per model in the report; misclassified.html has all
EXAMPLES_PER_CONFUSION = 8


@dataclass
class TrialSummary:
    trial_id: str
    label: str
    model: str
    config: dict[str, Any]
    status: TrialState
    epochs: list[dict[str, float]]
    audit: ModelAuditRecord
    base: str | None = None
    average: dict[str, float] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    early_stopping: dict[str, Any] | None = None  # TrialRecord's: where training stopped, which epoch was kept
    same_training: Group | None = None  # the other trials that were this one training (same_training.py)

    @property
    def training(self) -> str | int:
        """Equal for trials that were one training (same_training.py), else distinct: counts count each once."""
        return self.same_training.trial_ids[0] if self.same_training else id(self)

    @property
    def repeated(self) -> bool:
        """One training with an earlier trial: left out wherever trainings are counted."""
        return self.same_training is not None and self.same_training.trial_ids[0] != self.trial_id

    @property
    def final(self) -> dict[str, float]:
        """The epoch whose weights the trial kept: the last, or the best one early stopping restored."""
        kept = (self.early_stopping or {}).get("kept_epoch")
        if kept and 0 < kept <= len(self.epochs):
            return self.epochs[kept - 1]
        return self.epochs[-1] if self.epochs else {}

    @property
    def selection_metric(self) -> str:
        """Model selection uses the validation split when there is one, else the test set (the default)."""
        return "val_acc" if self.epochs and self.epochs[0].get("val_acc") is not None else "test_acc"

    @property
    def best(self) -> dict[str, float]:
        scored = [e for e in self.epochs if e.get(self.selection_metric) is not None]
        return max(scored, key=lambda e: e[self.selection_metric]) if scored else {}

    @property
    def ranked(self) -> bool:
        """Only a trial that trained every epoch to a finite accuracy takes part in 'best' and 'better'."""
        return self.status == TrialState.COMPLETE and self.final.get("test_acc") is not None

    @property
    def seconds_per_epoch(self) -> float:
        """The median epoch: one epoch slowed by a busy machine (26-32 s among 6 s ones) does not move it."""
        return median(e["seconds"] for e in self.epochs) if self.epochs else float("nan")

    def comparison_row(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "model": self.label,
            "status": self.status,
            **{k: self.config[k] for k in REPORTED},
            "best_test_acc": self.best.get("test_acc"),
            "best_epoch": self.best.get("epoch"),
            "final_test_acc": self.final.get("test_acc"),
            "final_test_loss": self.final.get("test_loss"),
            "final_train_acc": self.final.get("train_acc"),
            "final_train_loss": self.final.get("train_loss"),
            "parameters": self.audit.total,
            "parameters_without_bias": self.audit.without_bias,
            "seconds_per_epoch": self.seconds_per_epoch,
            "total_seconds": sum(e["seconds"] for e in self.epochs),
        }


def summarize_trials(run: RunArchive) -> list[TrialSummary]:
    summaries = []
    for trial_id in run.trial_ids():
        record = run.trial_record(trial_id)
        if record is None:  # failed before it was registered: nothing to report but the lint line
            continue
        epochs = record.epochs
        keys = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds", "val_loss", "val_acc")
        # None where an epoch has no value (a diverged epoch's loss): no average, shown as "–"
        average = {
            k: fmean(e[k] for e in epochs) if all(e[k] is not None for e in epochs) else None
            for k in keys
            if epochs and all(k in e for e in epochs)
        }
        summaries.append(
            TrialSummary(
                trial_id,
                record.label,
                record.model,
                record.config,
                record.status,
                epochs,
                record.audit,
                record.base,
                average,
                record.kwargs,
                record.error,
                record.early_stopping,
            )
        )
    return _one_training_each(run, summaries)


def _one_training_each(run: RunArchive, summaries: list[TrialSummary]) -> list[TrialSummary]:
    """Each trial with the group of trials it was one training with (same_training.py), if any."""
    from reportgen.report.same_training import trainings

    group_of = {trial_id: group for group in trainings(run).groups for trial_id in group.trial_ids}
    for summary in summaries:
        summary.same_training = group_of.get(summary.trial_id)
    return summaries


def settings_check(trials: list[TrialSummary]) -> dict[str, Any]:
    """Were the compared models trained under identical settings? Checked from the archived configs."""
    by_model: dict[str, set[tuple]] = {}
    for trial in trials:
        by_model.setdefault(trial.label, set()).add(tuple(trial.config[k] for k in REPORTED))
    config_sets = list(by_model.values())
    identical = all(s == config_sets[0] for s in config_sets)
    shared = {k: sorted({t.config[k] for t in trials}, key=value_order) for k in REPORTED}
    return {
        "identical": identical,
        "constant": {
            k: v[0]
            for k, v in shared.items()
            if len(v) == 1 and worth_showing(k, v[0], {n: w[0] for n, w in shared.items()})
        },
        "varied": {k: v for k, v in shared.items() if len(v) > 1},
    }


def _selection_key(trial: TrialSummary) -> tuple[bool, float]:
    """Complete trials before diverged ones; then the final selection accuracy (validation when there is
    a validation split, else test)."""
    score = trial.final.get(trial.selection_metric)
    return trial.ranked, float("-inf") if score is None else score


def best_per_model(trials: list[TrialSummary]) -> list[TrialSummary]:
    """For galleries, McNemar and before/after: each model's best trial. A diverged trial stands in for
    its model only when no trial of that model completed; failed trials never do."""
    best: dict[str, TrialSummary] = {}
    for trial in trials:
        if trial.status == TrialState.FAILED or not trial.epochs:
            continue
        if trial.label not in best or _selection_key(trial) > _selection_key(best[trial.label]):
            best[trial.label] = trial
    return list(best.values())


def ranked_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows by final test accuracy, best first; diverged, then failed or empty trials last."""
    order = {TrialState.COMPLETE: 0, TrialState.DIVERGED: 1}
    return sorted(
        rows, key=lambda r: (order.get(r["status"], 2), r["final_test_acc"] is None, -(r["final_test_acc"] or 0.0))
    )


def before_after(trials: list[TrialSummary]) -> list[dict[str, Any]]:
    """Regularized model vs its base (spec key models[].base), on the best trial of each."""
    best = {t.label: t for t in best_per_model(trials) if t.ranked}
    rows = []
    for trial in best.values():
        if trial.base and trial.base in best:
            base = best[trial.base]
            rows.append(
                {
                    "model": trial.label,
                    "base": base.label,
                    **{
                        f"{key}_{side}": getattr(t, attr)[metric]
                        for side, t in (("before", base), ("after", trial))
                        for key, attr, metric in (
                            ("final_acc", "final", "test_acc"),
                            ("final_train_acc", "final", "train_acc"),
                            ("best_acc", "best", "test_acc"),
                            ("average_acc", "average", "test_acc"),
                            ("final_loss", "final", "test_loss"),
                        )
                    },
                    "parameters_before": base.audit.total,
                    "parameters_after": trial.audit.total,
                    # overfitting shrinks the gap between train and test accuracy: regularization's own evidence
                    "gap_before": _gap(base),
                    "gap_after": _gap(trial),
                }
            )
    return rows


def _gap(trial: TrialSummary) -> float | None:
    """Final train accuracy minus final test accuracy (None when either is missing)."""
    train, test = trial.final.get("train_acc"), trial.final.get("test_acc")
    return None if train is None or test is None else train - test


def seed_mean(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per epoch, the mean test accuracy of trials that differ only in seed (epochs all of them reached)."""
    epochs = min(len(r) for r in runs)
    return [
        {
            "epoch": runs[0][i]["epoch"],
            "test_acc": None
            if any(r[i].get("test_acc") is None for r in runs)
            else fmean(r[i]["test_acc"] for r in runs),
        }
        for i in range(epochs)
    ]


def gallery_picks(predictions: list[dict[str, str]], seed: int) -> tuple[list[int], list[int]]:
    """Indices of one correctly classified test image per class (drawn with `seed`, in class order; a class the
    model never got right has none) and of every misclassified one."""
    correct = [p for p in predictions if p["label"] == p["prediction"]]
    random.Random(seed).shuffle(correct)
    first_of_class: dict[int, int] = {}
    for p in correct:
        first_of_class.setdefault(int(p["label"]), int(p["index"]))
    picked = [first_of_class[label] for label in sorted(first_of_class)][:GALLERY_CORRECT]
    wrong = [int(p["index"]) for p in predictions if p["label"] != p["prediction"]]
    return picked, wrong


def top_confusions(
    predictions: list[dict[str, str]], limit: int = CONFUSIONS_SHOWN, examples: int = EXAMPLES_PER_CONFUSION
) -> list[dict[str, Any]]:
    """The most frequent (true → predicted) mistakes, most frequent first, each with its most confident
    examples: which classes the model mixes up, and on what kind of image."""
    import pandas as pd

    wrong = pd.DataFrame(
        [
            (int(p["label"]), int(p["prediction"]), int(p["index"]), prediction_confidence(p))
            for p in predictions
            if p["label"] != p["prediction"]
        ],
        columns=["true", "predicted", "index", "confidence"],
    )
    pair = ["true", "predicted"]
    # groupby orders the pairs and stable sorts keep ties as they were: equal counts in (true, predicted)
    # order, equal confidences in test-set order (as in runs archived before confidences were recorded)
    counts = wrong.groupby(pair).size().sort_values(ascending=False, kind="stable").iloc[:limit]
    surest = wrong.sort_values("confidence", ascending=False, kind="stable").groupby(pair)["index"].agg(list)
    return [
        {"true": true, "predicted": predicted, "count": count, "examples": surest[true, predicted][:examples]}
        for (true, predicted), count in counts.items()
    ]


def confident_mistakes(predictions: list[dict[str, str]], count: int = GALLERY_CORRECT) -> list[int]:
    """Indices of the misclassified test images the model was surest of."""
    return [int(p["index"]) for p in _most_confident([p for p in predictions if p["label"] != p["prediction"]])[:count]]


def _most_confident(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Highest softmax confidence first; runs archived before confidences were recorded keep test-set order."""
    return sorted(rows, key=lambda p: -prediction_confidence(p))


def prediction_confidence(p: dict[str, str]) -> float:
    """The softmax confidence; 0 when unrecorded or not finite (a diverged model's NaN sorts last)."""
    value = float(p.get("confidence") or 0)
    return value if math.isfinite(value) else 0.0


def confusion_matrix(predictions: list[dict[str, str]], num_classes: int) -> list[list[int]]:
    """matrix[true][predicted] counts; a class that never occurs has its row and column of zeros."""
    import pandas as pd

    counts = pd.crosstab(*(pd.Series([int(p[k]) for p in predictions], dtype=int) for k in ("label", "prediction")))
    classes = range(num_classes)
    return counts.reindex(index=classes, columns=classes, fill_value=0).to_numpy(dtype=int).tolist()


def per_class_accuracy(matrix: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    return [
        {"class": name, "correct": row[i], "total": sum(row), "accuracy": row[i] / sum(row) if sum(row) else None}
        for i, (name, row) in enumerate(zip(classes, matrix))
    ]


def sweep_pivot(trials: list[TrialSummary], row_key: str, column_key: str) -> dict[str, Any]:
    """Best final test accuracy (%) for each (row setting, column setting) pair; NaN where untried."""
    import pandas as pd

    rows = sorted({t.config[row_key] for t in trials}, key=value_order)
    columns = sorted({t.config[column_key] for t in trials}, key=value_order)
    ranked = pd.DataFrame(
        [(t.config[row_key], t.config[column_key], 100 * t.final["test_acc"]) for t in trials if t.ranked],
        columns=["row", "column", "accuracy"],
    )
    best = ranked.pivot_table("accuracy", "row", "column", aggfunc="max")
    values = best.reindex(index=rows, columns=columns).to_numpy(dtype=float).tolist()
    return {"rows": rows, "columns": columns, "values": values, "marks": _unranked_marks(trials, row_key, column_key)}


def _unranked_marks(trials: list[TrialSummary], row_key: str, column_key: str) -> dict[tuple, str]:
    """(row setting, column setting) → "diverged" or "failed" where trials ran but none trained to the end: the
    heatmap says so in the cell, where an untried combination stays blank."""
    cells: dict[tuple, list[TrialSummary]] = {}
    for t in trials:
        cells.setdefault((t.config[row_key], t.config[column_key]), []).append(t)
    return {
        cell: "diverged" if any(t.status == TrialState.DIVERGED for t in group) else "failed"
        for cell, group in cells.items()
        if not any(t.ranked for t in group)
    }


SINGLE_SEED = "Every model was trained with one seed, so these results rest on one seed."
COMPUTE_APART = 1.5  # multiply-adds this many times apart are worth saying beside an accuracy difference


def did_not_learn(best: list[TrialSummary], warnings: list) -> set[str]:
    """Labels whose compared (best) trial the findings call chance level: the report tells readers not to
    compare such a model as trained, so nothing that ranks or compares models may use it. By trial id, not
    label: a model with one chance-level seed and one that learned is compared on the one that learned."""
    chance = {w.trial_id for w in warnings if w.code == "chance"}
    return {t.label for t in best if t.ranked and t.trial_id in chance}


def conclusion(
    best: list[TrialSummary],
    tests: list[dict[str, Any]],
    improvements: list[dict[str, Any]],
    warnings: list,
    translate,
    trials: list[TrialSummary] | None = None,
    macs: dict[str, int] | None = None,
) -> list[Claim]:
    """Sentences the numbers support, each with the test it rests on, what is significant first: each
    difference McNemar finds (p < 0.05), by how many points and, with `macs` (label → multiply-adds per image),
    at what compute; then the top model, and whether its lead is significant. A diverged model is never named
    best: it is said to have diverged instead; a chance-level model is said not to have learned, and no
    comparison with it is made. When every model ran with one seed (`trials` tells), the conclusion says so
    (what to do about it is a next step, not a conclusion: next_steps)."""
    untrained = did_not_learn(best, warnings)
    # models that learned first: a chance-level model is named top only when no model learned, and the
    # sentence after it says so
    ranked = sorted(
        (t for t in best if t.ranked), key=lambda t: (t.label not in untrained, t.final["test_acc"]), reverse=True
    )
    compared = {t.label for t in ranked} - untrained
    tests = [row for row in tests if {row["a"], row["b"]} <= compared]
    significant = sorted((row for row in tests if row["significant"]), key=lambda row: row["p_value"])
    sentences = [
        Claim(_significant_sentence(row, macs or {}, translate), True, test="McNemar, and the counted multiply-adds")
        for row in significant
    ]
    top = ranked[0] if ranked else None
    # the top model's lead over a model McNemar cannot tell it from is said in the top model's sentence
    level = [row for row in tests if not row["significant"] and top and top.label in (row["a"], row["b"])]
    if top:
        sentences.append(_top_sentence(top, level, translate))
    sentences += [
        Claim(
            translate("{model} diverged (its training loss became NaN/inf); it is not ranked.", model=t.label),
            test="divergence check of the training loss",
        )
        for t in best
        if not t.ranked
    ]
    sentences += [
        Claim(
            translate(
                "{model} stayed at chance level: it did not learn, so comparing it with the other models is not "
                "meaningful.",
                model=t.label,
            ),
            test="chance-level finding",
        )
        for t in best
        if t.label in untrained
    ]
    sentences += [
        Claim(_test_sentence(row, translate), test="McNemar")
        for row in tests
        if not row["significant"] and row not in level
    ]
    sentences += [  # worded from the same judgement as the checklist's regularization items
        Claim(conclusion_sentence(judge_row(row, best, tests, untrained)).render(translate), test=REGULARIZATION_TEST)
        for row in improvements
    ]
    if trials and single_seed(trials):
        sentences.append(Claim(translate(SINGLE_SEED), test="seeds per model"))
    if warnings:
        sentences.append(Claim(translate("The warnings at the top of the report qualify these results.")))
    return sentences


def significant_first(claims: list[Claim]) -> list[Claim]:
    """The conclusion's claims with those a test decided (a significant difference, a sweep's effect in every
    pair) first, in their order; the rest after, in theirs."""
    return [c for c in claims if c.holds] + [c for c in claims if not c.holds]


def next_steps(trials: list[TrialSummary], translate) -> list[Claim]:
    """Advice to the report's author, apart from what the results show: what to run next."""
    if not single_seed(trials):
        return []
    return [
        Claim(
            translate(
                "Run again with seeds = [0, 1, 2] under [train] to see how much the results vary from seed to seed."
            ),
            test="seeds per model",
        )
    ]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _test_values(row: dict[str, Any]) -> dict[str, str]:
    acc_w, acc_l = _pct(max(row["acc_a"], row["acc_b"])), _pct(min(row["acc_a"], row["acc_b"]))
    return {
        "winner": row["winner"],
        "loser": row["loser"],
        "p": f"{row['p_value']:.3g}",
        "a": row["a"],
        "b": row["b"],
        "acc_a": _pct(row["acc_a"]),
        "acc_b": _pct(row["acc_b"]),
        "acc_w": acc_w,
        "acc_l": acc_l,
        "points": points_between(acc_w, acc_l),
    }


def _significant_sentence(row: dict[str, Any], macs: dict[str, int], translate: Translator) -> str:
    """A significant McNemar test in words: the winner, by how many points, and at what compute when the two
    models' multiply-adds are far apart ("… by 1.96 points …, at 6.8 times the multiply-adds per image")."""
    values = _test_values(row)
    heavy, light = macs.get(row["winner"]), macs.get(row["loser"])
    if heavy and light and heavy >= COMPUTE_APART * light:
        return translate(
            "{winner} is more accurate than {loser} by {points} points ({acc_w} vs {acc_l}), a significant "
            "difference (McNemar p = {p}), at {ratio} times the multiply-adds per image.",
            **values,
            ratio=f"{heavy / light:.1f}",
        )
    if heavy and light and light >= COMPUTE_APART * heavy:
        return translate(
            "{winner} is more accurate than {loser} by {points} points ({acc_w} vs {acc_l}), a significant "
            "difference (McNemar p = {p}), with 1/{ratio} of the multiply-adds per image.",
            **values,
            ratio=f"{light / heavy:.1f}",
        )
    return translate(
        "{winner} is more accurate than {loser} by {points} points ({acc_w} vs {acc_l}), a significant "
        "difference (McNemar p = {p}).",
        **values,
    )


def _top_sentence(top: TrialSummary, level: list[dict[str, Any]], translate: Translator) -> Claim:
    """The highest accuracy; where McNemar cannot tell the top model from another, its lead is said not to be
    significant, with each such model's accuracy and p-value."""
    acc = _pct(top.final["test_acc"])
    test = "final test accuracy of each model's best trial that trained to the end"
    if not level:
        return Claim(
            translate("{model} reached the highest final test accuracy: {acc}.", model=top.label, acc=acc), test=test
        )
    others = [
        translate(
            "{model} ({acc}, McNemar p = {p})",
            model=row["b"] if row["a"] == top.label else row["a"],
            acc=_pct(row["acc_b"] if row["a"] == top.label else row["acc_a"]),
            p=f"{row['p_value']:.3g}",
        )
        for row in level
    ]
    text = translate(
        "{model} reached the highest final test accuracy, {acc}, but not significantly above {others}.",
        model=top.label,
        acc=acc,
        others=", ".join(others),
    )
    return Claim(text, test=test + "; McNemar")


def _test_sentence(row: dict[str, Any], translate: Translator) -> str:
    """A McNemar test that found no significant difference, in words."""
    return translate(
        "{a} and {b} ({acc_a} vs {acc_b}) are not significantly different on this test set (McNemar p = {p}).",
        **_test_values(row),
    )


def single_seed(trials: list[TrialSummary]) -> bool:
    """True when no model was trained with more than one seed: its numbers may be luck of one draw. Trials
    that were one training (`seeds = [0, 0, 0]`, a copied run) are one seed."""
    seeds: dict[str, set] = {}
    for t in trials:
        seeds.setdefault(t.label, set()).update([] if t.repeated else [t.config["seed"]])
    return all(len(s) <= 1 for s in seeds.values())


def cost_rows(
    models: list[dict[str, Any]], best: list[TrialSummary], train_sizes: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per model for the cost table: parameters, MACs, training time and speed, inference latency
    (batch 1) and throughput (batch 256), size — beside the accuracy of its best trial. train_sizes: the
    training images of each model's run, by label."""
    best_of = {t.label: t for t in best}
    rows = []
    for model in models:
        cost, trial = model["audit"].cost or {}, best_of.get(model["label"])
        if "macs" not in cost:
            continue  # archived before costs were measured, or measurement failed (cost["error"])
        latency = {x["batch_size"]: x for x in cost["latency"]}
        seconds = trial.seconds_per_epoch if trial else None
        rows.append(
            {
                "model": model["label"],
                "parameters": model["audit"].total,
                "macs": cost["macs"]["total"],
                "final_test_acc": trial.final.get("test_acc") if trial else None,
                "seconds_per_epoch": seconds,
                "train_images_per_second": train_sizes[model["label"]] / seconds if seconds else None,
                "total_train_seconds": sum(e["seconds"] for e in trial.epochs) if trial else None,
                "latency_b1_ms": latency.get(1, {}).get("median_ms"),
                "latency_b1_iqr_ms": latency.get(1, {}).get("iqr_ms"),
                "throughput_b256": latency.get(256, {}).get("images_per_second"),
                "state_dict_bytes": cost["state_dict_bytes"],
                "parameter_bytes": cost["parameter_bytes"],
                "device": cost["device"],
                "threads": cost["threads"],
                "macs_check_flop_counter": cost["macs"]["matches_flop_counter"],
                "macs_check_torchinfo": cost["macs"]["matches_torchinfo"],
            }
        )
    return rows


def cost_sentences(
    tests: list[dict[str, Any]], costs: list[dict[str, Any]], translate, untrained: set[str] = frozenset()
) -> list[Claim]:
    """Where two models are not significantly different in accuracy, what separates them is cost.
    `untrained`: labels that did not learn (did_not_learn): two models at chance level are "not different"
    only because neither learned, which says nothing about what their cost buys."""
    macs = {row["model"]: row["macs"] for row in costs}
    sentences = []
    for row in tests:
        if row["significant"] or not (macs.get(row["a"]) and macs.get(row["b"])) or {row["a"], row["b"]} & untrained:
            continue
        heavy, light = sorted((row["a"], row["b"]), key=lambda label: macs[label], reverse=True)
        if macs[heavy] >= 1.5 * macs[light]:
            text = translate(
                "{heavy} and {light} are not significantly different in accuracy, but {heavy} "
                "needs {ratio} times the multiply-adds per image ({heavy_macs} vs {light_macs}).",
                heavy=heavy,
                light=light,
                ratio=f"{macs[heavy] / macs[light]:.1f}",
                heavy_macs=f"{macs[heavy]:,}",
                light_macs=f"{macs[light]:,}",
            )
            sentences.append(Claim(text, test="McNemar, and the counted multiply-adds"))
    return sentences


def quality_by_trial(trials: list[TrialSummary], read_predictions, classes: int) -> dict[str, dict[str, Any]]:
    """Per finished trial (complete or diverged: those archive predictions), its per-class scores and
    calibration from its test predictions (quality.trial_quality); `read_predictions`: trial id → rows."""
    from reportgen.report.quality import trial_quality  # scikit-learn: loaded by a render, not by reading a spec

    return {
        t.trial_id: trial_quality(read_predictions(t.trial_id), classes)
        for t in trials
        if t.status in FINISHED_TRIALS and t.epochs
    }


def with_quality(rows: list[dict[str, Any]], quality: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows with each trial's macro and weighted F1 and its ECE (None where it has none)."""

    def columns(q: dict[str, Any] | None) -> dict[str, Any]:
        q = q or {}
        return {
            "macro_f1": (q.get("macro") or {}).get("f1"),
            "weighted_f1": (q.get("weighted") or {}).get("f1"),
            "ece": q.get("ece"),
        }

    return [row | columns(quality.get(row["trial_id"])) for row in rows]


# Calibration is worth a sentence only when it matters: a model's expected calibration error above this, or two
# models' ECEs further apart than this (the best- and worst-calibrated model are then named). The table's caption
# states the same rule.
CALIBRATION_GAP = 0.05
CALIBRATION_TEST = "expected calibration error (15 equal-width confidence bins)"


def calibration_sentences(
    best: list[TrialSummary], quality: dict[str, dict[str, Any]], untrained: set[str], translate
) -> list[Claim]:
    """The conclusion's calibration sentences, over each model's best trial that completed and learned: the
    models whose ECE is above CALIBRATION_GAP, one sentence per way their confidence errs, and one naming the
    best- and worst-calibrated models when their ECEs differ by more than CALIBRATION_GAP."""
    judged = [
        (t.label, quality[t.trial_id])
        for t in best
        if t.ranked and t.label not in untrained and quality.get(t.trial_id, {}).get("ece") is not None
    ]
    ways: dict[str, list[str]] = {}
    for model, q in judged:
        if q["ece"] > CALIBRATION_GAP:
            ways.setdefault(_way(q), []).append(_calibration_figures(model, q, translate))
    sentences = [
        Claim(_way_sentence(way, "; ".join(models), translate), test=CALIBRATION_TEST) for way, models in ways.items()
    ]
    if len(judged) > 1:
        (good, good_q), (bad, bad_q) = min(judged, key=lambda m: m[1]["ece"]), max(judged, key=lambda m: m[1]["ece"])
        if bad_q["ece"] - good_q["ece"] > CALIBRATION_GAP:
            text = translate(
                "{good} is better calibrated than {bad}: expected calibration error {good_ece} vs {bad_ece}.",
                good=good,
                bad=bad,
                good_ece=f"{good_q['ece']:.3f}",
                bad_ece=f"{bad_q['ece']:.3f}",
            )
            sentences.append(Claim(text, test=CALIBRATION_TEST))
    return sentences


def _way(q: dict[str, Any]) -> str:
    """Which way a model's confidence errs: "over" when its mean confidence exceeds its accuracy by at least
    half its ECE (most of the error lies that way), "under" in the reverse case, else "both"."""
    lead = q["confidence"] - q["accuracy"]
    return "over" if lead >= q["ece"] / 2 else "under" if -lead >= q["ece"] / 2 else "both"


def _calibration_figures(model: str, q: dict[str, Any], translate) -> str:
    return translate(
        "{model} (mean confidence {confidence}, accuracy {accuracy}, ECE {ece})",
        model=model,
        confidence=_pct(q["confidence"]),
        accuracy=_pct(q["accuracy"]),
        ece=f"{q['ece']:.3f}",
    )


def _way_sentence(way: str, models: str, translate) -> str:
    if way == "over":
        return translate(
            "Over-confident on the test images (expected calibration error, ECE, above 0.05): {models}.", models=models
        )
    if way == "under":
        return translate(
            "Under-confident on the test images (expected calibration error, ECE, above 0.05): {models}.", models=models
        )
    return translate(
        "Over-confident at some confidences and under-confident at others (expected calibration error, ECE, "
        "above 0.05): {models}.",
        models=models,
    )
