"""Ctrl-C: the first one always stops, whatever the process is doing when it arrives.

Python's default handler raises KeyboardInterrupt wherever the main thread happens to be; when that is a
`__del__` method or a weakref callback (matplotlib, WeasyPrint and torch run many), Python prints
"Exception ignored in: …" and the work goes on (seen: a report process that finished the report it was
told to stop, and a run that trained on). Here the handler also records the request, and the work checks
it at places where raising is safe (every training batch, every wait on a worker), so a swallowed
interrupt is raised again a moment later.

A child process of reportgen's (a training worker, a copy drawing figures) ends when the process that started it
does, killed or not (`die_with_parent`), so none keeps writing into a run or report folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
from collections.abc import Iterator
from types import FrameType

PR_SET_PDEATHSIG = 1  # prctl's option: the signal this process gets when its parent ends


def die_with_parent() -> None:
    """SIGKILL for the calling process when its parent (the thread that started it) ends. Linux alone: elsewhere
    the parent still stops its children when it ends normally."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _Requests:
    stop = False  # a Ctrl-C arrived since ctrl_c_stops() began
    held = False  # inside ctrl_c_after_imports(): record it, raise once the imports are done


_requests = _Requests()


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    _requests.stop = True
    if not _requests.held:
        raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C arrived and was swallowed where it landed. Cheap: call it often."""
    if _requests.stop and not _requests.held:
        raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_stops() -> Iterator[None]:
    """While a command or compare() runs: Ctrl-C is recorded as well as raised. Left alone where the process
    ignores Ctrl-C (a background job), has a handler of its own, or this is not the main thread."""
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    _requests.stop = False
    previous_mask = None
    if ours:
        signal.signal(signal.SIGINT, _on_ctrl_c)
        # A process inherits its parent's blocked signals across exec: started by one that had Ctrl-C blocked
        # (a tool's job runner, a test runner's worker), it would never receive it, and the run trained to
        # the end and exited 0 after a Ctrl-C (tests/test_reliability.py starts a run so).
        previous_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        _requests.stop = False


@contextlib.contextmanager
def ctrl_c_after_imports() -> Iterator[None]:
    """Hold a Ctrl-C until torch has loaded. Interrupted midway, module code of the libraries may swallow
    the KeyboardInterrupt and leave a half-initialised module behind: the run then went on, or failed
    later with an unrelated traceback (measured: a Ctrl-C 0.55 s into a run ended in a pandas KeyError)."""
    if signal.getsignal(signal.SIGINT) is not _on_ctrl_c:  # ctrl_c_stops() is not in charge here
        yield
        return
    _requests.held = True
    try:
        yield
    finally:
        _requests.held = False
    check()


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Block Ctrl-C in this thread while child processes start: they inherit the blocked set, so a Ctrl-C
    meanwhile neither kills one half-started (a traceback from a process still starting Python) nor is lost
    here: it is delivered when this ends."""
    with _held({signal.SIGINT}):
        yield


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Block Ctrl-C and SIGTERM in this thread for a few steps that must not be cut in two (swapping a
    finished report into place); a stop meanwhile is delivered, and acted on, right after."""
    with _held({signal.SIGINT, signal.SIGTERM}):
        yield


@contextlib.contextmanager
def _held(signals: set[signal.Signals]) -> Iterator[None]:
    """`signals` blocked in this thread until the block ends; the previous mask is restored, which delivers
    any that arrived meanwhile."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
