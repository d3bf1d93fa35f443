"""Assignment checklists: a TOML list of requirements, each decided ✓/✗ by a named check on the report.

Checks read the report context (never the templates) and return (passed, evidence). The evidence is a
Message (or a list of them) — a catalogue key and its values — so it is worded in the report's language
when the checklist is evaluated for rendering; it says what a grader needs to see why.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.errors import SpecError, did_you_mean
from reportgen.report import lenet
from reportgen.report.analysed import Analysis
from reportgen.report.conclusions import did_not_learn
from reportgen.report.i18n import Message, Translator
from reportgen.report.model import SECTION_HEADINGS
from reportgen.report.regularization import Judgement, judge_row
from reportgen.report.significance import comparable_to_lenet

Evidence = Message | list[Message]
Check = Callable[..., tuple[bool, Evidence]]
CHECKS: dict[str, Check] = {}
ITEM_KEYS = ("text", "check", "section")  # what a checklist item holds besides its check's parameters


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high


def _integer(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


# Each check parameter's type and range, as the one line that refuses a wrong value says it: checked when the
# checklist is read, before anything trains (a test keeps every parameter of every check listed here).
PARAMETERS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "tolerance_percent": ("a number from 0 to 100", _number(0, 100)),
    "min_techniques": (
        "an integer from 1 to 4 (batch normalization, dropout, weight decay, augmentation)",
        _integer(1, 4),
    ),
    "lenet_and_mlp": ("true or false", lambda v: isinstance(v, bool)),
}
MLP_LAYERS = {"Linear", "ReLU", "Flatten", "Dropout", "Tanh", "Sigmoid", "GELU"}
EFFECTS = {  # the regularization judgement's verdict (regularization.py), as evidence of "it helped"
    "helped": "{model}: helped — {reason}",
    "hurt": "{model}: hurt — {reason}",
    "not shown": "{model}: not shown to help — {reason}",
}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def _is_mlp(model: dict) -> bool:
    return all(layer["type"] in MLP_LAYERS for layer in model["audit"].layers)


def _architecture(model: dict) -> str:
    """The part of a model reference that names the network: a registry name (lenet5_256), or the class or
    function after the last ':' of a file or module reference (nets/my_lenet.py:LeNet5 → lenet5). Folder and
    file names say nothing about the network: 'lenet_homework/nets.py:MLP' is an MLP."""
    return model["name"].split("?")[0].rsplit(":", 1)[-1].lower()


def _classes(ctx: Analysis) -> int:
    """The run's number of classes: LeNet-5's output layer has one unit per class (the assignment's 10)."""
    return len(ctx.data.get("classes") or range(10))


def _lenet(model: dict, ctx: Analysis) -> lenet.Verdict:
    """Is the model the assignment's LeNet-5, by its archived layers (report/lenet.py)?"""
    return lenet.judge(model["audit"], _classes(ctx))


def _is_lenet(model: dict, ctx: Analysis) -> bool:
    """The assignment's LeNet-5: a model whose layers, kernels, channels and parameter count are LeNet-5's,
    whatever its name, and that is not declared the improvement of another model (models[].base): that one
    is the "after" of the regularization items, and counting it as LeNet-5 would tick "Implement LeNet-5"
    for a run without one."""
    return not model.get("base_label") and _lenet(model, ctx).holds


def _lenet_evidence(ctx: Analysis) -> list[Message]:
    """Why the run's LeNet-5 is LeNet-5 (its layers, parameters and the tolerances used)."""
    found = next((m for m in ctx.models if _is_lenet(m, ctx)), None)
    return (
        [Message("{model}: {evidence}", {"model": found["label"], "evidence": _lenet(found, ctx).evidence})]
        if found
        else []
    )


def _missing_lenet(ctx: Analysis) -> list[Message]:
    """Why the run has no LeNet-5 (empty when it has one): regularized variants by name, and each model that
    claims to be LeNet-5 (its class or registry name says so) with the first difference from LeNet-5."""
    models = ctx.models
    if any(_is_lenet(m, ctx) for m in models):
        return []
    variants = [
        m["label"]
        for m in models
        if (m.get("base_label") and _lenet(m, ctx).holds) or lenet.regularized_variant(m["audit"], _classes(ctx))
    ]
    named = [m for m in models if "lenet" in _architecture(m) and m["label"] not in variants and not _is_mlp(m)]
    reasons = [
        Message(
            "{model} is not LeNet-5; first difference: {difference}",
            {"model": m["label"], "difference": _lenet(m, ctx).difference},
        )
        for m in named
    ]
    if variants:
        return [Message("no LeNet-5 in this run ({models}: regularized variant)", {"models": variants}), *reasons]
    return [Message("no LeNet-5 in this run"), *reasons]


def _missing_models(ctx: Analysis) -> list[Message]:
    """Why the run lacks the assignment's LeNet-5 or MLP (empty when it has both)."""
    missing = _missing_lenet(ctx)
    if not any(_is_mlp(m) for m in ctx.models):
        missing.append(Message("no MLP in this run"))
    return missing


def _parameter_count(model: dict) -> Message:
    """A model's parameters, and its multiply-adds when the run measured them: equal parameters can hide
    very different compute."""
    values = {
        "model": model["label"],
        "total": f"{model['audit'].total:,}",
        "without_bias": f"{model['audit'].without_bias:,}",
    }
    macs = ((model["audit"].cost or {}).get("macs") or {}).get("total")
    if macs is None:
        return Message("{model}: {total} ({without_bias} without bias)", values)
    return Message(
        "{model}: {total} ({without_bias} without bias), {macs} MACs per image", values | {"macs": f"{macs:,}"}
    )


@check
def parameter_audit(ctx: Analysis) -> tuple[bool, Evidence]:
    audits = [m["audit"] for m in ctx.models]
    ok = all(
        (a.matches_torchinfo or a.torchinfo_note)
        and all(layer["formula"] for layer in a.layers if layer["weights"] + layer["bias"])
        for a in audits
    )
    counts = [_parameter_count(m) for m in ctx.models]
    verdict = "{counts} — per-layer formulas, torchinfo ✓" if ok else "{counts} — mismatch with torchinfo"
    missing = _missing_models(ctx)  # the item asks for both networks, not for any audited model
    return ok and not missing, [*missing, *_lenet_evidence(ctx), Message(verdict, {"counts": counts})]


@check
def mlp_matches_lenet(ctx: Analysis, tolerance_percent: float = 5) -> tuple[bool, Evidence]:
    mlps = [m for m in ctx.models if _is_mlp(m)]
    lenets = [m for m in ctx.models if _is_lenet(m, ctx)]
    if not mlps or not lenets:
        return False, Message("needs an MLP and a LeNet-5 in the same run")
    lenet = lenets[0]
    mlp = min(mlps, key=lambda m: abs(m["audit"].total - lenet["audit"].total))
    diff = 100 * (mlp["audit"].total - lenet["audit"].total) / lenet["audit"].total
    return abs(diff) <= tolerance_percent, Message(
        "{mlp} {mlp_total} vs {lenet} {lenet_total} ({diff}, limit ±{limit})",
        {
            "mlp": mlp["label"],
            "mlp_total": f"{mlp['audit'].total:,}",
            "lenet": lenet["label"],
            "lenet_total": f"{lenet['audit'].total:,}",
            "diff": f"{diff:+.2f}%",
            "limit": f"{tolerance_percent:g}%",
        },
    )


@check
def epoch_monitoring(ctx: Analysis) -> tuple[bool, Evidence]:
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    ok = all(t.epochs and all(k in e for k in keys for e in t.epochs) and t.average for t in ctx.trials)
    return ok, Message("{count} per-epoch table(s) with an average row", {"count": len(ctx.trials)})


@check
def four_curves_per_model(ctx: Analysis) -> tuple[bool, Evidence]:
    count = sum(len(c["panels"]) == 4 for c in ctx.model_curves)
    return count == len(ctx.models), Message(
        "{count} of {models} models have train/test loss and accuracy plots",
        {"count": count, "models": len(ctx.models)},
    )


@check
def model_comparison(ctx: Analysis, lenet_and_mlp: bool = False) -> tuple[bool, Evidence]:
    tests = ctx.mcnemar
    if len(ctx.models) < 2 or not tests:
        return False, Message("needs at least two models evaluated on the same test set")
    if lenet_and_mlp:
        return _lenet_vs_mlp(ctx)
    return True, Message("comparison table and {count} McNemar test(s)", {"count": len(tests)})


def _lenet_vs_mlp(ctx: Analysis) -> tuple[bool, Evidence]:
    """A McNemar test of a LeNet-5 against an MLP, both of which learned: the item names these two."""
    models = {m["label"]: m for m in ctx.models}
    pairs = [t for t in ctx.mcnemar if {_kind(models[t["a"]], ctx), _kind(models[t["b"]], ctx)} == {"lenet", "mlp"}]
    if not pairs:
        return False, _missing_models(ctx) or Message("no McNemar test of a LeNet-5 against an MLP")
    untrained = did_not_learn(ctx.best, ctx.warnings)
    meaningful = [t for t in pairs if not {t["a"], t["b"]} & untrained]
    if not meaningful:
        return False, _not_learned(sorted({label for t in pairs for label in (t["a"], t["b"])} & untrained))
    test = meaningful[0]
    return True, Message(
        "{a} vs {b}: comparison table and McNemar test (p = {p})",
        {"a": test["a"], "b": test["b"], "p": f"{test['p_value']:.3g}"},
    )


def _kind(model: dict, ctx: Analysis) -> str:
    return "lenet" if _is_lenet(model, ctx) else "mlp" if _is_mlp(model) else "other"


def _not_learned(labels: list[str]) -> Message:
    return Message("{models} did not learn (chance level): a comparison is not meaningful", {"models": labels})


@check
def known_accuracy(ctx: Analysis) -> tuple[bool, Evidence]:
    """LeNet-5's own final test accuracy beside published figures of the same network on the same dataset
    (significance.comparable_to_lenet), only for a model whose layers are LeNet-5's (a network named LeNet5
    that is not LeNet-5 has no known accuracy to meet): other networks' figures do not answer the item, which
    then says how many there are instead of ticking."""
    rows, dataset = ctx.literature, ctx.data["dataset"]
    lenets = [m["label"] for m in ctx.models if _is_lenet(m, ctx)]
    trial = next((t for t in ctx.best if t.label in lenets and t.ranked), None)
    if trial is None:
        return False, _missing_lenet(ctx) or Message("LeNet-5 did not finish training: no accuracy to compare")
    if trial.label in did_not_learn(ctx.best, ctx.warnings):
        return False, _not_learned([trial.label])
    comparable = comparable_to_lenet(rows)
    if not comparable:
        return False, Message(
            "no published figure for {dataset} comparable to LeNet-5 ({count} results for other networks)",
            {"dataset": Message(dataset), "count": len(rows)},
        )
    return True, Message(
        "{model}: {acc} final test accuracy beside the published {published}",
        {
            "model": trial.label,
            "acc": f"{100 * trial.final['test_acc']:.2f}%",
            "published": [f"{row['model']} {100 * row['accuracy']:.2f}%" for row in comparable],
        },
    )


NO_BASE = "no regularized model with a base model (spec key models[].base)"


def _judgements(ctx: Analysis) -> list[Judgement]:
    untrained = did_not_learn(ctx.best, ctx.warnings)
    return [judge_row(row, ctx.best, ctx.mcnemar, untrained) for row in ctx.before_after]


@check
def regularization(ctx: Analysis, min_techniques: int = 2) -> tuple[bool, Evidence]:
    """The assignment's ask: at least `min_techniques` regularizers that acted in training, and a before/after
    of models trained alike. Whether it helped is the next item's (regularization_helped)."""
    if not ctx.before_after:
        return False, Message(NO_BASE)
    evidence, ok = [], False
    judgements = _judgements(ctx)
    for j in judgements:
        techniques = j.active or Message("none")
        evidence.append(
            Message(
                "{model} vs {base}: active in training: {techniques}",
                {"model": j.model, "base": j.base, "techniques": techniques},
            )
        )
        evidence += [Message("not counted: {ignored}", {"ignored": j.ignored})] if j.ignored else []
        evidence += [j.refused] if j.refused else []
        ok = ok or (len(j.active) >= min_techniques and not j.refused)
    if not any(len(j.active) >= min_techniques for j in judgements):  # beside a ✓ it read as a failure note
        evidence.append(Message("needs at least {count} techniques", {"count": min_techniques}))
    return ok, evidence


@check
def regularization_helped(ctx: Analysis) -> tuple[bool, Evidence]:
    """The outcome: test accuracy, test loss and the train–test gap together (regularization.py), for a
    regularized model with a regularizer that acted in training, trained like its base."""
    if not ctx.before_after:
        return False, Message(NO_BASE)
    evidence, ok = [], False
    for j in _judgements(ctx):
        if j.refused:
            evidence.append(Message("{model}: {reason}", {"model": j.model, "reason": j.refused}))
        else:
            evidence.append(Message(EFFECTS[j.verdict], {"model": j.model, "reason": j.reason}))
            ok = ok or j.verdict == "helped"
    return ok, evidence


def load_checklist(name: str) -> dict[str, Any]:
    """A built-in checklist by name ("assignment") or a TOML file path."""
    builtin = resources.files("reportgen").joinpath("checklists", f"{name}.toml")
    source = name
    try:
        text = builtin.read_text("utf-8") if builtin.is_file() else Path(name).read_text("utf-8")
        checklist = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"checklist {source}: cannot read ({exc})") from exc
    items = checklist.get("items", [])
    if not isinstance(items, list):
        raise SpecError(f"checklist {source}: key 'items': expected an array of [[items]] tables")
    if not isinstance(checklist.get("title", ""), str):
        raise SpecError(f"checklist {source}: key 'title': expected text, got {checklist['title']!r}")
    for i, item in enumerate(items):
        _check_item(f"checklist {source}: key 'items[{i}]", item)
    checklist.setdefault("title", Path(source).stem)
    return checklist


def _check_item(where: str, item: Any) -> None:
    """An item is a table with its text, a known check and only parameters that check takes: checked when the
    checklist is read (a spec, `run` before training, `render`), never as a traceback while judging it."""
    if isinstance(item, dict) and item.get("check") not in CHECKS:
        raise SpecError(f"{where}.check': expected one of {', '.join(CHECKS)}, got {item.get('check')!r}")
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise SpecError(f"{where}.text': expected the item's text, got {item!r}")
    check = CHECKS[item["check"]]
    taken = list(inspect.signature(check).parameters)[1:]  # the first is the report context
    for key, value in item.items():
        if key in taken:
            expected, valid = PARAMETERS[key]
            if not valid(value):
                raise SpecError(f"{where}.{key}': expected {expected}, got {value!r}")
        elif key not in ITEM_KEYS:
            hint = did_you_mean(key, taken, n=1, quote=True) or f"{item['check']!r} takes {', '.join(taken) or 'none'}"
            raise SpecError(f"{where}.{key}': unknown parameter of check {item['check']!r}; {hint}")
    _check_section(where, item.get("section", ""))


def _check_section(where: str, section: Any) -> None:
    """A section is one the report has: the item's text links to it."""
    if section != "" and section not in SECTION_HEADINGS:
        hint = did_you_mean(str(section), SECTION_HEADINGS, n=1, quote=True)
        expected = f"one of {', '.join(SECTION_HEADINGS)}, got {section!r}"
        raise SpecError(f"{where}.section': " + (f"{hint} (expected {expected})" if hint else f"expected {expected}"))


def evaluate_checklist(checklist: dict[str, Any], context: Analysis, translate: Translator) -> list[dict[str, Any]]:
    """Each item's ✓/✗ and its evidence, worded by `translate` (a list of messages joined with '; ')."""
    results = []
    for item in checklist.get("items", []):
        params = {k: v for k, v in item.items() if k not in ITEM_KEYS}
        passed, evidence = CHECKS[item["check"]](context, **params)
        messages = evidence if isinstance(evidence, list) else [evidence]
        results.append(
            {
                "text": item["text"],
                "passed": passed,
                "evidence": "; ".join(m.render(translate) for m in messages),
                "section": item.get("section", ""),
                "check": item["check"],
            }
        )
    return results


def judged_checklist(context: Analysis, name: str | None) -> dict[str, Any] | None:
    """The assignment checklist, judged on the finished context: some items check the figures drawn."""
    name = name or context.spec.get("checklist")
    if not name:
        return None
    loaded = load_checklist(name)
    translate = context.translate
    return {"title": translate(loaded["title"]), "items": evaluate_checklist(loaded, context, translate)}
