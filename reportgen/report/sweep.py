"""What a sweep shows about the settings it varied, as claims for the conclusion.

The best configuration; for each swept factor, every other value of it against the value of the best
configuration, paired trial by trial (same model, same values of the other factors, same seed) and tested with
McNemar on the same test images; and the values under which no trial learned. A value "beats" another only
when every paired comparison goes its way and each is significant — anything less is said as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reportgen.report.model import Claim, setting_text
from reportgen.report.significance import SIGNIFICANCE, mcnemar
from reportgen.report.summary import TrialSummary
from reportgen.settings import value_order
from reportgen.states import TrialState

Predictions = Callable[[str], list[dict[str, str]]]
ONE_BEATS = "{factor} {a} beats {b} in the one paired trial ({low} points; McNemar p < 0.05)."
ONE_AHEAD = "{factor} {a} is ahead of {b} in the one paired trial ({low} points), not significantly."
ONE_BEHIND = "{factor} {a} vs {b}: not ahead in the one paired trial ({low} points)."


def _points(delta: float) -> str:
    return f"{100 * delta:+.1f}"


def _settings_text(trial: TrialSummary, factors: list[str], tr) -> str:
    return ", ".join(f"{tr(k)} {setting_text(trial.config[k], tr)}" for k in factors)


def sweep_claims(
    trials: list[TrialSummary], varied: dict[str, list], predictions: Predictions, stalled: set[str], tr
) -> list[Claim]:
    """`stalled`: ids of trials that did not learn (chance level) — they take part in no comparison."""
    factors = [k for k in varied if k != "seed"]
    learned = [t for t in trials if t.ranked and t.trial_id not in stalled]
    if not factors or not learned:
        return _no_learning(trials, factors, stalled, tr)
    best = max(learned, key=lambda t: t.final["test_acc"])
    claims = [
        Claim(
            tr(
                "Best configuration of the sweep: {model} with {settings}, {acc} final test accuracy.",
                model=best.label,
                settings=_settings_text(best, factors, tr),
                acc=f"{100 * best.final['test_acc']:.2f}%",
            ),
            test="final test accuracy of every trial",
        )
    ]
    for factor in factors:
        for other in sorted(varied[factor], key=value_order):
            if other != best.config[factor]:
                claim = _effect(factor, best.config[factor], other, learned, factors, predictions, tr)
                claims += [claim] if claim else []
    return _no_learning(trials, factors, stalled, tr) + claims  # what failed first, then what the rest shows


def _pairs(
    factor: str, a: Any, b: Any, trials: list[TrialSummary], factors: list[str]
) -> list[tuple[TrialSummary, TrialSummary]]:
    """Trials with factor = a beside the trial that differs only in that factor (b); each pair of trainings once
    (`seeds = [0, 0, 0]` pairs one training with one training three times: that is one paired trial)."""

    def context(t: TrialSummary) -> tuple:
        return (t.label, t.config["seed"], *(t.config[k] for k in factors if k != factor))

    with_b = {context(t): t for t in trials if t.config[factor] == b}
    pairs = {
        (t.training, with_b[context(t)].training): (t, with_b[context(t)])
        for t in trials
        if t.config[factor] == a and context(t) in with_b
    }
    return list(pairs.values())


def _effect(
    factor: str, a: Any, b: Any, trials: list[TrialSummary], factors: list[str], predictions: Predictions, tr
) -> Claim | None:
    pairs = _pairs(factor, a, b, trials, factors)
    alike = [(ta, tb) for ta, tb in pairs if ta.training == tb.training]
    if alike and len(alike) == len(pairs):  # e.g. momentum under adam: the setting never reached the training
        text = "{factor} {a} and {b} were one training in every paired trial ({n}): the setting changed nothing."
        return Claim(
            tr(text, factor=tr(factor), a=setting_text(a, tr), b=setting_text(b, tr), n=len(pairs)),
            test="same training: identical predictions, weights or metrics",
        )
    pairs = [(ta, tb) for ta, tb in pairs if ta.training != tb.training]
    if not pairs:
        return None
    deltas = [ta.final["test_acc"] - tb.final["test_acc"] for ta, tb in pairs]
    significant = sum(_significant(ta, tb, predictions) for ta, tb in pairs)
    ahead = sum(d > 0 for d in deltas)
    values = {
        "factor": tr(factor),
        "a": setting_text(a, tr),
        "b": setting_text(b, tr),
        "n": len(pairs),
        "k": significant,
        "ahead": ahead,
        "low": _points(min(deltas)),
        "high": _points(max(deltas)),
    }
    one = len(pairs) == 1  # seeds = [0, 0, 0] is one paired trial, and is said as one
    if ahead == len(pairs) and significant == len(pairs):
        text = (
            ONE_BEATS
            if one
            else "{factor} {a} beats {b} in all {n} paired trials ({low} to {high} points; McNemar p < 0.05 in each)."
        )
    elif ahead == len(pairs):
        text = (
            ONE_AHEAD
            if one
            else "{factor} {a} is ahead of {b} in all {n} paired trials ({low} to {high} points), significant in {k}."
        )
    else:
        text = (
            ONE_BEHIND
            if one
            else "{factor} {a} vs {b}: no consistent difference — ahead in {ahead} of {n} paired trials ({low} to {high} points)."
        )
    return Claim(tr(text, **values), ahead == len(pairs) and significant == len(pairs), test="McNemar per pair")


def _significant(a: TrialSummary, b: TrialSummary, predictions: Predictions) -> bool:
    pa, pb = predictions(a.trial_id), predictions(b.trial_id)
    labels = [int(p["label"]) for p in pa]
    if labels != [int(p["label"]) for p in pb]:
        return False  # not the same test images: no paired test
    result = mcnemar(labels, [int(p["prediction"]) for p in pa], [int(p["prediction"]) for p in pb])
    return result["p_value"] < SIGNIFICANCE


def _no_learning(trials: list[TrialSummary], factors: list[str], stalled: set[str], tr) -> list[Claim]:
    """Each swept value under which trials did not learn (diverged, failed or stayed at chance level), and how
    many of its trials: "With Optimizer SGD, the models did not learn in 4 of 6 trials (diverged: 3, …)." Each
    training counts once (a trial that was one training with another is left out)."""
    claims = []
    for factor in factors:
        for value in sorted({t.config[factor] for t in trials}, key=value_order):
            group = [t for t in trials if t.config[factor] == value and not t.repeated]
            failed = [t for t in group if _did_not_learn(t, stalled)]
            if len(group) > 1 and failed:
                claims.append(_failures(tr(factor), setting_text(value, tr), group, failed, stalled, tr))
    return claims


def _failures(
    factor: str, value: str, group: list[TrialSummary], failed: list[TrialSummary], stalled: set[str], tr
) -> Claim:
    kinds = {
        "diverged": [t for t in failed if t.status == TrialState.DIVERGED],
        "stayed at chance level": [t for t in failed if t.trial_id in stalled and t.status == TrialState.COMPLETE],
    }
    kinds["failed"] = [t for t in failed if not any(t in ts for ts in kinds.values())]
    how = ", ".join(tr("{kind}: {n}", kind=tr(kind), n=len(ts)) for kind, ts in kinds.items() if ts)
    values = {"factor": factor, "value": value, "k": len(failed), "n": len(group), "how": how}
    if len(failed) < len(group):
        text = "With {factor} {value}, the models did not learn in {k} of {n} trials ({how})."
    else:
        values["acc"] = f"{100 * max(t.final.get('test_acc') or 0.0 for t in group):.2f}%"
        text = (
            "With {factor} {value}, the models did not learn in either trial ({how}; best {acc})."
            if len(group) == 2
            else "With {factor} {value}, the models did not learn in any of the {n} trials ({how}; best {acc})."
        )
    return Claim(tr(text, **values), test="divergence check and chance-level finding")


def _did_not_learn(trial: TrialSummary, stalled: set[str]) -> bool:
    return trial.status != TrialState.COMPLETE or trial.trial_id in stalled
