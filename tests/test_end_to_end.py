"""The whole path through the CLI: real training on Fashion-MNIST subsets, real HTML and PDF."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import FAST, requires_fashion

from reportgen.models.registry import create_model

pytestmark = requires_fashion


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_archive_holds_everything_needed_to_rerender(finished):
    run = finished / "runs" / "e2e"
    assert json.loads((run / "status.json").read_text())["state"] == "complete"
    for name in ("spec.json", "environment.json", "data.json", "manifest.json"):
        assert (run / name).is_file()
    trials = sorted((run / "trials").iterdir())
    assert [t.name for t in trials] == ["000-LeNet-5", "001-MLP-784-75-32-10", "002-LeNet-5-BN-Dropout"]
    records = [json.loads((trial / "trial.json").read_text()) for trial in trials]
    # what chose the kernels: only the BN model has BatchNorm2d, the MLP no pooling
    assert [r["batchnorm_kernel"] for r in records] == ["torch", "torch", "rows"]
    assert [r["maxpool_kernel"] for r in records] == ["corners", "torch", "corners"]
    assert [r["conv_input_grad_kernel"] for r in records] == ["contiguous", "torch", "contiguous"]
    assert [r["dropout_kernel"] for r in records] == ["torch", "torch", "uniform"]
    assert [r["relu_pool_kernel"] for r in records] == ["pool_first", "torch", "pool_first"]
    for trial in trials:
        assert len(read_csv(trial / "metrics.csv")) == 2
        assert len(read_csv(trial / "predictions.csv")) == 300
        state = torch.load(trial / "model.pt", weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"].startswith("2.14.1") and env["threads"] >= 1 and env["git_commit"]
    data = json.loads((run / "data.json").read_text())
    assert {f["verified"] for f in data["files"].values()} == {"true"}


@pytest.mark.slow
def test_saved_weights_reproduce_the_saved_predictions(finished):
    from reportgen.data.datasets import load_dataset
    from reportgen.train import evaluate

    trial = finished / "runs" / "e2e" / "trials" / "002-LeNet-5-BN-Dropout"
    model = create_model("lenet5_regularized")
    model.load_state_dict(torch.load(trial / "model.pt", weights_only=True))
    data = load_dataset("fashion-mnist", train_subset=1500, test_subset=300)
    result = evaluate(model, data.test_images, data.test_labels, data.mean, data.std, "cross_entropy")
    assert result.predictions.tolist() == [int(r["prediction"]) for r in read_csv(trial / "predictions.csv")]


@pytest.mark.slow
def test_html_pdf_csv_and_json_agree(finished):
    out = finished / "output" / "e2e"
    html = (out / "report.html").read_text("utf-8")
    pdf_text = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 3 * 2
    for row in rows:
        accuracy = f"{100 * float(row['test_acc']):.2f}%"
        loss = f"{float(row['train_loss']):.4f}"
        assert accuracy in html and accuracy in pdf_text
        assert loss in html and loss in pdf_text
        assert summary["epochs"][row["trial_id"]][int(row["epoch"]) - 1]["test_acc"] == float(row["test_acc"])
    for label in ("LeNet-5", "MLP 784-75-32-10", "LeNet-5 + BN + Dropout"):
        assert label in pdf_text
    assert "61,706" in pdf_text and "62,158" in pdf_text and "(5·5·1 + 1)·6 = 156" in pdf_text
    assert "Average" in pdf_text  # the average row of every epoch table
    assert len(list((out / "figures").glob("gallery-*-correct.png"))) == 3


@pytest.mark.slow
def test_rerender_from_archive_gives_the_same_tables(finished, cli):
    code, _out, err = cli("render", finished / "runs" / "e2e", "--output-dir", finished / "again", "--no-pdf")
    assert code == 0, err
    for name in ("metrics.csv", "comparison.csv"):
        assert (finished / "again" / "e2e" / name).read_bytes() == (finished / "output" / "e2e" / name).read_bytes()


@pytest.mark.slow
def test_tampered_archive_is_refused_unless_allowed(finished, cli, tmp_path):
    copy = tmp_path / "e2e"
    shutil.copytree(finished / "runs" / "e2e", copy)
    metrics = copy / "trials" / "000-LeNet-5" / "metrics.csv"
    metrics.write_text(metrics.read_text().replace("0.", "0.9", 1))
    code, _out, err = cli("render", copy, "--output-dir", tmp_path / "out", "--no-pdf")
    assert code == 2 and "does not match its sha256" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "e2e").exists()
    code, _out, err = cli("render", copy, "--output-dir", tmp_path / "out", "--no-pdf", "--allow-incomplete")
    assert code == 0
    assert "altered after it finished" in (tmp_path / "out" / "e2e" / "report.html").read_text("utf-8")


def test_bad_spec_gives_one_line_and_leaves_nothing(workdir, cli):
    spec = workdir / "bad.toml"
    spec.write_text('[[models]]\nname = "lenet5"\n[train]\nepochs = "ten"\n')
    code, _out, err = cli("run", spec)
    assert code == 2
    assert err.strip() == (
        f"reportgen: error: {spec}: key 'train.epochs': expected an integer in [1, 100000], got 'ten'"
    )
    assert not any((workdir / "runs").glob("*")) and not any((workdir / "output").glob("*"))


def test_missing_dataset_gives_one_clear_error(workdir, cli):
    code, _out, err = cli("run", "--dataset", "mnist", "--data-dir", workdir / "nowhere", *FAST)
    assert code == 2 and err.count("\n") == 1
    assert "nowhere does not exist" in err
    assert not (workdir / "runs").exists() or not any((workdir / "runs").iterdir())


def test_unknown_model_lists_close_matches(workdir, cli):
    code, _out, err = cli("run", "--models", "lenet", *FAST)
    assert code == 2 and "did you mean lenet5" in err and err.count("\n") == 1


@pytest.mark.slow
def test_user_text_is_escaped_in_the_report(workdir, cli):
    spec = workdir / "xss.toml"
    spec.write_text(
        'name = "<script>alert(1)</script>"\n[[models]]\nname = "mlp"\nlabel = "<script>alert(2)</script>"\n'
    )
    code, _out, err = cli("run", spec, *FAST, "--epochs", "1", "--run-id", "xss", "--no-pdf")
    assert code == 0, err
    html = (workdir / "output" / "xss" / "report.html").read_text("utf-8")
    assert "<script>alert(" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html


@pytest.mark.slow
def test_list_shows_state_models_and_best_accuracy(finished, cli, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(finished / "runs" / "e2e", runs / "e2e")
    (runs / "broken").mkdir()
    (runs / "broken" / "status.json").write_text("{not json")
    code, out, _err = cli("list", "--runs-dir", runs)
    assert code == 0
    line = next(l for l in out.splitlines() if l.startswith("e2e"))
    best = max(float(r["test_acc"]) for r in read_csv(finished / "output" / "e2e" / "metrics.csv"))
    assert "complete" in line and f"{100 * best:.2f}%" in line and "LeNet-5 + BN + Dropout" in line
    assert any(l.startswith("broken") and "unreadable" in l for l in out.splitlines())


@pytest.mark.slow
def test_pdf_fetcher_reads_only_inside_the_report_folder(finished, tmp_path):
    from reportgen.report.templating import restricted_fetcher

    folder = finished / "output" / "e2e"
    fetch = restricted_fetcher(folder)
    response = fetch((folder / "report.css").as_uri())
    assert b"font-family" in response.read()
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the report")
    for url in (outside.as_uri(), "file:///etc/passwd", "http://127.0.0.1:9/x.png", (folder / ".." / "x").as_uri()):
        with pytest.raises(ValueError):
            fetch(url)
