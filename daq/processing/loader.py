"""Loading the processing stage for the daemon: NumPy, Numba and the kernels the configured
chains use, in a thread of its own while acquisition and the broker connection start.

Numba's first compile or cache load (its target context's ``refresh``) imports
``numba.np.arraymath``, which imports ``scipy.linalg.cython_blas`` whenever SciPy is
installed, only to learn whether ``np.dot`` and the other BLAS/LAPACK functions can be
compiled. No kernel of this package uses them, and that probe costs the daemon 17 MB of
resident memory and 0.15 s (SciPy's linalg, ``numpy.f2py``, ``unittest``, every codec:
250 modules). So, unless something in the process imported SciPy already, SciPy is hidden
while Numba loads: Numba then records that BLAS is unavailable (its documented behaviour
without SciPy) and the import system is left as it was. In a process that later imports
SciPy, Numba still cannot compile ``np.dot`` in a kernel; none of this project's kernels
use it.
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


class _HideScipy:
    """A meta-path finder under which ``import scipy`` fails as if SciPy were absent."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name == "scipy" or name.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while Numba "
                                      "loads: daq/processing/loader.py)", name=name)
        return None


@contextmanager
def scipy_hidden() -> Iterator[None]:
    """Hide SciPy from imports inside the block, unless it is imported already."""
    if "scipy" in sys.modules:
        yield
        return
    finder = _HideScipy()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def load(cfg: Any, state_dir: Path | None,
         now: float | None = None) -> tuple[Any, float]:
    """The daemon's :class:`~daq.processing.processor.Processor`, its kernels compiled or
    loaded from the cache (``NUMBA_CACHE_DIR``) first; and the seconds that took."""
    t0 = time.perf_counter()
    with scipy_hidden():
        from .processor import Processor, warm

        warm(dict(cfg.processing))
    return Processor.from_config(cfg, state_dir, now=now), time.perf_counter() - t0
