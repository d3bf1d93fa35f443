"""The reader interface (issue 34): one archived run (ArchiveReader) and several read as one (CombinedRun) both
answer every member of RunReader, on run folders made by two tiny real runs; the report is typed against the
interface, not against either class.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import idx_run_args

from reportgen.report.combine import CombinedRun
from reportgen.run.archive_reading import ArchiveReader, RunReader, open_run
from reportgen.run.archive_records import RunRecord, TrialRecord
from reportgen.states import RunState

pytestmark = pytest.mark.slow  # trains two runs through the CLI

REPORT = Path(__file__).resolve().parents[1] / "reportgen" / "report"


def protocol_members() -> set[str]:
    """What RunReader lists: its attributes and its public methods and properties."""
    methods = {name for name, value in vars(RunReader).items() if callable(value) or isinstance(value, property)}
    return set(RunReader.__annotations__) | {name for name in methods if not name.startswith("_")}


def check_member(reader: RunReader, name: str) -> None:
    """Call the member as the report does and check what it answers, so a stub left unimplemented (it returns
    None) fails here."""
    trial_id = reader.trial_ids()[0]
    checks = {
        "run_id": lambda: isinstance(reader.run_id, str) and reader.run_id,
        "path": lambda: isinstance(reader.path, Path),
        "runs": lambda: reader.runs and all(isinstance(run, ArchiveReader) for run in reader.runs),
        "origin": lambda: reader.origin(trial_id) in reader.runs,
        "read": lambda: all(isinstance(reader.read(name), dict) for name in ("spec", "environment", "data")),
        "record": lambda: isinstance(reader.record(), RunRecord) and reader.record().state == RunState.COMPLETE,
        "trial_ids": lambda: reader.trial_ids() and all(isinstance(t, str) for t in reader.trial_ids()),
        "trial": lambda: reader.trial(trial_id)["label"] == "mlp" and reader.trial(trial_id)["epochs"],
        "predictions": lambda: reader.predictions(trial_id) and "prediction" in reader.predictions(trial_id)[0],
        "verify": lambda: reader.verify() == [],
        "trial_record": lambda: isinstance(reader.trial_record(trial_id), TrialRecord),
        "trial_records": lambda: [r.trial_id for r in reader.trial_records()] == reader.trial_ids(),
    }
    assert set(checks) == protocol_members(), "a RunReader member without a check here"
    assert checks[name](), name


@pytest.fixture
def two_runs(workdir, idx_dir, cli) -> list[ArchiveReader]:
    for run_id, seed in (("a", "1"), ("b", "2")):
        code, _out, err = cli("run", *idx_run_args(idx_dir), "--models", "mlp", "--seed", seed, "--run-id", run_id)
        assert code == 0, err
    return [open_run(workdir / "runs" / run_id) for run_id in ("a", "b")]


def test_an_archived_run_and_combined_runs_answer_every_member_of_the_reader(two_runs):
    combined = CombinedRun(two_runs)
    for reader in (two_runs[0], combined):
        assert RunReader in type(reader).__mro__
        for name in sorted(protocol_members()):
            check_member(reader, name)
    assert combined.trial_ids() == ["000-a-mlp", "001-b-mlp"]
    assert [combined.origin(t).run_id for t in combined.trial_ids()] == ["a", "b"]
    assert combined.trial_record("001-b-mlp").config["seed"] == 2


def test_the_report_names_the_reader_not_the_archive_classes():
    """report/ reads a run through RunReader (or, for one archived run, ArchiveReader): it never names the
    writer, and never imports from the archive's writing side."""
    writer = re.compile(r"\bRunArchive\b|archive_writing")
    named = sorted(path.name for path in REPORT.glob("*.py") if writer.search(path.read_text("utf-8")))
    assert named == []
