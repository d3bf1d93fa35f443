"""Learning-rate schedules and early stopping (issue 37): torch's own schedulers, the LR of every epoch in
metrics.csv, patience on the validation split with the best weights kept, resume bit-identical across both,
and one line for every misuse."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import one_error_line, write_idx_dataset
from test_reliability import reportgen as _reportgen  # `python -m reportgen` as a child process

from reportgen.data.datasets import load_dataset
from reportgen.models.registry import create_model
from reportgen.train import EarlyStopping, TrainConfig, evaluate, make_scheduler, train_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = write_idx_dataset(tmp_path_factory.mktemp("idx"), n_train=600, n_test=150)
    return load_dataset("mnist", data_dir=folder)


def fit(data, config: TrainConfig, early: EarlyStopping | None = None, validation=None):
    torch.manual_seed(config.seed)
    model = create_model("mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    steps = -(-len(data.train_labels) // config.batch_size)
    schedule = make_scheduler(config, optimizer, steps)
    result = train_model(
        model,
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
        data.mean,
        data.std,
        config,
        optimizer=optimizer,
        schedule=schedule,
        early=early,
        validation=validation,
    )
    return result, model


def test_each_schedule_sets_the_learning_rate_of_every_epoch(data):
    lrs = {}
    for schedule in ("none", "step", "cosine", "onecycle"):
        config = TrainConfig(epochs=3, batch_size=100, lr=0.1, optimizer="sgd", schedule=schedule, gamma=0.5)
        result, _ = fit(data, config)
        lrs[schedule] = [e.lr for e in result.history]
    assert lrs["none"] == [0.1, 0.1, 0.1]
    assert lrs["step"] == pytest.approx([0.1, 0.05, 0.025])
    assert lrs["cosine"] == pytest.approx(
        [0.1, 0.1 * (1 + math.cos(math.pi / 3)) / 2, 0.1 * (1 + math.cos(2 * math.pi / 3)) / 2]
    )
    # one-cycle starts at lr / 25 (torch's div_factor), peaks inside the run, and is stepped every batch
    assert lrs["onecycle"][0] == pytest.approx(0.1 / 25) and max(lrs["onecycle"]) > lrs["onecycle"][0]


def test_early_stopping_stops_after_its_patience_and_keeps_the_best_weights(data):
    validation = (data.test_images[:75], data.test_labels[:75])  # any held-out images: this checks the engine
    config = TrainConfig(epochs=30, batch_size=50, lr=0.1, optimizer="sgd", patience=2)
    early = EarlyStopping(2)
    result, model = fit(data, config, early, validation)
    accuracies = [e.val_acc for e in result.history]
    best = accuracies.index(max(accuracies)) + 1  # ties keep the earlier epoch
    assert len(result.history) == best + 2 < 30, accuracies  # stopped two epochs after the best one
    assert early.best_epoch == best
    # the kept weights are the best epoch's: their test figures are that epoch's row, exactly
    kept = evaluate(model, data.test_images, data.test_labels, data.mean, data.std, "cross_entropy")
    assert kept.accuracy == result.history[best - 1].test_acc == result.final.accuracy
    assert kept.loss == result.history[best - 1].test_loss


SPEC = """
name = "schedule and patience"
[data]
dataset = "custom"
data_dir = "{idx}"
validation = 0.2
[train]
epochs = 12
batch_size = 40
lr = 0.05
optimizer = "sgd"
schedule = "onecycle"
patience = 2
[[models]]
name = "lenet5"
"""


@pytest.mark.slow  # three `reportgen run` subprocesses that train
def test_a_run_killed_mid_training_resumes_bit_identically_with_schedule_and_patience(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx", n_train=1500, n_test=100)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(idx=idx), "utf-8")
    whole = _reportgen("run", spec, "--run-id", "whole", "--format", "md", "--executor", "local", cwd=tmp_path)
    assert whole.wait(300) == 0, whole.communicate()
    killed = _reportgen("run", spec, "--run-id", "killed", "--format", "md", "--executor", "local", cwd=tmp_path)
    metrics = tmp_path / "runs" / "killed" / "trials" / "000-lenet5" / "metrics.json"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and len(json.loads(metrics.read_text() or "[]")) >= 2):
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    resumed = _reportgen("run", "--resume", tmp_path / "runs" / "killed", "--format", "md", cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resuming after epoch" in out + err, err
    reference = tmp_path / "runs" / "whole" / "trials" / "000-lenet5"
    trial = metrics.parent
    drop = lambda path: [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads(path.read_text())]
    assert drop(trial / "metrics.json") == drop(reference / "metrics.json")
    a, b = (torch.load(folder / "model.pt", weights_only=True) for folder in (trial, reference))
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((reference / "trial.json").read_text())["early_stopping"]
    epochs = drop(reference / "metrics.json")
    assert record["patience"] == 2 and record["kept_epoch"] == max(epochs, key=lambda e: e["val_acc"])["epoch"]
    # what the report shows: the LR of every epoch, and where (and why) training stopped
    report = (tmp_path / "output" / "whole" / "report.md").read_text("utf-8")
    assert "Learning rate" in report
    if record["stopped_after"] is not None:
        assert len(epochs) == record["stopped_after"] < 12
        assert f"Stopped early after epoch {record['stopped_after']}" in report, report
    assert f"the weights of epoch {record['kept_epoch']}" in report


@pytest.mark.parametrize(
    ("train", "data", "expected"),
    [
        ("patience = 3", "", "early stopping needs a validation split"),
        ("patience = -1", "validation = 0.1", "train.patience"),
        ('schedule = "cosin"', "", "did you mean"),
        ('schedule = "cosine"\ngamma = 0.5', "", "has no effect with schedule 'cosine'"),
    ],
)
def test_misused_schedule_or_patience_is_one_line_before_training(tmp_path, train, data, expected):
    idx = write_idx_dataset(tmp_path / "idx")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[data]\ndataset = "custom"\ndata_dir = "{idx}"\n{data}\n[train]\n{train}\n[[models]]\nname = "mlp"\n', "utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", str(spec)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and expected in one_error_line(done.stderr), done.stderr
    assert not (tmp_path / "runs").exists()
