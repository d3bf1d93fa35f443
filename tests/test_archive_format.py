"""The archive is versioned and read through typed records: runs written before the format key (format 1)
still render, new runs say the current format, a run from a newer reportgen is refused in one line, older trials read
with the defaults of what they lack, and file names are spelled in one place."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import one_error_line

from reportgen.run import archive_layout as layout
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.archive_records import ModelAuditRecord
from reportgen.states import RunState, TrialState

FIXTURE = Path(__file__).parent / "fixtures" / "run_format1"  # written by reportgen before 'format' existed


def copy_fixture(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run)
    return run


def test_the_fixture_is_a_format_1_run():
    status = json.loads((FIXTURE / layout.STATUS_FILE).read_text("utf-8"))
    assert "format" not in status and status["state"] == "complete"
    record = ArchiveReader(FIXTURE).record()
    assert record.format == 1 and record.state is RunState.COMPLETE and record.trial_counts["total"] == 2
    assert ArchiveReader(FIXTURE).verify() == []


def test_a_format_1_trial_reads_as_a_typed_record():
    run = ArchiveReader(FIXTURE)
    trial_id = run.trial_ids()[0]
    info = json.loads((FIXTURE / layout.TRIALS_DIR / trial_id / layout.TRIAL_FILE).read_text("utf-8"))
    record = run.trial_record(trial_id)
    assert record.status is TrialState.COMPLETE and record.label == info["label"]
    assert record.audit.total == info["audit"]["total"]
    # each formula is read as a message, which says in English exactly what the run recorded
    assert [layer | {"formula": str(layer["formula"])} for layer in record.audit.layers] == info["audit"]["layers"]
    assert record.audit.cost["macs"]["total"] == info["audit"]["cost"]["macs"]["total"]
    assert len(record.epochs) == record.config["epochs"] == info["config"]["epochs"]


def test_an_audit_archived_before_costs_and_notes_reads_with_their_defaults():
    """What older runs lack is filled in by ModelAuditRecord.from_dict, the one place that knows it."""
    trial_id = ArchiveReader(FIXTURE).trial_ids()[0]
    info = json.loads((FIXTURE / layout.TRIALS_DIR / trial_id / layout.TRIAL_FILE).read_text("utf-8"))
    older = {k: v for k, v in info["audit"].items() if k not in ("cost", "torchinfo_note", "pruned", "mult_adds")}
    audit = ModelAuditRecord.from_dict(older | {"added_by_a_later_version": 1})
    assert (audit.cost, audit.torchinfo_note, audit.pruned, audit.mult_adds) == (None, "", 0, 0)
    assert audit.parameter_counts == {
        k: info["audit"][k] for k in ("total", "without_bias", "bias", "trainable", "buffers", "torchinfo_total")
    }


def test_a_format_1_run_renders_with_its_numbers(tmp_path, cli):
    run = copy_fixture(tmp_path)
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output", "--format", "html", "--format", "md")
    assert code == 0, err
    expected = {}
    for trial in trials(run):
        info = json.loads((trial / layout.TRIAL_FILE).read_text("utf-8"))
        final = json.loads((trial / layout.METRICS_JSON).read_text("utf-8"))[-1]
        expected[info["label"]] = f"{100 * final['test_acc']:.2f}%"
    assert len(expected) == 2
    for document in ("report.html", "report.md"):
        text = (tmp_path / "output" / "format1" / document).read_text("utf-8")
        for label, accuracy in expected.items():
            assert label in text and accuracy in text, (document, label, accuracy)


@pytest.mark.slow
def test_a_new_run_is_written_in_the_current_format(workdir, idx_dir, cli):
    code, _out, err = cli(
        "run",
        "--dataset",
        "mnist",
        "--data-dir",
        idx_dir,
        "--models",
        "mlp?hidden=[8]",
        "--epochs",
        "1",
        "--run-id",
        "new",
        "--format",
        "md",
    )
    assert code == 0, err
    status = json.loads((workdir / "runs" / "new" / layout.STATUS_FILE).read_text("utf-8"))
    assert status["format"] == layout.ARCHIVE_FORMAT == 3
    assert ArchiveReader(workdir / "runs" / "new").record().format == 3


def test_a_run_from_a_newer_reportgen_is_refused_in_one_line(tmp_path, cli):
    run = copy_fixture(tmp_path)
    status = json.loads((run / layout.STATUS_FILE).read_text("utf-8"))
    newer = layout.ARCHIVE_FORMAT + 1
    (run / layout.STATUS_FILE).write_text(json.dumps(status | {"format": newer}), "utf-8")
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output")
    assert code == 2
    line = one_error_line(err)
    assert f"archive format {newer}" in line and f"formats 1–{layout.ARCHIVE_FORMAT}" in line
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").iterdir())


@pytest.mark.parametrize("written", ["2", 0, True, None])
def test_a_malformed_format_is_refused_in_one_line(tmp_path, cli, written):
    run = copy_fixture(tmp_path)
    status = json.loads((run / layout.STATUS_FILE).read_text("utf-8"))
    (run / layout.STATUS_FILE).write_text(json.dumps(status | {"format": written}), "utf-8")
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output")
    assert code == 2 and f"malformed archive format {written!r}" in one_error_line(err)


def test_the_listing_reads_a_format_1_run_and_names_a_newer_one_unreadable(tmp_path, cli):
    run = copy_fixture(tmp_path)
    newer = tmp_path / "runs" / "newer"
    shutil.copytree(FIXTURE, newer)
    status = json.loads((newer / layout.STATUS_FILE).read_text("utf-8"))
    (newer / layout.STATUS_FILE).write_text(json.dumps(status | {"format": layout.ARCHIVE_FORMAT + 1}), "utf-8")
    code, out, _err = cli("list", "--runs-dir", tmp_path / "runs")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    best = max(json.loads((t / layout.METRICS_JSON).read_text("utf-8"))[-1]["test_acc"] for t in trials(run))
    assert rows[run.name].split()[1] == "complete" and f"{100 * best:.2f}%" in rows[run.name]
    assert rows["newer"].split()[1] == "unreadable"


def trials(run: Path) -> list[Path]:
    return sorted((run / layout.TRIALS_DIR).iterdir())


def test_run_folder_file_names_are_spelled_only_in_the_archive_layout():
    # TRIALS_DIR ("trials") and METRICS_CSV are left out: the report's context and its own output folder
    # use the same words for other things (the context's trial list, the report's metrics.csv).
    names = [
        layout.STATUS_FILE,
        layout.SPEC_FILE,
        layout.ENVIRONMENT_FILE,
        layout.DATA_FILE,
        layout.MANIFEST_FILE,
        layout.TEST_IMAGES,
        layout.TRIAL_FILE,
        layout.METRICS_JSON,
        layout.PREDICTIONS_FILE,
        layout.WEIGHTS_FILE,
        layout.CHECKPOINT_FILE,
        layout.LOCK_FILE,
    ]
    literal = re.compile("|".join(rf"""["']{re.escape(name)}["']""" for name in names))
    package = Path(layout.__file__).resolve().parents[1]
    spelled = {
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.name != "archive_layout.py" and literal.search(p.read_text("utf-8"))
    }
    assert spelled == set()
