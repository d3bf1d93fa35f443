"""Files in the current folder are never executed unless a model reference names them: the command, the
report process and the worker processes all start without the current folder on sys.path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires_fashion

# Names a student's folder holds and the standard library uses: random (the report process imported it),
# socket (every spawned worker imported it before multiprocessing restored the parent's sys.path).
SHADOWS = ("random", "socket")
MARKER = """import os, sys
open(os.path.join({folder!r}, "executed-{name}-%d" % os.getpid()), "w").write(" ".join(sys.argv))
raise SystemExit("{name}.py of the current folder was executed")
"""


@pytest.mark.slow
@requires_fashion
def test_a_random_py_in_the_current_folder_is_never_executed(tmp_path: Path):
    for name in SHADOWS:
        (tmp_path / f"{name}.py").write_text(MARKER.format(folder=str(tmp_path), name=name))
    # process executor with one worker: the report process, the command and a spawned worker all start here
    argv = ["run", "--models", "mlp", "--train-subset", "600", "--test-subset", "200", "--epochs", "1"]
    argv += ["--executor", "process", "--workers", "1", "--format", "md"]
    # timeout: on the previous code a crashing worker was replaced forever and the run never ended
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    executed = sorted(p.name for p in tmp_path.glob("executed-*"))
    assert not executed, executed
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "output").glob("*/report.md"))) == 1
