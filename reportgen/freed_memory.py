"""Keep freed memory in the training process for the next batch, instead of handing it back to the system.

Why: a training step of LeNet-5 allocates and frees tensors of 1.2 MB (64 × 6 × 28 × 28 floats) a dozen times.
glibc's malloc serves blocks of that size with fresh mmap'd pages (its threshold starts at 128 KiB) and gives
freed memory at the top of its heap back to the system above 128 KiB, so the next batch touches new pages and
pays a page fault for every 4 KiB of them: in a training step measured here, the ReLU after the first
convolution took 0.53–0.62 ms against 0.04 ms for the same op on memory already in use. With the limits below
the freed blocks are reused: LeNet-5 trained 8.1–9.3 → 7.1–7.5 s an epoch on one thread
(docs/speed.md, "Freed memory").

The numbers do not change (an allocator decides where tensors live, not what they hold). The process keeps up
to TRIM_LIMIT of freed memory for itself. Not glibc (macOS, musl): nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_LIMIT = 32 * 2**20  # blocks below this come from the heap, where freed ones are reused (glibc's maximum)
TRIM_LIMIT = 256 * 2**20  # freed memory kept at the heap's top before any goes back to the system

_kept = False


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process, once; True where they are raised."""
    global _kept
    if not _kept:
        try:
            mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
            _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_LIMIT)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_LIMIT))
        except (OSError, AttributeError):  # no C library by that name, or one without mallopt
            _kept = False
    return _kept
