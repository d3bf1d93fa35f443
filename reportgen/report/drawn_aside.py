"""Figures drawn in a copy of this process while this process draws the others: two cores for a report's figures.

Why: `reportgen run` renders once training has ended, with both cores free, and drawing the figures took 1.7 s
of the default report's 6 s render on one core: the galleries (contact sheets and confusion matrices) 0.73 s,
the rest 0.95 s. A forked copy draws the galleries meanwhile. The copy draws with the same code on the same
analysis, into the same folder, so every file is the one this process would have written (tested byte for
byte); it hands back only the galleries' file names.

Only where this process may be copied (`allow`): the report process of `reportgen run` (report/worker.py),
whose own threads have ended when it renders. A notebook kernel, a user's script or the command rendering in
its own process draws everything itself, in order. If the copy cannot start or does not hand back its result
(killed, out of memory, an error), this process draws that part itself, so any error is raised here as it
would be without the copy. A render stopped by the command (SIGTERM) ends its copies first (`stop_copies`),
so none writes into the staging folder being removed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from reportgen.stopping import die_with_parent

T = TypeVar("T")

_allowed = False
_copies: set[int] = set()  # the pids of copies still drawing


def allow() -> None:
    """This process may be copied to draw figures: called by the report process, and nowhere else."""
    global _allowed
    _allowed = sys.platform == "linux"


class Drawing(Generic[T]):
    """`work`'s result, computed in a copy of this process started by `drawn_aside`, or here."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._pid: int | None = None
        self._pipe: int | None = None

    def start(self) -> None:
        if not _allowed:
            return
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the copy: draw, hand the result back, end without Python's teardown
            os.close(read)
            _draw_in_copy(self._work, write)
        os.close(write)
        self._pid, self._pipe = pid, read
        _copies.add(pid)

    @property
    def aside(self) -> bool:
        """A copy is drawing it (else `result()` runs the work here)."""
        return self._pid is not None

    def result(self) -> T:
        """The copy's result once it has ended; `work` run here where there is none."""
        if self._pid is None or self._pipe is None:
            return self._work()
        with os.fdopen(self._pipe, "rb") as answer:
            handed = answer.read()
        _, status = os.waitpid(self._pid, 0)
        _copies.discard(self._pid)
        if os.waitstatus_to_exitcode(status) == 0 and handed:
            return pickle.loads(handed)
        return self._work()  # the copy failed: draw here, where an error is raised as the user should see it


def _draw_in_copy(work: Callable[[], object], write: int) -> None:
    try:
        die_with_parent()  # even when the report process is killed
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the report process's handler, which removes folders
        result = pickle.dumps(work())
        with os.fdopen(write, "wb") as out:
            out.write(result)
        code = 0
    except BaseException:  # noqa: BLE001 — the parent draws this part again and raises the error there
        code = 1
    finally:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


@contextlib.contextmanager
def drawn_aside(work: Callable[[], T]) -> Iterator[Drawing[T]]:
    """Inside, `work` runs in a copy of this process where `allow` was called (else at `result()`, here); leaving
    on an error stops the copy, so nothing it draws lands after its caller has given up."""
    drawing = Drawing(work)
    drawing.start()
    try:
        yield drawing
    except BaseException:
        stop_copies()
        raise


def stop_copies() -> None:
    """End every copy still drawing, and reap it: called before a stopped render removes its staging folder."""
    for pid in list(_copies):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        _copies.discard(pid)
