"""`reportgen run` and `reportgen.compare()` take one path: the same inputs give the same archive, and the
same rules (an existing run id is never resumed with other settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import requires_fashion

import reportgen
from reportgen.errors import ReportgenError

pytestmark = requires_fashion

SPEC = """[data]
train_subset = 600
test_subset = 200
[train]
epochs = 1
[[models]]
name = "mlp"
[[models]]
name = "lenet5"
"""


def archived(run: Path) -> dict:
    """What a run trained and measured, without its times and machine load."""
    trials = {}
    for trial in sorted((run / "trials").iterdir()):
        epochs = json.loads((trial / "metrics.json").read_text("utf-8"))
        trials[trial.name] = {
            "epochs": [{k: v for k, v in e.items() if k != "seconds"} for e in epochs],
            "predictions": (trial / "predictions.csv").read_text("utf-8"),
        }
    environment = json.loads((run / "environment.json").read_text("utf-8"))
    return {
        "spec": json.loads((run / "spec.json").read_text("utf-8")),
        "data": json.loads((run / "data.json").read_text("utf-8")),
        "executor": (environment["executor"], environment["threads_per_trial"]),
        "trials": trials,
    }


@pytest.mark.slow
def test_command_and_notebook_write_the_same_archive(workdir, cli):
    spec = workdir / "spec.toml"
    spec.write_text(SPEC, "utf-8")
    code, _out, err = cli("run", spec, "--run-id", "cli", "--no-pdf")
    assert code == 0, err
    report = reportgen.compare({"mlp": "mlp", "lenet5": "lenet5"}, spec=spec, run_id="api", pdf=False)
    assert report.run == Path("runs") / "api" and report.html.exists()
    assert archived(workdir / "runs" / "cli") == archived(workdir / "runs" / "api")


@pytest.mark.slow
def test_compare_refuses_other_settings_for_an_existing_run_like_the_command(workdir, cli):
    reportgen.compare(["mlp"], run_id="one", train_subset=600, test_subset=200, epochs=1, pdf=False)
    with pytest.raises(ReportgenError, match=r"already exists .* train\.epochs 1 → 2"):
        reportgen.compare(["mlp"], run_id="one", train_subset=600, test_subset=200, epochs=2, pdf=False)
    code, _out, err = cli("run", "--models", "mlp", "--run-id", "one", "--train-subset", "600", "--epochs", "2")
    assert code == 2 and "train.epochs 1 → 2" in err
