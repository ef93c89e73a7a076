"""``daq gnss series POINT``: a monitoring point's deformation series.

The sessions (raw displacement) and the filtered line with its ±2σ band, per dam axis, as
a chart in the terminal, then the last filtered value and velocity; ``--csv`` or
``--json`` print the same data for scripts. Read from
``<state dir>/gnss_points/<point>.series.jsonl`` (written by the daemon; safe to read
while it runs). ``--since`` takes a UTC date/time (``2026-11-20``, ``2026-11-20T06:00``)
or an age (``12h``, ``7d``). Exit codes: 0 ok, 1 a series this user may not read (who
may is said), 2 bad input (unknown point, no series, bad ``--since``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daq.access import missing_dir, refused
from daq.gnss.gnss_config import POINT_RE

from .series_chart import AXES, chart, latest, legend, utc_of

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")


def since_days(text: str, now: datetime | None = None) -> float:
    """``--since`` → Unix days; ValueError with the accepted forms."""
    now = now or datetime.now(UTC)
    m = _AGE.match(text.strip().lower())
    if m:
        n = float(m.group(1))
        when = now - (timedelta(hours=n) if m.group(2) == "h" else timedelta(days=n))
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--since {text!r}: give a UTC date/time (2026-11-20, "
                             "2026-11-20T06:00) or an age (12h, 7d)") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400.0


def _csv(rows: list[dict[str, Any]]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    vec = ("raw_mm", "displacement_mm", "sigma_mm", "velocity_mm_day",
           "sigma_velocity_mm_day")
    w.writerow(["session", "time_utc", "status", "events"]
               + [f"{k}_{a}" for k in vec for a in AXES])
    for r in rows:
        cells: list[Any] = [r["session"], f"{utc_of(float(r['t_days'])):%Y-%m-%dT%H:%M:%SZ}",
                            r["status"], " ".join(r.get("events") or [])]
        for k in vec:
            v = r.get(k)
            cells += ["" if v is None else x for x in (v if v is not None else [None] * 3)]
        w.writerow(cells)


def run(args: argparse.Namespace) -> int:
    from daq.gnss.sessions.series_history import history_path, read_history

    if not POINT_RE.match(args.point):
        print(f"daq: bad point name {args.point!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    points_dir = Path(args.state_dir) / "gnss_points"
    path = history_path(points_dir, args.point)
    try:
        t_min = None if args.since is None else since_days(args.since)
        if (why := refused(path)) is not None:
            print(f"daq: cannot read the series of {args.point} {path}: {why}",
                  file=sys.stderr)
            return EXIT_FAILURE
        rows, bad = read_history(points_dir, args.point)
    except ValueError as err:
        print(f"daq: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError:
        print(f"daq: no series for point {args.point!r} ({path} does not exist; give "
              f"--state-dir){missing_dir(path)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PermissionError as err:  # lost a race with a chmod: still in words
        print(f"daq: cannot read the series of {args.point} {path}: {err.strerror}",
              file=sys.stderr)
        return EXIT_FAILURE
    if bad:
        print(f"daq: {bad} unreadable line(s) skipped in "
              f"{history_path(points_dir, args.point)}", file=sys.stderr)
    if t_min is not None:
        rows = [r for r in rows if float(r["t_days"]) >= t_min]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if args.csv:
        _csv(rows)
        return EXIT_OK
    if not rows:
        print(f"no sessions of {args.point} in the series"
              + (f" since {args.since}" if args.since else ""))
        return EXIT_OK
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ and not args.no_color
    axes = range(3) if args.axis is None else [AXES.index(args.axis)]
    print(f"{args.point}: {len(rows)} session(s)")
    for i in axes:
        print(chart(rows, i, args.width, args.height, colour))
        print()
    print(legend())
    print(latest(rows))
    return EXIT_OK


def register(gnss_subparsers: Any) -> None:
    """Add ``series`` to the ``daq gnss`` subcommands."""
    s = gnss_subparsers.add_parser(
        "series", help="a point's deformation series: sessions and filtered line",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("point", metavar="POINT", help="monitoring point, e.g. P01")
    s.add_argument("--since", metavar="WHEN", help="UTC date/time or age (12h, 7d)")
    s.add_argument("--axis", choices=AXES, help="only this dam axis")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="CSV, one row per session")
    out.add_argument("--json", action="store_true", help="JSON list, one object per session")
    s.add_argument("--width", type=int, default=72, help="chart width in columns (72)")
    s.add_argument("--height", type=int, default=14, help="chart height in lines (14)")
    s.add_argument("--no-color", action="store_true", help="no ANSI colours")
    s.add_argument("--state-dir", default=os.environ.get("STATE_DIRECTORY", "/var/lib/daq"),
                   metavar="DIR", help="the daemon's state directory")
    s.set_defaults(func=run)
