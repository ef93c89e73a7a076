"""``daq sdi12 scan|identify|measure``: talk to SDI-12 sensors through a serial adapter.

The exchanges are the daemon's own: the SDI-12 driver (drivers/sdi12) sends the break,
the command and reads the reply; its protocol module parses every answer. So what works
here works in the daemon, and a reply the daemon would reject is reported the same way.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, add_command, fail, positive_float

EXAMPLES = {
    "scan": """Ask every address (0-9, a-z, A-Z, or those given) whether a sensor is there,
and identify each one that answers.

examples:
  daq sdi12 scan /dev/ttyUSB1
  daq sdi12 scan /dev/ttyUSB1 --addresses 0123 --json""",
    "identify": """The sensor's identification (aI!): SDI-12 version, vendor, model, firmware
and the optional serial number.

examples:
  daq sdi12 identify /dev/ttyUSB1 --address 0""",
    "measure": """Start one measurement and read its values, exactly as the daemon does.

examples:
  daq sdi12 measure /dev/ttyUSB1 --address 0              (aM!, then aD0! …)
  daq sdi12 measure /dev/ttyUSB1 --address 2 --command MC1 (with CRC)
  daq sdi12 measure /dev/ttyUSB1 --address 0 --command R0 --json""",
}
ALL_ADDRESSES = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def register(sub: Any) -> None:
    s = sub.add_parser("sdi12", help="scan, identify and measure SDI-12 sensors",
                       description="SDI-12 diagnostics through a serial adapter.")
    ssub = s.add_subparsers(dest="sdi12_command", required=True, metavar="SDI12_COMMAND")
    for name, help_ in (("scan", "which addresses answer, with their identification"),
                        ("identify", "one sensor's identification (aI!)"),
                        ("measure", "one measurement (aM!/aC!/aR0! …) and its values")):
        p = add_command(ssub, name, help_, EXAMPLES[name])
        p.add_argument("url", metavar="URL", help="the adapter: /dev/ttyUSB1, socket://…")
        p.add_argument("--framing", default="7E1", choices=("7E1", "8N1"),
                       help="7E1 is the standard; 8N1 for adapters that convert")
        p.add_argument("--timeout", type=positive_float, default=0.3,
                       help="seconds to wait for a reply (default 0.3)")
        p.add_argument("--no-break", action="store_true",
                       help="do not send a break before each command")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--force", action="store_true",
                       help="use the port even though the daemon holds it")
        if name == "scan":
            p.add_argument("--addresses", default=ALL_ADDRESSES,
                           help="addresses to try, e.g. 0123 (default: all 62)")
        else:
            p.add_argument("--address", required=True, help="the sensor's address: 0-9, a-z, A-Z")
        if name == "measure":
            p.add_argument("--command", default="M", help="M, MC, C, CC, M1…M9, R0…R9 …")
        p.set_defaults(func=cmd_sdi12)


def _open(args: argparse.Namespace) -> Any:
    import serial

    bytesize, parity = (7, "E") if args.framing == "7E1" else (8, "N")
    return serial.serial_for_url(args.url, baudrate=1200, bytesize=bytesize, parity=parity,
                                 stopbits=1, timeout=args.timeout)


def _driver(args: argparse.Namespace, address: str, command: str = "M") -> Any:
    from daq_drivers.sdi12.driver import SDI12Driver

    return SDI12Driver("daq-sdi12", address, {"command": command, "values": [],
                                              "break": not args.no_break})


def cmd_sdi12(args: argparse.Namespace) -> int:
    from daq_drivers.sdi12 import protocol as p

    from ..errors import ConfigError, DeviceError

    what = f"sdi12 {args.sdi12_command}"
    try:
        if args.sdi12_command == "scan":
            addresses = list(dict.fromkeys(args.addresses))
            for a in addresses:
                p.normalise_address(a)
        else:
            p.normalise_address(args.address)
        if args.sdi12_command == "measure":
            p.parse_command(args.command)
    except ValueError as err:
        return fail(what, str(err), EXIT_BAD_INPUT)
    from .modbus import busy

    reason = busy(args)
    if reason:
        return fail(what, reason)
    try:
        link = _open(args)
    except (OSError, ValueError) as err:
        return fail(what, f"cannot open {args.url}: {err}")
    try:
        if args.sdi12_command == "scan":
            return _scan(args, link, addresses)
        if args.sdi12_command == "identify":
            return _identify(args, link)
        return _measure(args, link)
    except ConfigError as err:
        return fail(what, "; ".join(str(x) for x in err.problems), EXIT_BAD_INPUT)
    except DeviceError as err:
        return fail(what, f"{err}: check the address, the adapter's power (12 V on the "
                    "SDI-12 line) and the framing (--framing)")
    except OSError as err:
        return fail(what, f"{args.url}: {err}")
    finally:
        link.close()


def _ident(args: argparse.Namespace, link: Any, address: str) -> dict[str, Any]:
    from daq_drivers.sdi12 import protocol as p

    sent, line = _driver(args, address).transact(link, "I")
    ident = p.parse_identification(line, address, sent)
    return {"address": address, "sdi12_version": f"{ident.version[:1]}.{ident.version[1:]}",
            "vendor": ident.vendor, "model": ident.model, "firmware": ident.firmware,
            "serial": ident.extra}


def _scan(args: argparse.Namespace, link: Any, addresses: list[str]) -> int:
    from daq_drivers.sdi12 import protocol as p

    from ..errors import DeviceError, NoResponse
    from ..tables import render

    found: list[dict[str, Any]] = []
    for a in addresses:
        try:
            sent, line = _driver(args, a).transact(link, "")
            p.parse_ack(line, a, sent)
        except NoResponse:
            continue
        except DeviceError as err:  # something answered, garbled: show it
            found.append({"address": a, "error": str(err)})
            continue
        try:
            found.append(_ident(args, link, a))
        except DeviceError as err:
            found.append({"address": a, "error": f"answers, but aI! failed: {err}"})
    if args.json:
        print(json.dumps({"asked": len(addresses), "found": found}, indent=1))
    elif found:
        print(render(["address", "sdi-12", "vendor", "model", "firmware", "serial / note"],
                     [[f.get("address"), f.get("sdi12_version", ""), f.get("vendor", ""),
                       f.get("model", ""), f.get("firmware", ""),
                       f.get("serial") or f.get("error", "")] for f in found]))
        print(f"{len(found)} of {len(addresses)} address(es) answered")
    else:
        print(f"no sensor answered on {len(addresses)} address(es): check the 12 V supply, "
              "the data wire and the framing (--framing)")
    return EXIT_OK if found else EXIT_FAILURE


def _identify(args: argparse.Namespace, link: Any) -> int:
    from ..tables import render

    info = _ident(args, link, args.address)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(render(["field", "value"], [[k, v] for k, v in info.items()]))
    return EXIT_OK


def _measure(args: argparse.Namespace, link: Any) -> int:
    from ..tables import render

    drv = _driver(args, args.address, args.command)
    texts = drv._measure(link)  # the daemon's measurement sequence, values as text
    values = [{"index": i + 1, "text": t, "value": float(t)} for i, t in enumerate(texts)]
    if args.json:
        print(json.dumps({"address": args.address, "command": args.command,
                          "values": values}, indent=1))
    elif values:
        print(render(["value", "reading"], [[v["index"], v["text"]] for v in values]))
    else:
        print(f"sensor {args.address} returned no values to {args.command}")
    return EXIT_OK
