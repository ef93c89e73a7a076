#!/usr/bin/env python3
"""Static-baseline solve time on the 4-hour F9P session, side by side with RTKLIB.

In one run, on the same files and options (static, 15° mask, GPS or GPS+BeiDou, L1+L2):
- ``rnx2rtkp`` (Debian RTKLIB 2.4.3 b34) with the reference option files of
  ``shared/data/gnss/rtklib/conf`` (fix-and-hold forward filter), wall time, median of 3;
- our solver: RINEX read + solve (end to end) and solve alone, median of 3, after one
  warm-up run so that Numba compilation is excluded;
- Numba compilation reported apart: a fresh process with an empty ``NUMBA_CACHE_DIR``
  (cold compile) and the same process again on that now-warm cache (cache load).

Prints ratios (ours / rnx2rtkp; < 1 means faster), not pass/fail.
Usage: python bench/bench_gnss_solve.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS / "ppk_f9p_4h"
ROVER = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
BASE = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
BASE_XYZ = (2078720.6329, -5683487.5402, 2007608.6397)
REPEAT = 3

_COMPILE_PROBE = """
import time
t = time.perf_counter()
from daq.gnss.solver.baseline import warm_kernels
t_import = time.perf_counter() - t
t = time.perf_counter()
warm_kernels()
print(f"{t_import:.3f} {time.perf_counter() - t:.3f}")
"""


def rnx2rtkp_seconds(systems: str, workdir: Path) -> float:
    conf = GNSS / "rtklib" / "conf" / f"f9p_{systems}_static_fh_fwd.conf"
    cmd = ["rnx2rtkp", "-k", str(conf), "-o", str(workdir / f"{systems}.pos"),
           str(ROVER), str(BASE), str(NAV)]
    walls = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def ours_seconds(systems: str) -> tuple[float, float, str]:
    from daq.gnss.rinex import read_nav, read_obs
    from daq.gnss.solver.baseline import SolverOptions, solve_baseline

    opts = SolverOptions(systems=systems)
    ends, solves = [], []
    sol = None
    for i in range(REPEAT + 1):
        t = time.perf_counter()
        rover, base, nav = read_obs(ROVER), read_obs(BASE), read_nav(NAV)
        t_read = time.perf_counter()
        sol = solve_baseline(rover, base, nav, BASE_XYZ, opts)
        t_end = time.perf_counter()
        if i:                     # the first run warms Numba's cache
            ends.append(t_end - t)
            solves.append(t_end - t_read)
    assert sol is not None
    e, n, u = sol.enu
    return (statistics.median(ends), statistics.median(solves),
            f"{sol.verdict}, ratio {sol.ratio:.1f}, ENU {e:.4f} {n:.4f} {u:.4f} m")


def compile_seconds() -> tuple[str, str]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        cold = subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
        warm = subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
    return (f"import {cold[0]} s, cold compile {cold[1]} s",
            f"import {warm[0]} s, load from warm cache {warm[1]} s")


def main() -> int:
    if shutil.which("rnx2rtkp") is None:
        print("rnx2rtkp not found (apt-get install rtklib)")
        return 1
    cold, warm = compile_seconds()
    print(f"Numba kernels (excluded below): {cold}; {warm}")
    print(f"{'systems':8} {'rnx2rtkp s':>11} {'ours e2e s':>11} {'ours solve s':>13} "
          f"{'e2e ratio':>10} {'solve ratio':>12}  our answer")
    with tempfile.TemporaryDirectory() as tmp:
        for systems in ("G", "GC"):
            ref = rnx2rtkp_seconds(systems, Path(tmp))
            e2e, solve, answer = ours_seconds(systems)
            print(f"{systems:8} {ref:11.3f} {e2e:11.3f} {solve:13.3f} {e2e / ref:10.2f} "
                  f"{solve / ref:12.2f}  {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
