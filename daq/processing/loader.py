"""Loading the processing stage for the daemon: NumPy, Numba and the kernels the configured
chains use, in a thread of its own while acquisition and the broker connection start.

Three things keep its memory down (``bench/bench_site.py``; figures in README.md):

* Numba's first compile or cache load (its target context's ``refresh``) imports
  ``numba.np.arraymath``, which imports ``scipy.linalg.cython_blas`` whenever SciPy is
  installed, only to learn whether ``np.dot`` and the other BLAS/LAPACK functions can be
  compiled. No kernel of this package uses them, and that probe costs the daemon 17 MiB of
  resident memory and 0.15 s (SciPy's linalg, ``numpy.f2py``, ``unittest``, every codec:
  250 modules). Likewise ``import numba`` makes a ``cffi.FFI()`` when cffi is installed
  (pycparser and cffi: 1.3 MiB) so that kernels may call cffi functions; none here do.
  So, unless something in the process imported them already, SciPy and cffi are hidden
  while Numba loads: Numba then records that BLAS and cffi are unavailable (its documented
  behaviour without these optional dependencies) and the import system is left as it
  was. In a process that later imports them, Numba still cannot compile ``np.dot`` or a
  cffi call in a kernel; none of this project's kernels use them.
* ``libllvmlite.so`` (LLVM, 80 MiB of machine code) is touched all over when it is loaded
  (the static initialisers of LLVM's passes and options) and again when Numba compiles
  its runtime module at the first cache load (LLVM's optimiser and code generator): 51 MiB
  of the daemon's resident memory are those code pages, which the kernels never execute
  once loaded. :func:`release_llvm_code` gives them back after each step with
  ``madvise(MADV_DONTNEED)`` on the library's read-only executable mapping: for a private
  file mapping madvise(2) documents that a later access re-reads the page from the file
  (here from the page cache: a minor fault), and code is never written, so nothing is
  lost; an LLVM compile afterwards (a kernel for a new type) simply faults its pages back.
  Only the mapping with permissions ``r-xp`` is touched (never the relocated read-only
  data, whose pages differ from the file). Where ``/proc/self/maps`` or ``madvise`` is not
  available this does nothing.
* The loader runs in its own thread, whose mallocs get an arena of their own unless
  ``MALLOC_ARENA_MAX`` bounds them (glibc's tunable, set in ``systemd/daq.service``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

HIDDEN = ("scipy", "cffi")  # optional dependencies of Numba that no kernel here needs
MADV_DONTNEED = 4  # <sys/mman.h> on Linux, every architecture


class _Hide:
    """A meta-path finder under which importing ``names`` fails as if they were absent."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while Numba "
                                      "loads: daq/processing/loader.py)", name=name)
        return None


@contextmanager
def hidden(names: Sequence[str] = HIDDEN) -> Iterator[None]:
    """Hide ``names`` (top-level packages) from imports inside the block, except those
    imported already."""
    finder = _Hide([n for n in names if n not in sys.modules])
    if not finder.names:
        yield
        return
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def scipy_hidden() -> Any:
    """Hide SciPy from imports inside the block, unless it is imported already."""
    return hidden(("scipy",))


def release_llvm_code() -> int:
    """Give back the resident pages of ``libllvmlite.so``'s machine code (see the module's
    docstring); the bytes of mapping advised, 0 where that is not possible."""
    try:
        import ctypes

        maps = Path("/proc/self/maps").read_text()
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    done = 0
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if (len(parts) < 6 or parts[1] != "r-xp"
                or not Path(parts[5]).name.startswith("libllvmlite.")):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if madvise(start, end - start, MADV_DONTNEED) == 0:
            done += end - start
    return done


def load(cfg: Any, state_dir: Path | None,
         now: float | None = None) -> tuple[Any, float]:
    """The daemon's :class:`~daq.processing.processor.Processor`, its kernels compiled or
    loaded from the cache (``NUMBA_CACHE_DIR``) first; and the seconds that took."""
    t0 = time.perf_counter()
    with hidden():
        import numba  # noqa: F401  (loads libllvmlite.so: its initialisers run)

        release_llvm_code()
        from .processor import Processor, warm

        warm(dict(cfg.processing), step=release_llvm_code)
    return Processor.from_config(cfg, state_dir, now=now), time.perf_counter() - t0
