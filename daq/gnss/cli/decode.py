"""``daq gnss decode FILE [--json]``: what a raw receiver log holds (like convbin's summary).

Counts per message type and per constellation, observation epochs, time span, satellites,
ephemerides, station coordinates, and what was wrong (rejected frames per reason,
messages that did not decode). Exit codes: 0 ok, 1 the file could not be read,
2 bad input (missing file, or nothing decodable in it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daq.gnss.streams.stream import StreamStats, summarise

SYSTEM_NAMES = {"G": "GPS", "R": "GLONASS", "E": "Galileo", "C": "BeiDou", "J": "QZSS",
                "S": "SBAS"}


def register(gnss_subparsers: Any) -> None:
    """Add ``decode`` to the ``daq gnss`` sub-command parsers."""
    p = gnss_subparsers.add_parser(
        "decode", help="summarise a raw GNSS log (RTCM 3, UBX, NMEA)",
        description="Count the messages, systems, epochs and errors in a raw receiver log.")
    p.add_argument("file", metavar="FILE", help="raw log (RTCM 3 / UBX / NMEA, mixed)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--leap-seconds", type=int, default=18,
                   help="GPS-UTC for GLONASS epochs (default 18, right since 2017)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"daq gnss decode: {path}: no such file", file=sys.stderr)
        return 2
    try:
        data = path.read_bytes()
    except OSError as err:
        print(f"daq gnss decode: {path}: {err.strerror}", file=sys.stderr)
        return 1
    stats = summarise(data, leap_seconds=getattr(args, "leap_seconds", 18))
    if getattr(args, "json", False):
        print(json.dumps({"file": str(path), **stats.to_json()}, indent=2))
    else:
        print(render(str(path), stats))
    if not stats.messages:
        print(f"daq gnss decode: {path}: no RTCM 3, UBX or NMEA message found",
              file=sys.stderr)
        return 2
    return 0


def render(name: str, stats: StreamStats) -> str:
    j = stats.to_json()
    lines = [f"{name}: {j['bytes']} bytes"]
    if j["epochs"]:
        lines.append(f"  epochs     {j['epochs']}  GPS TOW {j['tow_first']:.3f} … "
                     f"{j['tow_last']:.3f} s  (span {j['span_s']:.1f} s)")
    lines.append("  messages")
    for msg, n in j["messages"].items():
        lines.append(f"    {msg:<22}{n:>8}")
    if j["observations_per_system"]:
        lines.append("  observations (signals)")
        for sys_, n in j["observations_per_system"].items():
            sats = j["satellites"][sys_]
            lines.append(f"    {SYSTEM_NAMES.get(sys_, sys_):<10}{n:>8}  {len(sats)} satellites: "
                         + " ".join(f"{sys_}{p:02d}" for p in sats))
    if j["ephemerides"]:
        lines.append("  ephemerides  " + "  ".join(
            f"{SYSTEM_NAMES.get(k, k)} {v}" for k, v in j["ephemerides"].items()))
    for st in j["stations"]:
        h = f"  antenna height {st['height']:.4f} m" if st["height"] is not None else ""
        lines.append(f"  station {st['station']}  ARP ECEF {st['x']:.4f} {st['y']:.4f} "
                     f"{st['z']:.4f} m{h}")
    bad = {**j["rejected_frames"], **{f"undecodable {k}": v
                                      for k, v in j["decode_errors"].items()}}
    # rejected = false preambles and damaged frames, per reason (see daq.gnss.streams.framing)
    lines.append("  rejected   " + (", ".join(f"{k} {v}" for k, v in bad.items()) or "none")
                 + f"; {j['skipped_bytes']} bytes skipped")
    return "\n".join(lines)
