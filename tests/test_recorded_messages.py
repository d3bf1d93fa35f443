"""Sentences a run records (the data source, formula notes, torchinfo notes, why a MAC check could not see a layer)
are archived as messages, keys with values, and worded at render by catalogue key; English that older runs
recorded is read into the same messages once, by run/recorded_text.py, and nowhere else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import LOCAL_RUN
from torch import nn
from torch.nn.utils import prune

from reportgen.data.datasets import load_dataset
from reportgen.files import sha256_file
from reportgen.measure.macs import count_macs
from reportgen.measure.params import audit_model
from reportgen.messages import Message, Op, english
from reportgen.report import i18n
from reportgen.report.i18n import Translator, translator
from reportgen.run import archive_files, archive_layout
from reportgen.run.recorded_text import PATTERNS, recorded_message

PACKAGE = Path(archive_layout.__file__).resolve().parents[1]


class Tied(nn.Module):
    """Two Linear layers holding one weight: torchinfo counts it twice."""

    def __init__(self) -> None:
        super().__init__()
        self.encode, self.decode = nn.Linear(10, 10), nn.Linear(10, 10)
        self.decode.weight = self.encode.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _pruned() -> nn.Module:
    model = nn.Sequential(nn.Linear(20, 10))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    return model


def _messages(value: object) -> list[Message]:
    """Every message in `value` (a record with messages and text), its values' messages included."""
    if isinstance(value, Message):
        return [value, *_messages(list(value.values.values()))]
    if isinstance(value, dict):
        return [m for item in value.values() for m in _messages(item)]
    if isinstance(value, (list, tuple)):
        return [m for item in value for m in _messages(item)]
    return []


def _recorded_by_the_code(idx_dir: Path) -> list[Message]:
    """Messages the real measuring and loading code records, one of each sentence older runs wrote in English."""
    source = load_dataset("mnist", idx_dir).source
    norm = audit_model(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4, affine=False)), (1, 8, 8))
    slopes = audit_model(nn.Sequential(nn.Linear(6, 8), nn.PReLU(8)), (6,))
    pruned, tied = audit_model(_pruned(), (20,)), audit_model(Tied(), (10,))
    batchnorm = count_macs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), (1, 8, 8))
    sequence = count_macs(nn.Sequential(nn.Linear(10, 5)), (4, 10))  # torchinfo charges a Linear per first dim
    layers = [vars(layer) for audit in (norm, slopes, pruned) for layer in audit.layers]
    records = [source, layers, pruned.torchinfo_note, tied.torchinfo_note]
    records += [vars(entry) for check in (batchnorm.flop_counter, sequence.torchinfo) for entry in check.not_checked]
    return [*_messages(records), Message("torchvision {dataset} download", {"dataset": "FashionMNIST"})]


def test_each_sentence_older_runs_recorded_reads_back_as_the_message_a_new_run_records(idx_dir):
    """The same Korean for the same message, whether a run recorded the message or its English."""
    recorded = [m for m in _recorded_by_the_code(idx_dir) if m.values]
    assert {m.key for m in recorded} >= set(PATTERNS)  # every sentence older runs wrote, made by today's code
    ko = translator("ko")
    for message in recorded:
        old = recorded_message(str(message))  # what a format 1–2 run archived: the English text
        assert str(old) == str(message)
        assert ko.render(old) == ko.render(message), message
        assert ko.render(message) != str(message), message  # translated, not passed through


def test_a_translator_matches_no_text_against_a_pattern(idx_dir, monkeypatch):
    """Rendering a recorded message looks its key up; no regular expression runs, and text stays text."""

    class NoRegex:
        def __getattr__(self, name: str):
            raise AssertionError(f"re.{name} used while rendering a recorded message")

    ko = translator("ko")
    messages = [m for m in _recorded_by_the_code(idx_dir) if m.values]
    monkeypatch.setattr(i18n, "re", NoRegex())
    assert [ko.render(m) for m in messages]  # would raise on any pattern match
    assert not hasattr(Translator, "recorded")
    assert ko.render("IDX files in /data/x") == "IDX files in /data/x"  # text that reads like a sentence is not one
    assert ko.render(Op("aten.native_batch_norm")) == ko("batch normalization")


def test_the_patterns_are_read_by_the_archive_reader_only():
    users = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "reportgen.run.recorded_text" in path.read_text("utf-8")
    }
    assert users == {"run/archive_records.py"}


def _new_run(workdir: Path, idx_dir: Path, cli) -> Path:
    args = ["run", "--dataset", "mnist", "--data-dir", idx_dir, "--epochs", "1", *LOCAL_RUN, "--format", "md"]
    code, _out, err = cli(*args, "--models", "lenet5_regularized", "--run-id", "new", "--lang", "ko")
    assert code == 0, err
    return workdir / "runs" / "new"


def _as_format_2(run: Path, folder: Path) -> Path:
    """A copy of `run` as reportgen wrote it before messages: every message as its English text, format 2,
    the manifest's checksums updated to match."""
    old = folder / run.name
    shutil.copytree(run, old)
    changed = [old / archive_layout.DATA_FILE, *old.glob(f"{archive_layout.TRIALS_DIR}/*/{archive_layout.TRIAL_FILE}")]
    for path in changed:
        path.write_bytes(archive_files.json_bytes(english(json.loads(path.read_text("utf-8")))))
    status = json.loads((old / archive_layout.STATUS_FILE).read_text("utf-8"))
    (old / archive_layout.STATUS_FILE).write_bytes(archive_files.json_bytes(status | {"format": 2}))
    manifest = json.loads((old / archive_layout.MANIFEST_FILE).read_text("utf-8"))
    for path in [*changed, old / archive_layout.STATUS_FILE]:
        manifest["files"][path.relative_to(old).as_posix()] = sha256_file(path)
    (old / archive_layout.MANIFEST_FILE).write_bytes(archive_files.json_bytes(manifest))
    return old


@pytest.mark.slow
def test_a_new_run_archives_messages_and_reads_in_korean_as_an_older_run_does(workdir, idx_dir, cli):
    run = _new_run(workdir, idx_dir, cli)
    data = json.loads((run / archive_layout.DATA_FILE).read_text("utf-8"))
    assert data["source"] == {"key": "IDX files in {path}", "values": {"path": str(idx_dir)}}
    trial_file = next(run.glob(f"{archive_layout.TRIALS_DIR}/*/{archive_layout.TRIAL_FILE}"))
    trial = json.loads(trial_file.read_text("utf-8"))
    formulas = [layer["formula"] for layer in trial["audit"]["layers"] if layer["type"].startswith("BatchNorm")]
    assert formulas and all(f["key"] == "{formula} (+{count} running stats, not trainable)" for f in formulas)
    assert "running stats" not in json.dumps([f["values"] for f in formulas])  # the values, not the sentence
    flop_check = trial["audit"]["cost"]["macs"]["flop_counter"]
    assert {entry["why"]["key"] for entry in flop_check["not_checked"]} <= {"no formula for {ops}"}

    old = _as_format_2(run, workdir / "old")
    assert "running stats, not trainable" in (old / trial_file.relative_to(run)).read_text("utf-8")
    documents = {}
    for name, folder in (("new", run), ("old", old)):
        code, _out, err = cli("render", folder, "--output-dir", workdir / f"out-{name}", "--format", "md")
        assert code == 0, err
        documents[name] = (workdir / f"out-{name}" / "new" / "report.md").read_text("utf-8")
    assert "idx의 IDX 파일" in documents["new"] and "이동 평균·분산" in documents["new"]  # paths: their last part
    assert documents["old"] == documents["new"]


@pytest.mark.slow
def test_a_format_1_run_reads_its_english_in_korean(tmp_path, cli):
    run = tmp_path / "runs" / "format1"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_format1", run)
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output", "--format", "md", "--lang", "ko")
    assert code == 0, err
    text = (tmp_path / "output" / "format1" / "report.md").read_text("utf-8")
    assert "— idx의 IDX 파일" in text and "IDX files in" not in text  # recorded as "IDX files in /tmp/fx/idx"
