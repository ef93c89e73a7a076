"""The daemon's processing loader (daq/processing/loader.py): the optional dependencies it
hides from Numba, and LLVM's code pages it gives back, with the kernels still right and
a compile after that still working."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO


def test_loaded_kernels_and_a_new_compile_work_after_llvm_code_is_given_back() -> None:
    import numpy as np
    from numba import njit

    from daq.processing import filters
    from daq.processing.loader import release_llvm_pages

    rng = np.random.default_rng(7)
    x = rng.normal(size=500)
    x[::37] += 25.0
    x[5] = np.nan
    before = filters.hampel(x, 5, 3.0)
    assert release_llvm_pages() > 0  # libllvmlite.so's read-only mappings were advised
    after = filters.hampel(x, 5, 3.0)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after, strict=True))

    @njit(cache=False)
    def fresh(v: np.ndarray) -> float:  # LLVM compiles it, its code faulted back in
        return float(np.nansum(v * 2.0))

    assert math.isclose(fresh(x), 2.0 * float(np.nansum(x)))
    assert release_llvm_pages() > 0


def test_the_daemon_loader_leaves_scipy_and_cffi_out(tmp_path: Path) -> None:
    """Numba then treats BLAS and cffi as absent, as without them installed; the import
    system is as it was afterwards."""
    doc = {"site": "s", "rtu": "r", "buses": {"b": {
        "protocol": "modbus_tcp", "url": "127.0.0.1:1", "devices": {"u": {
            "driver": "modbus", "address": 1, "interval": "1s", "options": {"registers": [
                {"name": "level", "address": 0, "type": "float32", "unit": "m"}]}}}}},
        "processing": {"chains": {"u/level": {
            "despike": {"window": 7, "threshold": 3}, "summaries": ["10min"]}}}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    code = ("import sys; from daq.config import load; from daq.processing.loader import load "
            f"as pl; n = len(sys.meta_path); p, s = pl(load({str(cfg)!r}), None); "
            "from numba.core.typing import cffi_utils; "
            "print(p is not None, [m for m in ('scipy', 'cffi', 'pycparser') "
            "if m in sys.modules], cffi_utils.SUPPORTED, len(sys.meta_path) == n); "
            "import importlib.util as u; print(u.find_spec('cffi') is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    lines = out.stdout.splitlines()
    assert lines == ["True [] False True", "True"], out.stdout + out.stderr  # cffi installed
