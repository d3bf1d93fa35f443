"""Two renders of one run at the same time both succeed and leave one whole report folder (issue #14).

A render checks output/<id> before its work (is it absent or a previous report?) and swaps its finished
folder in at the end. Both happen under the report's lock, so no check sees another render's swap half
done. The swap takes microseconds, so each render here runs on a slowed file system: every look at or
rename of output/<id> waits a moment first (the same calls, in the same order, only slower), which makes
one render's check and the other's swap overlap in some iterations. With the check outside the lock (the
code before this test) it failed in about half of its runs: a check saw the folder vanish between two of
its calls ("exists and is not a report folder", or a FileNotFoundError traceback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).parent
FIXTURE = TESTS / "fixtures" / "run_format1"  # a sealed two-model run, archived by an older reportgen
ITERATIONS = 6  # renders per process

# Runs in each render process: the slowed file system, then the real CLI's render, ITERATIONS times.
RENDERS = textwrap.dedent(
    """
    import pathlib, random, sys, time

    run, output, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    report = str(pathlib.Path(output).resolve())
    # seconds before each file-system call on the output folder: a look (exists, is_dir, ...) or a rename,
    # which the longer wait keeps the report folder away longer while a render swaps it; random, so the
    # two renders' calls interleave differently in each iteration
    WAIT = {"rename": 0.6}

    def slowed(method):
        def wrapper(self, *args, **kwargs):
            if str(self).startswith(report) or any(str(a).startswith(report) for a in args):
                time.sleep(random.uniform(0, WAIT.get(method.__name__, 0.3)))
            return method(self, *args, **kwargs)
        return wrapper

    for name in ("exists", "is_dir", "is_file", "is_symlink", "iterdir", "rename"):
        setattr(pathlib.Path, name, slowed(getattr(pathlib.Path, name)))

    from reportgen.cli import main

    for _ in range(iterations):
        code = main(["render", run, "--output-dir", output, "--format", "md"])
        if code:
            sys.exit(code)
    """
)


def test_two_concurrent_renders_of_one_run_both_succeed_and_leave_one_whole_report(tmp_path):
    run = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run)
    output = tmp_path / "output"
    script = tmp_path / "renders.py"
    script.write_text(RENDERS, "utf-8")
    env = os.environ | {"PYTHONPATH": str(TESTS.parent)}

    def renders(folder: Path, iterations: int) -> list[str]:
        return [sys.executable, str(script), str(run), str(folder), str(iterations)]

    processes = [
        subprocess.Popen(
            renders(output, ITERATIONS), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)  # started together
    ]
    results = [(process.wait(timeout=600), process.stderr.read()) for process in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()
    for code, err in results:
        assert code == 0, err

    # one whole report, and nothing of either render's staging or retired folders left beside it
    report = output / "format1"
    assert sorted(p.name for p in output.iterdir()) == [".format1.render-lock", "format1"]
    single = tmp_path / "single"  # the same run rendered alone
    subprocess.run(renders(single, 1), env=env, check=True, capture_output=True)
    assert _files(report) == _files(single / "format1")
    assert (report / "summary.json").read_text("utf-8") == (single / "format1" / "summary.json").read_text("utf-8")
    shutil.rmtree(single)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
