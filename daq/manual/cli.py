"""``daq manual add|import|report``: manual readings beside the automatic ones.

``add`` and ``import`` go through the running daemon (it pairs each manual reading with
the nearest automatic value and publishes it on the result lane, source ``manual``);
``report`` reads the daemon's state directory and needs no daemon.

Examples::

    daq manual add LEVEL 112.43 --by "Li Wei" --config /etc/daq/site.yaml
    daq manual add LEVEL 112.40 --time 2026-11-30T08:00:00Z --config site.yaml
    daq manual import readings.csv --config site.yaml   # columns: sensor,value,time[,by,unit]
    daq manual report LEVEL --since 2026-09-01 --config site.yaml

Exit codes: 0 done (report: verdict pass), 1 no daemon / verdict fail, 2 bad input.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..access import denied, missing_dir, present
from ..helptext import help_kwargs
from ..tables import render


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "manual", help="enter manual readings and compare them with the automatic ones",
        **help_kwargs(__doc__))
    sub = p.add_subparsers(dest="manual_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", required=True, help="YAML configuration file")
    common.add_argument("--state-dir", help="the daemon's state (or runtime) directory")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    a = sub.add_parser("add", parents=[common], help="enter one manual reading")
    a.add_argument("sensor")
    a.add_argument("value", type=float)
    a.add_argument("--time", help="when it was read (ISO 8601; default now)")
    a.add_argument("--by", help="who read it (default: your login name)")
    a.add_argument("--unit", help="unit of the value (checked against the sensor's)")
    i = sub.add_parser("import", parents=[common], help="enter readings from a CSV file")
    i.add_argument("file", type=Path)
    i.add_argument("--by", help="who, for rows without a 'by' column")
    r = sub.add_parser("report", parents=[common], help="manual vs automatic comparison")
    r.add_argument("sensor")
    r.add_argument("--since", help="ISO date or time (default: all)")
    p.set_defaults(func=run)


class BadInput(Exception):
    pass


def _time(text: str | None, where: str) -> float | None:
    if not text:
        return None
    from datetime import UTC

    from ..model import parse_ts

    try:
        ts = parse_ts(text if "T" in text or " " in text else text + "T00:00:00Z")
    except ValueError:
        raise BadInput(f"{where}: {text!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


def read_csv(path: Path, cfg: Any, by: str) -> list[dict[str, Any]]:
    """Every row checked before any is sent: one bad row and nothing is entered."""
    from .service import ManualError, validate

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror or err}") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"sensor", "value", "time"} <= set(rows[0]):
        raise BadInput(f"{path}: expected a header with sensor,value,time[,by,unit]")
    out, problems = [], []
    for n, row in enumerate(rows, start=2):
        where = f"{path}:{n}"
        try:
            s = (cfg.manual.sensors if cfg.manual else {}).get(row["sensor"])
            if s is None:
                raise BadInput(f"{where}: {row['sensor']!r} takes no manual readings")
            try:
                value = float(row["value"])
            except ValueError:
                raise BadInput(f"{where}: {row['value']!r} is not a number") from None
            validate(s, value, row.get("unit") or None)
            out.append({"sensor": row["sensor"], "value": value,
                        "ts": _time(row["time"], where), "by": row.get("by") or by,
                        **({"unit": row["unit"]} if row.get("unit") else {})})
        except ManualError as err:
            problems.append(f"{where}: {err.message}")
        except BadInput as err:
            problems.append(str(err))
    if problems:
        raise BadInput(f"{len(problems)} bad row(s), nothing entered:\n  "
                       + "\n  ".join(problems))
    return out


def run(args: argparse.Namespace) -> int:
    from .. import config
    from ..errors import ConfigError

    try:
        cfg = config.load(args.config)
    except ConfigError as err:
        print(f"daq manual: {err}", file=sys.stderr)
        return 2
    try:
        if args.manual_command == "report":
            return report(cfg, args)
        by = args.by or _login()
        if args.manual_command == "add":
            items = [{"sensor": args.sensor, "value": args.value, "by": by,
                      **({"ts": t} if (t := _time(args.time, "--time")) is not None else {}),
                      **({"unit": args.unit} if args.unit else {})}]
        else:
            items = read_csv(args.file, cfg, by)
    except BadInput as err:
        print(f"daq manual: {err}", file=sys.stderr)
        return 2
    return send(cfg, args, items)


def send(cfg: Any, args: argparse.Namespace, items: list[dict[str, Any]]) -> int:
    from ..control import RequestError
    from ..control_client import ControlDenied, ControlUnavailable, connect

    done = []
    try:
        with connect(args.state_dir, cfg.state_dir, timeout=30.0) as c:
            for it in items:
                done.append(c.call("manual_add", **it))
    except (ControlUnavailable, ControlDenied) as err:
        print(f"daq manual: {err} (entering readings needs the running daemon); "
              f"{len(done)} of {len(items)} entered", file=sys.stderr)
        return 1
    except RequestError as err:
        print(f"daq manual: refused ({err.code}): {err.message}; {len(done)} of "
              f"{len(items)} entered", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(done, indent=1))
    else:
        print(render(("sensor", "time", "manual", "automatic", "its channel, seq",
                      "difference", "suspect"),
                     [(d["key"], d["ts"], d["value"], d.get("auto_value"),
                       f"{d['auto_channel']}, {d['auto_seq']}" if d.get("auto_channel")
                       else None, d.get("difference"),
                       "both" if d["suspect"] else False) for d in done]))
    return 0


def report(cfg: Any, args: argparse.Namespace) -> int:
    from .report import compare
    from .store import ManualStore

    s = (cfg.manual.sensors if cfg.manual else {}).get(args.sensor)
    if s is None:
        raise BadInput(f"{args.sensor!r} takes no manual readings in {cfg.source}")
    db = Path(args.state_dir or cfg.state_dir) / "outbox.sqlite3"
    if not present(db):
        raise BadInput(f"no daemon state in {db.parent} (no {db.name}){missing_dir(db)}")
    if not os.access(db, os.R_OK):
        raise BadInput(f"cannot read {db}: {denied(db)}")
    store = ManualStore(db, readonly=True)
    try:
        out = compare(s, store.readings(s.key, _time(args.since, "--since") or 0.0),
                      cfg.manual.pair_window)
    finally:
        store.close()
    for p in out["suspect_pairs"]:
        for k in ("ts", "manual_ts"):
            p[k] = _iso(p[k])
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        rows = [(k, out[k]) for k in ("manual_readings", "pairs", "mean_difference",
                                      "two_sigma", "u95", "within_tolerance", "suspect",
                                      "repeat_max_seen", "verdict")]
        print(f"{s.key} ({s.quantity}, {s.unit}), tolerance {s.tolerance:g}")
        print(render(("figure", "value"), rows))
        for r in out["reasons"]:
            print(f"  - {r}")
        if out["suspect_pairs"]:
            print("suspect automatic readings (annotated on annotation/"
                  f"{s.key}):")
            print(render(("channel", "seq", "time", "automatic", "quality", "manual",
                          "difference"),
                         [(p["channel"], p["seq"], p["ts"], p["value"], p["quality"],
                           p["manual_value"], p["difference"]) for p in out["suspect_pairs"]]))
    return 0 if out["verdict"] == "pass" else 1


def _iso(t: float | None) -> str | None:
    from datetime import UTC, datetime

    from ..model import format_ts

    return None if t is None else format_ts(datetime.fromtimestamp(t, UTC))


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
