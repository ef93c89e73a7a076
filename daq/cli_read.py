"""``daq read DEVICE|SENSOR --config FILE``: one poll now, through the daemon's own code.

Shows the driver's values (raw), the sensor layer's engineering values with calibration and
quality, and the exact MQTT topic and payload the publisher would send, without sending.
When the daemon is running it owns the bus: the poll is then run by the daemon's bus
worker between its own transactions (over the control socket), so nothing collides on the
line. ``--publish`` sends the reading for real (through the outbox, so its seq is right).

Examples::

    daq read P07 --config /etc/daq/site.yaml
    daq read weir_logger --config site.yaml --json
    daq read LEVEL --config site.yaml --publish

Exit codes: 0 polled, 1 the device did not answer or publishing failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from pathlib import Path
from typing import Any

from .helptext import help_kwargs
from .tables import render


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "read", help="poll one device or sensor now and show what would be published",
        **help_kwargs(__doc__))
    p.add_argument("target", metavar="DEVICE|SENSOR", help="a device name or a sensor id")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.add_argument("--state-dir", help="the daemon's state (or runtime) directory")
    p.add_argument("--mqtt-url", help="override mqtt.url for --publish without a daemon")
    p.add_argument("--publish", action="store_true",
                   help="send the reading to the broker for real (through the outbox)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def fail(text: str, code: int) -> int:
    print(f"daq read: {text}", file=sys.stderr)
    return code


def resolve(cfg: Any, target: str) -> tuple[str, str | None] | str:
    """(device, sensor or None), or a message saying what is known."""
    devices = {d.name for d in cfg.devices}
    if target in devices:
        return target, None
    if target in cfg.sensors:
        from .sensors.sensorset import PRIMARY_ROLES

        inputs = dict(cfg.sensors[target].get("inputs", {}))
        role = next((r for r in PRIMARY_ROLES if r in inputs), None)
        if role is None:
            return f"sensor {target!r} has no primary input"
        return str(inputs[role]).partition("/")[0], target
    close = difflib.get_close_matches(target, sorted(devices | set(cfg.sensors)), 3, 0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else (
        f"; devices: {', '.join(sorted(devices)) or 'none'}")
    return f"no device or sensor {target!r} in {cfg.source}{hint}"


def run(args: argparse.Namespace) -> int:
    from . import config
    from .control import RequestError
    from .control_client import (
        Client,
        ControlDenied,
        ControlUnavailable,
        find_socket,
        running_daemon,
    )
    from .errors import ConfigError

    try:
        cfg = config.load(args.config)
        if args.mqtt_url:
            cfg = config.with_mqtt_url(cfg, args.mqtt_url)
    except ConfigError as err:
        print(f"daq read: {len(err.problems)} problem(s) in {err.source}:", file=sys.stderr)
        for p in err.problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    found = resolve(cfg, args.target)
    if isinstance(found, str):
        return fail(found, 2)
    device, sensor = found
    out: dict[str, Any] | None = None
    sock = find_socket(args.state_dir, cfg.state_dir)
    try:
        with Client(sock, timeout=60.0) as c:
            out = c.call("read", device=device, publish=bool(args.publish))
    except ControlUnavailable as err:
        running = running_daemon(args.state_dir, cfg.state_dir)
        if running is not None:  # never poll a line the daemon owns
            return fail(f"a daemon is running (pid {running['pid']}) but {err}; "
                        "not polling its bus behind its back", 1)
        out = None  # no daemon: the line is free, poll it ourselves
    except ControlDenied as err:
        return fail(str(err), 1)
    except RequestError as err:
        return fail(f"the daemon refused: {err.message}", 2 if err.code.startswith(
            "unknown") else 1)
    except OSError as err:
        return fail(f"talking to the daemon on {sock}: {err}", 1)
    if out is None:
        out = _standalone(cfg, device, args)
    if sensor is not None and out.get("ok"):
        refs = {str(r) for r in dict(cfg.sensors[sensor].get("inputs", {})).values()}
        out["channels"] = [c for c in out["channels"] if f"{device}/{c['channel']}" in refs]
        out["readings"] = [r for r in out["readings"] if r["sensor"] == sensor]
        for m in out["messages"]:
            m["payload"]["readings"] = [r for r in m["payload"]["readings"]
                                        if r.get("sensor") == sensor]
        out["messages"] = [m for m in out["messages"] if m["payload"]["readings"]]
    if args.json:
        print(json.dumps(out, indent=1, default=str))
    else:
        print(show(out))
    if not out.get("ok"):
        return 1
    return 1 if out.get("publish_error") else 0


def _standalone(cfg: Any, device: str, args: argparse.Namespace) -> dict[str, Any]:
    from .bus import BusWorker, close_link
    from .config import instantiate
    from .daemon import Pipeline
    from .outbox_read import OUTBOX_NAME, OutboxReader, OutboxUnreadable
    from .readout import NoCounters, PollFailed, describe, probe

    bus = next(b for b in cfg.buses if device in {d.name for d in b.devices})
    worker = BusWorker(bus, {d.name: instantiate(d, cfg.drivers) for d in bus.devices},
                       lambda res: None)
    pipeline = Pipeline(cfg, NoCounters())  # type: ignore[arg-type]  # counts only
    try:
        res = probe(worker, device)
    except PollFailed as err:
        return {"device": device, "bus": bus.name, "ok": False, "error_kind": err.kind,
                "error": err.text, "served_by": "this command (no daemon running)"}
    finally:
        if worker.link is not None:
            close_link(worker.link)
    readings = pipeline.readings(res)
    state_dir = Path(args.state_dir or cfg.state_dir)
    try:
        reader = OutboxReader(state_dir / OUTBOX_NAME)
        last_seq = reader.last_seq
    except OutboxUnreadable:
        last_seq = lambda channel: 0  # noqa: E731  no outbox yet: every seq starts at 1
    out = describe(cfg, res, readings, last_seq)
    out["served_by"] = "this command (no daemon running)"
    if args.publish:
        out.update(_publish(cfg, state_dir, readings))
    return out


def _publish(cfg: Any, state_dir: Path, readings: list[Any]) -> dict[str, Any]:
    """Through the outbox (seqs stay continuous), then the publisher until acknowledged."""
    if cfg.mqtt is None:
        return {"publish_error": "no broker configured (mqtt: in the configuration)"}
    from .outbox import Outbox
    from .publisher import Publisher

    outbox = Outbox(Path(state_dir) / "outbox.sqlite3")
    try:
        outbox.add(readings)
        pub = Publisher(cfg.mqtt, outbox, site=cfg.site, rtu=cfg.rtu)
        pub.start()
        deadline = time.monotonic() + 20.0
        while any(outbox.depth().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pub.stop()
        pub.join(5.0)
        left = sum(outbox.depth().values())
    finally:
        outbox.close()
    if left:
        return {"publish_error": f"the broker did not acknowledge in 20 s "
                f"({pub.state.last_error or 'no error given'}); {left} reading(s) stay in "
                "the outbox for the daemon"}
    return {"published": f"acknowledged by {pub.state.broker}"}


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return " ".join(f"{k}={_num(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _num(x: Any) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def show(out: dict[str, Any]) -> str:
    head = f"{out['device']} on bus {out['bus']} — polled by {out.get('served_by')}"
    if not out.get("ok"):
        return f"{head}\nNO READING: {out['error_kind']}: {out['error']}"
    lines = [f"{head} at {out['ts']}", "", "driver values (raw)"]
    lines.append(render(["channel", "value", "unit", "quality", "flags", "raw"],
                        [[c["channel"], c["value"], c["unit"], c["quality"],
                          ",".join(c["flags"]), _short(c["raw"])] for c in out["channels"]]))
    derived = [r for r in out["readings"] if r["sensor"] is not None]
    if derived:
        lines += ["", "engineering values (sensor layer)"]
        lines.append(render(["channel", "value", "unit", "quality", "flags", "inputs",
                             "calibration"],
                            [[r["channel"], r["value"], r["unit"], r["quality"],
                              ",".join(r["flags"]), _short(r["raw"]), _short(r["calibration"])]
                             for r in derived]))
    lines.append("")
    if out.get("published"):
        lines.append(f"published: {out['published']}")
    elif out.get("publish_error"):
        lines.append(f"NOT PUBLISHED: {out['publish_error']}")
    else:
        lines.append("would publish (dry run; --publish sends it):")
    for m in out["messages"]:
        lines.append(f"  topic   {m['topic'] or '(no broker configured)'}")
        lines.append(f"  payload {json.dumps(m['payload'], separators=(',', ':'))}")
    return "\n".join(lines)
