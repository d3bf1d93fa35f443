"""Assignment checklists: a TOML list of requirements, each decided ✓/✗ by a named check on the report.

Checks read the report context (never the templates) and return (passed, evidence); the evidence
sentence is what a grader needs to see why.
"""
from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .errors import SpecError

Check = Callable[..., tuple[bool, str]]
CHECKS: dict[str, Check] = {}
MLP_LAYERS = {"Linear", "ReLU", "Flatten", "Dropout", "Tanh", "Sigmoid", "GELU"}
DROPOUT_LAYERS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def _is_mlp(model: dict) -> bool:
    return all(layer["type"] in MLP_LAYERS for layer in model["audit"]["layers"])


@check
def parameter_audit(ctx: dict) -> tuple[bool, str]:
    audits = [m["audit"] for m in ctx["models"]]
    ok = all(a["matches_torchinfo"] and all(layer["formula"] for layer in a["layers"] if layer["weights"] + layer["bias"])
             for a in audits)
    return ok, ", ".join(f"{m['label']}: {m['audit']['total']:,} ({m['audit']['without_bias']:,} without bias)"
                         for m in ctx["models"]) + (" — per-layer formulas, torchinfo ✓" if ok else " — mismatch")


@check
def mlp_matches_lenet(ctx: dict, tolerance_percent: float = 5) -> tuple[bool, str]:
    mlps = [m for m in ctx["models"] if _is_mlp(m)]
    lenets = [m for m in ctx["models"] if "lenet" in m["name"].lower() and not m.get("base_label")]
    if not mlps or not lenets:
        return False, "needs an MLP and a LeNet-5 in the same run"
    lenet = lenets[0]
    mlp = min(mlps, key=lambda m: abs(m["audit"]["total"] - lenet["audit"]["total"]))
    diff = 100 * (mlp["audit"]["total"] - lenet["audit"]["total"]) / lenet["audit"]["total"]
    return abs(diff) <= tolerance_percent, (f"{mlp['label']} {mlp['audit']['total']:,} vs {lenet['label']} "
                                            f"{lenet['audit']['total']:,} ({diff:+.2f}%, limit ±{tolerance_percent:g}%)")


@check
def epoch_monitoring(ctx: dict) -> tuple[bool, str]:
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    ok = all(t.epochs and all(k in e for k in keys for e in t.epochs) and t.average for t in ctx["trials"])
    return ok, f"{len(ctx['trials'])} per-epoch table(s) with an average row"


@check
def four_curves_per_model(ctx: dict) -> tuple[bool, str]:
    count = sum(len(c["panels"]) == 4 for c in ctx["model_curves"])
    return count == len(ctx["models"]), f"{count} of {len(ctx['models'])} models have train/test loss and accuracy plots"


@check
def model_comparison(ctx: dict) -> tuple[bool, str]:
    tests = ctx["mcnemar"]
    if len(ctx["models"]) < 2 or not tests:
        return False, "needs at least two models evaluated on the same test set"
    return True, f"comparison table and {len(tests)} McNemar test(s)"


@check
def known_accuracy(ctx: dict) -> tuple[bool, str]:
    rows = ctx["literature"]
    return bool(rows), (f"{len(rows)} published result(s) for {ctx['data']['dataset']} beside ours" if rows
                        else f"no published figures known for {ctx['data']['dataset']}")


def regularization_techniques(model: dict, base: dict, model_config: dict, base_config: dict) -> list[str]:
    """What the regularized model adds over its base: BatchNorm, dropout, weight decay, augmentation."""
    layer_types = lambda m: {layer["type"] for layer in m["audit"]["layers"]}  # noqa: E731
    found = []
    if model["audit"]["batchnorm_params"] > base["audit"]["batchnorm_params"]:
        found.append("batch normalization")
    if (layer_types(model) & DROPOUT_LAYERS) - (layer_types(base) & DROPOUT_LAYERS) or \
            model["kwargs"].get("dropout", 0) > base["kwargs"].get("dropout", 0):
        found.append("dropout")
    if model_config["weight_decay"] > base_config["weight_decay"]:
        found.append("weight decay")
    if model_config["augment"] and not base_config["augment"]:
        found.append("data augmentation")
    return found


@check
def regularization(ctx: dict, min_techniques: int = 2) -> tuple[bool, str]:
    models = {m["label"]: m for m in ctx["models"]}
    best = {t.label: t for t in ctx["best"]}
    if not ctx["before_after"]:
        return False, "no regularized model with a base model (spec key models[].base)"
    evidence, ok = [], False
    for row in ctx["before_after"]:
        found = regularization_techniques(models[row["model"]], models[row["base"]],
                                          best[row["model"]].config, best[row["base"]].config)
        delta = 100 * (row["final_acc_after"] - row["final_acc_before"])
        test = next((t for t in ctx["mcnemar"] if {t["a"], t["b"]} == {row["model"], row["base"]}), None)
        # "helped" only when the report's own test says the difference is real (as the conclusion does)
        if test is None:
            verdict = "not tested"
        elif test["significant"]:
            verdict = "helped" if delta > 0 else "hurt"
        else:
            verdict = "no significant difference"
        significance = f", McNemar p = {test['p_value']:.3g}" if test else ""
        evidence.append(f"{row['model']}: {', '.join(found) or 'none'} — {verdict} ({delta:+.2f} points"
                        f"{significance})")
        ok = ok or len(found) >= min_techniques
    return ok, "; ".join(evidence) + f" (needs ≥ {min_techniques} techniques)"


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
            raise SpecError(f"checklist {source}: key 'items[{i}].check': expected one of "
                            f"{', '.join(CHECKS)}, got {item.get('check')!r}")
    checklist.setdefault("title", Path(source).stem)
    return checklist


def evaluate_checklist(checklist: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for item in checklist.get("items", []):
        params = {k: v for k, v in item.items() if k not in ("text", "check", "section")}
        passed, evidence = CHECKS[item["check"]](context, **params)
        results.append({"text": item["text"], "passed": passed, "evidence": evidence,
                        "section": item.get("section", "")})
    return results
