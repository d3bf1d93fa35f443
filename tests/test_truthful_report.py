"""The report claims only what it checked, in every format: diverged runs render, hostile names stay text,
documents carry no private path, a partial render keeps the other documents."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from conftest import idx_run_args

from reportgen.messages import Message, Op
from reportgen.report.analysis import _only_right
from reportgen.report.claims import findings
from reportgen.report.findings import Finding, review_trials
from reportgen.report.i18n import translator
from reportgen.report.model import Cell
from reportgen.report.predictions import gallery_picks
from reportgen.report.summary import TrialSummary
from reportgen.report.sweep import sweep_claims
from reportgen.report.tables_setup import _mac_check
from reportgen.settings import TrainConfig, mixed_loss_scales
from reportgen.states import TrialState

HOSTILE = "[click](https://evil.example) <img src=https://evil.example/x.png> `tick` a|b *x* 100% $5 #1 ~_^&{}\\"
MODEL_FILE = """
from torch import nn

Hostile = type("<img src=https://evil.example/layer.png>", (nn.ReLU,), {})


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.add_module("fc[link](https:evil)", nn.Linear(784, 10))
        self.act = Hostile()

    def forward(self, x):
        return self.act(getattr(self, "fc[link](https:evil)")(self.flat(x)))
"""


@pytest.mark.slow
def test_a_run_in_which_every_model_diverges_renders_and_compares_nothing(workdir, cli):
    """The issue's reproduction: SGD at lr 10 on Fashion-MNIST; NaN confidences used to break the render."""
    code, _out, err = cli(
        "run", "--models", "lenet5,mlp", "--optimizer", "sgd", "--lr", "10", "--epochs", "1",
        "--train-subset", "600", "--test-subset", "200", "--executor", "local", "--run-id", "d", "--no-pdf",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((workdir / "output" / "d" / "summary.json").read_text("utf-8"))
    assert summary["mcnemar"] == []  # a diverged model never wins (or loses) a comparison
    rows = summary["report"]["tables"]["comparison"]["rows"]
    assert [row["cells"][0]["note"] for row in rows] == ["diverged at epoch 1"] * 2
    comparison = next(c for c in summary["report"]["checklist"] if c["test"] == "model_comparison")
    assert comparison["holds"] is False
    markdown = (workdir / "output" / "d" / "report.md").read_text("utf-8")
    assert "diverged at epoch 1" in markdown and "better" not in markdown


def test_hostile_names_stay_text_in_markdown_and_latex(workdir, cli, idx_dir):
    folder = workdir / "hw[x](https:evil)"
    folder.mkdir()
    (folder / "my_models.py").write_text(MODEL_FILE, "utf-8")
    code, _out, err = cli(
        "run", *idx_run_args(idx_dir), "--models", f"{folder / 'my_models.py'}:Net", "--run-id", "h",
        "--title", HOSTILE, "--author", "[me](https://evil.example):2024", "--format", "md",
    )  # fmt: skip
    assert code == 0, err
    markdown = (workdir / "output" / "h" / "report.md").read_text("utf-8")
    # as GitHub shows it (raw HTML allowed, as GitHub allows <img>): no image, no link from user text
    shown = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    assert '<img src="https://evil' not in shown and "<img src=https://evil" not in shown
    assert 'href="https://evil' not in shown and 'href="https:evil' not in shown
    assert "[click](https://evil.example)" in shown and "fc[link](https:evil)" in shown  # shown as text
    for line in markdown.splitlines():  # no user text adds a table cell: every row has its header's cells
        if line.startswith("|") and "\\|" in line:
            assert line.replace("\\|", "").count("|") >= 2
    assert str(workdir) not in markdown and "/tmp/" not in markdown
    tex = (workdir / "output" / "h" / "tables.tex").read_text("utf-8")
    assert "fc[link](https:evil)" in tex  # as text: [ ] ( ) mean nothing to LaTeX
    assert not re.search(r"(?<!\\)[%$#&_^~](?![^{]*\})", re.sub(r"\\[a-z]+\{?\}?|\$\\[a-z]+\$| & | \\\\$", "", tex))


@pytest.mark.slow
def test_render_of_one_format_keeps_the_other_documents(workdir, cli, idx_dir):
    code, _out, err = cli("run", *idx_run_args(idx_dir), "--models", "mlp", "--run-id", "f")
    assert code == 0, err
    report = workdir / "output" / "f"
    html = (report / "report.html").read_bytes()
    code, _out, err = cli("render", "runs/f", "--format", "md")
    assert code == 0, err
    assert (report / "report.html").read_bytes() == html and (report / "report.md").is_file()
    assert (report / "report.css").is_file()


@pytest.mark.slow
def test_a_killed_renders_staging_folder_is_removed_by_the_next_render(workdir, cli, idx_dir):
    code, _out, err = cli("run", *idx_run_args(idx_dir), "--models", "mlp", "--run-id", "k")
    assert code == 0, err
    dead = workdir / "output" / ".k.999999999-0123abcd.partial"  # no process has this pid
    (dead / "figures").mkdir(parents=True)
    code, _out, err = cli("render", "runs/k", "--format", "md")
    assert code == 0, err
    assert not dead.exists()
    assert [p.name for p in Path(workdir / "output").iterdir() if p.name.endswith(".partial")] == []


# ------------------------------------------------------------------ sweep conclusions


def _trial(label: str, optimizer: str, loss: str, correct: int, status=TrialState.COMPLETE) -> TrialSummary:
    """A trial of an optimizer × loss sweep that got the first `correct` of 200 test images right."""
    config = asdict(TrainConfig(optimizer=optimizer, loss=loss))
    epochs = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": correct / 200,
               "seconds": 1.0}]  # fmt: skip
    trial = TrialSummary(f"{label}-{optimizer}-{loss}", label, label, config, status, epochs, None)
    trial.correct = correct
    return trial


def _predictions(trials: list[TrialSummary]):
    by_id = {t.trial_id: t for t in trials}
    return lambda trial_id: [
        {"index": str(i), "label": "1", "prediction": "1" if i < by_id[trial_id].correct else "0"} for i in range(200)
    ]


def test_a_sweep_names_its_best_configuration_and_the_effect_of_each_factor():
    """Cross-entropy beats BCE for both models under both optimizers, by 10-25 points (each significant);
    Adam against SGD goes both ways, so no effect of the optimizer is claimed."""
    trials = [
        _trial(model, optimizer, loss, correct)
        for model, optimizer, loss, correct in [
            ("cnn", "adam", "cross_entropy", 180), ("cnn", "adam", "bce_with_logits", 150),
            ("cnn", "sgd", "cross_entropy", 170), ("cnn", "sgd", "bce_with_logits", 120),
            ("mlp", "adam", "cross_entropy", 160), ("mlp", "adam", "bce_with_logits", 140),
            ("mlp", "sgd", "cross_entropy", 165), ("mlp", "sgd", "bce_with_logits", 135),
        ]
    ]  # fmt: skip
    varied = {"optimizer": ["adam", "sgd"], "loss": ["bce_with_logits", "cross_entropy"]}
    claims = sweep_claims(trials, varied, _predictions(trials), set(), translator("en"))
    texts = [c.text for c in claims]
    assert texts[0] == (
        "Best configuration of the sweep: cnn with Optimizer Adam, Loss function cross-entropy, "
        "90.00% final test accuracy."
    )
    loss = next(c for c in claims if c.text.startswith("Loss function cross-entropy"))
    assert loss.holds and "beats BCE with logits in all 4 paired trials (+10.0 to +25.0 points" in loss.text
    optimizer = next(c for c in claims if c.text.startswith("Optimizer Adam"))
    assert (
        not optimizer.holds
        and "no consistent difference — ahead in 3 of 4 paired trials (-2.5 to +15.0 points)" in optimizer.text
    )


def test_a_sweep_says_which_setting_learned_nothing_and_compares_no_stalled_trial():
    trials = [
        _trial("mlp", "adam", "cross_entropy", 180), _trial("cnn", "adam", "cross_entropy", 170),
        _trial("mlp", "sgd", "cross_entropy", 21), _trial("cnn", "sgd", "cross_entropy", 20, TrialState.DIVERGED),
    ]  # fmt: skip
    stalled = {"mlp-sgd-cross_entropy"}  # the chance-level finding
    claims = sweep_claims(trials, {"optimizer": ["adam", "sgd"]}, _predictions(trials), stalled, translator("en"))
    texts = [c.text for c in claims]
    assert texts[0] == (  # what failed is said first, and how
        "With Optimizer SGD, the models did not learn in either trial (diverged: 1, stayed at chance level: 1; "
        "best 10.50%)."
    )
    assert not any("Adam beats" in t or "Adam is ahead" in t for t in texts)  # no pair left to compare


def test_the_gallery_shows_one_correct_image_of_each_class_it_got_right():
    rows = [{"index": str(i), "label": str(i % 4), "prediction": str(i % 4 if i % 4 != 3 else 0)} for i in range(40)]
    picked, wrong = gallery_picks(rows, seed=0)
    assert [int(rows[i]["label"]) for i in picked] == [0, 1, 2]  # class 3 was never right: no image of it
    assert wrong == [i for i in range(40) if i % 4 == 3]
    assert gallery_picks(rows, seed=0) == (picked, wrong) and gallery_picks(rows, seed=1)[0] != picked


def test_cover_options_given_to_run_are_archived_and_reused_by_later_renders(workdir, cli, idx_dir):
    code, _out, err = cli(
        "run", *idx_run_args(idx_dir), "--models", "mlp", "--run-id", "cov", "--author", "김민지:20241234",
        "--course", "Deep Learning", "--format", "md",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((workdir / "runs" / "cov" / "spec.json").read_text("utf-8"))["cover"] == {
        "course": "Deep Learning",
        "authors": [{"name": "김민지", "student_id": "20241234"}],
    }
    code, _out, err = cli("render", "runs/cov", "--format", "md")  # no cover options this time
    assert code == 0, err
    markdown = (workdir / "output" / "cov" / "report.md").read_text("utf-8")
    assert "| Course | Deep Learning |" in markdown and "20241234 김민지" in markdown


def test_a_bad_cover_option_fails_before_anything_is_trained(workdir, cli):
    code, _out, err = cli("run", "--models", "mlp", "--run-id", "x", "--author", ":")
    assert code == 2 and "--author" in err
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()


def test_findings_of_many_trials_are_one_line_naming_the_setting_they_share():
    trials = [
        _trial(model, "sgd" if lr == 10.0 else "adam", "cross_entropy", 20, TrialState.DIVERGED if lr == 10.0 else
               TrialState.COMPLETE) for model in ("a", "b", "c") for lr in (10.0, 0.01)
    ]  # fmt: skip

    def finding(code: str, t) -> Finding:
        settings = (("lr", 10.0 if t.config["optimizer"] == "sgd" else 0.01), ("optimizer", t.config["optimizer"]))
        return Finding(code, t.trial_id, "{who} " + code, {"model": t.label}, settings)

    warnings = [finding("diverged", t) for t in trials[::2]] + [finding("chance", trials[1])]
    claims = findings(warnings, translator("en"))
    assert [c.text for c in claims] == [  # every trial by its settings, never its id, never cut off
        "3 trials diverged, all with Learning rate 10.0, Optimizer SGD: a, b, c.",
        "a (Learning rate 0.01, Optimizer Adam) chance",
    ]
    assert [c.holds for c in claims] == [False, False] and claims[0].test == "diverged"


def test_the_disagreement_strip_holds_the_images_only_one_model_got_right_surest_first():
    """What the McNemar table's 'Only A correct' counts, shown: here images 1 and 3 (A right, B wrong)."""
    a = [{"index": str(i), "label": "1", "prediction": p, "confidence": c}
         for i, (p, c) in enumerate([("1", "0.5"), ("1", "0.6"), ("0", "0.9"), ("1", "0.99")])]  # fmt: skip
    b = [{"index": str(i), "label": "1", "prediction": p} for i, p in enumerate(["1", "2", "1", "0"])]
    sheet = _only_right(a, b, ["zero", "one", "two"])
    assert sheet.indices == [3, 1] and sheet.captions == [("one", "zero"), ("one", "two")] and sheet.wrong
    assert _only_right(b, a, ["zero", "one", "two"]).indices == [2]
    assert _only_right(a, a, ["zero", "one", "two"]) is None


def test_nll_and_cross_entropy_are_one_scale_bce_another():
    """nll on log-probabilities is cross-entropy (the pre-flight refuses nll on logits): their losses compare."""
    assert not mixed_loss_scales(["cross_entropy", "nll"])
    assert mixed_loss_scales(["cross_entropy", "bce_with_logits"]) and mixed_loss_scales(["nll", "bce_with_logits"])
    runs = [_trial("m", "adam", loss, 150) for loss in ("cross_entropy", "nll")]
    assert [f.code for f in review_trials(runs, 10, True)] == []
    runs.append(_trial("m", "adam", "bce_with_logits", 150))
    assert [f.code for f in review_trials(runs, 10, True)] == ["cross_loss"]


def test_a_mac_cross_check_ticks_only_what_it_could_see():
    tr = translator("en")
    # as the archive gives it: a message whose op is named in words at render (reportgen/messages.py)
    why = Message("no formula for {ops}", {"ops": [Op("aten.mkldnn_rnn_layer")]})
    unseen = [{"name": "lstm", "type": "LSTM", "macs": 215_040, "why": why}]
    lstm = {
        "total": 215_360,
        "flop_counter_flops": 640,
        "matches_flop_counter": True,
        "flop_counter": {"figure": 640, "checked_macs": 320, "not_checked": unseen},
    }
    cell = _mac_check("FlopCounterMode", lstm, "flop_counter", tr)
    assert cell.text == "FlopCounterMode: ✓ 640 FLOPs" and cell.note == (
        "320 of 215,360 MACs checked; not checked: lstm (LSTM, 215,040 MACs): no formula for fused recurrent layer"
    )  # the op (aten.mkldnn_rnn_layer) in words
    korean = _mac_check("FlopCounterMode", lstm, "flop_counter", translator("ko")).note
    assert "융합 순환층에 대한 계산식이 없음" in korean and "no formula" not in korean
    blind = lstm | {"flop_counter_flops": 0, "flop_counter": {"figure": 0, "checked_macs": 0, "not_checked": unseen}}
    cell = _mac_check("FlopCounterMode", blind, "flop_counter", tr)
    assert cell.text == "FlopCounterMode: not checked" and cell.verdict is None and "no formula" in cell.note
    failed = {"total": 10, "torchinfo_mult_adds": -1, "torchinfo": {"figure": -1, "error": "boom"}}
    assert _mac_check("torchinfo", failed, "torchinfo", tr) == Cell("torchinfo: not checked", "label", "boom", span=2)
    wrong = {"total": 10, "torchinfo_mult_adds": 12, "matches_torchinfo": False}
    assert _mac_check("torchinfo", wrong, "torchinfo", tr).verdict is False
