"""Assignment checklists: a TOML list of requirements, each decided ✓/✗ by a named check on the report.

Checks read the report context (never the templates) and return (passed, evidence). The evidence is a
Message (or a list of them) — a catalogue key and its values — so it is worded in the report's language
when the checklist is evaluated for rendering; it says what a grader needs to see why.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.errors import SpecError, did_you_mean
from reportgen.report.i18n import Message, Translator
from reportgen.report.summary import did_not_learn, regularization_effect

Evidence = Message | list[Message]
Check = Callable[..., tuple[bool, Evidence]]
CHECKS: dict[str, Check] = {}
ITEM_KEYS = ("text", "check", "section")  # what a checklist item holds besides its check's parameters
MLP_LAYERS = {"Linear", "ReLU", "Flatten", "Dropout", "Tanh", "Sigmoid", "GELU"}
DROPOUT_LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"}
# Published rows a LeNet-5 can stand beside: LeNet itself (LeCun 1998 on MNIST), or a plain two-convolution
# network with pooling and no extras (the Fashion-MNIST benchmark's "2 Conv+pooling", which is LeNet's shape);
# rows with batch norm, augmentation, more layers or another activation measure something else.
COMPARABLE_TO_LENET = re.compile(r".*lenet.*|2 conv\+pooling", re.IGNORECASE)
EFFECTS = {  # regularization_effect's verdict, as evidence
    "helped": "helped: {delta} points, significant (McNemar p = {p})",
    "hurt": "hurt: {delta} points, significant (McNemar p = {p})",
    "not significant": "{delta} points, not significant (McNemar p = {p})",
    "not tested": "{delta} points, not tested for significance",
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


def _is_regularized(model: dict) -> bool:
    types = {layer["type"] for layer in model["audit"].layers}
    return bool(
        model.get("base_label")
        or model["audit"].batchnorm_params
        or types & DROPOUT_LAYERS
        or model["kwargs"].get("dropout")
    )


def _is_lenet(model: dict) -> bool:
    """The assignment's LeNet-5: a LeNet-named network (lenet5, lenet5_256, lenet5_c5, file.py:LeNet5) that
    is not a regularized variant. lenet5_regularized (BatchNorm + dropout), or any model declared the
    improvement of another (models[].base), is the "after" of the regularization item: counting it as
    LeNet-5 would tick "Implement LeNet-5" for a run without one, and set a BN + dropout network's accuracy
    beside LeCun's published LeNet-5 figures. The layers overrule the name: mlp_lenet_sized is an MLP."""
    return "lenet" in _architecture(model) and not _is_mlp(model) and not _is_regularized(model)


def _missing_lenet(ctx: dict) -> Message | None:
    if any(_is_lenet(m) for m in ctx["models"]):
        return None
    variants = [m["label"] for m in ctx["models"] if "lenet" in _architecture(m) and not _is_mlp(m)]
    if variants:
        return Message("no LeNet-5 in this run ({models}: regularized variant)", {"models": variants})
    return Message("no LeNet-5 in this run")


def _missing_models(ctx: dict) -> list[Message]:
    """Why the run lacks the assignment's LeNet-5 or MLP (empty when it has both)."""
    missing = [_missing_lenet(ctx)]
    if not any(_is_mlp(m) for m in ctx["models"]):
        missing.append(Message("no MLP in this run"))
    return [m for m in missing if m]


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
def parameter_audit(ctx: dict) -> tuple[bool, Evidence]:
    audits = [m["audit"] for m in ctx["models"]]
    ok = all(
        (a.matches_torchinfo or a.torchinfo_note)
        and all(layer["formula"] for layer in a.layers if layer["weights"] + layer["bias"])
        for a in audits
    )
    counts = [_parameter_count(m) for m in ctx["models"]]
    verdict = "{counts} — per-layer formulas, torchinfo ✓" if ok else "{counts} — mismatch with torchinfo"
    missing = _missing_models(ctx)  # the item asks for both networks, not for any audited model
    return ok and not missing, [*missing, Message(verdict, {"counts": counts})]


@check
def mlp_matches_lenet(ctx: dict, tolerance_percent: float = 5) -> tuple[bool, Evidence]:
    mlps = [m for m in ctx["models"] if _is_mlp(m)]
    lenets = [m for m in ctx["models"] if _is_lenet(m)]
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
def epoch_monitoring(ctx: dict) -> tuple[bool, Evidence]:
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    ok = all(t.epochs and all(k in e for k in keys for e in t.epochs) and t.average for t in ctx["trials"])
    return ok, Message("{count} per-epoch table(s) with an average row", {"count": len(ctx["trials"])})


@check
def four_curves_per_model(ctx: dict) -> tuple[bool, Evidence]:
    count = sum(len(c["panels"]) == 4 for c in ctx["model_curves"])
    return count == len(ctx["models"]), Message(
        "{count} of {models} models have train/test loss and accuracy plots",
        {"count": count, "models": len(ctx["models"])},
    )


@check
def model_comparison(ctx: dict, lenet_and_mlp: bool = False) -> tuple[bool, Evidence]:
    tests = ctx["mcnemar"]
    if len(ctx["models"]) < 2 or not tests:
        return False, Message("needs at least two models evaluated on the same test set")
    if lenet_and_mlp:
        return _lenet_vs_mlp(ctx)
    return True, Message("comparison table and {count} McNemar test(s)", {"count": len(tests)})


def _lenet_vs_mlp(ctx: dict) -> tuple[bool, Evidence]:
    """A McNemar test of a LeNet-5 against an MLP, both of which learned: the item names these two."""
    models = {m["label"]: m for m in ctx["models"]}
    pairs = [t for t in ctx["mcnemar"] if {_kind(models[t["a"]]), _kind(models[t["b"]])} == {"lenet", "mlp"}]
    if not pairs:
        return False, _missing_models(ctx) or Message("no McNemar test of a LeNet-5 against an MLP")
    untrained = did_not_learn(ctx["best"], ctx["warnings"])
    meaningful = [t for t in pairs if not {t["a"], t["b"]} & untrained]
    if not meaningful:
        return False, _not_learned(sorted({label for t in pairs for label in (t["a"], t["b"])} & untrained))
    test = meaningful[0]
    return True, Message(
        "{a} vs {b}: comparison table and McNemar test (p = {p})",
        {"a": test["a"], "b": test["b"], "p": f"{test['p_value']:.3g}"},
    )


def _kind(model: dict) -> str:
    return "lenet" if _is_lenet(model) else "mlp" if _is_mlp(model) else "other"


def _not_learned(labels: list[str]) -> Message:
    return Message("{models} did not learn (chance level): a comparison is not meaningful", {"models": labels})


@check
def known_accuracy(ctx: dict) -> tuple[bool, Evidence]:
    """LeNet-5's own final test accuracy beside published figures of the same network on the same dataset
    (COMPARABLE_TO_LENET): other networks' figures do not answer the item, which
    then says how many there are instead of ticking."""
    rows, dataset = ctx["literature"], ctx["data"]["dataset"]
    lenets = [m["label"] for m in ctx["models"] if _is_lenet(m)]
    trial = next((t for t in ctx["best"] if t.label in lenets and t.ranked), None)
    if trial is None:
        return False, _missing_lenet(ctx) or Message("LeNet-5 did not finish training: no accuracy to compare")
    if trial.label in did_not_learn(ctx["best"], ctx["warnings"]):
        return False, _not_learned([trial.label])
    comparable = [row for row in rows if COMPARABLE_TO_LENET.fullmatch(row.get("name", row["model"]))]
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


def regularization_techniques(model: dict, base: dict, model_config: dict, base_config: dict) -> list[str]:
    """What the regularized model adds over its base: BatchNorm, dropout, weight decay, augmentation
    (English names; catalogue keys)."""

    def layer_types(m: dict) -> set[str]:
        return {layer["type"] for layer in m["audit"].layers}

    found = []
    if model["audit"].batchnorm_params > base["audit"].batchnorm_params:
        found.append("batch normalization")
    if (layer_types(model) & DROPOUT_LAYERS) - (layer_types(base) & DROPOUT_LAYERS) or model["kwargs"].get(
        "dropout", 0
    ) > base["kwargs"].get("dropout", 0):
        found.append("dropout")
    if model_config["weight_decay"] > base_config["weight_decay"]:
        found.append("weight decay")
    if model_config["augment"] and not base_config["augment"]:
        found.append("data augmentation")
    return found


@check
def regularization(ctx: dict, min_techniques: int = 2) -> tuple[bool, Evidence]:
    if not ctx["before_after"]:
        return False, Message("no regularized model with a base model (spec key models[].base)")
    untrained = did_not_learn(ctx["best"], ctx["warnings"])
    evidence, ok, enough = [], False, False
    for row in ctx["before_after"]:
        found = _techniques(ctx, row)
        stalled = sorted({row["model"], row["base"]} & untrained)  # the conclusion makes the same exception
        effect = regularization_effect(row, ctx["mcnemar"])  # the conclusion words it from the same verdict
        evidence.append(
            Message(
                "{model}: {techniques} — {effect}",
                {
                    "model": row["model"],
                    "techniques": [Message(name) for name in found] or Message("none"),
                    "effect": _not_learned(stalled) if stalled else _effect(effect),
                },
            )
        )
        enough = enough or len(found) >= min_techniques
        # "Improve" holds only when the report's own test says the regularized model is better
        ok = ok or (len(found) >= min_techniques and not stalled and effect["verdict"] == "helped")
    # the rule only where no model uses enough techniques: beside a ✓ it read as a failure note
    rule = [] if enough else [Message("needs at least {count} techniques", {"count": min_techniques})]
    return ok, evidence + rule


def _techniques(ctx: dict, row: dict[str, Any]) -> list[str]:
    models = {m["label"]: m for m in ctx["models"]}
    best = {t.label: t for t in ctx["best"]}
    return regularization_techniques(
        models[row["model"]], models[row["base"]], best[row["model"]].config, best[row["base"]].config
    )


def _effect(effect: dict[str, Any]) -> Message:
    return Message(EFFECTS[effect["verdict"]], {"delta": effect["delta"], "p": effect["p"]})


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
    for key in item:
        if key in ITEM_KEYS or key in taken:
            continue
        hint = did_you_mean(key, taken, n=1, quote=True) or f"{item['check']!r} takes {', '.join(taken) or 'none'}"
        raise SpecError(f"{where}.{key}': unknown parameter of check {item['check']!r}; {hint}")


def evaluate_checklist(
    checklist: dict[str, Any], context: dict[str, Any], translate: Translator
) -> list[dict[str, Any]]:
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
