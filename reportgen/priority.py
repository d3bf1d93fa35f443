"""The lowest CPU priority for one thread: work that should only use a core nothing else wants.

Imports the standard library alone, so a worker process can use it before reportgen's own imports
(run/worker_start.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading


def lowest_priority_for_this_thread(idle_class: bool = True) -> None:
    """Nice 19 and, if `idle_class`, the idle scheduling class (SCHED_IDLE) for the calling thread alone. Linux
    sets both per thread; elsewhere the call would set the whole process's, which it could not raise again, so
    there it does nothing. Without privileges a thread cannot raise its priority again either: only a thread
    that does nothing else afterwards is lowered.

    Why the idle class: beside a busy process a nice-19 thread still gets 1.5% of that core (its weight 15
    against 1,024; the report's warm-up took 1.2-1.25% of a core all through training, measured from its
    /proc ticks, `reportgen run --epochs 3`); the idle class's weight is 3."""
    if sys.platform == "linux":
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, 19)
        if idle_class:
            with contextlib.suppress(OSError, AttributeError):  # AttributeError: a Python without SCHED_IDLE
                os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
