"""The report's conclusion in sentences: what the comparisons show and how sure they are (significance, seeds,
cost, calibration), the significant claims first, and the next steps a reader could take."""

from __future__ import annotations

from typing import Any

from reportgen.report.i18n import Translator
from reportgen.report.model import Claim, points_between
from reportgen.report.regularization import TEST as REGULARIZATION_TEST
from reportgen.report.regularization import conclusion_sentence, judge_row
from reportgen.report.summary import TrialSummary

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
