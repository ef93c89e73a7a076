"""Decoding speed: our sans-I/O decoders vs pyrtcm / pyubx2 on the f9p_2021 logs.

Prints messages per second for each, their ratio, and the headroom over what a 1 Hz
multi-constellation receiver stream needs. Ratios, not pass/fail times (run on any box):

    python bench/bench_gnss_decode.py [--data ../shared/data/gnss] [--repeat 3]

Fairness: RTCM is compared stream to stream (file in, parsed messages out). The UBX log
has RAWX frames cut by NMEA lines on which pyubx2's stream reader stops, so for UBX both
sides decode the same list of already-framed messages (payload decoding only), and our
full stream (framing + decoding) is shown beside it.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

from pyrtcm import RTCMReader
from pyubx2 import UBXReader

from daq.gnss.streams.framing import Framer
from daq.gnss.streams.stream import GnssStream

HERE = Path(__file__).resolve().parents[1]
# What a receiver port carries per second at 1 Hz, GPS+GLO+GAL+BDS, dual frequency:
# RTCM: 4 MSM7 + ~1 ephemeris + station/antenna every 10 s ≈ 6 messages;
# UBX: 1 RXM-RAWX + ~8 RXM-SFRBX (40 satellites, a subframe every 6 s) + NAV + ~12 NMEA.
NEEDED = {"rtcm3": 6.0, "ubx": 25.0, "rawx": 1.0}


def best(fn: Callable[[], int], repeat: int) -> tuple[int, float]:
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t0)
    return n, min(times)


def ours_stream(data: bytes) -> Callable[[], int]:
    def run() -> int:
        s = GnssStream()
        n = 0
        for i in range(0, len(data), 4096):
            n += len(s.feed(data[i:i + 4096]))
        return n + len(s.flush())
    return run


def pyrtcm_stream(data: bytes) -> Callable[[], int]:
    def run() -> int:
        return sum(1 for _raw, p in RTCMReader(io.BytesIO(data), quitonerror=0)
                   if p is not None)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=HERE / "../shared/data/gnss")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    raw = args.data.resolve() / "raw/f9p_2021"
    rtcm = (raw / "20210809-111055-rtcm3-base-corrections.rtcm3").read_bytes()
    ubx = (raw / "20210809-121012-ubx-nmea-data.ubx").read_bytes()

    rows = []
    n1, t1 = best(ours_stream(rtcm), args.repeat)
    n2, t2 = best(pyrtcm_stream(rtcm), args.repeat)
    rows.append(("RTCM 3 stream (MSM7 x4, 1006, ...)", n1 / t1, n2 / t2, "rtcm3"))

    fr = Framer()
    frames = [f for f in fr.feed(ubx) + fr.flush() if f.kind == "ubx"]
    stream = GnssStream()
    n3, t3 = best(lambda: sum(1 for f in frames if stream.decode(f) is not None), args.repeat)
    n4, t4 = best(lambda: sum(1 for f in frames if UBXReader.parse(f.raw) is not None),
                  args.repeat)
    rows.append(("UBX payloads (RAWX, SFRBX, NAV)", n3 / t3, n4 / t4, "ubx"))
    rawx = [f for f in frames if f.msg == (2, 0x15)]       # the heavy one: ~50 signals
    n6, t6 = best(lambda: sum(1 for f in rawx if stream.decode(f) is not None), args.repeat)
    n7, t7 = best(lambda: sum(1 for f in rawx if UBXReader.parse(f.raw) is not None),
                  args.repeat)
    rows.append(("UBX RXM-RAWX only", n6 / t6, n7 / t7, "rawx"))
    n5, t5 = best(ours_stream(ubx), args.repeat)

    print(f"{'what':<36}{'ours msg/s':>12}{'lib msg/s':>12}{'ours/lib':>10}"
          f"{'needed':>9}{'headroom':>10}")
    for name, ours, lib, kind in rows:
        print(f"{name:<36}{ours:>12,.0f}{lib:>12,.0f}{ours / lib:>10.1f}"
              f"{NEEDED[kind]:>9.0f}{ours / NEEDED[kind]:>10,.0f}")
    print(f"{'UBX+NMEA stream, ours (framing too)':<36}{n5 / t5:>12,.0f}{'':>12}{'':>10}"
          f"{NEEDED['ubx']:>9.0f}{n5 / t5 / NEEDED['ubx']:>10,.0f}")
    print(f"(messages: RTCM {n1} ours / {n2} pyrtcm; UBX {n3} ours / {n4} pyubx2; "
          f"best of {args.repeat})")


if __name__ == "__main__":
    main()
