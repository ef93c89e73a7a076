#!/usr/bin/env python3
"""RINEX import/export and session-store speed on the shared real files.

Prints ratios, not pass/fail: epochs per second, MB/s, and the real-time factor (hours of
observations handled per second of CPU). Usage: python bench/bench_rinex.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daq.gnss.rinex import obs_to_text, read_nav, read_obs
from daq.gnss.sessions.store import SessionStore

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
FILES = [GNSS / "ppk_f9p_4h" / "base_2022-02-25_00-00-00_GNSS-1.obs",
         GNSS / "ppk_f9p_4h" / "rover_2022-02-25_13-26-06_GNSS-1.obs",
         GNSS / "matrtklib_static_5min" / "rover.obs"]
NAV = GNSS / "ppk_f9p_4h" / "base_2022-02-25_00-00-00_GNSS-1.nav"


def best_of(fn: Callable[[], object], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    print(f"{'file':40} {'epochs':>6} {'MB':>5} {'read ep/s':>10} {'read MB/s':>9} "
          f"{'write ep/s':>10} {'session h per s (read)':>22}")
    for path in FILES:
        obs = read_obs(path)
        mb = path.stat().st_size / 1e6
        t_read = best_of(lambda p=path: read_obs(p))  # type: ignore[misc]
        t_write = best_of(lambda o=obs: obs_to_text(o), 3)  # type: ignore[misc]
        span_h = (obs.epochs[-1].time.gps_seconds - obs.epochs[0].time.gps_seconds) / 3600
        n = len(obs.epochs)
        print(f"{path.name:40} {n:6d} {mb:5.2f} {n / t_read:10.0f} {mb / t_read:9.1f} "
              f"{n / t_write:10.0f} {span_h / t_read:22.1f}")
    t_nav = best_of(lambda: read_nav(NAV))
    print(f"nav {NAV.name}: {len(read_nav(NAV).ephemerides) / t_nav:.0f} records/s")

    rover = read_obs(FILES[1])
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(tmp, session_hours=4)
        t0 = time.perf_counter()
        for ep in rover.epochs:
            store.add_epoch("P", ep)
        t_append = time.perf_counter() - t0
        ids = [i.id for i in store.list()]
        t_load = statistics.median(
            [best_of(lambda i=i: store.load(i), 3) for i in ids])  # type: ignore[misc]
        store.close()
    print(f"session store: append {len(rover.epochs) / t_append:.0f} epochs/s "
          f"(a 1 Hz receiver needs 1), load a session in {t_load * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
