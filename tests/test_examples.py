"""Every seed report's experiment runs from its example spec (tiny synthetic IDX set, 1 epoch) and its report
shows what the spec asks for: every model, every trial of the sweep, and the comparisons the seed needed."""

import html
import itertools
import json
from pathlib import Path

import pytest
from conftest import write_idx_dataset

from reportgen.settings import SWEEPABLE
from reportgen.spec import load_spec

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))
# "mnist" takes any IDX files (no checksums to match), so one small learnable set stands in for every example.
TINY = ["--dataset", "mnist", "--epochs", "1", "--no-pdf"]


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=300, n_test=100)


def test_there_is_an_example_per_seed():
    assert {p.name[:7] for p in EXAMPLES} == {"seed000", "seed001", "seed002", "seed003", "seed004"}


def sweep_settings(spec) -> set[tuple]:
    """(label, setting values…) of every trial the spec describes, built from its lists, not from its trials."""
    keys = [k for k in SWEEPABLE if len(spec.train[k]) > 1]
    return {(m.label, *combo) for m in spec.models for combo in itertools.product(*(spec.train[k] for k in keys))}


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_reports_what_its_spec_asks_for(workdir, cli, idx_dir, example):
    spec = load_spec(example)
    code, _out, err = cli("run", example, *TINY, "--data-dir", idx_dir, "--run-id", example.stem)
    assert code == 0, err
    folder = workdir / "output" / example.stem
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    report = (folder / "report.html").read_text("utf-8")
    rows = summary["comparison"]

    # one row per trial: models × the product of every swept list × seeds
    assert len(rows) == spec.trial_count() == len(sweep_settings(spec)) * len(spec.seeds)
    keys = [k for k in SWEEPABLE if len(spec.train[k]) > 1]
    assert {(r["model"], *(r[k] for k in keys)) for r in rows} == sweep_settings(spec)
    for label in {m.label for m in spec.models}:
        assert html.escape(label) in report, f"{label!r} is missing from the report"

    labels = {r["model"] for r in rows}
    if len(labels) > 1:  # models compared on the same test set: every pair gets a McNemar test
        assert {frozenset((t["a"], t["b"])) for t in summary["mcnemar"]} >= {
            frozenset(pair) for pair in itertools.combinations(labels, 2)
        }
    bases = {(m.label, m.base) for m in spec.models if m.base}
    assert {(r["model"], r["base"]) for r in summary["before_after"]} == bases  # each regularized model vs its base
    if len(keys) >= 2:
        assert list((folder / "figures").glob("heatmap-*.svg")), "a two-setting sweep gets a heatmap"
    if len(set(spec.train["loss"])) > 1:
        assert "cross_loss" in {w["code"] for w in summary["warnings"]}, "losses of different kinds are not ranked"
    if any(m.train for m in spec.models):
        assert "settings_differ" in {w["code"] for w in summary["warnings"]}, "a per-model setting is pointed out"
