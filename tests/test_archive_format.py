"""The archive is versioned: runs written before the format key (format 1) still render, new runs say
format 2, a run from a newer reportgen is refused in one line, and file names are spelled in one place."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from conftest import one_error_line

from reportgen.run import archive

FIXTURE = Path(__file__).parent / "fixtures" / "run_format1"  # written by reportgen before 'format' existed


def copy_fixture(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run)
    return run


def test_the_fixture_is_a_format_1_run():
    status = json.loads((FIXTURE / archive.STATUS_FILE).read_text("utf-8"))
    assert "format" not in status and status["state"] == "complete"
    assert archive.RunArchive(FIXTURE).format() == 1 and archive.RunArchive(FIXTURE).verify() == []


def test_a_format_1_run_renders_with_its_numbers(tmp_path, cli):
    run = copy_fixture(tmp_path)
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output", "--format", "html", "--format", "md")
    assert code == 0, err
    expected = {}
    for trial in sorted((run / archive.TRIALS_DIR).iterdir()):
        info = json.loads((trial / archive.TRIAL_FILE).read_text("utf-8"))
        final = json.loads((trial / archive.METRICS_JSON).read_text("utf-8"))[-1]
        expected[info["label"]] = f"{100 * final['test_acc']:.2f}%"
    assert len(expected) == 2
    for document in ("report.html", "report.md"):
        text = (tmp_path / "output" / "format1" / document).read_text("utf-8")
        for label, accuracy in expected.items():
            assert label in text and accuracy in text, (document, label, accuracy)


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
    status = json.loads((workdir / "runs" / "new" / archive.STATUS_FILE).read_text("utf-8"))
    assert status["format"] == archive.ARCHIVE_FORMAT == 2


def test_a_run_from_a_newer_reportgen_is_refused_in_one_line(tmp_path, cli):
    run = copy_fixture(tmp_path)
    status = json.loads((run / archive.STATUS_FILE).read_text("utf-8"))
    (run / archive.STATUS_FILE).write_text(json.dumps(status | {"format": 3}), "utf-8")
    code, _out, err = cli("render", run, "--output-dir", tmp_path / "output")
    assert code == 2
    line = one_error_line(err)
    assert "archive format 3" in line and "formats 1–2" in line
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").iterdir())


def test_run_folder_file_names_are_spelled_only_in_the_archive_module():
    names = [
        archive.STATUS_FILE,
        archive.MANIFEST_FILE,
        archive.TEST_IMAGES,
        archive.TRIAL_FILE,
        archive.METRICS_JSON,
        archive.PREDICTIONS_FILE,
        archive.WEIGHTS_FILE,
        archive.CHECKPOINT_FILE,
    ]
    literal = re.compile("|".join(rf"""["']{re.escape(name)}["']""" for name in names))
    package = Path(archive.__file__).resolve().parents[1]
    spelled = {
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.name != "archive.py" and literal.search(p.read_text("utf-8"))
    }
    assert spelled == set()
