"""``daq alarm list|ack|shelve|unshelve|reset|oos|history``: the operator's commands.

They go through the running daemon's control socket; the daemon records each with who
(``--by``, else the login name) and when, commits the new state durably and publishes
the transition on the alarm lane.

Examples::

    daq alarm list --config /etc/daq/site.yaml
    daq alarm ack P07/level.hh --comment "seen, patrol sent" --config site.yaml
    daq alarm shelve P07/fault --for 2h --config site.yaml   # timed (alarms.max_shelve)
    daq alarm shelve P07/level.h --config site.yaml          # one-shot: until it clears
    daq alarm oos P07/fault --config site.yaml               # maintenance; --back to end
    daq alarm reset P07/level.hh --config site.yaml          # a latched alarm, returned

Exit codes: 0 done, 1 refused or no daemon, 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from ..helptext import help_kwargs
from ..tables import render

ACTIONS = ("ack", "shelve", "unshelve", "reset", "oos")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "alarm", help="list, acknowledge, shelve, reset alarms (through the daemon)",
        **help_kwargs(__doc__))
    sub = p.add_subparsers(dest="alarm_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="find the daemon's state directory from this file")
    common.add_argument("--state-dir", help="the daemon's state (or runtime) directory")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    ls = sub.add_parser("list", parents=[common], help="every alarm and its state")
    ls.add_argument("--sensor", help="only this sensor's alarms")
    ls.add_argument("--active", action="store_true", help="only active or unacked ones")
    hist = sub.add_parser("history", parents=[common], help="the audit trail")
    hist.add_argument("alarm", nargs="?", help="one alarm (default: all)")
    hist.add_argument("--limit", type=int, default=50)
    for name, text in (("ack", "acknowledge"), ("shelve", "shelve (suppress for a time)"),
                       ("unshelve", "end a shelve"), ("reset", "reset a latched alarm"),
                       ("oos", "take out of service (maintenance)")):
        a = sub.add_parser(name, parents=[common], help=text)
        a.add_argument("alarm", help="alarm id as `daq alarm list` shows it, e.g. P07/level.h")
        a.add_argument("--by", help="who (default: your login name)")
        a.add_argument("--comment", help="why, for the record")
        if name == "shelve":
            a.add_argument("--for", dest="duration", help="e.g. 30min, 2h (default: one-shot)")
        if name == "oos":
            a.add_argument("--back", action="store_true", help="return to service")
    p.set_defaults(func=run)


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    cmd = args.alarm_command
    if cmd == "list":
        return "alarm_list", {"sensor": args.sensor} if args.sensor else {}
    if cmd == "history":
        out: dict[str, Any] = {"limit": args.limit}
        if args.alarm:
            out["alarm"] = args.alarm
        return "alarm_history", out
    body: dict[str, Any] = {"alarm": args.alarm, "by": args.by or _login()}
    if args.comment:
        body["comment"] = args.comment
    if cmd == "shelve" and args.duration:
        from ..schema import parse_duration

        body["duration"] = parse_duration(args.duration)
    if cmd == "oos":
        body["oos"] = not args.back
    return f"alarm_{cmd}", body


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run(args: argparse.Namespace) -> int:
    from ..control import RequestError
    from ..control_client import ControlDenied, ControlUnavailable, connect, where
    from ..errors import ConfigError

    try:
        cmd, body = request(args)
        dirs = where(args)
    except (ValueError, ConfigError) as err:
        print(f"daq alarm: {err}", file=sys.stderr)
        return 2
    try:
        with connect(*dirs, timeout=30.0) as c:
            out = c.call(cmd, **body)
    except (ControlUnavailable, ControlDenied) as err:
        print(f"daq alarm: {err} (alarm commands need the running daemon)", file=sys.stderr)
        return 1
    except RequestError as err:
        print(f"daq alarm: refused ({err.code}): {err.message}", file=sys.stderr)
        return 2 if err.code in ("unknown_alarm", "bad_request", "bad_duration") else 1
    if args.json:
        print(json.dumps(out, indent=1))
    elif cmd == "alarm_list":
        rows = [v for v in out["alarms"] if not args.active or v["active"] or not v["acked"]]
        print(show(rows))
    elif cmd == "alarm_history":
        print(render(("at", "alarm", "event", "by", "value"),
                     [(_ts(e["at"]), e["alarm"], e["event"], e.get("by"), e.get("value"))
                      for e in out["events"]]))
    else:
        print(show([out]))
    return 0


def _ts(t: float | None) -> str | None:
    if t is None:
        return None
    from datetime import UTC, datetime

    from ..model import format_ts

    return format_ts(datetime.fromtimestamp(t, UTC))


def state_word(v: dict[str, Any]) -> str:
    if v["out_of_service"]:
        return "out of service"
    word = ("active" if v["active"] else "cleared") + (
        "" if v["acked"] else " unacked")
    if v["latched"]:
        word += " latched"
    if v["shelved"]:
        word += f" shelved({v['shelved']})"
    return word


def show(views: list[dict[str, Any]]) -> str:
    return render(("alarm", "class", "sev", "state", "value", "limit", "since",
                   "shelved until", "trans/h"),
                  [(v["alarm"], v["class"], v["severity"], state_word(v), v["value"],
                    v["limit"], _ts(v["raised_at"]) if v["active"] else None,
                    _ts(v["shelved_until"]), v["transitions_1h"]) for v in views])
