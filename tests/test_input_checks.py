"""Issue 32, item 5: everything the user wrote is checked before torch loads, with "did you mean" for keys and
values, and a pre-flight forward that never returns stops with one line.

Each command case runs the real `reportgen` in a fresh interpreter, which says afterwards whether torch was
imported: a mistake found only after torch loaded fails here even when its message is right.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reportgen.errors import ModelError
from reportgen.run import preflight

PROBE = """import sys
from reportgen.cli import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
sys.exit(code)
"""
MODELS = 'models = ["lenet5"]\n'
MY_MODELS = """import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Wide(nn.Module):
    def __init__(self, hidden: int = 64, *, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.Dropout(dropout), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.fc(x)


class Endless(LeNet5):
    def forward(self, x):
        while x.sum() == x.sum():  # never changes: the forward never returns
            pass
        return self.fc(x.flatten(1))
"""


def _reportgen(cwd: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=cwd,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SPEC_CASES = [
    ("key", MODELS + "[train]\nepoch = 3\n", "unknown key 'train.epoch'; did you mean 'train.epochs'?"),
    ("key-in-wrong-table", MODELS + "epochs = 3\n", "unknown key 'epochs'; did you mean 'train.epochs'?"),
    ("key-of-a-model", '[[models]]\nname = "lenet5"\nepochs = 3\n', "did you mean 'models[0].train.epochs'?"),
    ("key-spelt-british", MODELS + "[train]\noptimiser = 'sgd'\n", "did you mean 'train.optimizer'?"),
    ("language-code", MODELS + '[report]\nlang = "kr"\n', "expected one of en, ko, got 'kr'; did you mean 'ko'?"),
    ("value-case", MODELS + '[train]\noptimizer = "Adam"\n', "got 'Adam'; did you mean 'adam'?"),
    ("value-separator", MODELS + '[data]\ndataset = "fashion_mnist"\n', "did you mean 'fashion-mnist'?"),
    ("device", MODELS + 'device = "GPU"\n', "expected auto, cpu, cuda or cuda:N, got 'GPU'; did you mean 'cuda'?"),
    ("quoted-number", MODELS + '[train]\nepochs = "5"\n', "got '5'; write the number without quotes: 5"),
]


@pytest.mark.parametrize("text, message", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_a_spec_mistake_says_what_was_meant_before_torch_loads(tmp_path: Path, text: str, message: str):
    (tmp_path / "spec.toml").write_text(text, "utf-8")
    done = _reportgen(tmp_path, "run", "spec.toml", "--no-pdf")
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error.startswith("reportgen: error: spec.toml: ") and error.endswith(message), error
    assert probe == "torch not imported"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()


OPTION_CASES = [
    ("spec-checked", ["--optimizer", "Adam"], "--optimizer (spec key 'train.optimizer'): expected one of"),
    ("spec-checked-device", ["--device", "gpu"], "did you mean 'cuda'?"),
    ("choice", ["--lang", "kr"], "argument --lang: invalid choice: 'kr' (choose from en, ko); did you mean 'ko'?"),
    ("choice-separator", ["--dataset", "fashion_mnist"], "did you mean 'fashion-mnist'?"),
    ("choice-case", ["--executor", "Local"], "did you mean 'local'?"),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_an_option_value_says_what_was_meant_before_torch_loads(tmp_path: Path, argv: list[str], message: str):
    done = _reportgen(tmp_path, "run", *argv, "--no-pdf")
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error.startswith("reportgen: error: ") and message in error, error
    assert probe == "torch not imported"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()


def test_a_misspelt_subcommand_says_which(tmp_path: Path):
    done = _reportgen(tmp_path, "rn")
    assert done.returncode == 2
    assert "invalid choice: 'rn'" in done.stderr and "did you mean 'run'?" in done.stderr


@pytest.mark.parametrize("command", ["params", "run"])
def test_params_and_run_give_the_same_class_name_suggestion_before_torch_loads(tmp_path: Path, command: str):
    (tmp_path / "my_models.py").write_text(MY_MODELS, "utf-8")
    argv = ["params", "my_models.py:Lenet5"] if command == "params" else ["run", "--models", "my_models.py:Lenet5"]
    started = time.perf_counter()
    done = _reportgen(tmp_path, *argv)
    elapsed = time.perf_counter() - started
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error == (
        f"reportgen: error: model file {tmp_path / 'my_models.py'} has no attribute 'Lenet5': did you mean LeNet5?"
    )
    assert probe == "torch not imported"
    assert elapsed < 10, elapsed  # measured 0.2 s here; importing torch alone takes longer than this under load


@pytest.mark.parametrize(
    "argv",
    [
        ["params", "my_models.py:Wide?hiden=32"],
        ["run", "--models", "my_models.py:Wide?hiden=32"],
        ["run", "spec.toml"],
    ],
    ids=["params", "run", "spec"],
)
def test_a_misspelt_constructor_argument_says_which_before_torch_loads(tmp_path: Path, argv: list[str]):
    (tmp_path / "my_models.py").write_text(MY_MODELS, "utf-8")
    (tmp_path / "spec.toml").write_text('[[models]]\nname = "my_models.py:Wide"\nkwargs = { hiden = 32 }\n', "utf-8")
    done = _reportgen(tmp_path, *argv)
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error == (
        f"reportgen: error: model file {tmp_path / 'my_models.py'}: Wide has no argument 'hiden': did you mean 'hidden'?"
    )
    assert probe == "torch not imported"
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_forward_that_never_returns_stops_the_preflight_with_one_line(tmp_path: Path):
    (tmp_path / "my_models.py").write_text(MY_MODELS, "utf-8")
    argv = ["run", "--models", "my_models.py:Endless", "--executor", "local", "--no-pdf", "--epochs", "1"]
    argv += ["--train-subset", "200", "--test-subset", "100"]
    started = time.perf_counter()
    done = _reportgen(tmp_path, *argv, env={preflight.TIMEOUT_VARIABLE: "2"})
    elapsed = time.perf_counter() - started
    error, probe = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert error == (
        "reportgen: error: model 'my_models.py:Endless': its forward on 1x28x28 images did not return within 2 s "
        f"(a loop that never ends?); fix it, or raise the limit with {preflight.TIMEOUT_VARIABLE}=SECONDS"
    )
    assert probe == "torch imported"
    assert elapsed < 60, elapsed
    assert not (tmp_path / "runs").exists() and not (tmp_path / "output").exists()


def _endless() -> None:
    while True:
        pass


def test_the_limit_interrupts_python_code_and_leaves_no_alarm_behind(monkeypatch):
    monkeypatch.setenv(preflight.TIMEOUT_VARIABLE, "0.3")
    started = time.perf_counter()
    expected = r"model 'm': its forward did not return within 0\.3 s"
    with pytest.raises(ModelError, match=expected), preflight.time_limit("m", "its forward"):
        _endless()
    assert time.perf_counter() - started < 5
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


def test_off_the_main_thread_there_is_no_limit_and_no_error(monkeypatch):
    """Signal handlers can only be set on the main thread (compare() called from a thread): no limit there."""
    monkeypatch.setenv(preflight.TIMEOUT_VARIABLE, "0.1")
    finished: list[bool] = []

    def work() -> None:
        with preflight.time_limit("m", "its forward"):
            time.sleep(0.3)
        finished.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert finished == [True]


@pytest.mark.parametrize("text", ["soon", "-1", "inf"])
def test_a_bad_limit_in_the_environment_is_one_line(monkeypatch, text: str):
    monkeypatch.setenv(preflight.TIMEOUT_VARIABLE, text)
    with pytest.raises(Exception, match=rf"{preflight.TIMEOUT_VARIABLE}='{text}': expected seconds ≥ 0"):
        preflight.timeout_s()


def test_the_default_limit_is_a_minute(monkeypatch):
    monkeypatch.delenv(preflight.TIMEOUT_VARIABLE, raising=False)
    assert preflight.timeout_s() == preflight.PREFLIGHT_TIMEOUT_S == 60
