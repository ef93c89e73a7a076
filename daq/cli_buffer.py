"""``daq buffer stats|export``: look into the outbox (the readings not yet sent) read-only.

Safe beside the running daemon: the file is opened read-only, nothing is changed or
locked; what the broker has acknowledged is no longer there.

Examples::

    daq buffer stats --state-dir /var/lib/daq
    daq buffer export --since 2026-11-30T22:00 --until 2026-12-01T06:00 > night.csv
    daq buffer export --since 6h --format jsonl --config /etc/daq/site.yaml
    daq buffer stats --json

Times are ISO 8601 (UTC when no offset is given) or an age like 90min, 6h, 2d.
Exit codes: 0 ok, 1 the outbox cannot be read, 2 bad input.
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

from .helptext import help_kwargs

AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|min|h|d)$")
UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
CSV_FIELDS = ["ts", "channel", "device", "sensor", "quantity", "value", "unit", "quality",
              "seq", "lane", "topic", "flags"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "buffer", help="inspect or export the outbox (unsent readings), read-only",
        **help_kwargs(__doc__))
    sub = p.add_subparsers(dest="buffer_command", required=True, metavar="stats|export")
    for name, text in (("stats", "how much is buffered, how old, which channels"),
                       ("export", "unsent readings in a time range, as CSV or JSON lines")):
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--state-dir", help="the daemon's state directory (outbox.sqlite3)")
        s.add_argument("--config", help="find the state directory from this configuration")
        if name == "stats":
            s.add_argument("--json", action="store_true")
        else:
            s.add_argument("--since", help="from this time (inclusive)")
            s.add_argument("--until", help="to this time (exclusive)")
            s.add_argument("--format", choices=("csv", "jsonl"), default="csv")
            s.add_argument("--lane", choices=("alarm", "result", "raw"))
            s.add_argument("--output", "-o", help="write here instead of stdout")
        s.set_defaults(func=run)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    m = AGE.match(text.strip())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * UNITS[m.group(2)])
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use ISO 8601 (2026-12-01T06:00, UTC "
                         "unless an offset is given) or an age (90min, 6h, 2d)") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _outbox_path(args: argparse.Namespace) -> Path:
    from .outbox_read import OUTBOX_NAME

    if args.state_dir:
        return Path(args.state_dir) / OUTBOX_NAME
    if args.config:
        from . import config

        return Path(config.load(args.config).state_dir) / OUTBOX_NAME
    return Path(os.environ.get("STATE_DIRECTORY", "/var/lib/daq")) / OUTBOX_NAME


def run(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .outbox_read import OutboxReader, OutboxUnreadable

    since = until = None
    try:
        if getattr(args, "since", None):
            since = parse_time(args.since)
        if getattr(args, "until", None):
            until = parse_time(args.until)
        path = _outbox_path(args)
    except ValueError as err:
        print(f"daq buffer: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"daq buffer: {args.config}: {err}", file=sys.stderr)
        return 2
    if since and until and until <= since:
        print("daq buffer: --until must be after --since", file=sys.stderr)
        return 2
    try:
        reader = OutboxReader(path)
    except OutboxUnreadable as err:
        print(f"daq buffer: {err}", file=sys.stderr)
        return 1
    try:
        if args.buffer_command == "stats":
            return _stats(reader.stats(), args.json)
        return _export(annotated(reader.readings(since, until, args.lane), reader), args)
    finally:
        reader.close()


def _age(ts: datetime | None) -> str:
    if ts is None:
        return "-"
    s = (datetime.now(UTC) - ts).total_seconds()
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else \
        f"{s / 3600:.1f} h" if s < 172800 else f"{s / 86400:.1f} d"


def _stats(st: dict[str, Any], as_json: bool) -> int:
    from .tables import render

    if as_json:
        print(json.dumps(st, indent=1, default=str))
        return 0
    oldest = st["oldest_unsent"]
    print(f"{st['path']}: {st['readings']} unsent reading(s) in {st['rows']} row(s) on "
          f"{st['channels']} channel(s); "
          f"oldest unsent {oldest.isoformat() if oldest else '-'} ({_age(oldest)} old)")
    print(render(["lane", "readings", "rows", "oldest (UTC)", "newest (UTC)", "age of oldest"],
                 [[lane, e["readings"], e["rows"], e["oldest"] and e["oldest"].isoformat(),
                   e["newest"] and e["newest"].isoformat(), _age(e["oldest"])]
                  for lane, e in st["lanes"].items()]))
    if st["top_channels"]:
        print()
        print(render(["channel", "readings"], [list(c) for c in st["top_channels"]]))
    extra = ", ".join(f"{k} {v}" for k, v in sorted(st["counters"].items()))
    sizes = ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in st["bytes"].items())
    print(f"\nfiles: {sizes}" + (f"\ncounters: {extra}" if extra else ""))
    return 0


_WORSE = {"good": 0, "suspect": 1, "bad": 2, "missing": 3}


def manual_mismatches(reader: Any) -> dict[tuple[str, int], dict[str, Any]]:
    """(channel, seq) of every automatic reading a manual one disagreed with → the
    annotation: the buffered ``annotation/…`` readings (whatever the export's lane or time
    range), and the manual store's suspect pairs, which outlive an annotation the broker
    already has (the result lane goes ahead of the raw one)."""
    from .manual.store import suspect_autos

    out: dict[tuple[str, int], dict[str, Any]] = {}
    for p in suspect_autos(reader.db):
        manual = {"value": p["manual_value"], "ts": _iso(p["manual_ts"]), "by": p["by"],
                  "manual_id": p["manual_id"]}
        out[(str(p["channel"]), int(p["seq"]))] = {
            "quality": "suspect", "reason": "manual_mismatch", "manual": manual,
            "difference": p["difference"]}
    for r in reader.readings(lane="result"):
        key = r.get("annotates")
        if r.get("source") == "annotation" and isinstance(key, dict) and "seq" in key:
            out[(str(key.get("channel")), int(key["seq"]))] = dict(r.get("annotation") or {})
    return out


def annotated(readings: Any, reader: Any) -> Any:
    """``readings`` with each manual-mismatch annotation applied: the automatic reading it
    names is exported ``suspect`` (or worse, if it already was), flag ``manual_mismatch``,
    the annotation beside it (``annotation``, with the quality it was measured with)."""
    notes = manual_mismatches(reader)
    for r in readings:
        note = notes.get((str(r.get("channel")), r.get("seq"))) if notes else None
        if note is None or r.get("source") in ("manual", "annotation"):  # not automatic
            yield r
            continue
        quality = str(r.get("quality", "good"))
        flags = list(r.get("flags") or [])
        yield {**r, "quality": max(quality, str(note.get("quality", "suspect")),
                                   key=lambda q: _WORSE.get(q, 0)),
               "flags": flags if "manual_mismatch" in flags else [*flags, "manual_mismatch"],
               "annotation": {**note, "measured_quality": quality}}


def _iso(t: float | None) -> str | None:
    from .model import format_ts

    return None if t is None else format_ts(datetime.fromtimestamp(t, UTC))


def _export(readings: Any, args: argparse.Namespace) -> int:
    try:
        out = open(args.output, "w", encoding="utf-8", newline="") if args.output \
            else sys.stdout
    except OSError as err:
        from .access import denied

        why = denied(args.output, os.W_OK) if isinstance(err, PermissionError) \
            else err.strerror
        print(f"daq buffer: cannot write {args.output}: {why}", file=sys.stderr)
        return 2
    n = 0
    try:
        if args.format == "jsonl":
            for r in readings:
                out.write(json.dumps(r, separators=(",", ":")) + "\n")
                n += 1
        else:
            w = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            for r in readings:
                w.writerow({**r, "flags": ";".join(r.get("flags") or [])})
                n += 1
    finally:
        if args.output:
            out.close()
    print(f"daq buffer: {n} reading(s) exported", file=sys.stderr)
    return 0
