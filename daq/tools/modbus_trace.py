"""Frame traces: the frames of a read or scan, or a passive listen on a serial line.

Each frame is shown with the gap since the previous one in ms, its CRC verdict, a check
that the silence before it was at least 3.5 characters (a shorter gap makes a slave merge
two frames or drop one), its bytes in hex and what it is in words.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, fail, rtu
from .modbus_link import Frame


def frame_row(frame: Frame, previous: float | None, baudrate: int, tcp: bool = False,
              first_at: float = 0.0) -> dict[str, Any]:
    """``previous``: when the frame before ended; the gap is the silence in between."""
    gap = None if previous is None else max(0.0, frame.at - previous) * 1000.0
    row: dict[str, Any] = {"t_ms": round((frame.at - first_at) * 1000.0, 2),
                           "gap_ms": None if gap is None else round(gap, 2),
                           "dir": frame.direction, "hex": frame.data.hex(" ")}
    if tcp:
        row.update(crc="n/a", what=f"MBAP, {len(frame.data)} bytes")
    else:
        row.update(crc="ok" if rtu.crc_ok(frame.data) else "BAD",
                   what=rtu.describe(frame.data))
        row["gap_ok"] = gap is None or gap >= rtu.t35(baudrate) * 1000.0
    return row


def rows_of(frames: Sequence[Frame], baudrate: int, tcp: bool = False) -> list[dict[str, Any]]:
    rows = []
    previous: float | None = None
    first = frames[0].at if frames else 0.0
    for f in frames:
        rows.append(frame_row(f, previous, baudrate, tcp, first))
        previous = f.until
    return rows


def format_row(row: dict[str, Any]) -> str:
    gap = "" if row["gap_ms"] is None else f"+{row['gap_ms']:.1f} ms"
    short = "" if row.get("gap_ok", True) else "  (gap < t3.5!)"
    return (f"{row['t_ms']:10.1f} ms {gap:>12} {row['dir']:>2} crc {row['crc']:<3} "
            f"{row['hex']}  [{row['what']}]{short}")


def print_frames(frames: Sequence[Frame], baudrate: int, out: TextIO,
                 tcp: bool = False) -> None:
    for row in rows_of(frames, baudrate, tcp):
        print("trace " + format_row(row), file=out)


def cmd_trace(args: argparse.Namespace) -> int:
    if args.url.startswith("tcp://"):
        return fail("modbus trace", "trace listens on a serial line; for Modbus TCP use "
                    "`daq modbus read … --trace`", EXIT_BAD_INPUT)
    if args.frames is not None and args.frames < 1:
        return fail("modbus trace", "--frames must be at least 1", EXIT_BAD_INPUT)
    import serial

    if args.url.startswith("sim://"):
        import daq.sim  # noqa: F401
    gap = args.gap_ms / 1000.0 if args.gap_ms else max(rtu.t35(args.baud), 0.005)
    try:
        port = serial.serial_for_url(args.url, baudrate=args.baud, parity=args.parity,
                                     stopbits=args.stopbits, timeout=gap)
    except (OSError, ValueError) as err:
        return fail("modbus trace", f"cannot open {args.url}: {err}")
    print(f"listening on {args.url} at {args.baud} 8{args.parity}{args.stopbits}, a frame "
          f"ends after {gap * 1000:.1f} ms of silence; Ctrl-C stops", file=sys.stderr,
          flush=True)
    seen = 0
    try:
        seen = _listen(port, args, gap)
    except KeyboardInterrupt:
        pass
    except OSError as err:
        return fail("modbus trace", f"{args.url}: {err}")
    finally:
        port.close()
    if not args.json:
        print(f"{seen} frame(s)", file=sys.stderr)
    return EXIT_OK if seen else EXIT_FAILURE


def _listen(port: Any, args: argparse.Namespace, gap: float) -> int:
    start = time.monotonic()
    end = start + args.duration if args.duration else None
    previous: float | None = None
    seen = 0
    buf = bytearray()
    first_at = None
    last = start
    while end is None or time.monotonic() < end:
        chunk = port.read(max(1, port.in_waiting))
        now = time.monotonic()
        if chunk:
            if not buf:
                first_at = now
            buf += chunk
            last = now
            continue
        if not buf or now - last < gap:
            continue
        assert first_at is not None
        for data in rtu.split_frames(bytes(buf)):
            row = frame_row(Frame(first_at, "rx", data, last), previous, args.baud, False,
                            start)
            row.pop("dir")
            previous = last
            print(json.dumps(row) if args.json else format_row({**row, "dir": ""}),
                  flush=True)
            seen += 1
            if args.frames and seen >= args.frames:
                return seen
        buf.clear()
    return seen
