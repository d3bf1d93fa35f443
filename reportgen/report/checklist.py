"""Assignment checklists: a TOML list of requirements, each decided ✓/✗ by a named check on the report.

Checks read the report context (never the templates) and return (passed, evidence). The evidence is a
Message (or a list of them) — a catalogue key and its values — so it is worded in the report's language
when the checklist is evaluated for rendering; it says what a grader needs to see why.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.errors import SpecError
from reportgen.report.i18n import Message, Translator
from reportgen.report.summary import regularization_effect

Evidence = Message | list[Message]
Check = Callable[..., tuple[bool, Evidence]]
CHECKS: dict[str, Check] = {}
MLP_LAYERS = {"Linear", "ReLU", "Flatten", "Dropout", "Tanh", "Sigmoid", "GELU"}
DROPOUT_LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"}
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
    return ok, Message(verdict, {"counts": counts})


@check
def mlp_matches_lenet(ctx: dict, tolerance_percent: float = 5) -> tuple[bool, Evidence]:
    mlps = [m for m in ctx["models"] if _is_mlp(m)]
    lenets = [m for m in ctx["models"] if "lenet" in m["name"].lower() and not m.get("base_label")]
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
def model_comparison(ctx: dict) -> tuple[bool, Evidence]:
    tests = ctx["mcnemar"]
    if len(ctx["models"]) < 2 or not tests:
        return False, Message("needs at least two models evaluated on the same test set")
    return True, Message("comparison table and {count} McNemar test(s)", {"count": len(tests)})


@check
def known_accuracy(ctx: dict) -> tuple[bool, Evidence]:
    rows, dataset = ctx["literature"], ctx["data"]["dataset"]
    if not rows:
        return False, Message("no published figures known for {dataset}", {"dataset": dataset})
    return True, Message(
        "{count} published result(s) for {dataset} beside ours", {"count": len(rows), "dataset": dataset}
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
    models = {m["label"]: m for m in ctx["models"]}
    best = {t.label: t for t in ctx["best"]}
    if not ctx["before_after"]:
        return False, Message("no regularized model with a base model (spec key models[].base)")
    evidence, ok = [], False
    for row in ctx["before_after"]:
        found = regularization_techniques(
            models[row["model"]], models[row["base"]], best[row["model"]].config, best[row["base"]].config
        )
        effect = regularization_effect(row, ctx["mcnemar"])  # the conclusion words it from the same verdict
        evidence.append(
            Message(
                "{model}: {techniques} — {effect}",
                {
                    "model": row["model"],
                    "techniques": [Message(name) for name in found] or Message("none"),
                    "effect": Message(EFFECTS[effect["verdict"]], {"delta": effect["delta"], "p": effect["p"]}),
                },
            )
        )
        ok = ok or len(found) >= min_techniques
    return ok, evidence + [Message("needs at least {count} techniques", {"count": min_techniques})]


def load_checklist(name: str) -> dict[str, Any]:
    """A built-in checklist by name ("assignment") or a TOML file path."""
    builtin = resources.files("reportgen").joinpath("checklists", f"{name}.toml")
    source = name
    try:
        text = builtin.read_text("utf-8") if builtin.is_file() else Path(name).read_text("utf-8")
        checklist = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"checklist {source}: cannot read ({exc})") from exc
    for i, item in enumerate(checklist.get("items", [])):
        if item.get("check") not in CHECKS:
            raise SpecError(
                f"checklist {source}: key 'items[{i}].check': expected one of "
                f"{', '.join(CHECKS)}, got {item.get('check')!r}"
            )
    checklist.setdefault("title", Path(source).stem)
    return checklist


def evaluate_checklist(
    checklist: dict[str, Any], context: dict[str, Any], translate: Translator
) -> list[dict[str, Any]]:
    """Each item's ✓/✗ and its evidence, worded by `translate` (a list of messages joined with '; ')."""
    results = []
    for item in checklist.get("items", []):
        params = {k: v for k, v in item.items() if k not in ("text", "check", "section")}
        passed, evidence = CHECKS[item["check"]](context, **params)
        messages = evidence if isinstance(evidence, list) else [evidence]
        results.append(
            {
                "text": item["text"],
                "passed": passed,
                "evidence": "; ".join(m.render(translate) for m in messages),
                "section": item.get("section", ""),
            }
        )
    return results
