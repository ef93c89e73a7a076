"""Hand the C heap's free pages back to the kernel after a large solve.

A session solve allocates and frees ~10⁵ small NumPy arrays (one per epoch and receiver);
glibc keeps the freed chunks in its heap, so the process's RSS stays at the peak long
after the arrays are gone. ``malloc_trim(0)`` releases every free page (not only the top
of the heap); elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked = False


def release_free_memory() -> bool:
    """``malloc_trim(0)`` if the C library has it; True when something was released."""
    global _trim, _looked
    if not _looked:
        _looked = True
        try:
            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _trim = None
    return bool(_trim(0)) if _trim is not None else False
