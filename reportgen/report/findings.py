"""Findings a careful reviewer would raise about a comparison (failed, diverged, chance level, overfitting,
mismatched settings), shown as warnings atop the report and on the console."""

from __future__ import annotations

import math
from dataclasses import dataclass

from reportgen.report.i18n import Translator, translator
from reportgen.report.model import percent, points_between, setting_text
from reportgen.report.summary import TrialSummary
from reportgen.settings import REPORTED, mixed_loss_scales
from reportgen.states import TrialState

CHANCE_MARGIN = 0.02  # accuracy within 2 points of 1/classes counts as chance level
OVERFIT_GAP = 0.05  # final train accuracy this far above test accuracy suggests overfitting


@dataclass(frozen=True)
class Finding:
    """`message` is English, translated and formatted with `values` plus `{who}`: the model and, where trials
    differ in their settings, this trial's ("mlp (Learning rate 10.0)") — a reader knows the settings, not the
    trial ids."""

    code: str
    trial_id: str
    message: str
    values: dict
    settings: tuple[tuple[str, object], ...] = ()


def distinguishing(trials: list[TrialSummary]) -> list[str]:
    """The settings in which the trials differ (a sweep's factors, the seed): what tells one trial from another."""
    return [k for k in REPORTED if len({str(t.config[k]) for t in trials}) > 1]


def settings_words(settings: tuple[tuple[str, object], ...] | list, tr: Translator) -> str:
    """ "Learning rate 10.0, Optimizer Adam": settings as the report names them."""
    return ", ".join(f"{tr(key)} {setting_text(value, tr)}" for key, value in settings)


def review_trials(trials: list[TrialSummary], num_classes: int, settings_identical: bool) -> list[Finding]:
    findings: list[Finding] = []
    chance = 1.0 / num_classes
    keys = distinguishing(trials)
    for t in trials:
        own = tuple((k, t.config[k]) for k in keys)
        if t.status == TrialState.FAILED:
            last_line = (t.error.strip().splitlines() or ["unknown error"])[-1]
            findings.append(
                Finding(
                    "failed",
                    t.trial_id,
                    "{who} failed: {error}",
                    {"model": t.label, "trial": t.trial_id, "error": last_line},
                    own,
                )
            )
            continue
        if not t.epochs:
            continue
        losses = [e["train_loss"] for e in t.epochs]
        values = {"model": t.label, "trial": t.trial_id}
        if t.status == TrialState.DIVERGED or not all(x is not None and math.isfinite(x) for x in losses):
            findings.append(
                Finding(
                    "diverged",
                    t.trial_id,
                    "{who} diverged: the training loss "
                    "became NaN/inf or exploded; training stopped, results kept but not "
                    "comparable",
                    values,
                    own,
                )
            )
            continue
        if t.final.get("test_acc") is None:
            continue
        if t.final["test_acc"] <= chance + CHANCE_MARGIN:
            findings.append(
                Finding(
                    "chance",
                    t.trial_id,
                    "{who} is at chance level "
                    "({acc:.2f}% ≤ {limit:.0f}%): it did not learn; do not compare it as trained",
                    values | {"acc": 100 * t.final["test_acc"], "limit": 100 * (chance + CHANCE_MARGIN)},
                    own,
                )
            )
        elif len(losses) > 1 and min(losses[1:]) >= losses[0]:
            findings.append(
                Finding(
                    "no_decrease",
                    t.trial_id,
                    "{who}: training loss never decreased below its first epoch",
                    values,
                    own,
                )
            )
        gap = t.final["train_acc"] - t.final["test_acc"]
        if gap > OVERFIT_GAP:
            # the gap of the accuracies as the epoch table prints them, so the two agree to the last digit
            shown = points_between(percent(t.final["train_acc"]), percent(t.final["test_acc"]))
            findings.append(
                Finding(
                    "overfit",
                    t.trial_id,
                    "{who}: train accuracy exceeds test accuracy by {gap} points — likely overfitting",
                    values | {"gap": shown},
                    own,
                )
            )
    if mixed_loss_scales(t.config["loss"] for t in trials):
        findings.append(
            Finding(
                "cross_loss",
                "",
                "trials use different loss functions; their loss values "
                "are on different scales — compare accuracy, not loss",
                {},
            )
        )
    if not settings_identical:
        findings.append(
            Finding(
                "settings_differ",
                "",
                "the models were not all trained with the same "
                "settings; differences may come from the settings, not the models",
                {},
            )
        )
    return findings


def format_finding(warning: Finding, translate: Translator | None = None) -> str:
    """The warning in the report's language (English without a translator)."""
    tr = translate or translator("en")
    return tr(warning.message, **warning.values, who=who(warning.values.get("model", ""), warning.settings, tr))


def who(model: str, settings: tuple[tuple[str, object], ...] | list, tr: Translator) -> str:
    """The model, and the settings of its trial where trials differ: "mlp (Learning rate 10.0)"."""
    return f"{model} ({settings_words(settings, tr)})" if settings else model
