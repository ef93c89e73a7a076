"""``daq tail``: live readings of the running daemon, as they are accepted.

On a terminal, one screen refreshed in place: every channel's latest value, quality, age
and a sparkline of its last hour (one character per minute, the minute's mean). Piped or
redirected, one plain line per reading (``--json``: one JSON object per line).

Examples::

    daq tail
    daq tail --sensor P07
    daq tail --device weir_logger --state-dir /run/daq
    daq tail --json | head -20

Exit codes: 0 stopped (Ctrl-C), 1 no daemon or the daemon went away, 2 unknown name.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from .helptext import help_kwargs

BARS = "▁▂▃▄▅▆▇█"
MINUTES = 60


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tail", help="live readings of the running daemon, with last-hour sparklines",
        **help_kwargs(__doc__))
    p.add_argument("--sensor", help="only this sensor's channels, e.g. P07")
    p.add_argument("--device", help="only this device's channels")
    p.add_argument("--config", help="find the daemon's state directory from this file")
    p.add_argument("--state-dir", help="the daemon's state (or runtime) directory")
    p.add_argument("--plain", action="store_true", help="line mode even on a terminal")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    p.set_defaults(func=run)


def sparkline(points: Iterable[float | None]) -> str:
    values = list(points)
    real = [v for v in values if v is not None]
    if not real:
        return " " * len(values)
    lo, hi = min(real), max(real)
    span = hi - lo
    return "".join(" " if v is None else BARS[0 if span == 0 else
                                                min(int((v - lo) / span * 8), 7)]
                   for v in values)


class Board:
    """Per channel: the latest reading and per-minute sums of the last hour."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.minutes: dict[str, dict[int, list[float]]] = {}
        self.count = 0
        self.dropped = 0  # readings the daemon could not queue for this slow viewer

    def seed(self, history: dict[str, list[list[Any]]]) -> None:
        for ch, points in history.items():
            for ts, mean in points:
                minute = int(_epoch(ts) // 60)
                self.minutes.setdefault(ch, {})[minute] = [float(mean), 1.0]

    def add(self, r: dict[str, Any]) -> None:
        self.count += 1
        ch = r["channel"]
        self.latest[ch] = r
        if r.get("value") is not None:
            minute = int(_epoch(r["ts"]) // 60)
            m = self.minutes.setdefault(ch, {})
            acc = m.setdefault(minute, [0.0, 0.0])
            acc[0] += float(r["value"])
            acc[1] += 1
            for old in [k for k in m if k <= minute - MINUTES]:
                del m[old]

    def row(self, ch: str, now: float) -> list[Any]:
        r = self.latest.get(ch, {})
        last = int(now // 60)
        m = self.minutes.get(ch, {})
        means = [(m[k][0] / m[k][1]) if k in m and m[k][1] else None
                 for k in range(last - MINUTES + 1, last + 1)]
        real = [v for v in means if v is not None]
        age = now - _epoch(r["ts"]) if r.get("ts") else None
        return [ch, r.get("value"), r.get("unit", ""), r.get("quality", "-"),
                "-" if age is None else f"{age:.0f}s", sparkline(means),
                min(real) if real else None, max(real) if real else None]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def draw(board: Board, title: str, out: TextIO) -> None:
    from .tables import render

    size = shutil.get_terminal_size((120, 40))
    now = time.time()
    chans = sorted(board.minutes.keys() | board.latest.keys())
    room = max(size.lines - 5, 1)
    rows = [[_fmt(c) if i != 5 else c for i, c in enumerate(board.row(ch, now))]
            for ch in chans[:room]]
    table = render(["channel", "value", "unit", "quality", "age",
                    f"last {MINUTES} min (1 char = 1 min)", "min", "max"], rows)
    clock = datetime.now(UTC).strftime("%H:%M:%S UTC")
    lost = f", {board.dropped} not shown (terminal too slow)" if board.dropped else ""
    lines = [f"{title} — {len(chans)} channels, {board.count} readings{lost} — {clock} — "
             "Ctrl-C quits", "", *table.splitlines()]
    if len(chans) > room:
        lines.append(f"… {len(chans) - room} more channels (narrow with --sensor/--device)")
    if not chans:
        lines.append("waiting for readings…")
    body = "".join(line[:size.columns] + "\x1b[K\r\n" for line in lines)
    out.write("\x1b[H" + body + "\x1b[J")
    out.flush()


def run(args: argparse.Namespace) -> int:
    from .control import RequestError
    from .control_client import ControlDenied, ControlUnavailable, connect, where
    from .errors import ConfigError

    try:
        dirs = where(args)
    except ConfigError as err:
        print(f"daq tail: {args.config}: {err}", file=sys.stderr)
        return 2
    filters = {k: v for k, v in (("device", args.device), ("sensor", args.sensor)) if v}
    live = sys.stdout.isatty() and not (args.plain or args.json)
    try:
        with connect(*dirs) as c:
            info = c.call("status")
            title = f"daq tail — site {info['site']} rtu {info['rtu']}"
            events = c.stream("subscribe", **filters)
            if live:
                return _screen(events, title)
            return _lines(events, args.json)
    except RequestError as err:
        print(f"daq tail: {err.message}", file=sys.stderr)
        return 2 if err.code.startswith("unknown") else 1
    except ControlUnavailable as err:
        print(f"daq tail: {err} (is the daemon running? --state-dir tells where)",
              file=sys.stderr)
        return 1
    except ControlDenied as err:
        print(f"daq tail: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _lines(events: Iterable[dict[str, Any]], as_json: bool) -> int:
    out = sys.stdout
    for ev in events:
        if "history" in ev or "keepalive" in ev:
            continue
        if "end" in ev:
            print(f"daq tail: {ev['end']}", file=sys.stderr)
            return 1
        if as_json:
            out.write(json.dumps(ev, separators=(",", ":")) + "\n")
        else:
            out.write(f"{ev['ts']}  {ev['channel']:<24} {_fmt(ev['value']):>12} "
                      f"{ev['unit']:<6} {ev['quality']:<8} seq {ev['seq']}"
                      + (f"  {','.join(ev['flags'])}" if ev["flags"] else "") + "\n")
        out.flush()
    return 1


def _screen(events: Iterable[dict[str, Any]], title: str) -> int:
    out = sys.stdout
    board = Board()
    out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, hidden cursor
    ended = "the daemon closed the stream"
    try:
        drawn = 0.0
        draw(board, title, out)
        for ev in events:
            if "history" in ev:
                board.seed(ev["history"])
            elif "end" in ev:
                ended = ev["end"]
                return 1
            elif "channel" in ev:
                board.add(ev)
            elif "keepalive" in ev:
                board.dropped = int(ev.get("dropped") or 0)
            if time.monotonic() - drawn >= 0.5:
                draw(board, title, out)
                drawn = time.monotonic()
        return 1
    finally:
        out.write("\x1b[?25h\x1b[?1049l")
        out.flush()
        if sys.exc_info()[0] is None:
            print(f"daq tail: {ended}", file=sys.stderr)
