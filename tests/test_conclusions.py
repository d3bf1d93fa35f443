"""Issue 36, item 4: the conclusion leads with what is significant, says what failed in a sweep and how often,
counts in words, marks diverged cells and panels, and keeps advice to the author apart, under "Next steps".

The golden documents (tests/golden/expected, pinned to what the renderer writes by tests/test_golden.py) are
read as committed; the rules behind them are exercised on small sweeps made here."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from reportgen.report.analysis import _sweep_series
from reportgen.report.conclusions import conclusion, next_steps
from reportgen.report.i18n import translator
from reportgen.report.matrix_plots import heatmap_svg
from reportgen.report.plots import sweep_panels_svg
from reportgen.report.summary import TrialSummary, sweep_pivot
from reportgen.report.sweep import sweep_claims
from reportgen.states import TrialState
from reportgen.train import TrainConfig

EXPECTED = Path(__file__).resolve().parent / "golden" / "expected"


def _report(case: str) -> dict:
    return json.loads((EXPECTED / case / "summary.json").read_text("utf-8"))


def _trial(label: str, correct: int, status=TrialState.COMPLETE, seed: int = 0, **settings) -> TrialSummary:
    """One trial that got the first `correct` of 200 test images right."""
    config = asdict(TrainConfig(seed=seed, **settings))
    epochs = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": correct / 200,
               "seconds": 1.0}]  # fmt: skip
    trial_id = f"{label}-{seed}-" + "-".join(str(v) for v in settings.values())
    trial = TrialSummary(trial_id, label, label, config, status, epochs, None)
    trial.correct = correct
    return trial


def _predictions(trials: list[TrialSummary]):
    by_id = {t.trial_id: t for t in trials}
    return lambda trial_id: [
        {"index": str(i), "label": "1", "prediction": "1" if i < by_id[trial_id].correct else "0"} for i in range(200)
    ]


@pytest.mark.parametrize("case", ["three", "three-ko"])
def test_the_default_runs_conclusion_opens_with_a_significant_difference(case):
    """The three-model run: the first sentence is the McNemar test with the smallest p below 0.05, with its
    points; the top model, whose lead over the MLP is not significant, comes after and says so."""
    summary = _report(case)
    first, *rest = summary["report"]["conclusion"]
    strongest = min((row for row in summary["mcnemar"] if row["significant"]), key=lambda row: row["p_value"])
    assert first["holds"] is True and first["test"].startswith("McNemar")
    assert strongest["winner"] in first["text"] and f"p = {strongest['p_value']:.3g}" in first["text"]
    points = f"{100 * (strongest['acc_a'] - strongest['acc_b']):.2f}".lstrip("-")
    assert points in first["text"]
    if case == "three":
        assert first["text"].startswith(f"{strongest['winner']} is more accurate than {strongest['loser']} by ")
        top = next(c["text"] for c in rest if "highest final test accuracy" in c["text"])
        assert "but not significantly above MLP 784-75-32-10 (59.00%, McNemar p = 0.405)" in top
        compute = next(
            c["text"] for c in summary["report"]["conclusion"] if "MLP 784-75-32-10 is more accurate" in c["text"]
        )
        assert compute.endswith("with 1/6.8 of the multiply-adds per image.")  # 416,520 vs 61,520 MACs


def test_a_significant_winner_is_said_with_its_points_and_its_compute():
    """LeNet-5 beats the MLP by 1.96 points at 6.8 times the multiply-adds: the sentence that leads says all three."""
    lenet, mlp = _trial("LeNet-5", 180), _trial("MLP", 150)
    row = {"a": "LeNet-5", "b": "MLP", "acc_a": 0.9051, "acc_b": 0.8855, "p_value": 1e-6, "significant": True,
           "winner": "LeNet-5", "loser": "MLP"}  # fmt: skip
    macs = {"LeNet-5": 416_520, "MLP": 61_520}
    english, korean = (
        conclusion([lenet, mlp], [row], [], [], translator(lang), macs=macs)[0].text for lang in ("en", "ko")
    )
    assert english == (
        "LeNet-5 is more accurate than MLP by 1.96 points (90.51% vs 88.55%), a significant difference "
        "(McNemar p = 1e-06), at 6.8 times the multiply-adds per image."
    )
    assert korean.startswith("LeNet-5가 MLP보다 1.96%p 더 정확하며") and "곱셈-덧셈이 6.8배 많습니다" in korean


def test_a_sweep_says_which_setting_failed_and_in_how_many_trials():
    """SGD did not learn in 4 of its 6 trials (3 diverged, 1 at chance level): said with the counts, before
    anything the sweep compares; Adam, which learned everywhere, has no such sentence."""
    adam = [_trial(m, 170 + seed, seed=seed, optimizer="adam") for m in ("mlp", "cnn") for seed in (0, 1, 2)]
    sgd = [
        _trial("mlp", 20, TrialState.DIVERGED, seed=0, optimizer="sgd"),
        _trial("mlp", 21, seed=1, optimizer="sgd"),  # at chance level
        _trial("mlp", 20, TrialState.DIVERGED, seed=2, optimizer="sgd"),
        _trial("cnn", 20, TrialState.DIVERGED, seed=0, optimizer="sgd"),
        _trial("cnn", 160, seed=1, optimizer="sgd"),
        _trial("cnn", 160, seed=2, optimizer="sgd"),
    ]
    trials = adam + sgd
    stalled = {t.trial_id for t in trials if t.correct == 21}
    varied = {"optimizer": ["adam", "sgd"], "seed": [0, 1, 2]}
    english = [c.text for c in sweep_claims(trials, varied, _predictions(trials), stalled, translator("en"))]
    assert english[0] == (
        "With Optimizer SGD, the models did not learn in 4 of 6 trials (diverged: 3, stayed at chance level: 1)."
    )
    assert not any("Optimizer Adam, the models did not learn" in text for text in english)
    korean = sweep_claims(trials, varied, _predictions(trials), stalled, translator("ko"))[0].text
    assert korean.endswith("SGD에서는 시행 6개 중 4개가 학습되지 않았습니다(발산 3개, 우연 수준 1개).")


def test_the_sweep_golden_says_its_failed_setting_with_counts_in_words():
    conclusion_texts = [c["text"] for c in _report("sweep")["report"]["conclusion"]]
    assert "With Learning rate 10.0, the models did not learn in either trial (diverged: 2; best 21.00%)." in (
        conclusion_texts
    )


def test_no_document_counts_all_one_or_a_range_from_a_value_to_itself():
    """ "in all 1 paired trials (+11.0 to +11.0)" and "all 2 diverged" are counts a person says in words."""
    for path in EXPECTED.glob("*/report.md"):
        text = path.read_text("utf-8")
        assert not re.search(r"\ball [12] ", text), path
        assert not re.search(r"\(([+-]?\d[\d.]*) to \1 points", text), path


@pytest.mark.parametrize("case, heading", [("three", "Next steps"), ("three-ko", "다음 단계")])
def test_advice_to_the_author_is_a_separate_next_steps_note(case, heading):
    report = _report(case)["report"]
    assert not any("seeds = [0, 1, 2]" in c["text"] or "Run again" in c["text"] for c in report["conclusion"])
    assert any("seeds = [0, 1, 2]" in step["text"] for step in report["next_steps"])
    markdown = (EXPECTED / case / "report.md").read_text("utf-8")
    conclusion_md, after = markdown.split(f"\n### {heading}\n", 1)
    assert "seeds = \\[0, 1, 2\\]" not in conclusion_md.rsplit("\n## ", 1)[1]  # not among the conclusion's bullets
    assert after.lstrip().startswith("- ") and "seeds = \\[0, 1, 2\\]" in after.split("\n## ", 1)[0]
    html = (EXPECTED / case / "report.html").read_text("utf-8")
    note = html.split('<aside id="next-steps"', 1)[1].split("</aside>", 1)[0]
    assert f"<h3>{heading}</h3>" in note and "seeds = [0, 1, 2]" in note
    assert "seeds = [0, 1, 2]" not in html.split('<section id="conclusion">', 1)[1].split("</section>", 1)[0]


def test_next_steps_are_empty_when_every_model_ran_with_several_seeds():
    trials = [_trial("mlp", 150, seed=seed) for seed in (0, 1)]
    assert next_steps(trials, translator("en")) == []
    assert next_steps(trials[:1], translator("en"))[0].text.startswith("Run again with seeds = [0, 1, 2]")


def test_a_heatmap_cell_whose_trials_diverged_says_diverged_and_an_untried_one_stays_blank(tmp_path):
    trials = [
        _trial("mlp", 170, lr=0.01, batch_size=32),
        _trial("mlp", 20, TrialState.DIVERGED, lr=10.0, batch_size=32),
        _trial("mlp", 160, lr=0.01, batch_size=64),
    ]  # lr 10.0 with batch 64 was never tried
    pivot = sweep_pivot(trials, "lr", "batch_size")
    assert pivot["marks"] == {(10.0, 32): "diverged"}
    marks = [[pivot["marks"].get((r, c), "") for c in pivot["columns"]] for r in pivot["rows"]]
    heatmap_svg(pivot["values"], pivot["rows"], pivot["columns"], "lr", "batch", "mlp", tmp_path / "h.svg", marks=marks)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / "h.svg").read_text("utf-8"))
    assert texts.count("diverged") == 1 and "85.00" in texts and "80.00" in texts


def test_a_sweep_panel_with_a_diverged_model_says_so_inside_it(tmp_path):
    trials = [_trial(m, 170, lr=0.05) for m in ("mlp", "cnn")] + [
        _trial(m, 20, TrialState.DIVERGED, lr=10.0) for m in ("mlp", "cnn")
    ]
    series = _sweep_series(trials, {"lr": [0.05, 10.0]}, translator("en"))
    assert series["marks"] == {"Learning rate 10.0": "diverged: mlp, cnn"}
    colors = {"mlp": "#1f77b4", "cnn": "#ff7f0e"}
    sweep_panels_svg(series["panels"], colors, translator("en"), tmp_path / "s.svg", 3, series["marks"])
    assert "diverged: mlp, cnn" in (tmp_path / "s.svg").read_text("utf-8")
