"""The checklist and the conclusion claim only what the run shows: ✓ for LeNet-5 items needs a LeNet-5 (not a
regularized variant, not the best model), a met rule is not written as a failure note, and a model the
findings call chance level is compared with nothing."""

from __future__ import annotations

import functools
from dataclasses import asdict
from types import SimpleNamespace

from reportgen.measure.params import audit_model
from reportgen.models.registry import create_model
from reportgen.report.checklist import evaluate_checklist, load_checklist
from reportgen.report.conclusions import conclusion, cost_sentences
from reportgen.report.findings import review_trials
from reportgen.report.i18n import translator
from reportgen.report.significance import literature
from reportgen.report.summary import TrialSummary, before_after
from reportgen.run.archive_records import ModelAuditRecord
from reportgen.train import TrainConfig


@functools.cache
def audit(name: str, **kwargs) -> ModelAuditRecord:
    """A built-in model's real parameter audit, as a run archives it."""
    return ModelAuditRecord.from_dict(audit_model(create_model(name, **kwargs), (1, 28, 28), name=name).to_dict())


def model(label: str, name: str, record: ModelAuditRecord, base: str | None = None) -> dict:
    return {"label": label, "name": name, "audit": record, "kwargs": {}, "base_label": base}


def trial(m: dict, acc: float, train_acc: float | None = None, test_loss: float = 1.0) -> TrialSummary:
    train_acc = acc if train_acc is None else train_acc
    epochs = [
        {"epoch": 1, "train_loss": 1.0, "train_acc": train_acc, "test_loss": test_loss, "test_acc": acc, "seconds": 1.0}
    ]
    config = asdict(TrainConfig(epochs=1))
    average = {"test_acc": acc}
    return TrialSummary(
        f"000-{m['label']}", m["label"], m["name"], config, "complete", epochs, m["audit"], m["base_label"], average
    )


def mcnemar_rows(best: list[TrialSummary], p_value: float = 0.001) -> list[dict]:
    """McNemar rows as pairwise_mcnemar writes them, every pair significant at `p_value`."""
    rows = []
    for i, a in enumerate(best):
        for b in best[i + 1 :]:
            acc_a, acc_b = a.final["test_acc"], b.final["test_acc"]
            winner, loser = (a, b) if acc_a >= acc_b else (b, a)
            rows.append(
                {"a": a.label, "b": b.label, "acc_a": acc_a, "acc_b": acc_b, "p_value": p_value}
                | {"significant": p_value < 0.05, "winner": winner.label, "loser": loser.label}
            )
    return rows


def context(*models_and_accuracies: tuple) -> SimpleNamespace:
    """(model, test accuracy[, train accuracy, test loss]) per model, one trial each: the part of an Analysis
    (report/analysed.py) the checklist and the conclusion read."""
    models = [m for m, *_ in models_and_accuracies]
    best = [trial(*entry) for entry in models_and_accuracies]
    return SimpleNamespace(
        models=models,
        trials=best,
        model_curves=[{"panels": ["train loss", "test loss", "train acc", "test acc"]} for _ in models],
        best=best,
        warnings=review_trials(best, 10, settings_identical=True),
        mcnemar=mcnemar_rows(best),
        before_after=before_after(best),
        literature=literature("mnist"),
        data={"dataset": "mnist"},
    )


def checklist(ctx: SimpleNamespace, lang: str = "en") -> dict[str, dict]:
    """The assignment checklist's items by check name."""
    loaded = load_checklist("assignment")
    items = evaluate_checklist(loaded, ctx, translator(lang))
    return {spec["check"]: item for spec, item in zip(loaded["items"], items)}


def lenet5() -> dict:
    return model("LeNet-5", "lenet5", audit("lenet5"))


def mlp() -> dict:
    return model("MLP", "mlp_lenet_sized", audit("mlp_lenet_sized"))  # named after LeNet-5, an MLP: layers decide


def regularized(base: str | None = "LeNet-5") -> dict:
    return model("LeNet-5 + BN + Dropout", "lenet5_regularized", audit("lenet5_regularized"), base)


# ------------------------------------------------------------------ 1. LeNet-5 items need a LeNet-5


def test_mlp_only_run_fails_the_lenet5_items_and_says_why():
    items = checklist(context((mlp(), 0.85)))
    assert not items["parameter_audit"]["passed"]
    assert "no LeNet-5 in this run" in items["parameter_audit"]["evidence"]
    assert not items["known_accuracy"]["passed"]
    assert "no LeNet-5 in this run" in items["known_accuracy"]["evidence"]
    assert "published result" not in items["known_accuracy"]["evidence"]


def test_lenet5_only_run_fails_the_implement_item_for_the_missing_mlp():
    items = checklist(context((lenet5(), 0.9)))
    assert not items["parameter_audit"]["passed"]
    assert "no MLP in this run" in items["parameter_audit"]["evidence"]
    assert not items["model_comparison"]["passed"]


def test_known_accuracy_cites_lenet5s_own_accuracy_not_the_best_models():
    """The Published results table shows the report's best model (here the regularized LeNet-5); the item
    is about LeNet-5, so its evidence gives LeNet-5's accuracy beside LeCun's figures."""
    # LeNet-5 overfits (train 95.00%); the regularized one narrows the gap and lowers the test loss
    items = checklist(context((lenet5(), 0.9012, 0.95, 0.30), (mlp(), 0.88), (regularized(), 0.9345, 0.94, 0.25)))
    evidence = items["known_accuracy"]["evidence"]
    assert items["known_accuracy"]["passed"]
    assert evidence.startswith("LeNet-5: 90.12% final test accuracy beside the published LeNet-5 (LeCun")
    assert "LeNet-5 (LeCun et al. 1998) 99.05%" in evidence and "93.45%" not in evidence
    assert all(item["passed"] for item in items.values()), items


def test_a_regularized_lenet5_variant_alone_is_not_lenet5():
    """lenet5_regularized is the "after" of the regularization item: it does not stand in for LeNet-5."""
    items = checklist(context((regularized(base=None), 0.9), (mlp(), 0.88)))
    for check in ("parameter_audit", "mlp_matches_lenet", "model_comparison", "known_accuracy"):
        assert not items[check]["passed"], check
    assert "no LeNet-5 in this run (LeNet-5 + BN + Dropout: regularized variant)" in items["known_accuracy"]["evidence"]


def test_own_models_are_identified_by_their_class_not_their_folder():
    folder = "/home/student/lenet_homework/nets.py"
    mine = model("My MLP", f"{folder}:TinyMLP", audit("mlp_lenet_sized"))
    alone = checklist(context((mine, 0.85)))
    assert not alone["parameter_audit"]["passed"] and "no LeNet-5" in alone["parameter_audit"]["evidence"]
    both = checklist(context((mine, 0.85), (model("My LeNet", f"{folder}:LeNet5?padding=2", audit("lenet5")), 0.9)))
    assert both["parameter_audit"]["passed"] and both["model_comparison"]["passed"]
    assert both["known_accuracy"]["evidence"].startswith("My LeNet: 90.00%")


def test_comparison_item_needs_lenet5_against_an_mlp():
    items = checklist(context((lenet5(), 0.9), (regularized(), 0.91)))
    assert not items["model_comparison"]["passed"]
    assert "no MLP in this run" in items["model_comparison"]["evidence"]


# ------------------------------------------------------------------ 2. a met rule is no failure note


def test_regularization_rule_is_shown_only_when_unmet():
    met = checklist(context((lenet5(), 0.9), (regularized(), 0.91)))["regularization"]
    assert met["passed"] and "needs at least" not in met["evidence"]
    assert "batch normalization (4 layer(s) ran in training), dropout (2 layer(s) ran in training)" in met["evidence"]
    met_ko = checklist(context((lenet5(), 0.9), (regularized(), 0.91)), "ko")["regularization"]
    assert met_ko["passed"] and "이상 필요" not in met_ko["evidence"]
    dropout_only = model("LeNet-5 + Dropout", "lenet5?dropout=0.3", audit("lenet5", dropout=0.3), "LeNet-5")
    unmet = checklist(context((lenet5(), 0.9), (dropout_only, 0.91)))["regularization"]
    assert not unmet["passed"] and unmet["evidence"].endswith("needs at least 2 techniques")


# ------------------------------------------------------------------ 3. no comparison with a model that did not learn


def chance_level_run() -> tuple[dict, list[str], list[str]]:
    """LeNet-5 at chance level (10.2%), the MLP trained: a significant McNemar test between them."""
    ctx = context((lenet5(), 0.102), (mlp(), 0.81))
    assert [w.code for w in ctx.warnings] == ["chance"]
    english, korean = (
        [c.text for c in conclusion(ctx.best, ctx.mcnemar, [], ctx.warnings, translator(lang))] for lang in ("en", "ko")
    )
    return ctx, english, korean


def test_conclusion_does_not_compare_a_model_at_chance_level():
    _ctx, english, korean = chance_level_run()
    text = " ".join(english)
    assert "more accurate than" not in text and "not significantly different" not in text
    assert "LeNet-5 stayed at chance level: it did not learn" in text and "is not meaningful" in text
    assert english[0] == "MLP reached the highest final test accuracy: 81.00%."
    korean_text = " ".join(korean)
    assert "정확하며" not in korean_text and "유의하게 다르지" not in korean_text
    assert "우연 수준" in korean_text and "의미가 없습니다" in korean_text


def test_checklist_comparison_item_fails_when_lenet5_did_not_learn():
    ctx, _english, _korean = chance_level_run()
    items = checklist(ctx)
    assert not items["model_comparison"]["passed"]
    assert "LeNet-5 did not learn (chance level)" in items["model_comparison"]["evidence"]
    assert not items["known_accuracy"]["passed"]


def test_no_regularization_effect_is_claimed_when_the_base_did_not_learn():
    ctx = context((lenet5(), 0.1), (regularized(), 0.9))
    claims = conclusion(ctx.best, ctx.mcnemar, ctx.before_after, ctx.warnings, translator("en"))
    english = " ".join(c.text for c in claims)
    assert "changed the final test accuracy" not in english
    assert "Regularization (LeNet-5 + BN + Dropout vs LeNet-5) is not compared: LeNet-5 did not learn" in english
    item = checklist(ctx)["regularization"]
    assert not item["passed"] and "helped" not in item["evidence"] and "did not learn" in item["evidence"]


def test_two_models_that_did_not_learn_get_no_cost_sentence():
    """ "Not significantly different, but X needs N times the multiply-adds" compares what the cost buys;
    between models at chance level it would read as if the cheap one were as good."""
    tests = [{"a": "big", "b": "small", "significant": False}]
    costs = [{"model": "big", "macs": 400_000}, {"model": "small", "macs": 50_000}]
    translate = translator("en")
    [claim] = cost_sentences(tests, costs, translate)
    sentence = claim.text
    assert (
        claim.test.startswith("McNemar")
        and sentence.startswith("big and small are not significantly different")
        and "8.0 times" in sentence
    )
    assert cost_sentences(tests, costs, translate, {"small"}) == []


def test_every_model_stands_beside_the_published_results(tmp_path, capsys):
    """The published-results table puts each model's own best trial beside the literature (the checklist's
    known-accuracy item cites LeNet-5's), not only the best model of the run."""
    import shutil
    from pathlib import Path

    from reportgen.cli import main

    run = tmp_path / "runs" / "format1"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_format1", run)  # two MLPs on MNIST
    assert main(["render", str(run), "-o", str(tmp_path / "out"), "--format", "md"]) == 0, capsys.readouterr()
    markdown = (tmp_path / "out" / "format1" / "report.md").read_text("utf-8")
    published = markdown[markdown.index("Published results") :]
    assert "**This report: MLP-8**" in published and "**This report: MLP-4**" in published
