"""A resume trains with the code the run started with: every local module the model file imports is hashed.

The student's model imports its activation from a helper module in a package of its folder; the helper
is edited (ReLU → Tanh) between the first run and its resume, which must be refused, naming the file.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import one_error_line, requires_fashion

pytestmark = requires_fashion

TINY = ["--train-subset", "300", "--test-subset", "100", "--epochs", "1", "--no-pdf", "--executor", "local"]
MODELS = """from torch import nn

from parts.activations import Activation


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), Activation(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)
"""


@pytest.mark.slow
def test_resume_refuses_a_helper_module_changed_since_the_run_started(workdir, cli):
    (workdir / "parts").mkdir()
    (workdir / "parts" / "__init__.py").write_text("", "utf-8")
    helper = workdir / "parts" / "activations.py"
    helper.write_text("from torch.nn import ReLU as Activation\n", "utf-8")
    (workdir / "models.py").write_text(MODELS, "utf-8")
    code, _out, err = cli("run", "--models", "models.py:Net", *TINY, "--run-id", "r1")
    assert code == 0, err
    run = workdir / "runs" / "r1"
    recorded = json.loads((run / "spec.json").read_text("utf-8"))["models"][0]["code"]["modules"]
    assert recorded == {
        "parts/__init__.py": hashlib.sha256(b"").hexdigest(),
        "parts/activations.py": hashlib.sha256(helper.read_bytes()).hexdigest(),
    }
    status = json.loads((run / "status.json").read_text("utf-8"))
    (run / "status.json").write_text(json.dumps(status | {"state": "stopped"}), "utf-8")  # as if Ctrl-C'd
    helper.write_text("from torch.nn import Tanh as Activation\n", "utf-8")
    code, _out, err = cli("run", "--resume", run)
    assert code == 2
    assert "parts/activations.py changed since the run started" in one_error_line(err)
    helper.write_text("from torch.nn import ReLU as Activation\n", "utf-8")  # restored: the resume goes on
    code, _out, err = cli("run", "--resume", run)
    assert code == 0, err
