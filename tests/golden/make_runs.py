"""Regenerates the archived runs behind the golden documents (tests/golden/runs/): real training on
Fashion-MNIST subsets, through the reportgen command. Run it only when the archive format changes:

    .venv/bin/python tests/golden/make_runs.py [RUN_ID ...] && .venv/bin/pytest tests/test_golden.py --update-golden

(with run ids, only those runs are made again; the others stay as they are)

The model weights (model.pt) are dropped from each run and from its manifest: a report never reads them,
and they would make up almost all of the fixtures' size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
SMALL = ["--train-subset", "600", "--test-subset", "100", "--executor", "local", "--no-pdf"]
SPECS = {
    # the default experiment (three models, the checklist, a before/after), 2 epochs
    "three": ("--epochs", "2", "--author", "김민지:20241234", "--course", "Deep Learning"),
    # a sweep over the learning rate in which lr = 10 diverges
    "sweep": ("sweep.toml",),
    # one trial that fails on its first batch beside one that trains
    "failed": ("--models", "mlp,nets.py:FailsAtOnce", "--epochs", "1"),
    # the same MLP with two seeds, in two runs: the combined pair
    "pair-a": ("--models", "mlp", "--epochs", "1", "--seed", "0"),
    "pair-b": ("--models", "mlp", "--epochs", "1", "--seed", "1"),
    # two students' submissions: the grading view
    "grade-a": ("--models", "lenet5,mlp", "--epochs", "1", "--author", "김민지:20241234", "--checklist", "assignment"),
    "grade-b": ("--models", "mlp", "--epochs", "2", "--author", "Lee Jun:20245678", "--checklist", "assignment"),
}
# hand-ins re-saved from another run under another author (no training): a copy for the class of three
COPIES = {"grade-c": ("grade-a", {"name": "박서준", "student_id": "20243456"})}


SWEEP = """name = "Learning-rate sweep with a diverging setting"
[data]
dataset = "fashion-mnist"
[train]
epochs = 2
optimizer = "sgd"
lr = [0.05, 10.0]
[[models]]
name = "mlp"
[[models]]
name = "lenet5"
"""


def _drop_weights(run: Path) -> None:
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    for weights in run.glob("trials/*/model.pt"):
        weights.unlink()
        manifest["files"].pop(weights.relative_to(run).as_posix(), None)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")


def main() -> int:
    from reportgen.cli import main as reportgen

    sys.path.insert(0, str(HERE.parent))  # tests/: the class fixtures
    from class_fixtures import resave

    work = Path(tempfile.mkdtemp(prefix="golden-"))
    shutil.copy(HERE / "nets.py", work / "nets.py")
    (work / "sweep.toml").write_text(SWEEP, "utf-8")
    os.chdir(work)
    wanted = sys.argv[1:] or [*SPECS, *COPIES]
    RUNS.mkdir(exist_ok=True)
    for run_id in [w for w in wanted if w not in COPIES]:
        args = SPECS[run_id]
        shutil.rmtree(RUNS / run_id, ignore_errors=True)
        code = reportgen(["run", *SMALL, *args, "--run-id", run_id])
        print(f"{run_id}: exit {code}", file=sys.stderr)
        _drop_weights(work / "runs" / run_id)
        shutil.copytree(work / "runs" / run_id, RUNS / run_id)
    for run_id in [w for w in wanted if w in COPIES]:  # after the training: from the runs as they are now
        original, author = COPIES[run_id]
        shutil.rmtree(RUNS / run_id, ignore_errors=True)
        resave(RUNS / original, RUNS / run_id, author)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(RUNS.rglob("*")) if p.is_file()))
    print(f"fixture runs: {RUNS} (sha256 {digest.hexdigest()[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
