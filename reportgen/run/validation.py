"""Checks of a run's inputs that need neither torch nor the data: run by `reportgen run` and `compare()`
before either loads, so a mistake costs a fraction of a second and leaves nothing under runs/ or output/.

Each check raises a ReportgenError whose message is the one line the user sees.
"""

from __future__ import annotations

import os
from pathlib import Path

from reportgen.errors import ReportgenError, SpecError
from reportgen.experiment import ExperimentSpec
from reportgen.models.registry import is_in_memory
from reportgen.models.sources import check_reference
from reportgen.run.archive_layout import check_writable

EXECUTORS = ("auto", "local", "process", "ray")


def check_executor(executor: str, workers: int, address: str | None) -> None:
    """The executor policy's arguments (reportgen.run.executor_choice.choose_executor applies them)."""
    if executor not in EXECUTORS:
        raise ReportgenError(f"executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ReportgenError(f"workers: expected an integer ≥ 1, got {workers!r}")
    if address and executor != "ray":
        raise ReportgenError(f"address {address!r} (--address) needs executor 'ray' (--executor ray)")


def executor_for_models(spec: ExperimentSpec, executor: str) -> str:
    """Models handed over as Python objects (a notebook's classes) cannot be pickled into worker processes:
    they train in this process, and an executor that would send them elsewhere is refused."""
    if not any(is_in_memory(model.ref) for model in spec.models):
        return executor
    if executor not in ("auto", "local"):
        raise SpecError(
            f"executor {executor!r} cannot train models defined in this Python session (worker processes "
            "cannot import them); use executor 'local', or name them as 'file.py:Class'"
        )
    return "local"


def check_models(spec: ExperimentSpec) -> None:
    """Every model reference names something, judged from source text (a misspelt name says "did you mean")."""
    for model in spec.models:
        check_reference(model.ref)


def check_folders(runs_dir: Path | None, output_dir: Path) -> None:
    """Both folders writable, and the reports outside the runs folder (`reportgen list` and resume read
    every folder there as a run). `runs_dir` None: a resume, which writes into its existing run folder."""
    output = Path(os.path.abspath(output_dir))
    if runs_dir is not None:
        runs = Path(os.path.abspath(runs_dir))
        if output.is_relative_to(runs):
            raise ReportgenError(
                f"output folder {output_dir} is inside the runs folder {runs_dir}: reports and runs need "
                "separate folders (e.g. --output-dir output)"
            )
        check_writable(runs)
    check_writable(output)


def check_inside_run(run: Path, output_dir: Path) -> None:
    """A resumed run's report is not written into the run folder it reads (its manifest would not match)."""
    if Path(os.path.abspath(output_dir)).is_relative_to(Path(os.path.abspath(run))):
        raise ReportgenError(f"output folder {output_dir} is inside the run folder {run}; choose another")
