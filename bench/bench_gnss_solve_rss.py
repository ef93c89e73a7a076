#!/usr/bin/env python3
"""Peak RSS of a 1 Hz session solve against the process's RSS just before it.

The monitor/reference session pair of ``bench_gnss_recorder.py`` (F9P ``ppk_f9p_4h``,
13:26:15–16:00 GPST, 15-s epochs interpolated to 1 Hz: 9211 epochs per receiver) is
written into a session store by a child process. Then, each in a fresh process (imports
and ``warm_kernels`` first, as the GNSS service's solver thread does before any session):

- ``solver``: the session solver's way: each session loaded with only the point's systems
  (``SessionStore.load(id, systems)``), epochs consumed while assembling
  (``solve_baseline(..., consume=True)``);
- ``full``: the sessions loaded whole and kept for the whole solve (the way before).

Reported per way: RSS after the imports, after warming the kernels (the pre-solve RSS),
the peak (``VmHWM``, reset at the pre-solve point) over load + solve, and the ratio
peak / pre-solve; plus the answer (the two ways must agree to the last digit).
Usage: python bench/bench_gnss_solve_rss.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BASE_XYZ = (2078720.6329, -5683487.5402, 2007608.6397)

_PROBE = """
import json, sys
from pathlib import Path

def status():
    f = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines()
             if ":" in l)
    return int(f["VmRSS"].split()[0]) / 1024, int(f["VmHWM"].split()[0]) / 1024

from daq.gnss.rinex.writer import observed_types
from daq.gnss.sessions.solving import _merge_nav
from daq.gnss.sessions.store import SessionStore
from daq.gnss.solver.baseline import SolverOptions, solve_baseline, warm_kernels
r_import = status()[0]
warm_kernels()
way, root, xyz = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
store = SessionStore(Path(root) / "gnss", session_hours=4)
sid = store.list("P01")[0].id
r_pre = status()[0]
try:
    Path("/proc/self/clear_refs").write_text("5")     # VmHWM := VmRSS
    hwm_reset = True
except OSError:
    hwm_reset = False
systems = "GC" if way == "solver" else None
rover, nav_r = store.load(sid, systems)
ref, nav_b = store.load(sid.replace("P01", "REF"), systems)
for data in (rover, ref):
    data.header.obs_types = observed_types(data)
sol = solve_baseline(rover, ref, _merge_nav(nav_b, nav_r), xyz, SolverOptions(systems="GC"),
                     consume=way == "solver")
rss, hwm = status()
print(json.dumps({"import": r_import, "pre": r_pre, "peak": hwm, "after": rss,
                  "hwm_reset": hwm_reset, "verdict": sol.verdict, "ratio": sol.ratio,
                  "enu": sol.enu.tolist(), "epochs": sol.n_epochs}))
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(BENCH / "bench_gnss_recorder.py"),
                        "--record-into", tmp], check=True, capture_output=True)
        print(f"{'way':7} {'import MiB':>10} {'pre-solve MiB':>14} {'peak MiB':>9} "
              f"{'after MiB':>10} {'peak/pre':>9} {'peak-pre MiB':>13}  answer")
        for way in ("full", "solver"):
            out = subprocess.run([sys.executable, "-c", _PROBE, way, tmp,
                                  json.dumps(BASE_XYZ)], check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            e, n, u = r["enu"]
            note = "" if r["hwm_reset"] else " (VmHWM not reset: peak includes warm-up)"
            print(f"{way:7} {r['import']:10.0f} {r['pre']:14.0f} {r['peak']:9.0f} "
                  f"{r['after']:10.0f} {r['peak'] / r['pre']:9.2f} "
                  f"{r['peak'] - r['pre']:13.0f}  {r['verdict']}, ratio {r['ratio']:.2f}, "
                  f"{r['epochs']} epochs, ENU {e!r} {n!r} {u!r} m{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
