"""One run path for `reportgen run` and `reportgen.compare()`: both build a RunRequest and call `execute`.

It sits above the stages it drives (run/ trains and archives, report/ renders), so every import here points
down the pipeline and none of them back up to it.

`prepare` checks the whole request before torch or the data load (reportgen/run/validation.py): run id,
an existing run of that id (resumed only with its archived settings), model references, checklist,
cover, executor, folders. `execute` then trains — a new run or a resume — on the executor policy's
choice and renders the report, in the warm report process when one is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.cover import merge_cover
from reportgen.errors import ReportgenError, short
from reportgen.experiment import ExperimentSpec
from reportgen.report.checklist import load_checklist
from reportgen.report.documents import RenderOptions, pdf_problem, require_pdf_support
from reportgen.run import validation
from reportgen.run.archive_layout import SPEC_FILE, STATUS_FILE, validate_run_id
from reportgen.run.archive_reading import open_run
from reportgen.run.archive_writing import RunArchive
from reportgen.spec import parse_spec
from reportgen.states import RunState

DEFAULT_WORKERS = min(2, len(os.sched_getaffinity(0)))  # worker processes of the auto/process executors
# Keys that may differ when a request names an existing run: they do not change what is trained.
NOT_TRAINING = ("source", "lang", "max_trials", "cover")


@dataclass(frozen=True)
class RunRequest:
    """What to train and where: a new run of `spec`, or the resume of the run folder `resume` (whose
    archived spec `spec` then is)."""

    spec: ExperimentSpec
    runs_dir: Path = Path("runs")
    output_dir: Path = Path("output")
    run_id: str | None = None
    resume: Path | None = None
    executor: str = "auto"
    workers: int = DEFAULT_WORKERS
    address: str | None = None
    render: RenderOptions = field(default_factory=RenderOptions)
    prepared: bool = False  # checked by `prepare`


@dataclass(frozen=True)
class Outcome:
    run: RunArchive
    report: Path  # the report folder
    partial: bool  # some trials failed: the report is marked as such


def resume_request(path: Path, **options: Any) -> RunRequest:
    """The request that continues the run folder `path` with its archived settings."""
    run = open_run(path)
    archived = parse_spec(run.resolved_spec(), str(run.path / SPEC_FILE))
    return RunRequest(archived, resume=Path(path), **options)


def prepare(request: RunRequest) -> RunRequest:
    """The request checked whole, before torch or the data load; a run id naming an existing run becomes
    that run's resume, refused when the request would change what it trains."""
    if request.prepared:
        return request
    if request.run_id is not None:
        validate_run_id(request.run_id)
    existing = Path(request.runs_dir) / request.run_id if request.run_id else None
    if request.resume is None and existing is not None and (existing / STATUS_FILE).exists():
        request = _as_resume(request, existing)
    validation.check_executor(request.executor, request.workers, request.address)
    executor = validation.executor_for_models(request.spec, request.executor)
    validation.check_models(request.spec)
    check_checklist(request.render.checklist or request.spec.checklist)
    cover = merge_cover(request.spec.cover, request.render.cover)  # checked now; archived with a new run
    if request.resume is None:
        validation.check_folders(request.runs_dir, request.output_dir)
        spec = dataclasses.replace(request.spec, cover=cover)
    else:
        validation.check_inside_run(request.resume, request.output_dir)
        validation.check_folders(None, request.output_dir)
        spec = request.spec
    return dataclasses.replace(request, spec=spec, executor=executor, prepared=True)


def _as_resume(request: RunRequest, existing: Path) -> RunRequest:
    run = open_run(existing)
    archived = parse_spec(run.resolved_spec(), str(run.path / SPEC_FILE))
    differences = settings_differences(archived, request.spec)
    if differences:
        raise ReportgenError(
            f"run id {request.run_id}: {existing} already exists ({run.state()}) and is resumed with its "
            f"archived settings, so these settings are not allowed: {'; '.join(differences)} — drop them "
            "to resume it, or choose another run id"
        )
    return dataclasses.replace(request, spec=archived, resume=existing, run_id=None)


def settings_differences(archived: ExperimentSpec, given: ExperimentSpec) -> list[str]:
    """Settings of `given` that differ from the archived spec (report-only keys aside), at most five."""
    old_spec, new_spec = archived.to_dict(), given.to_dict()
    differences = []
    for key in sorted(old_spec.keys() | new_spec.keys()):
        if key in NOT_TRAINING:
            continue
        old, new = old_spec.get(key), new_spec.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            pairs = [(f"{key}.{k}", old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys())]
        else:
            pairs = [(key, old, new)]
        differences += [f"{name} {short(a)} → {short(b)}" for name, a, b in pairs if a != b]
    return differences[:4] + ([f"… {len(differences) - 4} more"] if len(differences) > 4 else [])


def execute(
    request: RunRequest,
    render: Callable[..., Path] | None = None,
    imports: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    pdf_check: Callable[[], str | None] = pdf_problem,
    fork: bool = False,
) -> Outcome:
    """Prepare, train and render. `render`: render_report's stand-in (the warm report process's), None for
    render_report here; `imports`: held around the import of torch (the command holds a Ctrl-C there);
    `pdf_check`: why the PDF cannot be made here (the warm report process knows once it has started);
    `fork`: this process may be copied to start worker processes (the command's own; see run/executors.py)."""
    request = prepare(request)
    with imports():
        from reportgen.run import runner
        from reportgen.run.executor_choice import choose_executor

    # Asked after torch has loaded, when the report process has long tried WeasyPrint, and before the run
    # folder exists: a machine without Pango learns it now, not after training.
    require_pdf_support(request.render.documents(), pdf_check)

    executor = choose_executor(request.spec, request.executor, request.workers, request.address, fork)
    if request.resume is not None:
        run = runner.resume_experiment(request.resume, executor)
    else:
        # a --checklist given to `run` is archived with the spec: a later render (the grading view) judges it too
        spec = dataclasses.replace(request.spec, checklist=request.render.checklist or request.spec.checklist)
        run = runner.run_experiment(spec, Path(request.runs_dir), request.run_id, executor=executor)
    partial = run.state() == RunState.PARTIAL
    if render is None:
        from reportgen.report.render import render_report as render
    options = dataclasses.replace(request.render, output_root=Path(request.output_dir), allow_incomplete=partial)
    return Outcome(run, render(run.path, options), partial)


def check_checklist(name: str | None) -> None:
    """A checklist readable, each item's check known and called with parameters it takes (load_checklist
    checks them, and its settings' types and ranges) — the render would otherwise fail after every trial."""
    if name is not None:
        load_checklist(name)
