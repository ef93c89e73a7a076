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
* ``libllvmlite.so`` (LLVM: 80 MiB of machine code, 67 MiB of read-only data) is touched
  all over when it is loaded (the dynamic linker reads its relocations; the static
  initialisers of LLVM's passes and options run) and again when Numba compiles its runtime
  module at the first cache load (LLVM's optimiser and code generator): ~68 MiB of the
  daemon's resident memory were those pages, which the kernels never use once loaded.
  :func:`release_llvm_pages` gives them back after each step with
  ``madvise(MADV_DONTNEED)``: for a private file mapping madvise(2) documents that a later
  access re-reads the page from the file (here from the page cache: a minor fault), so a
  page that is still the file's own loses nothing, and an LLVM compile afterwards (a
  kernel for a new type) simply faults its pages back. Only read-only mappings of the
  library (``r-xp``, ``r--p``) that hold no page of their own (``Anonymous: 0 kB`` in
  ``/proc/self/smaps``) are advised: never the relocated data (RELRO, written by the
  dynamic linker, then made read-only), and a read-only mapping cannot be written
  meanwhile. Where ``/proc/self/smaps`` or ``madvise`` is not available this does
  nothing.
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


def release_llvm_pages() -> int:
    """Give back the resident pages of ``libllvmlite.so``'s read-only mappings that are
    the file's own (see the module's docstring); the bytes of mapping advised, 0 where
    that is not possible."""
    try:
        import ctypes
        import mmap

        dontneed = mmap.MADV_DONTNEED  # the platform's value (<sys/mman.h>)
        smaps = Path("/proc/self/smaps").read_text()
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    found: list[list[Any]] = []  # [start, end, bytes of its own pages (COW), kB]
    current: list[Any] | None = None
    for line in smaps.splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and not head[0].endswith(":"):  # a mapping's first line
            current = None
            if (len(head) == 6 and head[1] in ("r-xp", "r--p")
                    and Path(head[5]).name.startswith("libllvmlite.")):
                start, end = (int(x, 16) for x in head[0].split("-"))
                current = [start, end, None]
                found.append(current)
        elif current is not None and head[:1] == ["Anonymous:"]:
            current[2] = int(head[1])
    done = 0
    for start, end, own_kb in found:
        if own_kb == 0 and madvise(start, end - start, dontneed) == 0:
            done += end - start
    return done


def load(cfg: Any, state_dir: Path | None,
         now: float | None = None) -> tuple[Any, float]:
    """The daemon's :class:`~daq.processing.processor.Processor`, its kernels compiled or
    loaded from the cache (``NUMBA_CACHE_DIR``) first; and the seconds that took."""
    t0 = time.perf_counter()
    with hidden():
        import numba  # noqa: F401  (loads libllvmlite.so: its initialisers run)

        release_llvm_pages()
        from .processor import Processor, warm

        warm(dict(cfg.processing), step=release_llvm_pages)
    return Processor.from_config(cfg, state_dir, now=now), time.perf_counter() - t0
