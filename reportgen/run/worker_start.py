"""The first thing a worker process runs: light on imports, so it can report why the rest failed.

multiprocessing unpickles a worker's initializer before anything else of ours runs in that process; this
module imports only the standard library (and reportgen.stopping, which imports nothing else), so it loads
even where reportgen's own imports would fail (a
broken or shadowed module on the worker's path). It then imports everything a trial needs — before any user
code, so no model file can shadow it — and, if that fails, writes the one-line cause where the driver reads
it and exits. The driver stops the run with that line instead of starting a replacement that fails the same
way (a pool that replaced such workers ran 118 of them in 10 minutes, and not one epoch).

The imports run in a thread at nice 19. Why: the workers start while the driver audits the models and times
their inference, and two workers importing torch._dynamo (1.2 CPU-seconds each) beside that timing on two
cores made it wrong: LeNet-5's 256-image latency came out at a median of 14.2-21.7 ms with an interquartile
range of 4.2-12.9 ms, against 9.6-10.1 ms (0.1-0.4) with this (docs/speed.md). At nice 19 the imports take
1.5% of a core the driver wants; not the idle class, where the report process's warm-up waits: the imports
come first (the first batches 4.30-4.55 s after launch in the idle class, 3.92-4.36 s at nice 19 alone).

A worker that started ends without Python's teardown (`end_without_teardown`): the run waits for its workers
to end before it seals and renders, and a worker that has trained ends in 0.8 s of garbage collection and
module clean-up otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback

from reportgen.priority import lowest_priority_for_this_thread
from reportgen.stopping import die_with_parent

START_FAILED = 3  # the exit code of a worker that could not import what a trial needs
# What a trial needs. torch._dynamo too: every torch optimizer imports it when it is built (1.2 s); a forked
# worker, idle until the driver has audited the models and created the run folder, imports it meanwhile.
NEEDED = ("reportgen.run.executors", "reportgen.run.trial", "torch._dynamo")


def start_worker(error_file: str) -> None:
    """Initializer of every worker: die with the driver, leave Ctrl-C to it, import what trials need."""
    die_with_parent()  # a worker must not outlive a killed driver: it would keep writing into the run folder
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while the driver started us
    # In a thread at nice 19 (this thread, which trains, could not get its priority back), waited for here: the
    # pool hands this worker no trial before its initializer has returned.
    importing = threading.Thread(target=_import_needed, args=(error_file,), name="worker imports")
    importing.start()
    importing.join()
    atexit.register(end_without_teardown)  # registered last, so it runs first


def _import_needed(error_file: str) -> None:
    """NEEDED imported at nice 19; if that fails, the one-line cause for the driver, and the end of this
    process."""
    lowest_priority_for_this_thread(idle_class=False)  # ahead of the report's warm-up, which is in the idle class
    try:
        for name in NEEDED:
            importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 — whatever it is, the driver must hear it in one line
        with open(error_file, "a", encoding="utf-8") as out:
            out.write(start_error(exc) + "\n")
        os._exit(START_FAILED)


def end_without_teardown() -> None:
    """At a worker's exit, flush its output and end the process at once.

    Why: the driver waits for its workers to end before it seals the run and renders the report, and a worker
    that trained spent 0.8 s there tearing down torch's modules and objects (measured: the pool's shutdown
    0.82 s, 0.05 s with this). Nothing of the run is left to write at that point: a trial's files are written
    and closed before its result is returned, and the pool's result queue writes synchronously. The exit code is
    0: past start_worker, the pool's shutdown is how a worker ends through Python's exit; one that is killed or
    terminated (the driver stopping the run), or that could not start, never gets here.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def start_error(exc: BaseException) -> str:
    """`ImportError: cannot import name 'fmean' from 'statistics' (/home/me/statistics.py)`, plus the file
    where it was raised when the message does not name one."""
    line = " ".join(f"{type(exc).__name__}: {exc}".split())
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].filename not in line:
        line += f" (in {frames[-1].filename}, line {frames[-1].lineno})"
    return line
