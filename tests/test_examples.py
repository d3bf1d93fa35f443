"""Every seed report's experiment runs from its example spec (tiny subsets, 1 epoch) and shows its comparisons."""
import json
from pathlib import Path

import pytest
from conftest import requires_fashion

pytestmark = requires_fashion
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))
TINY = ["--dataset", "fashion-mnist", "--train-subset", "600", "--test-subset", "200", "--epochs", "1", "--no-pdf"]


def test_there_is_an_example_per_seed():
    assert {p.name[:7] for p in EXAMPLES} == {"seed000", "seed001", "seed002", "seed003", "seed004"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_reports_its_comparisons(workdir, cli, example):
    code, _out, err = cli("run", example, *TINY, "--run-id", example.stem)
    assert code == 0, err
    folder = workdir / "output" / example.stem
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    html = (folder / "report.html").read_text("utf-8")
    labels = {row["model"] for row in summary["comparison"]}
    if len(labels) > 1:
        assert summary["mcnemar"], "models compared on the same test set get a McNemar test"
    if "base" in example.read_text():
        assert summary["before_after"], "a regularized model is shown against its base"
    if "seed001" in example.name:
        assert list((folder / "figures").glob("heatmap-*.svg")), "a batch × lr sweep gets a heatmap"
    if "seed004" in example.name:
        assert "cross_loss" in {w["code"] for w in summary["warnings"]}
        assert len(summary["comparison"]) == 18
    if "seed003" in example.name:
        assert "settings_differ" in {w["code"] for w in summary["warnings"]}
    assert "Comparison" in html
