"""One training counted once (issue 33 item 3) and copies found from evidence (issue 35 item 3).

Tiny real runs on a small IDX set (300 test images), made once through the real CLI, then rendered:
`seeds = [0, 0, 0]` is one training; two seeds are two; a run re-saved under another author is a copy of the
original in the grading view, flagged on both rows with the evidence; two students who trained the built-in
LeNet-5 with different seeds are not; two students whose own model files differ only in comments are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import LOCAL_RUN, write_idx_dataset

from reportgen.cli import main
from reportgen.report.same_training import normalised_source_hash
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.manifest import write_manifest

SEEDS_SPEC = """[data]
dataset = "mnist"
data_dir = "idx"
[[models]]
name = "mlp"
[train]
epochs = 1
lr = {lr}
seeds = {seeds}
"""

MODEL = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 24), nn.ReLU(), nn.Linear(24, 10))

    def forward(self, x):
        return self.body(x)
"""
# the same code as another student hands it in: comments and layout changed, nothing else
DISGUISED = MODEL.replace("class Net", "# my own network\n\n\nclass Net").replace("(784, 24)", "( 784,24 )")


def _run(root: Path, run_id: str, *args: str) -> None:
    command = ["run", *args, "--run-id", run_id, "--format", "md", "--runs-dir", root / "runs"]
    assert main([*map(str, command), "--output-dir", str(root / "run-output"), *LOCAL_RUN]) == 0


def _idx(root: Path) -> list[str]:
    return ["--dataset", "mnist", "--data-dir", str(root / "idx"), "--epochs", "1"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """runs/triple: mlp with seeds [0, 0, 0] · pair: mlp with seeds [0, 1] · lrs: mlp, lr 0.01 and 0.0001, seeds
    [0, 0, 0] · a, b: the built-in lenet5, seeds 1
    and 2, by Kim and Lee · copy: runs/a re-saved by Park · d, e: Choi's and Han's own models.py, seeds 1 and 2."""
    root = tmp_path_factory.mktemp("same-training")
    write_idx_dataset(root / "idx", n_train=300, n_test=300)
    for run_id, seeds, lr in (
        ("triple", "[0, 0, 0]", 0.001),
        ("pair", "[0, 1]", 0.001),
        ("lrs", "[0, 0, 0]", [0.01, 1e-4]),
    ):
        (root / f"{run_id}.toml").write_text(SEEDS_SPEC.format(seeds=seeds, lr=lr), "utf-8")
        _run(root, run_id, root / f"{run_id}.toml")
    for run_id, seed, author in (("a", 1, "Kim:2024001"), ("b", 2, "Lee:2024002")):
        _run(root, run_id, "--models", "lenet5", "--seed", str(seed), "--author", author, *_idx(root))
    for run_id, seed, author, code in (("d", 1, "Choi:2024004", MODEL), ("e", 2, "Han:2024005", DISGUISED)):
        (root / run_id).mkdir()
        (root / run_id / "models.py").write_text(code, "utf-8")
        model = f"{root / run_id / 'models.py'}:Net"
        _run(root, run_id, "--models", model, "--seed", str(seed), "--author", author, *_idx(root))
    _resave(root / "runs" / "a", root / "runs" / "copy", {"name": "Park", "student_id": "2024003"})
    return root


def _resave(original: Path, copy: Path, author: dict[str, str]) -> None:
    """A copied archive handed in under another name: the cover edited and the manifest sealed again."""
    shutil.copytree(original, copy)
    spec = json.loads((copy / "spec.json").read_text("utf-8"))
    spec["cover"]["authors"] = [author]
    (copy / "spec.json").write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", "utf-8")
    write_manifest(copy)
    assert ArchiveReader(copy).verify() == []


def _render(root: Path, *run_ids: str, lang: str = "en") -> dict:
    out = root / f"out-{lang}"
    runs = [str(root / "runs" / run_id) for run_id in run_ids]
    assert main(["render", *runs, "--format", "md", "--lang", lang, "--output-dir", str(out)]) == 0
    folder = out / (run_ids[0] if len(run_ids) == 1 else "combined-" + "-".join(run_ids))
    return json.loads((folder / "summary.json").read_text("utf-8"))


def _findings(summary: dict) -> list[str]:
    return [claim["text"] for claim in summary["report"].get("findings", [])]


def _flags(summary: dict) -> dict[str, str]:
    """Run id → the grading table's flags cell."""
    table = summary["report"]["tables"]["grading"]
    run, flags = table["columns"].index("Run"), table["columns"].index("Flags")
    return {row["cells"][run]["text"]: row["cells"][flags]["text"] for row in table["rows"]}


@pytest.mark.slow
def test_seeds_zero_zero_zero_are_one_training_and_the_report_says_which_rows(root):
    summary = _render(root, "triple")
    assert summary["seed_aggregates"] == []  # not "3 seeds ± 0.00%": one training has no spread to report
    [finding] = [text for text in _findings(summary) if "one training" in text]
    assert finding.startswith("Trials 000-mlp, 001-mlp, 002-mlp are one training (identical predictions on all 300")
    assert "identical metrics apart from timing" in finding and "same model, settings and seed" in finding
    assert any("rest on one seed" in text for text in summary["conclusion"])


@pytest.mark.slow
def test_the_one_training_finding_is_korean_in_a_korean_report(root):
    summary = _render(root, "triple", lang="ko")
    [finding] = [text for text in _findings(summary) if "하나의 훈련" in text]
    assert "시행 000-mlp, 001-mlp, 002-mlp는 하나의 훈련입니다(테스트 이미지 300장 모두에서 같은 예측" in finding
    assert "identical" not in finding and "training" not in finding


@pytest.mark.slow
def test_a_sweep_with_seeds_zero_zero_zero_has_one_paired_trial_not_three(root):
    conclusion = _render(root, "lrs")["conclusion"]
    [effect] = [text for text in conclusion if text.startswith("Learning rate 0.01 ")]
    assert effect.startswith("Learning rate 0.01 beats 0.0001 in the one paired trial (+"), effect


@pytest.mark.slow
def test_two_different_seeds_are_two_trainings(root):
    summary = _render(root, "pair")
    [aggregate] = summary["seed_aggregates"]
    assert aggregate["seeds"] == 2 and aggregate["repeated"] == []
    assert not [text for text in _findings(summary) if "one training" in text]


@pytest.mark.slow
def test_a_run_combined_with_a_copy_of_itself_counts_its_training_once(root):
    shutil.copytree(root / "runs" / "pair", root / "runs" / "pair2")  # the same author: a seed study, not a copy
    summary = _render(root, "pair", "pair2")
    [aggregate] = summary["seed_aggregates"]
    assert aggregate["seeds"] == 2 and aggregate["repeated"] == ["002-pair2-mlp", "003-pair2-mlp"]
    found = [text for text in _findings(summary) if "one training" in text]
    assert [text.split(" are ")[0] for text in found] == [
        "Trials 000-pair-mlp, 002-pair2-mlp",
        "Trials 001-pair-mlp, 003-pair2-mlp",
    ]


@pytest.fixture(scope="module")
def graded(root) -> dict:
    return _render(root, "a", "b", "copy")


@pytest.mark.slow
def test_a_copy_resaved_under_another_author_is_flagged_on_both_rows(graded):
    flags = _flags(graded)
    assert flags["a"].startswith("copy of Park (2024003): lenet5 (a) = lenet5 (copy): identical predictions on all 300")
    assert flags["copy"].startswith("copy of Kim (2024001): lenet5 (a) = lenet5 (copy): identical predictions")
    assert "both trained the built-in lenet5 with the same settings and seed" in flags["a"]
    assert "same model, settings and seed" not in flags["a"]  # a recipe is one person's: never across hand-ins


@pytest.mark.slow
def test_two_students_with_the_built_in_lenet5_and_other_seeds_are_not_flagged(graded):
    assert _flags(graded)["b"] == "–"
    assert not [text for text in _findings(graded) if "lenet5 (b)" in text or "-b-" in text]


@pytest.mark.slow
def test_two_students_whose_model_files_differ_in_comments_only_are_flagged(root):
    assert normalised_source_hash(MODEL) == normalised_source_hash(DISGUISED) and MODEL != DISGUISED
    flags = _flags(_render(root, "d", "e"))
    assert flags["d"] == "copy of Han (2024005): the same model code (models.py), comments and layout aside"
    assert flags["e"] == "copy of Choi (2024004): the same model code (models.py), comments and layout aside"
