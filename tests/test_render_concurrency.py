"""Two renders of one run at the same time both succeed and leave one whole report folder (issue #14).

A render checks output/<id> before its work (is it absent or a previous report?) and swaps its finished
folder in at the end (rename the old report away, rename the new one in). Both happen under the report's
lock, so no check sees another render's swap half done. The swap takes microseconds, so the two renders
here are not left to chance: they run on a fixed schedule, kept by flag files in a shared folder, that
puts one render's check exactly across the other's swap:

1. The swapping render ("swapper") publishes over a previous report. Holding the lock, just before it
   renames the old report away, it says "swapper-at-swap" and waits until the checking render has either
   looked at output/<id> ("checker-looked") or is waiting for the lock ("checker-blocked").
2. The checking render ("checker") starts its render only then. Its first look that finds output/<id>
   there ("checker-looked") is held until the swapper has renamed the folder away ("swapper-renamed") or is
   itself waiting for the lock ("swapper-blocked").
3. The swapper renames the old report away; if the checker is mid-check, it lets the checker look once more
   ("checker-looked-again") before it renames the new report in.

With the check under the lock the checker waits for the lock in step 1 and checks after the swap. With the
check outside it (the code before e715439) the checker's second look always falls between the two renames
and finds the folder gone: "exists and is not a report folder", exit 2, on every run. Every wait has a
deadline, so a schedule the code does not allow fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
FIXTURE = TESTS / "fixtures" / "run_format1"  # a sealed two-model run, archived by an older reportgen

# One render by the real CLI, in the role argv[4] ("swapper", "checker" or "alone"), with flag files in argv[5].
RENDER = textwrap.dedent(
    """
    import fcntl, pathlib, sys, time

    run, output, role, flags = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])
    final = (output / pathlib.Path(run).name).resolve()
    original = {name: getattr(pathlib.Path, name) for name in ("exists", "is_dir", "is_file", "iterdir", "rename")}

    def say(flag):
        original["exists"](flags / flag) or (flags / flag).touch()

    def wait_for(*wanted):
        deadline = time.monotonic() + 120
        while not any(original["exists"](flags / flag) for flag in wanted):
            if time.monotonic() > deadline:
                sys.exit(f"{role}: the schedule stalled waiting for {' or '.join(wanted)}")
            time.sleep(0.005)
        return next(flag for flag in wanted if original["exists"](flags / flag))

    def flock(file, operation, _flock=fcntl.flock):
        # says "<role>-blocked" when the report's lock is held by the other render, then waits for it
        if operation == fcntl.LOCK_EX and str(getattr(file, "name", "")).endswith(".render-lock"):
            try:
                return _flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"{role}-blocked")
        return _flock(file, operation)

    fcntl.flock = flock

    def checker_looks(name):
        method, looked = original[name], []
        def look(self, *args, **kwargs):
            answer = method(self, *args, **kwargs)
            if self == final and role == "checker":
                if looked == [] and answer:  # the first look that finds the report: the swapper renames it away now
                    looked.append(True)
                    say("checker-looked")
                    wait_for("swapper-renamed", "swapper-blocked")
                elif looked == [True]:
                    looked.append(True)
                    say("checker-looked-again")
            return answer
        return look

    def swapper_renames(self, target):
        if self != final or role != "swapper":
            return original["rename"](self, target)
        say("swapper-at-swap")
        mid_check = wait_for("checker-looked", "checker-blocked") == "checker-looked"
        answer = original["rename"](self, target)
        say("swapper-renamed")
        if mid_check:  # the checker looks again while output/<id> is gone
            wait_for("checker-looked-again", "checker-done")
        return answer

    for name in ("exists", "is_dir", "is_file", "iterdir"):
        setattr(pathlib.Path, name, checker_looks(name))
    pathlib.Path.rename = swapper_renames

    from reportgen.cli import main

    if role == "checker":
        wait_for("swapper-at-swap")
    code = main(["render", run, "--output-dir", str(output), "--format", "md"])
    say(f"{role}-done")
    sys.exit(code)
    """
)


@pytest.mark.slow
def test_two_concurrent_renders_of_one_run_both_succeed_and_leave_one_whole_report(tmp_path):
    run = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run)
    script, flags = tmp_path / "render.py", tmp_path / "flags"
    script.write_text(RENDER, "utf-8")
    flags.mkdir()
    env = os.environ | {"PYTHONPATH": str(TESTS.parent)}

    def render(output: Path, role: str) -> subprocess.Popen:
        command = [sys.executable, str(script), str(run), str(output), role, str(flags)]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    output = tmp_path / "output"
    (output / "format1").mkdir(parents=True)  # a previous report (it has a summary.json), for the swapper to replace
    (output / "format1" / "summary.json").write_text("{}", "utf-8")
    alone = tmp_path / "alone"  # the same run rendered alone: what the two renders must leave
    renders = [render(alone, "alone"), render(output, "swapper"), render(output, "checker")]  # the checker waits
    for process in renders:
        _finish(process)
    flagged = sorted(p.name for p in flags.iterdir())
    # the schedule ran: the checker came to output/<id> while the swapper was about to swap it
    assert "swapper-at-swap" in flagged and {"checker-blocked", "checker-looked"} & set(flagged), flagged

    # one whole report, and nothing of either render's staging or retired folders left beside it
    assert sorted(p.name for p in output.iterdir()) == [".format1.render-lock", "format1"]
    assert _files(output / "format1") == _files(alone / "format1")
    assert _summary(output / "format1") == _summary(alone / "format1")


def _finish(process: subprocess.Popen) -> None:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"{process.args[4]}: exit {process.returncode}\n{out}{err}"


def _summary(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    summary.pop("generated", None)  # the minute it was rendered
    return summary


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
