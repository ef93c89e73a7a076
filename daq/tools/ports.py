"""``daq ports``: the serial ports, what they are, and who holds them open.

For each port: the device, its stable ``/dev/serial/by-id`` name (use that in a
configuration: ``/dev/ttyUSB0`` changes when adapters are replugged), the USB vendor,
product and serial number, and every process that has it open (found through the
``/proc/PID/fd`` links, so a process of another user is only seen when run as root).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from . import EXIT_BAD_INPUT, EXIT_OK, add_command, fail

EXAMPLES = """List serial ports with their /dev/serial/by-id names, USB ids and holders.

examples:
  daq ports
  daq ports --json
  daq ports /dev/ttyUSB0 /dev/ttyAMA0     only these (any character device, ptys too)

A port held by the daemon is shown as "daq daemon": stop it, or use `daq read`, which asks
the daemon for a slot on the bus, rather than opening the port a second time."""

BY_ID = Path("/dev/serial/by-id")
PROC = Path("/proc")


def register(sub: Any) -> None:
    p = add_command(sub, "ports", "serial ports, USB ids and who holds them", EXAMPLES)
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="check only these devices")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ports)


def by_id_names(by_id: Path = BY_ID) -> dict[str, list[str]]:
    """real device path → its /dev/serial/by-id names."""
    out: dict[str, list[str]] = {}
    try:
        links = sorted(by_id.iterdir())
    except OSError:
        return out
    for link in links:
        try:
            out.setdefault(os.path.realpath(link), []).append(str(link))
        except OSError:
            continue
    return out


def _cmdline(pid: str) -> list[str]:
    try:
        raw = (PROC / pid / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_daemon(argv: list[str]) -> bool:
    """``daq run …`` or ``python -m daq run …``."""
    for i, arg in enumerate(argv[:-1]):
        if (os.path.basename(arg) == "daq" or (arg == "daq" and i and argv[i - 1] == "-m")) \
                and argv[i + 1] == "run":
            return True
    return False


def holders(devices: set[str]) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """device → the processes holding it; and how many processes could not be inspected."""
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in devices}
    hidden = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except PermissionError:
            hidden += 1
            continue
        except OSError:
            continue  # the process ended meanwhile
        seen: set[str] = set()
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in found and target not in seen:
                seen.add(target)
                argv = _cmdline(entry.name)
                found[target].append({
                    "pid": int(entry.name), "daemon": is_daemon(argv),
                    "command": " ".join(argv)[:80] or entry.name})
    return found, hidden


def list_ports(wanted: list[str]) -> tuple[list[dict[str, Any]], int]:
    from serial.tools import list_ports as lp

    ids = by_id_names()
    info: dict[str, Any] = {os.path.realpath(p.device): p for p in lp.comports()}
    devices = [os.path.realpath(d) for d in wanted] if wanted else sorted(info)
    held, hidden = holders(set(devices))
    rows = []
    for dev in devices:
        p: Any = info.get(dev)
        usb = p is not None and p.vid is not None
        if usb:
            description = " ".join(x for x in (p.manufacturer, p.product) if x)
        else:
            description = p.description if p is not None and p.description != "n/a" else ""
        rows.append({
            "device": dev, "by_id": ids.get(dev, []),
            "vendor": f"{p.vid:04x}" if usb else None,
            "product": f"{p.pid:04x}" if usb else None,
            "serial": p.serial_number if usb else None,
            "description": description,
            "held_by": held.get(dev, [])})
    return rows, hidden


def _holder_words(h: list[dict[str, Any]]) -> str:
    if not h:
        return "free"
    return ", ".join(f"daq daemon (pid {x['pid']})" if x["daemon"]
                     else f"pid {x['pid']} ({x['command'][:30]})" for x in h)


def cmd_ports(args: argparse.Namespace) -> int:
    from ..tables import render

    missing = [d for d in args.devices if not os.path.exists(d)]
    if missing:
        return fail("ports", f"no such device: {', '.join(missing)}", EXIT_BAD_INPUT)
    rows, hidden = list_ports(args.devices)
    if args.json:
        print(json.dumps({"ports": rows, "uninspected_processes": hidden}, indent=1))
        return EXIT_OK
    if not rows:
        print("no serial ports found (is the USB adapter plugged in? `dmesg | tail`)")
    else:
        print(render(["device", "by-id", "usb vid:pid", "serial", "description", "held by"],
                     [[r["device"], ", ".join(Path(b).name for b in r["by_id"]) or "-",
                       f"{r['vendor']}:{r['product']}" if r["vendor"] else "-",
                       r["serial"] or "-", r["description"] or "-",
                       _holder_words(r["held_by"])] for r in rows]))
    if hidden:
        print(f"({hidden} processes of other users not inspected: run as root to see "
              "every holder)")
    return EXIT_OK


def daemon_holding(url: str) -> str | None:
    """If ``url`` is a local device the running daemon has open: why not to open it too."""
    if not url.startswith("/"):
        return None
    dev = os.path.realpath(url)
    held, _ = holders({dev})
    pids = [h["pid"] for h in held.get(dev, []) if h["daemon"] and h["pid"] != os.getpid()]
    if not pids:
        return None
    return (f"the daq daemon (pid {pids[0]}) holds {url}: frames sent now would collide "
            "with its polling. Stop it (systemctl stop daq), use `daq read`, which asks the "
            "daemon for a slot, or pass --force to share the line anyway")

