"""``daq modbus read|scan|trace``: one read with every decoding, a bus scan, a frame trace.

The transports are the daemon's (see :mod:`daq.tools.modbus_link`); the frames are built
and classified by :mod:`daq.tools.rtu`, so a bad CRC or a reply from the wrong unit is
reported as such instead of vanishing inside a client library.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, add_command, fail, positive_float

READ_EXAMPLES = """Read registers once and show them; exit 1 when the unit does not answer.

examples:
  daq modbus read /dev/ttyUSB0 --baud 9600 --unit 7 --address 0 --count 2
  daq modbus read tcp://192.168.1.20:502 --unit 1 --address 100 --count 4 --decode all
  daq modbus read socket://10.0.0.5:4001 --unit 3 --address 0 --type float32 --order CDAB
  daq modbus read sim://reservoir --unit 1 --kind input --address 0 --count 2 --trace

--decode all shows int16/uint16/int32/uint32/int64/uint64/float32/float64 in the byte
orders ABCD, CDAB, BADC and DCBA side by side ("·": not a plausible measurement), to find
an unknown register layout. The first register holds bytes A B, the second C D."""

SCAN_EXAMPLES = """Ask every unit id in turn for one register and classify each answer:
value, exception (alive, but the register is not in its map), bad CRC, garbled, silent.

examples:
  daq modbus scan /dev/ttyUSB0 --baud 9600 --parity N
  daq modbus scan /dev/ttyUSB0 --baud 9600,19200 --parity N,E --ids 1-30 --timeout 0.2
  daq modbus scan tcp://192.168.1.20:502 --ids 1-10 --json

The time per dead address is measured: it is what each silent unit costs a bus scan (and
what a dead device costs the daemon's polling on every cycle)."""

TRACE_EXAMPLES = """Listen on a serial line (never send) and print each frame: hex, CRC verdict,
the gap since the previous frame in ms, and a check against the 3.5-character silence.

examples:
  daq modbus trace /dev/ttyUSB0 --baud 9600 --duration 10
  daq modbus trace /dev/ttyUSB0 --baud 19200 --frames 50 --json"""


def _link_args(p: argparse.ArgumentParser, timeout: float, many: bool = False) -> None:
    p.add_argument("url", metavar="URL",
                   help="/dev/ttyUSB0, socket://HOST:PORT, rfc2217://HOST:PORT, sim://NAME "
                        "(Modbus RTU) or tcp://HOST:PORT (Modbus TCP)")
    word = "baud rate(s), comma-separated" if many else "baud rate"
    p.add_argument("--baud", default="9600", help=f"{word} (default 9600)")
    p.add_argument("--parity", default="N", help="N, E or O" + (" (comma-separated)"
                                                                  if many else ""))
    p.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    p.add_argument("--timeout", type=positive_float, default=timeout,
                   help=f"seconds to wait for a reply (default {timeout:g})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--force", action="store_true",
                   help="use the port even though the daemon holds it")


def busy(args: argparse.Namespace) -> str | None:
    """Why the port must not be used now (the daemon polls on it), unless --force."""
    if getattr(args, "force", False):
        return None
    from .ports import daemon_holding

    return daemon_holding(args.url)


def register(sub: Any) -> None:
    m = sub.add_parser("modbus", help="read registers, scan a bus, trace frames",
                       description="Modbus diagnostics on the daemon's transports.")
    msub = m.add_subparsers(dest="modbus_command", required=True, metavar="MODBUS_COMMAND")
    r = add_command(msub, "read", "one read, optionally with every decoding", READ_EXAMPLES)
    _link_args(r, 0.5)
    r.add_argument("--unit", type=int, required=True, help="unit id (slave address) 0-255")
    r.add_argument("--address", type=int, required=True, help="first register, 0-based")
    r.add_argument("--count", type=int, help="registers or bits (default: what --type needs)")
    r.add_argument("--kind", choices=("holding", "input", "coil", "discrete"),
                   default="holding")
    r.add_argument("--type", dest="data_type",
                   choices=("int16", "uint16", "int32", "uint32", "int64", "uint64",
                            "float32", "float64"), help="decode as this type")
    r.add_argument("--order", choices=("ABCD", "CDAB", "BADC", "DCBA"), default="ABCD",
                   help="byte order for --type (default ABCD, big-endian)")
    r.add_argument("--decode", choices=("all",), help="every type in every byte order")
    r.add_argument("--trace", action="store_true", help="print the frames on stderr")
    r.set_defaults(func=cmd_read)

    s = add_command(msub, "scan", "which unit ids answer, each answer classified",
                    SCAN_EXAMPLES)
    _link_args(s, 0.1, many=True)
    from . import int_range

    s.add_argument("--ids", type=int_range, default=list(range(1, 248)),
                   help="unit ids, e.g. 1-247 (default) or 1,3,10-20")
    s.add_argument("--kind", choices=("holding", "input", "coil", "discrete"),
                   default="holding", help="what to read from each id (default holding)")
    s.add_argument("--address", type=int, default=0, help="register to ask for (default 0)")
    s.add_argument("--all", action="store_true", help="list silent ids too")
    s.add_argument("--trace", action="store_true", help="print the frames on stderr")
    s.set_defaults(func=_scan)

    t = add_command(msub, "trace", "listen and print frames with CRC verdict and gaps",
                    TRACE_EXAMPLES)
    t.add_argument("url", metavar="URL", help="serial device or socket:// / rfc2217:// URL")
    t.add_argument("--baud", type=int, default=9600, help="baud rate (default 9600)")
    t.add_argument("--parity", default="N", choices=("N", "E", "O"))
    t.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    t.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    t.add_argument("--frames", type=int, help="stop after this many frames")
    t.add_argument("--gap-ms", type=positive_float,
                   help="silence that ends a frame (default: 3.5 characters, ≥ 5 ms)")
    t.add_argument("--json", action="store_true", help="one JSON object per frame")
    t.set_defaults(func=_trace)


def _scan(args: argparse.Namespace) -> int:
    from .modbus_scan import cmd_scan

    return cmd_scan(args)


def _trace(args: argparse.Namespace) -> int:
    from .modbus_trace import cmd_trace

    return cmd_trace(args)


def settings_of(args: argparse.Namespace, baud: int, parity: str) -> Any:
    from .modbus_link import LinkSettings

    return LinkSettings(args.url, baudrate=baud, parity=parity, stopbits=args.stopbits,
                        timeout=args.timeout)


def parse_list(text: str, what: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [x.strip().upper() for x in str(text).split(",") if x.strip()]
    if not items:
        raise ValueError(f"no {what} given")
    for x in items:
        if allowed is not None and x not in allowed:
            raise ValueError(f"{what} {x!r} is not one of {', '.join(allowed)}")
        if allowed is None and (not x.isdigit() or not 50 <= int(x) <= 4_000_000):
            raise ValueError(f"{what} {x!r} is not a baud rate such as 9600")
    return items


def cmd_read(args: argparse.Namespace) -> int:
    from . import decodings, rtu
    from .modbus_link import open_link
    from .modbus_trace import print_frames

    try:
        baud = int(parse_list(args.baud, "baud rate")[0])
        parity = parse_list(args.parity, "parity", ("N", "E", "O"))[0]
        function = rtu.FUNCTIONS[args.kind]
        bits = function in (1, 2)
        if (args.data_type or args.decode) and bits:
            raise ValueError(f"--type and --decode are for registers, not {args.kind}s")
        need = decodings.TYPES[args.data_type][0] if args.data_type else 1
        count = args.count if args.count is not None else need
        if count < need:
            raise ValueError(f"{args.data_type} needs {need} registers; --count is {count}")
        rtu.rtu_request(args.unit, function, args.address, count)  # validates the numbers
    except ValueError as err:
        return fail("modbus read", str(err), EXIT_BAD_INPUT)
    reason = busy(args)
    if reason:
        return fail("modbus read", reason)
    try:
        link = open_link(settings_of(args, baud, parity))
    except (OSError, ValueError) as err:
        return fail("modbus read", f"cannot open {args.url}: {err}")
    try:
        answer = link.read(args.unit, function, args.address, count)
    except OSError as err:
        return fail("modbus read", f"{args.url}: {err}")
    finally:
        link.close()
        if args.trace:
            print_frames(link.frames, baud, sys.stderr, link.tcp)
    where = f"unit {args.unit} {args.kind} {args.address}+{count}"
    if answer.outcome != "value":
        return fail("modbus read", f"{where}: {answer.words()}. {_hint(answer, args)}")
    return _show(args, answer.values, count)


def _hint(answer: Any, args: argparse.Namespace) -> str:
    if answer.outcome == "silent":
        return (f"Nothing came back within {args.timeout:g} s: check the unit id, baud rate, "
                "parity, wiring (A/B swapped?) and power; `daq modbus scan` finds who answers.")
    if answer.outcome == "exception" and answer.exception == 2:
        return "The unit is alive, but these registers are not in its map."
    if answer.outcome == "exception":
        return "The unit is alive and refused the request."
    if answer.outcome == "bad_crc":
        return ("Bytes came back damaged: a wrong baud rate or parity, a missing termination "
                "resistor, or a second master on the line.")
    return "Another device may be answering too, or the line carries noise."


def _show(args: argparse.Namespace, values: list[int], count: int) -> int:
    from ..tables import render
    from . import decodings

    if args.decode:
        rows = decodings.decode_all(values, args.address)
        if args.json:
            print(json.dumps({"unit": args.unit, "kind": args.kind, "address": args.address,
                              "registers": values, "decodings": rows}, indent=1))
            return EXIT_OK
        print(f"unit {args.unit} {args.kind} {args.address}+{count}: "
              + " ".join(f"{w:04x}" for w in values))
        cols = ["ABCD|AB", "CDAB", "BADC|BA", "DCBA"]
        table = []
        for r in rows:
            vals: dict[str, Any] = r["values"]  # type: ignore[assignment]
            cells = []
            for col in cols:
                key = next((k for k in col.split("|") if k in vals), None)
                if key is None:
                    cells.append("")
                else:
                    ok = key in r["plausible"]  # type: ignore[operator]
                    cells.append(decodings.fmt_value(vals[key]) if ok else "·")
            table.append([r["address"], r["type"], *cells])
        print(render(["register", "type", "ABCD / AB", "CDAB", "BADC / BA", "DCBA"], table))
        return EXIT_OK
    if args.data_type:
        n = decodings.TYPES[args.data_type][0]
        decoded = [{"address": args.address + i,
                    "value": decodings.decode(values[i:i + n], args.data_type, args.order)}
                   for i in range(0, count - n + 1, n)]
        if args.json:
            print(json.dumps({"unit": args.unit, "kind": args.kind, "type": args.data_type,
                              "order": args.order, "registers": values, "values": decoded},
                             indent=1))
        else:
            print(render(["register", f"{args.data_type} {args.order}"],
                         [[d["address"], decodings.fmt_value(d["value"])] for d in decoded]))
        return EXIT_OK
    if args.json:
        print(json.dumps({"unit": args.unit, "kind": args.kind, "address": args.address,
                          "values": values}, indent=1))
    elif args.kind in ("coil", "discrete"):
        print(render(["address", args.kind], [[args.address + i, v]
                                              for i, v in enumerate(values)]))
    else:
        print(render(["register", "hex", "uint16", "int16"],
                     [[args.address + i, f"0x{v:04x}", v, v - 65536 if v > 32767 else v]
                      for i, v in enumerate(values)]))
    return EXIT_OK


__all__ = ["EXIT_FAILURE", "cmd_read", "register"]
