"""The report's claims about the trials: the lint's findings (three or more trials with one finding said once),
a trial's status in words, the "identical settings" claim, and trials that were one training."""

from __future__ import annotations

from typing import Any

from reportgen.report.analysed import Analysis
from reportgen.report.findings import format_finding, settings_words, who
from reportgen.report.model import Claim
from reportgen.report.summary import TrialSummary
from reportgen.states import TrialState

GROUPED = {  # a finding of three or more trials is said once, with the swept setting they share
    "diverged": "{n} trials diverged{shared}: {trials}.",
    "chance": "{n} trials stayed at chance level (did not learn){shared}: {trials}.",
    "failed": "{n} trials failed{shared}: {trials}.",
    "overfit": "{n} trials are likely overfitting (train accuracy far above test){shared}: {trials}.",
    "no_decrease": "{n} trials never lowered their training loss below the first epoch{shared}: {trials}.",
}


def findings(warnings: list, tr) -> list[Claim]:
    """The lint's findings as claims; three or more trials with the same finding are one line that names the
    swept setting they all share (the likely cause), instead of one warning per trial."""
    by_code: dict[object, list] = {}  # by kind; a finding that is not grouped is its own key
    for w in warnings:
        by_code.setdefault(w.code if w.trial_id and w.code in GROUPED else id(w), []).append(w)
    claims = []
    for group in by_code.values():
        if len(group) < 3:
            claims += [Claim(format_finding(w, tr), False, w.trial_id, w.code) for w in group]
            continue
        ids = [w.trial_id for w in group]
        # each trial by its model and settings, every one of them (a reader knows settings, not trial ids)
        shared = [pair for pair in group[0].settings if all(pair in w.settings for w in group)]
        listed = ", ".join(
            who(w.values["model"], [pair for pair in w.settings if pair not in shared], tr) for w in group
        )
        where = tr(", all with {settings}", settings=settings_words(shared, tr)) if shared else ""
        kind = group[0].code
        claims.append(Claim(tr(GROUPED[kind], n=len(ids), shared=where, trials=listed), False, ", ".join(ids), kind))
    return claims


def status_text(trial: TrialSummary, tr) -> str:
    """ "" for a complete trial; "diverged at epoch 3", "failed" otherwise (one wording in every format)."""
    if trial.status == TrialState.COMPLETE:
        return ""
    if trial.status == TrialState.DIVERGED:
        return tr("diverged at epoch {n}", n=len(trial.epochs))
    return tr(str(trial.status))


def settings_claim(settings: dict[str, Any], tr) -> Claim:
    """ "Identical settings" names what every trial shared and, in a sweep, what the sweep varied — the same
    for every model — so a ✓ never claims a swept setting was held fixed."""
    shared = ", ".join(tr(key) for key in settings["constant"])
    varied = ", ".join(tr(key) for key in settings["varied"])
    if not settings["identical"]:
        return Claim(tr("The models were not trained with identical settings; see the comparison table."), False)
    text = (
        tr(
            "Identical settings: every model was trained under every swept combination of {varied}; shared by "
            "all trials: {shared} — checked from the archived settings of each trial.",
            varied=varied,
            shared=shared or tr("none"),
        )
        if varied
        else tr(
            "Identical settings: every model was trained with the same {shared} — checked from the archived "
            "settings of each trial.",
            shared=shared,
        )
    )
    return Claim(text, True, test="archived settings of each trial")


def same_training(ctx: Analysis, tr) -> list[Claim]:
    """A finding per group of trials that were one training: which rows, and what matched."""
    groups = {t.same_training.trial_ids: t.same_training for t in ctx.trials if t.same_training}
    return [group.claim(tr) for group in groups.values()]
