#!/usr/bin/env python3
"""What a session solve costs the recording threads: bytes lost, read gaps, solve time, RSS.

The daemon's GNSS service (:class:`GnssService`: two recorder threads, the solver thread)
runs in this process. Before it starts, a monitor/reference session pair of the F9P data
(``ppk_f9p_4h``, 12:00–16:00 UTC window, 13:26:15–16:00 GPST of data) is written into its
store at 1 Hz: the 15-s RINEX epochs linearly interpolated to every second (the cost of a
solve grows with the epochs; the interpolation error is common to both receivers, so the
double differences still fix). While the solver thread solves that pair, two simulated
receivers play the real F9P base's RTCM 3 log (2021, without its 1005/1006) in real time
(1 Hz, ~1.1 kB/s each) into pseudo-terminals the recorders of REF and P01 read, through
writers that, like a receiver on a UART, do not wait for a reader (``timeout`` 0.3 s, no
stall grace).

Reported: bytes each receiver sent, bytes the recorder received, bytes dropped (must be
0), the longest gap between two reads of a recorder thread during the solve and before it
(ratio: the solve's effect), solve time, process RSS before/peak/after (the session pair
is written by a child process, so this process holds only the service).
Usage: python bench/bench_gnss_recorder.py [--epochs-per-15s 15]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from daq.gnss.gnss_config import GNSS, build
from daq.gnss.obs import GNSSTime, ObsData, ObsEpoch
from daq.gnss.replay.outputs import PtyWriter, open_pty
from daq.gnss.replay.player import Replayer
from daq.gnss.rinex import read_nav, read_obs
from daq.gnss.sessions.recorder import GnssService, open_port
from daq.gnss.sessions.store import SessionStore
from daq.gnss.streams.framing import Framer
from daq.outbox import Outbox
from daq.schema import Ctx, load_yaml

GNSS_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS_DATA / "ppk_f9p_4h"
BASE_OBS = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
ROVER_OBS = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
RTCM_LOG = GNSS_DATA / "raw" / "f9p_2021" / "20210809-111055-rtcm3-base-corrections.rtcm3"
BASE_XYZ = "2078720.6329, -5683487.5402, 2007608.6397"

CONFIG = f"""\
streams:
  live_a: {{url: "{{a}}", point: REF, format: rtcm3}}
  live_b: {{url: "{{b}}", point: P01, format: rtcm3}}
points:
  REF: {{role: reference, xyz: [{BASE_XYZ}]}}
  P01:
    role: monitor
    reference: REF
    systems: GC
    dam_axis_azimuth_deg: 30
    reference_epoch: {{e: -886.9560, n: -853.8950, u: -28.4200, label: survey-2022}}
sessions: {{hours: 4, solve_wait: 1s}}
"""


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def upsample(data: ObsData, per: int, start: float, end: float) -> list[ObsEpoch]:
    """Epochs every 15/per s between 15-s epochs: cells present in both, linear."""
    eps = [e for e in data.epochs if start <= e.time.gps_seconds <= end]
    out: list[ObsEpoch] = []
    for a, b in itertools.pairwise(eps):
        out.append(a)
        if b.time.gps_seconds - a.time.gps_seconds != 15.0 or b.codes != a.codes:
            continue
        common = [s for s in a.sats if s in b.sats]
        ia = [a.sats.index(s) for s in common]
        ib = [b.sats.index(s) for s in common]
        va, vb = a.values[ia], b.values[ib]
        slip = (a.lli[ia] | b.lli[ib]) & 1
        for k in range(1, per):
            f = k / per
            t = a.time.gps_seconds + 15.0 * f
            vals = va + (vb - va) * f
            vals[slip.astype(bool)] = np.nan
            out.append(ObsEpoch(GNSSTime.from_seconds(t), tuple(common), a.codes, vals,
                                np.zeros_like(a.lli[ia]), a.ssi[ia].copy()))
    out.append(eps[-1])
    return out


def record_pair(state: Path, per: int) -> dict[str, int]:
    """The monitor/reference sessions of the 12:00 window, closed, into the store."""
    store = SessionStore(state / "gnss", session_hours=4)
    nav = read_nav(str(NAV))
    t0 = GNSSTime.from_calendar(datetime(2022, 2, 25, 13, 26, 15), "GPST").gps_seconds
    t1 = GNSSTime.from_calendar(datetime(2022, 2, 25, 16, 0, 0), "GPST").gps_seconds - 1
    counts = {}
    for point, path in (("REF", BASE_OBS), ("P01", ROVER_OBS)):
        data = read_obs(str(path))
        store.set_header(point, replace(data.header, marker_name=point))
        epochs = upsample(data, per, t0, t1)
        counts[point] = int(store.add_epoch(point, epochs[0]))   # opens the session
        for e in nav.ephemerides:
            store.add_ephemeris(point, e)
        counts[point] += sum(store.add_epoch(point, e) for e in epochs[1:])
    store.close_due(datetime(2022, 2, 25, 16, 30))
    store.close()
    return counts


class TimedPort:
    """A recorder's port that remembers when each read returned."""

    def __init__(self, port: Any, reads: list[float]) -> None:
        self._port, self.reads = port, reads

    def read(self, n: int) -> bytes:
        data: bytes = self._port.read(n)
        self.reads.append(time.monotonic())
        return data

    def close(self) -> None:
        self._port.close()


def max_gap(reads: list[float], t0: float, t1: float) -> float:
    ts = [t for t in reads if t0 <= t <= t1]
    return max((b - a for a, b in itertools.pairwise(ts)), default=math.nan)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs-per-15s", type=int, default=15, help="15: 1 Hz (default)")
    ap.add_argument("--record-into", help=argparse.SUPPRESS)   # the child process's job
    args = ap.parse_args()
    if args.record_into:
        print(record_pair(Path(args.record_into), args.epochs_per_15s))
        return 0
    if not F9P.exists():
        print("shared GNSS data not present", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        t = time.perf_counter()        # in a child, so this process's RSS is the service's
        child = subprocess.run([sys.executable, __file__, "--record-into", str(state),
                                "--epochs-per-15s", str(args.epochs_per_15s)],
                               capture_output=True, text=True, check=True)
        counts = child.stdout.strip().splitlines()[-1]
        print(f"recorded session pair: {counts} epochs in {time.perf_counter() - t:.1f} s")
        ptys = [open_pty(), open_pty()]
        text = CONFIG.replace("{a}", ptys[0][1]).replace("{b}", ptys[1][1])
        ctx = Ctx()
        cfg = build(GNSS.check(load_yaml(text), "gnss", 1, ctx))
        assert not ctx.problems, ctx.problems
        reads: dict[str, list[float]] = {"live_a": [], "live_b": []}

        def opener(st: Any) -> TimedPort:
            return TimedPort(open_port(st), reads[st.name])

        outbox = Outbox(state / "outbox.sqlite3")
        rss0 = rss_kib()[0]
        svc = GnssService(cfg, state, outbox, opener=opener)
        writers = [PtyWriter(m, timeout=0.3, stall=0.0) for m, _p in ptys]
        svc.start()
        deadline = time.monotonic() + 120
        while not all(r.port is not None for r in svc.recorders):
            if time.monotonic() > deadline:
                raise SystemExit("the recorders did not open their ports")
            time.sleep(0.05)
        time.sleep(0.3)               # past pyserial's input flush on open
        # the live log without its 1005/1006, so the 2022 solve keeps the configured base
        fr = Framer()
        live = b"".join(f.raw for f in fr.feed(RTCM_LOG.read_bytes()) + fr.flush()
                        if f.msg not in (1005, 1006))
        plays = [Replayer(live, w, speed=1.0).start() for w in writers]
        peak = rss0
        t_start = time.monotonic()
        t_ready = t_solved = None
        while t_solved is None:
            peak = max(peak, rss_kib()[0])
            if t_ready is None and svc.solver.warm_s is not None:
                t_ready = time.monotonic()
            if svc.solver.counters["solved"] + svc.solver.counters["errors"] >= 1:
                t_solved = time.monotonic()
            if time.monotonic() - t_start > 1800:
                raise SystemExit("no solve within 30 min")
            time.sleep(0.1)
        time.sleep(10.0)              # some recording after the solve, for comparison
        t_end = time.monotonic()
        for p in plays:
            p.stop()
        time.sleep(1.0)
        rss_after, hwm = rss_kib()
        status = svc.solver.status()
        svc.stop()
        outbox.close()
        for m, _p in ptys:
            os.close(m)
        assert t_ready is not None
        print(f"solver: warm {svc.solver.warm_s} s, solve {t_solved - t_ready:.1f} s "
              f"(counters {status['counters']})")
        last = (status["points"].get("P01") or {}).get("last") or {}
        print(f"P01 result: {last}")
        print(f"RSS: before {rss0 / 1024:.0f} MiB, peak sampled {peak / 1024:.0f} MiB, "
              f"after {rss_after / 1024:.0f} MiB, high-water {hwm / 1024:.0f} MiB")
        for name, w, p in zip(("live_a", "live_b"), writers, plays, strict=True):
            ing = svc.ingests[name]
            during = max_gap(reads[name], t_ready, t_solved)
            after = max_gap(reads[name], t_solved, t_end)
            print(f"{name}: sent {p.bytes_written} B, received {ing.counters.bytes} B, "
                  f"dropped {w.dropped} B, epochs {ing.counters.epochs} (dropped "
                  f"{ing.counters.epochs_dropped}); longest read gap during the solve "
                  f"{during:.3f} s, after {after:.3f} s (ratio {during / after:.1f})")
        lost = sum(w.dropped for w in writers) + sum(
            p.bytes_written - svc.ingests[n].counters.bytes
            for n, p in zip(("live_a", "live_b"), plays, strict=True))
        print(f"bytes lost: {lost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
