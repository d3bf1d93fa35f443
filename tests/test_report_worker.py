"""The warm report process of `reportgen run` (report/worker.py): it renders the same report render_report
writes in-process, from its own process; a user's mistake comes back as the same one-line error; a process
that cannot start leaves the report to the command; and a command that ends without a report leaves neither
a process nor a half-written report behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import as_in_a_terminal, idx_run_args, thread_priorities, write_idx_dataset
from test_archive_format import copy_fixture

from reportgen.errors import ReportgenError
from reportgen.report.documents import RenderOptions
from reportgen.report.render import render_report
from reportgen.report.worker import ReportProcess

# run in a fresh interpreter: whether this process imported the report stack is then its own business
IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from reportgen.report.documents import RenderOptions
from reportgen.report.worker import ReportProcess
with ReportProcess() as reports:
    path = reports.render(sys.argv[1], RenderOptions(Path(sys.argv[2]), formats=("html", "pdf", "md")))
print(json.dumps({"path": str(path), "imported here": sorted(
    m for m in ("matplotlib", "weasyprint", "jinja2", "reportgen.report.render") if m in sys.modules)}))
"""


def _documents(folder: Path) -> dict[str, object]:
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    summary.pop("generated", None)
    return {
        "summary": summary,
        "metrics.csv": (folder / "metrics.csv").read_bytes(),
        "figures": sorted(p.name for p in (folder / "figures").iterdir()),
        "pdf pages": (folder / "report.pdf").read_bytes().count(b"/Type /Page\n"),
    }


@pytest.mark.slow
def test_the_warm_process_renders_the_report_render_report_writes_and_the_command_imports_no_report_stack(
    tmp_path,
):
    run = copy_fixture(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS, str(run), str(tmp_path / "warm")],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["imported here"] == [], "the report was drawn in the command's own process"
    here = render_report(run, RenderOptions(tmp_path / "here"))
    assert Path(answer["path"]) == tmp_path / "warm" / run.name
    assert _documents(Path(answer["path"])) == _documents(here)
    assert (Path(answer["path"]) / "report.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_a_mistake_found_while_rendering_comes_back_as_the_same_error(tmp_path):
    run = copy_fixture(tmp_path)
    with pytest.raises(ReportgenError) as here:
        render_report(run, RenderOptions(tmp_path / "here", checklist="no-such-checklist"))
    with ReportProcess() as reports, pytest.raises(ReportgenError) as warm:
        reports.render(run, RenderOptions(tmp_path / "warm", checklist="no-such-checklist"))
    assert str(warm.value) == str(here.value) and "no-such-checklist" in str(warm.value)
    # nothing but what the in-process render leaves too (its lock file): no report, no staging folder
    assert sorted(p.name for p in (tmp_path / "warm").iterdir()) == sorted(
        p.name for p in (tmp_path / "here").iterdir()
    )


def test_a_process_that_cannot_start_leaves_the_report_to_the_command(tmp_path):
    run = copy_fixture(tmp_path)
    for command in ([sys.executable, "-c", "import sys; sys.exit(3)"], [str(tmp_path / "no-such-python")]):
        with ReportProcess(command) as reports:
            path = reports.render(run, RenderOptions(tmp_path / "out", formats=("html",)))
        assert (path / "report.html").is_file()


def test_a_process_that_dies_while_rendering_is_an_error_not_a_silent_success(tmp_path):
    run = copy_fixture(tmp_path)
    ready = f"{json.dumps({'pdf_problem': None})}\n{json.dumps({'ready': True})}"
    dies = [sys.executable, "-c", f"print({ready!r}, flush=True); import sys; sys.stdin.readline(); sys.exit(1)"]
    with ReportProcess(dies) as reports, pytest.raises(RuntimeError, match="stopped .exit 1. before answering"):
        reports.render(run, RenderOptions(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_process_tells_whether_the_pdf_can_be_made_before_it_is_warm(tmp_path):
    """Its first line answers the command's question before training; a process that then ends without being
    ready leaves the report to the command, which still renders it."""
    says = [sys.executable, "-c", 'print(\'{"pdf_problem": "no Pango here"}\', flush=True)']
    run = copy_fixture(tmp_path)
    with ReportProcess(says) as reports:
        assert reports.pdf_problem() == "no Pango here"  # the process's finding, not this machine's
        out = reports.render(run, RenderOptions(tmp_path / "out", formats=("md",)))
    assert (out / "report.md").is_file()
    with ReportProcess([sys.executable, "-c", "pass"]) as silent:
        assert silent.pdf_problem() is None  # said nothing: this process looks, and WeasyPrint loads here


@pytest.mark.skipif(sys.platform != "linux", reason="the priority is set per thread on Linux alone")
def test_the_warm_up_runs_at_the_lowest_priority_and_the_process_itself_does_not():
    """Issue #38: the warm-up yields the cores to the trials' processes; the thread that renders keeps the
    command's priority (a process cannot raise its own priority again once lowered)."""
    with ReportProcess() as reports:
        assert reports.pdf_problem() is None  # the warm-up starts once this line is out
        pid = reports._process.pid
        seen: set[tuple[int, int]] = set()
        meek = (19, os.SCHED_IDLE)
        deadline = time.monotonic() + 10  # the warm-up takes seconds (scikit-learn, the fonts): seen meanwhile
        while meek not in seen and time.monotonic() < deadline:
            threads = thread_priorities(pid)
            # the main thread, as this process
            assert threads.pop(pid) == (os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0))
            seen.update(threads.values())
            time.sleep(0.005)
        assert meek in seen  # the warm-up thread: nice 19 in the idle scheduling class


def _workers_of(pid: int) -> list[str]:
    """Report processes whose parent is `pid` (or that were orphaned by it and adopted by init)."""
    listing = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if "reportgen.report.worker" in line and f" {pid} " in f" {line} "]


def _first_workers(process: subprocess.Popen, timeout: float = 60) -> list[str]:
    """The command's report processes, as soon as there are any (or [] once the command has ended)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if started := _workers_of(process.pid):
            return started
        time.sleep(0.01)
    return []


BAD_FORWARD = """from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(784, 10)

    def forward(self, x):
        raise RuntimeError("not written yet")
"""


@pytest.mark.slow  # a `reportgen run` subprocess that imports torch
def test_a_run_that_fails_before_its_report_stops_the_report_process(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx")
    # a forward that raises: found by the pre-flight, after torch loads (an unwritable output folder, the
    # example before, is now refused before the report process starts)
    (tmp_path / "bad.py").write_text(BAD_FORWARD, "utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "reportgen", "run", "--models", "bad.py:Net", *map(str, idx_run_args(idx))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = _first_workers(process)  # the report process is started before torch is imported
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "forward" in err and "Traceback" not in err, err
    assert started, "no report process was started beside the run"
    leftover = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    pids = {line.split()[0] for line in started}
    assert not [line for line in leftover.splitlines() if line.split()[0] in pids], leftover


@pytest.mark.slow  # a report process that renders a report
def test_an_interrupt_while_the_report_is_written_leaves_no_half_written_report(tmp_path):
    """SIGTERM (what the command sends when it is interrupted) unwinds the render: the staging folder goes."""
    run = copy_fixture(tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-m", "reportgen.report.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert json.loads(worker.stdout.readline()) == {"pdf_problem": None}  # the PDF can be made here
    assert json.loads(worker.stdout.readline()) == {"ready": True}
    worker.stdin.write(json.dumps({"run": str(run), "options": RenderOptions(tmp_path / "out").to_json()}) + "\n")
    worker.stdin.flush()
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").glob(".*.partial/figures/*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 130 and "Traceback" not in err, err
    assert [name for name in os.listdir(tmp_path / "out") if not name.endswith(".render-lock")] == []


@pytest.mark.slow
@pytest.mark.parametrize("when", ["while the report process warms up", "after the first epoch"])
def test_ctrl_c_in_a_terminal_stops_both_processes_with_one_message_and_no_traceback(tmp_path, when):
    """A terminal's Ctrl-C goes to the whole process group: the command and its report process both get it."""
    idx = write_idx_dataset(tmp_path / "idx", n_train=4000, n_test=100)
    command = [sys.executable, "-m", "reportgen", "run", "--models", "lenet5", "--run-id", "stopped"]
    command += map(str, idx_run_args(idx, epochs=20))
    process = subprocess.Popen(
        as_in_a_terminal(command),  # Ctrl-C handled as in a terminal even where this test's process ignores it
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    deadline = time.monotonic() + 120
    metrics = tmp_path / "runs" / "stopped" / "trials" / "000-lenet5" / "metrics.json"
    while time.monotonic() < deadline:
        started = _workers_of(process.pid)
        if started and (when.startswith("while") or (metrics.exists() and json.loads(metrics.read_text() or "[]"))):
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert err.count("interrupted") == 1, err
    # no grace period: the command waits for its report process before it exits, so that process is gone by
    # now; one still listed (if only as <defunct>) was never waited for, and in a container may never be
    leftover = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    pids = {line.split()[0] for line in started}
    assert not [line for line in leftover.splitlines() if line.split()[0] in pids], leftover
