"""Issue #17: one report from many archives (`reportgen render runs/a runs/b …`).

Four tiny real runs on a small IDX set, made once through the real CLI, are combined in different ways:
the same model with other seeds aggregates across runs; other test images withhold McNemar and say why;
other settings keep a shared label apart, named by run; an altered run or an unknown archive format is
refused in one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import idx_run_args, one_error_line, write_idx_dataset

from reportgen.cli import main
from reportgen.report.combine import OTHER_EPOCHS, WITHHELD_MCNEMAR
from reportgen.run.archive_layout import MANIFEST_FORMAT
from reportgen.run.archive_reading import open_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/a: mlp seed 1 · b: mlp seed 2 · c: lenet5 and mlp on a 30-image test subset · e: mlp, 2 epochs ·
    t: lenet5 on a 120-image training subset."""
    root = tmp_path_factory.mktemp("combine")
    idx = write_idx_dataset(root / "idx")
    common = [
        *idx_run_args(idx),
        "--runs-dir",
        root / "runs",
        "--output-dir",
        root / "single",
    ]
    for run_id, extra in (
        ("a", ["--models", "mlp", "--seed", "1"]),
        ("b", ["--models", "mlp", "--seed", "2"]),
        ("c", ["--models", "lenet5,mlp", "--test-subset", "30"]),
        ("e", ["--models", "mlp", "--seed", "1", "--epochs", "2"]),
        ("t", ["--models", "lenet5", "--train-subset", "120"]),
    ):
        assert main(["run", *map(str, (*common, *extra, "--run-id", run_id))]) == 0
    return root / "runs"


def render(cli, runs: Path, *names: str, out: Path) -> tuple[int, str, str]:
    return cli("render", *(runs / name for name in names), "--no-pdf", "-o", out)


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text("utf-8"))


def test_the_same_model_in_two_runs_aggregates_over_their_seeds(runs, cli, tmp_path):
    code, out, err = render(cli, runs, "a", "b", out=tmp_path)
    assert code == 0, err
    report = summary(tmp_path / "combined-a-b")
    assert f"report: {tmp_path / 'combined-a-b' / 'report.html'}" in out
    assert [row["model"] for row in report["comparison"]] == ["mlp", "mlp"]
    assert sorted(row["trial_id"] for row in report["comparison"]) == ["000-a-mlp", "001-b-mlp"]
    [aggregate] = report["seed_aggregates"]
    assert aggregate["model"] == "mlp" and aggregate["seeds"] == 2
    rows = {(row["kind"], row["what"]): row["by_run"] for row in report["differences"]["rows"]}
    assert rows == {("Settings", "seed"): {"a": "1", "b": "2"}}  # same data, code and machine
    html = (tmp_path / "combined-a-b" / "report.html").read_text("utf-8")
    assert html.index("This report combines several runs.") < html.index('id="settings"')
    markdown = (tmp_path / "combined-a-b" / "report.md").read_text("utf-8")
    assert markdown.index("This report combines several runs.") < markdown.index("## Overview and settings")
    assert "| Settings | Seed | 1 | 2 |" in markdown
    assert "archived runs: " in out
    assert open_run(runs / "a").verify() == [] and open_run(runs / "b").verify() == []  # read, never written


def test_a_combined_report_is_never_written_inside_one_of_its_runs(runs, cli):
    code, _out, err = cli("render", runs / "a", runs / "b", "--no-pdf", "--output-dir", runs / "b" / "trials")
    assert code == 2 and f"inside the run folder {runs / 'b'}" in one_error_line(err)


def test_other_test_images_withhold_mcnemar_and_say_why(runs, cli, tmp_path):
    code, _out, err = render(cli, runs, "a", "c", out=tmp_path)
    assert code == 0, err
    report = summary(tmp_path / "combined-a-c")
    # mlp was tested on other images in each run: two models, never merged
    assert {row["model"] for row in report["comparison"]} == {"mlp (a)", "mlp (c)", "lenet5"}
    pairs = [{row["a"], row["b"]} for row in report["mcnemar"]]
    assert pairs == [{"lenet5", "mlp (c)"}]  # within run c only: same images
    [test_images] = [row for row in report["differences"]["rows"] if row["what"] == "Test images"]
    assert test_images["effect"] == WITHHELD_MCNEMAR
    assert test_images["by_run"]["a"].startswith("50 ·") and test_images["by_run"]["c"].startswith("30 ·")
    html = (tmp_path / "combined-a-c" / "report.html").read_text("utf-8")
    assert WITHHELD_MCNEMAR in html


def test_a_shared_label_with_other_settings_is_named_by_run_and_epochs_are_noted(runs, cli, tmp_path):
    code, _out, err = cli("render", runs / "a", runs / "b", runs / "e", "--no-pdf", "-o", tmp_path, "--lang", "ko")
    assert code == 0, err
    report = summary(tmp_path / "combined-a-b-e")
    assert {row["model"] for row in report["comparison"]} == {"mlp (a, b)", "mlp (e)"}  # e trained 2 epochs
    [aggregate] = report["seed_aggregates"]  # a and b still agree: their seeds aggregate
    assert aggregate["model"] == "mlp (a, b)" and aggregate["seeds"] == 2
    assert report["settings"]["varied"]["epochs"] == [1, 2]  # the comparison table shows epochs beside accuracy
    rows = {(row["kind"], row["what"]): row for row in report["differences"]["rows"]}
    assert rows[("Settings", "epochs")]["effect"] == OTHER_EPOCHS
    assert rows[("Models", "Label")]["by_run"] == {"a": "mlp (a, b)", "b": "mlp (a, b)", "e": "mlp (e)"}
    html = (tmp_path / "combined-a-b-e" / "report.html").read_text("utf-8")
    assert "이 보고서는 여러 실행을 합친 것입니다." in html and "서로 다른 에포크 수" in html


def test_a_run_edited_after_it_was_sealed_is_refused(runs, cli, tmp_path):
    shutil.copytree(runs / "b", tmp_path / "edited")
    metrics = tmp_path / "edited" / "trials" / "000-mlp" / "metrics.json"
    epochs = json.loads(metrics.read_text())
    metrics.write_text(json.dumps([epoch | {"test_acc": 0.99} for epoch in epochs]))  # a better number
    code, _out, err = cli("render", runs / "a", tmp_path / "edited", "--no-pdf", "-o", tmp_path / "out")
    line = one_error_line(err)
    assert code == 2 and "edited: trials/000-mlp/metrics.json does not match its sha256" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_archive_of_an_unknown_format_is_refused(runs, cli, tmp_path):
    shutil.copytree(runs / "b", tmp_path / "future")
    manifest = tmp_path / "future" / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"format": 99}))
    code, _out, err = cli(
        "render", runs / "a", tmp_path / "future", "--no-pdf", "-o", tmp_path / "out", "--allow-incomplete"
    )
    line = one_error_line(err)
    assert code == 2 and "archive format 99" in line and f"reads format {MANIFEST_FORMAT}" in line


def test_one_run_given_twice_is_refused(runs, cli, tmp_path):
    code, _out, err = cli("render", runs / "a", runs / "a" / "trials" / "..", "--no-pdf", "-o", tmp_path)
    assert code == 2 and "two runs named 'a'" in one_error_line(err)


def test_runs_of_other_training_sizes_combine_with_each_models_own_training_speed(runs, cli, tmp_path):
    """Training images per second divide each model's own run's training set by its seconds per epoch
    (a combined report once crashed here: the merged training size is not one number)."""
    from reportgen.report.analysis import analyse_run
    from reportgen.report.combine import open_runs

    code, _out, err = render(cli, runs, "a", "t", out=tmp_path)
    assert code == 0, err
    context = analyse_run(open_runs([runs / "a", runs / "t"]), "en", [])
    speed = {row["model"]: row["train_images_per_second"] * row["seconds_per_epoch"] for row in context.costs["rows"]}
    assert speed == pytest.approx({"mlp": 200, "lenet5": 120})
