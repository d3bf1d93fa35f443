"""A student's own model files: `models.py:LeNet5`, `module:Class`, next to built-ins, and every bad case.

Run in a temporary "student folder" through the real CLI on a small real Fashion-MNIST subset.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import requires_fashion

TINY = ["--train-subset", "300", "--test-subset", "100", "--epochs", "1", "--no-pdf", "--executor", "local"]

# Deliberately not the built-in LeNet-5 (a 4-channel first conv), so the two are told apart by their counts.
STUDENT_MODELS = textwrap.dedent("""
    import torch.nn as nn


    class LeNet5(nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(width, 16, 5), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))

        def forward(self, x):
            return self.net(x)


    class NotAModel:
        pass


    def helper():
        return 42


    class Raises(nn.Module):
        def __init__(self):
            super().__init__()
            raise RuntimeError("forgot to set the width")


    class WrongShape(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(100, 10)

        def forward(self, x):
            return self.fc(x)
""")


def student_lenet_params(width: int = 4) -> int:
    return (25 + 1) * width + (25 * width + 1) * 16 + (400 + 1) * 120 + (120 + 1) * 10


@pytest.fixture
def student(workdir: Path) -> Path:
    (workdir / "models.py").write_text(STUDENT_MODELS, "utf-8")
    return workdir


def nothing_written(folder: Path) -> bool:
    return not any((folder / "runs").glob("*")) and not any((folder / "output").glob("*"))


def test_own_models_py_does_not_hide_builtins_and_builtins_do_not_hide_it(student, cli):
    code, out, err = cli("params", "models.py:LeNet5", "models:LeNet5?width=6", "lenet5", "--format", "json")
    assert code == 0, err
    decoder, totals, position = json.JSONDecoder(), [], 0
    while out[position:].strip():  # one JSON document per model
        audit, position = decoder.raw_decode(out, position + len(out[position:]) - len(out[position:].lstrip()))
        totals.append(audit["total"])
    assert totals == [student_lenet_params(4), student_lenet_params(6), 61_706]


@pytest.mark.slow
@requires_fashion
def test_spec_naming_student_file_and_builtin_trains_both(student, cli):
    (student / "nets").mkdir()
    (student / "nets" / "spec.toml").write_text(
        textwrap.dedent("""
        name = "Mine vs built-in"
        [[models]]
        name = "../models.py:LeNet5"
        label = "My LeNet-5"
        [[models]]
        name = "lenet5_c5"
    """),
        "utf-8",
    )
    code, _, err = cli("run", "nets/spec.toml", *TINY, "--run-id", "mine")
    assert code == 0, err
    spec = json.loads((student / "runs" / "mine" / "spec.json").read_text("utf-8"))
    mine = spec["models"][0]
    assert mine["code"]["file"] == "../../models.py"  # relative to the run folder: no home folder archived
    import hashlib

    assert mine["code"]["sha256"] == hashlib.sha256((student / "models.py").read_bytes()).hexdigest()
    summary = json.loads((student / "output" / "mine" / "summary.json").read_text("utf-8"))
    assert [r["model"] for r in summary["comparison"]] == ["My LeNet-5", "lenet5_c5"]
    assert summary["parameters"]["My LeNet-5"]["total"] == student_lenet_params()
    html = (student / "output" / "mine" / "report.html").read_text("utf-8")
    assert "My LeNet-5" in html and "lenet5_c5" in html


@requires_fashion
def test_resume_refuses_a_model_file_changed_since_the_run_started(student, cli):
    spec = student / "spec.toml"
    spec.write_text('[[models]]\nname = "models.py:LeNet5"\n', "utf-8")
    code, _, err = cli("run", spec, *TINY, "--run-id", "r1")
    assert code == 0, err
    status = student / "runs" / "r1" / "status.json"
    state = json.loads(status.read_text("utf-8"))
    status.write_text(json.dumps(state | {"state": "failed"}), "utf-8")  # as if interrupted
    (student / "models.py").write_text(STUDENT_MODELS + "\n# edited\n", "utf-8")
    code, _, err = cli("run", "--resume", student / "runs" / "r1", "--no-pdf")
    assert code == 2
    assert "models.py changed since the run started" in err


@pytest.mark.parametrize(
    "reference, message",
    [
        ("missing.py:LeNet5", "missing.py: not found"),
        ("models.py:Nope", "has no attribute 'Nope'"),
        ("models.py:NotAModel", "a class is not a model"),
        ("models.py:helper", "function is not a model"),
        ("models.py:Raises", "constructor raised RuntimeError: forgot to set the width"),
        ("broken.py:Net", "broken.py, line 3: SyntaxError"),
        ("explodes.py:Net", "explodes.py, line 2: ZeroDivisionError"),
        ('subprocess:run?args=["touch","side-effect"]', "function is not a model"),
        ('os:system?command="touch side-effect"', "is not a model"),
    ],
)
def test_bad_model_reference_is_one_line_and_runs_nothing(student, cli, reference, message):
    (student / "broken.py").write_text("import torch\n\nclass Net(\n", "utf-8")
    # defines Net, so only running it shows the error (a missing name is found before anything runs)
    (student / "explodes.py").write_text("import torch\nx = 1 / 0\nclass Net(torch.nn.Module): ...\n", "utf-8")
    for command in (["params", reference], ["run", "--models", reference, *TINY]):
        code, _, err = cli(*command)
        assert code == 2, (command, err)
        assert err.count("\n") == 1 and err.startswith("reportgen: error:") and message in err, err
        assert "Traceback" not in err
    assert not (student / "side-effect").exists()
    assert nothing_written(student)


@requires_fashion
def test_forward_that_fails_on_the_dataset_shape_names_the_model(student, cli):
    code, _, err = cli("run", "--models", "models.py:WrongShape", *TINY)
    assert code == 2
    assert err.startswith("reportgen: error:") and "models.py:WrongShape" in err and err.count("\n") == 1
    assert nothing_written(student)


@pytest.mark.slow
@requires_fashion
def test_resumed_spec_with_a_non_model_is_refused_before_any_call(student, cli):
    """An unfinished run's spec.json is input too: a forged `name` must not be called on --resume."""
    code, _, err = cli("run", "--models", "mlp", *TINY, "--run-id", "forged")
    assert code == 0, err
    run = student / "runs" / "forged"
    spec = json.loads((run / "spec.json").read_text("utf-8"))
    spec["models"][0].update(name="os:system", kwargs={"command": "touch side-effect"})
    (run / "spec.json").write_text(json.dumps(spec), "utf-8")
    (run / "status.json").write_text('{"state": "failed"}', "utf-8")  # as if interrupted
    code, _, err = cli("run", "--resume", run, "--no-pdf")
    assert code == 2 and "is not a model" in err, err
    assert not (student / "side-effect").exists()


def test_api_names_survive_every_submodule_import():
    """reportgen.compare / reportgen.audit are the API functions, even after every submodule is imported
    (a submodule of the same name would replace the package attribute on import)."""
    import importlib
    import pkgutil

    import reportgen
    from reportgen import api

    for module in pkgutil.walk_packages(reportgen.__path__, "reportgen."):
        if module.name != "reportgen.__main__":
            importlib.import_module(module.name)
    assert reportgen.compare is api.compare and reportgen.audit is api.audit
    assert reportgen.compare is api.compare  # second lookup, same object


@pytest.mark.slow
@requires_fashion
def test_compare_gives_a_checklist_only_when_asked(tmp_path, monkeypatch):
    """The embedded spec carries the course assignment's checklist (about its LeNet-5 and MLP): a notebook
    comparing its own models gets none unless it passes checklist=, and gets it when it does."""
    import reportgen

    monkeypatch.chdir(tmp_path)
    tiny = {"epochs": 1, "train_subset": 300, "test_subset": 100, "pdf": False, "executor": "local"}
    plain = reportgen.compare({"mlp": "mlp"}, run_id="plain", **tiny)
    asked = reportgen.compare({"mlp": "mlp"}, run_id="asked", checklist="assignment", **tiny)
    assert json.loads((plain.folder / "summary.json").read_text("utf-8"))["checklist"] is None
    assert json.loads((asked.folder / "summary.json").read_text("utf-8"))["checklist"]["items"]
    assert json.loads((tmp_path / "runs" / "plain" / "spec.json").read_text("utf-8"))["checklist"] is None
