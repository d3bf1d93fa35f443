"""A report process started beside training, so the report stack is imported and warm when the run ends.

`reportgen run` spends seconds before its first epoch importing torch, and a tiny run then spent as long
again importing matplotlib, Jinja2 and WeasyPrint and loading their fonts, one after the other on one
core. The process here does that second part on the other core while torch loads: started first, it
imports and warms up, then waits on its stdin for one render request (render_report's run and
RenderOptions as a JSON line) and answers on its stdout with the report folder, or the one-line error the
user would have seen. The report is the same one render_report writes in-process; it is read from the
archive alone, so nothing but the run folder's path crosses the pipe.

If the process cannot start or dies before it is ready, the report is rendered in this process instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Self

from reportgen.errors import ReportgenError
from reportgen.isolation import python_command
from reportgen.priority import lowest_priority_for_this_thread
from reportgen.report import drawn_aside
from reportgen.report.documents import RenderOptions, pdf_problem
from reportgen.stopping import ctrl_c_held

# -P: not `python -m` alone, which would import a random.py of the current folder (reportgen/isolation.py)
COMMAND = python_command("-m", "reportgen.report.worker")


class ReportProcess:
    """The warm report process of one command (command None: none, reports are rendered here). Use as a
    context manager: leaving it ends the process."""

    def __init__(self, command: Sequence[str] | None = COMMAND) -> None:
        self._process: subprocess.Popen | None = None
        self._answered = False
        # What it says, in order, once read: {"pdf_problem": str | None} as soon as it has tried WeasyPrint
        # (the command asks before training), then {"ready": true} once warm. {} where it said nothing.
        self._lines: list[dict[str, Any]] = []
        if command is None:
            return
        # The process is started with Ctrl-C blocked (a terminal sends it to the whole process group, and a
        # child inherits the blocked set): the command alone handles it and then stops this process
        # (SIGTERM), so the user sees one message and never a traceback from a process interrupted while
        # it was still starting Python. Blocked, not ignored, here: a Ctrl-C meanwhile waits, is not lost.
        try:
            with ctrl_c_held():
                # stderr is shared: a warning the render prints reaches the user as it would in-process
                self._process = subprocess.Popen(
                    list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
                )
        except OSError:
            self._process = None
        except BaseException:  # a Ctrl-C held while it started: stop and reap it, or it outlives the command
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def render(self, run: Path | list, options: RenderOptions) -> Path:
        """render_report(run, options) in the warm process, or here if that process is not there."""
        if not self._ready():
            return _render_here(run, options)
        assert self._process is not None and self._process.stdin is not None and self._process.stdout is not None
        runs = [str(path) for path in run] if isinstance(run, list) else str(run)
        self._process.stdin.write(json.dumps({"run": runs, "options": options.to_json()}) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        self._answered = bool(answer)
        if not answer:  # it crashed mid-render; its traceback is on stderr already
            raise RuntimeError(f"the report process stopped (exit {self._process.wait()}) before answering")
        reply = json.loads(answer)
        if "error" in reply:
            raise ReportgenError(reply["error"])
        return Path(reply["path"])

    def pdf_problem(self) -> str | None:
        """Why the PDF cannot be made on this machine, or None: the process's finding, or this process's."""
        status = self._line(0)
        return status["pdf_problem"] if "pdf_problem" in status else pdf_problem()

    def _ready(self) -> bool:
        """Waits for the process's warm-up; False when it is gone (could not import, or was killed)."""
        return self._line(1).get("ready") is True

    def _line(self, index: int) -> dict[str, Any]:
        """The process's line `index` (0: PDF status, 1: ready), read once; {} once it has ended."""
        while len(self._lines) <= index:
            self._lines.append(self._read() if not self._lines or self._lines[-1] else {})
        return self._lines[index]

    def _read(self) -> dict[str, Any]:
        """The process's next line as JSON; {} when it has ended (or never started)."""
        if self._process is None or self._process.stdout is None:
            return {}
        try:
            return json.loads(self._process.stdout.readline() or "{}")
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        """End of the command. A process that answered exits by itself; any other (the run failed or was
        interrupted before its report, or during it) is stopped: it removes its unfinished report and exits."""
        process, self._process = self._process, None
        if process is None:
            return
        if not self._answered:
            process.terminate()
        try:
            process.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # it died already: nothing to tell it
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def warm_report_process() -> ReportProcess:
    """A warm report process for a command about to train, when this process would import the report
    stack cold; where it is imported already (a second run in one Python session) rendering stays here."""
    return ReportProcess(None if "reportgen.report.render" in sys.modules else COMMAND)


def _render_here(run: Path | list, options: RenderOptions) -> Path:
    from reportgen.report.render import render_report

    return render_report(run, options)


def _warm_up(pdf: bool) -> None:
    """Import the report stack and lay out one small styled page (if the PDF can be made here) and figure,
    which loads the fonts (fontconfig for WeasyPrint, matplotlib's font list) the first real report would.
    scikit-learn (the per-class F1) is imported here too: 1-2 s that a render after training would wait for."""
    from reportgen.report import figure_style, quality, render  # noqa: F401 (quality: imported to be warm)

    if pdf:
        import weasyprint

        css = render.TEMPLATES.joinpath("report.css").read_text("utf-8")
        page = f"<style>{css}</style><h1>Report 보고서</h1><table><tr><td>1</td></tr></table>"
        weasyprint.HTML(string=page).write_pdf(io.BytesIO())
    figure_style.warm_up()


def _warm_up_meekly(pdf: bool) -> None:
    """_warm_up in a thread of the lowest CPU priority, waited for here. The warm-up is 3 CPU-seconds that the
    trials' processes want while they start and train on every core; at the lowest priority it is done mostly
    on the core left idle when the last trial runs alone, before the report is wanted. The render itself runs
    in this thread, at the priority the command has."""
    with ThreadPoolExecutor(1, "report warm-up", initializer=lowest_priority_for_this_thread) as thread:
        thread.submit(_warm_up, pdf).result()


def _serve(replies: IO[str]) -> int:
    try:
        # WeasyPrint first (half a second), so the command hears whether the PDF can be made before it has
        # imported torch, and does not wait for the rest of the warm-up.
        problem = pdf_problem()
        print(json.dumps({"pdf_problem": problem}), file=replies, flush=True)
        _warm_up_meekly(pdf=problem is None)
    except Exception:  # noqa: BLE001  (the command renders in its own process instead, and shows the error there)
        return 1
    print(json.dumps({"ready": True}), file=replies, flush=True)
    request = sys.stdin.readline()
    if not request:  # the command ended without a report (an error, or nothing to render)
        return 0
    asked = json.loads(request)
    options = RenderOptions.from_json(asked["options"])
    _Rendering.output_root = Path(options.output_root).resolve()
    try:
        reply = {"path": str(_render_here(asked["run"], options))}
    except ReportgenError as exc:
        reply = {"error": str(exc)}
    print(json.dumps(reply), file=replies, flush=True)
    return 0


class _Rendering:
    output_root: Path | None = None  # where the render in progress stages its folder


def _stopped(signum: int, frame: object) -> None:
    """Stopped by the command: remove this process's staging folder and exit 130, from the handler itself.
    Raising KeyboardInterrupt instead could land in a weakref callback or __del__, where Python swallows it
    and the render went on to publish the report it was told to drop (seen in 1 of 2 full test runs)."""
    drawn_aside.stop_copies()  # a copy drawing figures must not write into the folder removed next
    if _Rendering.output_root is not None:  # render.py names staging folders .<run>.<pid>-<hex>.partial
        for folder in _Rendering.output_root.glob(f".*.{os.getpid()}-*.partial"):
            shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(130)


def main() -> None:
    # Stopped by the command (SIGTERM; Ctrl-C is blocked, see ReportProcess): no staging folder is left behind.
    signal.signal(signal.SIGTERM, _stopped)
    drawn_aside.allow()  # this process's own threads have ended when it renders: it may be copied to draw
    # Replies go on the original stdout; anything else that writes to stdout (a library's print) is sent
    # to stderr, so it can never be mistaken for a reply.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        code = _serve(replies)
    except KeyboardInterrupt:  # the command reports the interrupt, once
        code = 130
    except BrokenPipeError:  # the command is gone
        code = 1
    # The report is published (render_report closed every file it wrote) and the answer sent: end now.
    # The interpreter's own shutdown would tear down matplotlib and WeasyPrint for ~0.4 s while the
    # command waits for this process.
    with contextlib.suppress(OSError):  # BrokenPipeError: the command is gone, nobody to tell
        sys.stdout.flush()
        sys.stderr.flush()
        replies.close()
    os._exit(code)


if __name__ == "__main__":
    main()
