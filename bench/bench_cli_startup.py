"""Start-up time and peak memory of ``daq`` commands, against ``python -c pass``.

Runs each command N times as a child process (the baseline first, in the same run) and
reports the median wall time and the peak RSS (``os.wait4``'s ``ru_maxrss``), each also as
the extra cost over the bare interpreter (RSS has a floor: the size of this process at
fork). The issue's targets: ``daq status``, ``daq
check`` and ``daq --help`` within 0.2 s and 40 MB; ``daq check`` of any file up to 1 MB
within 5 s and 200 MB. Run: ``python bench/bench_cli_startup.py [N]``. Numbers, not
pass/fail.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(argv: list[str], n: int) -> tuple[float, float]:
    """(median seconds, max RSS in MB) over ``n`` runs."""
    times, rss = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=REPO)
        _, _, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - t0)
        rss.append(usage.ru_maxrss / 1024)
        proc.returncode = 0  # reaped by wait4
    return statistics.median(times), max(rss)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        (state / "status.json").write_text(json.dumps({"running": True, "buses": []}))
        big = state / "big.yaml"  # ~1 MB, the largest file daq check accepts: 8 000 devices
        big.write_text("site: s\nrtu: r\nbuses:\n  b:\n    protocol: modbus_rtu\n"
                       "    url: sim://x\n    devices:\n" + "".join(
                           f"      d{i}: {{driver: modbus, address: {i % 247 + 1}, interval:"
                           " 1s, options: {registers: [{name: v, address: 0, type: float32}]}}\n"
                           for i in range(8000)))
        cases = [
            ("python -c pass", [py, "-c", "pass"]),
            ("daq --help", [py, "-m", "daq", "--help"]),
            ("daq check (demo)", [py, "-m", "daq", "check", "--config", "configs/demo.yaml"]),
            ("daq status", [py, "-m", "daq", "status", "--state-dir", str(state)]),
            ("daq modbus --help", [py, "-m", "daq", "modbus", "read", "--help"]),
            ("daq gnss --help", [py, "-m", "daq", "gnss", "--help"]),
            ("daq check 1 MB", [py, "-m", "daq", "check", "--config", str(big)]),
        ]
        base_t, base_m = measure(cases[0][1], n)
        print(f"{'command':<20} {'median s':>9} {'extra s':>8} {'peak MB':>8} {'extra MB':>9}")
        for name, argv in cases:
            t, m = (base_t, base_m) if name.startswith("python") else measure(argv, n)
            print(f"{name:<20} {t:9.3f} {t - base_t:8.3f} {m:8.1f} {m - base_m:9.1f}")


if __name__ == "__main__":
    main()
