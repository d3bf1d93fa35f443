"""Regularization judged from what ran: which regularizers acted on the training batches, whether the base
and the regularized model were trained alike, and what changed — test accuracy, test loss and the train–test
gap together. The checklist and the conclusion both word their verdicts from `judge_row`, so they agree.

A regularizer counts when it acted in training: a normalisation or dropout layer that ran in training mode
(the trial records it, measure/activity.py; runs archived before that: the layer ran in the audit's forward),
dropout with p > 0, weight decay of at least WEIGHT_DECAY_MIN, augmentation of the training batches. It
"helped" when the base overfitted (train accuracy above test accuracy) and the regularized model narrowed
that gap without a higher test loss or a significantly lower test accuracy: a significant gain in accuracy
over a base that did not overfit is not regularization's doing (batch normalization converging faster in a
short run is the usual cause), and is said so instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reportgen.report.i18n import Message
from reportgen.report.model import MISSING, decimal, distinct, percent, points_between

WEIGHT_DECAY_MIN = 1e-6  # below this an L2 factor changes nothing a run of this size can measure
NORMALIZATION = re.compile(r"(Sync)?BatchNorm\d?d")
DROPOUT = re.compile(r"Dropout\d?d?|AlphaDropout|FeatureAlphaDropout")
# settings that make the regularization (they may differ), and the seed (each model's best trial may come
# from another seed); every other setting must be the same for a before/after to compare like with like
MAY_DIFFER = ("weight_decay", "augment", "seed")
TEST = "layers that ran in training, settings of both trials; test accuracy (McNemar), test loss, train–test gap"


@dataclass
class Judgement:
    """One regularized model against its base. `refused`: why the two are not compared (a model did not
    learn, they were trained differently), else None; `active` and `ignored`: the regularizers that acted
    in training, and those the model has that did not act; `verdict`: "helped", "hurt" or "not shown"."""

    model: str
    base: str
    figures: dict[str, str]
    active: list[Message] = field(default_factory=list)
    ignored: list[Message] = field(default_factory=list)
    refused: Message | None = None
    verdict: str = ""
    reason: Message | None = None


def shown_figures(row: dict[str, Any]) -> dict[str, str]:
    """A before/after row's figures as the report prints them (table, checklist and conclusion alike): each
    before/after pair with enough digits to tell its two values apart, and the gap and the change computed
    from the printed values, so they equal what a reader subtracts from the table."""
    figures: dict[str, str] = {}
    for key, form, digits in (("final_train_acc", percent, 2), ("final_acc", percent, 2), ("final_loss", decimal, 4)):
        before, after = row.get(f"{key}_before"), row.get(f"{key}_after")
        figures[f"{key}_before"], figures[f"{key}_after"] = distinct([before, after], form, digits)
    for side in ("before", "after"):
        figures[f"gap_{side}"] = points_between(figures[f"final_train_acc_{side}"], figures[f"final_acc_{side}"])
    figures["delta"] = points_between(figures["final_acc_after"], figures["final_acc_before"], sign=True)
    return figures


def _ran(layer: dict[str, Any], audit: Any) -> bool:
    """Did the layer run in training? As the trial recorded it; in runs archived before that record, whether
    the audit's forward reached it (it has an output shape), where the audit has output shapes at all."""
    if "ran_in_training" in layer:
        return bool(layer["ran_in_training"])
    return layer.get("output_shape") is not None or not any(x.get("output_shape") for x in audit.layers)


def _layers(trial: Any, pattern: re.Pattern) -> list[dict[str, Any]]:
    return [layer for layer in trial.audit.layers if pattern.fullmatch(layer["type"])]


def _normalization(model: Any, base: Any) -> tuple[list[Message], list[Message]]:
    layers = _layers(model, NORMALIZATION)
    ran = [layer for layer in layers if _ran(layer, model.audit)]
    idle = [layer for layer in layers if not _ran(layer, model.audit)]
    base_ran = [layer for layer in _layers(base, NORMALIZATION) if _ran(layer, base.audit)]
    active = [Message("batch normalization ({count} layer(s) ran in training)", {"count": len(ran)})]
    return (active if len(ran) > len(base_ran) else []), _idle(idle)


def _dropout(model: Any, base: Any) -> tuple[list[Message], list[Message]]:
    layers = _layers(model, DROPOUT)
    ran = [layer for layer in layers if _ran(layer, model.audit)]
    acting = [layer for layer in ran if _p(layer, model) != 0]
    base_acting = [layer for layer in _layers(base, DROPOUT) if _ran(layer, base.audit) and _p(layer, base) != 0]
    ignored = _idle([layer for layer in layers if not _ran(layer, model.audit)])
    if len(ran) > len(acting):
        ignored.append(Message("dropout with p = 0 ({count} layer(s)): no effect", {"count": len(ran) - len(acting)}))
    if len(acting) <= len(base_acting):
        return [], ignored
    probabilities = {_p(layer, model) for layer in acting}
    if None in probabilities:  # a run archived before p was recorded, of a model without a `dropout` argument
        return [Message("dropout ({count} layer(s) ran in training)", {"count": len(acting)})], ignored
    p_text = ", ".join(f"{p:g}" for p in sorted(probabilities))
    return [
        Message("dropout (p = {p}, {count} layer(s) ran in training)", {"p": p_text, "count": len(acting)})
    ], ignored


def _p(layer: dict[str, Any], trial: Any) -> float | None:
    """The probability a dropout layer ran with: recorded, else the model's `dropout` argument, else unknown."""
    if "p" in layer:
        return layer["p"]
    return trial.kwargs.get("dropout") if isinstance(trial.kwargs.get("dropout"), int | float) else None


def _idle(layers: list[dict[str, Any]]) -> list[Message]:
    kinds = list(dict.fromkeys(layer["type"] for layer in layers))
    return [
        Message(
            "{type} never ran in training ({count} layer(s))",
            {"type": kind, "count": sum(x["type"] == kind for x in layers)},
        )
        for kind in kinds
    ]


def _settings(model: Any, base: Any) -> tuple[list[Message], list[Message]]:
    active, ignored = [], []
    decay, base_decay = model.config["weight_decay"], base.config["weight_decay"]
    if decay > base_decay and decay >= WEIGHT_DECAY_MIN:
        active.append(Message("weight decay {value}", {"value": f"{decay:g}"}))
    elif decay > base_decay:
        ignored.append(
            Message(
                "weight decay {value} is below {limit}: no effect",
                {"value": f"{decay:g}", "limit": f"{WEIGHT_DECAY_MIN:g}"},
            )
        )
    if model.config["augment"] and model.config["augment"] != base.config["augment"]:
        active.append(Message("data augmentation ({augment})", {"augment": model.config["augment"]}))
    return active, ignored


def training_differences(model: Any, base: Any) -> list[Message]:
    """The settings other than the regularization's own in which the two trials were trained differently."""
    return [
        Message(
            "{setting} {model_value} vs {base_value}",
            {"setting": Message(key), "model_value": value, "base_value": base.config[key]},
        )
        for key, value in model.config.items()
        if key not in MAY_DIFFER and key in base.config and value != base.config[key]
    ]


def _significance(test: dict[str, Any] | None) -> Message:
    if test is None:
        return Message("not tested for significance")
    p = {"p": f"{test['p_value']:.3g}"}
    return (
        Message("significant, McNemar p = {p}", p)
        if test["significant"]
        else Message("not significant, McNemar p = {p}", p)
    )


def _outcome(row: dict[str, Any], figures: dict[str, str], test: dict[str, Any] | None) -> tuple[str, Message]:
    """The verdict and its reason from accuracy, loss and gap together (see the module's docstring)."""
    values = figures | {"base": row["base"], "significance": _significance(test)}
    significant = bool(test and test["significant"])
    delta = Decimal(figures["delta"]) if figures["delta"] != MISSING else Decimal(0)
    if significant and delta < 0:
        return "hurt", Message(
            "test accuracy {delta} points ({significance}); train–test gap {gap_before} → {gap_after} points, "
            "test loss {final_loss_before} → {final_loss_after}",
            values,
        )
    overfitted = _number(figures["gap_before"]) > 0
    narrower = _number(figures["gap_after"]) < _number(figures["gap_before"])
    lower_loss = row["final_loss_after"] < row["final_loss_before"]
    if overfitted and narrower and lower_loss:
        return "helped", Message(
            "less overfitting: train–test gap {gap_before} → {gap_after} points, test loss {final_loss_before} → "
            "{final_loss_after}; test accuracy {delta} points ({significance})",
            values,
        )
    if significant and not overfitted:
        return "not shown", Message(
            "test accuracy {delta} points ({significance}), but {base} did not overfit (train–test gap "
            "{gap_before} points, {gap_after} after): the gain is not evidence of regularization",
            values,
        )
    return "not shown", Message(
        "no improvement shown: test accuracy {delta} points ({significance}), train–test gap {gap_before} → "
        "{gap_after} points, test loss {final_loss_before} → {final_loss_after}",
        values,
    )


def _number(text: str) -> Decimal:
    return Decimal(text) if text != MISSING else Decimal(0)


def judge_row(row: dict[str, Any], best: list[Any], tests: list[dict[str, Any]], untrained: set[str]) -> Judgement:
    """One before/after row judged: refused (did not learn, trained differently), or its regularizers and
    outcome. `best`: each model's compared trial (TrialSummary); `untrained`: labels at chance level."""
    trials = {t.label: t for t in best}
    model, base = trials[row["model"]], trials[row["base"]]
    judgement = Judgement(row["model"], row["base"], shown_figures(row))
    for find in (_normalization, _dropout, _settings):
        active, ignored = find(model, base)
        judgement.active += active
        judgement.ignored += ignored
    stalled = [label for label in (row["model"], row["base"]) if label in untrained]
    differences = training_differences(model, base)
    if stalled:
        judgement.refused = Message(
            "{models} did not learn (chance level): a comparison is not meaningful", {"models": stalled}
        )
    elif differences:
        judgement.refused = Message(
            "not trained alike ({differences}): the before/after comparison is refused", {"differences": differences}
        )
    elif not judgement.active:  # the two trained alike and nothing acted: any difference is not regularization's
        judgement.verdict, judgement.reason = (
            "not shown",
            Message("no regularizer acted in training: nothing to credit"),
        )
    else:
        test = next((t for t in tests if {t["a"], t["b"]} == {row["model"], row["base"]}), None)
        judgement.verdict, judgement.reason = _outcome(row, judgement.figures, test)
    return judgement


EFFECT_SENTENCES = {  # the conclusion's sentence for each verdict
    "helped": "Regularization ({model} vs {base}) helped: {reason}.",
    "hurt": "Regularization ({model} vs {base}) hurt: {reason}.",
    "not shown": "Regularization ({model} vs {base}) is not shown to have helped: {reason}.",
    "refused": "Regularization ({model} vs {base}) is not compared: {reason}.",
}


def conclusion_sentence(judgement: Judgement) -> Message:
    """What the conclusion says of one regularized model: the same verdict and reason as the checklist."""
    key = "refused" if judgement.refused else judgement.verdict
    reason = judgement.refused or judgement.reason
    return Message(EFFECT_SENTENCES[key], {"model": judgement.model, "base": judgement.base, "reason": reason})
