"""Dispatch modes that count a forward pass without importing torch._dynamo.

torch wraps every TorchDispatchMode's `__torch_dispatch__` so that torch.compile skips it, and that wrapper
imports torch._dynamo (sympy, torch.fx, FSDP: 1.3 s alone, 2 s on two busy cores) on its first op. `reportgen
run` counts every model's multiply-adds before the first trial starts, so that import delayed every run.
Nothing is compiled inside a count: our own counter opts out as torch documents, and FlopCounterMode (torch's,
the cross-check) is handed its plain function for the counting pass (docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch.utils._python_dispatch import TorchDispatchMode

_DYNAMO_CACHE = "__dynamo_disable"  # the attribute torch._disable_dynamo caches its wrapped function under


class CountingMode(TorchDispatchMode):
    """A dispatch mode whose `__torch_dispatch__` torch leaves unwrapped."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


@contextmanager
def flop_counter_without_dynamo() -> Iterator[None]:
    """While inside, FlopCounterMode's wrapper finds the plain function as its cached "disabled" version and
    imports nothing; the cache goes on leaving (where torch._dynamo was imported already, nothing changes)."""
    from torch.utils.flop_counter import _FlopCounterMode

    plain = getattr(_FlopCounterMode.__dict__.get("__torch_dispatch__"), "__wrapped__", None)
    if plain is None or hasattr(plain, _DYNAMO_CACHE):  # another torch, or the wrapper has cached its own
        yield
        return
    setattr(plain, _DYNAMO_CACHE, plain)
    try:
        yield
    finally:
        delattr(plain, _DYNAMO_CACHE)
