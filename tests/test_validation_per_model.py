"""Per-model [models.train] settings go through the pre-flight as the global ones do (loss against output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import one_error_line, requires_fashion

pytestmark = requires_fashion

TINY = ["--train-subset", "600", "--test-subset", "200", "--epochs", "1", "--executor", "local", "--format", "md"]


def write_spec(folder: Path, text: str) -> Path:
    path = folder / "spec.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.slow
def test_a_per_model_loss_that_fits_the_model_is_accepted(workdir, cli):
    # global nll, and the logits MLP's own cross_entropy: valid (the check used to read only the global loss)
    spec = write_spec(
        workdir, '[train]\nloss = "nll"\n[[models]]\nname = "mlp"\n[models.train]\nloss = "cross_entropy"\n'
    )
    code, _out, err = cli("run", spec, *TINY, "--run-id", "own-loss")
    assert code == 0, err
    trial = json.loads((workdir / "runs" / "own-loss" / "trials" / "000-mlp" / "trial.json").read_text("utf-8"))
    assert trial["config"]["loss"] == "cross_entropy"


def test_a_per_model_nll_on_logits_is_refused_before_the_run_exists(workdir, cli):
    # it trained to a loss of −2.48 and exited 0 with a false overfitting warning
    spec = write_spec(workdir, '[[models]]\nname = "mlp"\n[models.train]\nloss = "nll"\n')
    code, _out, err = cli("run", spec, *TINY)
    assert code == 2
    line = one_error_line(err)
    assert "key 'models[0].train.loss': 'nll' needs log-probabilities, but model 'mlp' outputs logits" in line
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()
