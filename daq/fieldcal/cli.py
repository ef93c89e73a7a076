"""``daq calibrate zero|two-point|history SENSOR``: field calibration through the daemon.

``zero`` takes the sensor's current reading as the new zero (``--reference`` to make it
read a known value instead, e.g. a staff gauge); ``two-point`` fits gain and offset through
two ``READING=REFERENCE`` points (readings as the daemon sees them before correction).
A sensor with a zero of its own is re-zeroed in its own unit: a VW piezometer's zero
reading R0 (and T0, S0), a 4–20 mA level sensor's I0, a weir's crest reading, a radar or
ultrasonic gauge's zero elevation, an encoder's counts0 is stored and the sensor converts
with it; with ``--reference V`` that zero is solved so the main output (or ``--quantity``)
reads V now. Other sensors, device channels and outputs the zero does not move get a
linear offset (the output says which). Each is kept with who, when, before and after
(and the raw zero); later readings carry the new id.

Examples::

    daq calibrate zero P07 --by "Li Wei" --config site.yaml   # new R0 (digits) and T0
    daq calibrate zero W1 --config site.yaml                  # crest: the head reads 0
    daq calibrate zero P07 --quantity piezometric_elevation --reference 81.92 --config site.yaml
    daq calibrate zero LEVEL --reference 112.43 --config site.yaml   # radar: staff gauge
    daq calibrate zero BARO --reference 101.3 --config site.yaml     # no zero: an offset
    daq calibrate two-point weir_logger/ch1 --point 4.02=0 --point 19.96=10 --config site.yaml
    daq calibrate history LEVEL --config site.yaml

Exit codes: 0 done, 1 no daemon, 2 refused or bad input.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from ..helptext import help_kwargs
from ..tables import render


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate", help="field re-zero or two-point calibration, with history",
        **help_kwargs(__doc__))
    p.add_argument("method", choices=("zero", "two-point", "history"))
    p.add_argument("sensor", help="sensor id or device channel")
    p.add_argument("--quantity", help="which quantity reads --reference (or takes the "
                   "offset); needed for an offset when the sensor has several")
    p.add_argument("--reference", type=float,
                   help="zero: read this value now (default: the sensor's zero, else 0)")
    p.add_argument("--point", action="append", default=[], metavar="READING=REF",
                   help="two-point: twice")
    p.add_argument("--by", help="who (default: your login name)")
    p.add_argument("--comment")
    p.add_argument("--config", help="find the daemon's state directory from this file")
    p.add_argument("--state-dir", help="the daemon's state (or runtime) directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..control import RequestError
    from ..control_client import ControlDenied, ControlUnavailable, connect, where
    from ..errors import ConfigError

    try:
        points = [[float(x) for x in p.split("=", 1)] for p in args.point]
        if any(len(p) != 2 for p in points):
            raise ValueError("a point is READING=REFERENCE")
    except ValueError as err:
        print(f"daq calibrate: --point: {err}", file=sys.stderr)
        return 2
    try:
        dirs = where(args)
    except ConfigError as err:
        print(f"daq calibrate: {err}", file=sys.stderr)
        return 2
    if args.method == "history":
        cmd, body = "calibration_history", {"sensor": args.sensor}
    else:
        body = {"sensor": args.sensor, "method": args.method, "by": args.by or _login()}
        for k in ("quantity", "comment"):
            if getattr(args, k):
                body[k] = getattr(args, k)
        if args.reference is not None:
            body["reference"] = args.reference
        if points:
            body["points"] = points
        cmd = "calibrate"
    try:
        with connect(*dirs, timeout=30.0) as c:
            out = c.call(cmd, **body)
    except (ControlUnavailable, ControlDenied) as err:
        print(f"daq calibrate: {err} (calibration needs the running daemon)", file=sys.stderr)
        return 1
    except RequestError as err:
        print(f"daq calibrate: refused ({err.code}): {err.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    from ..sensors.zero import describe

    rows = out["history"] if cmd == "calibration_history" else [out]
    print(render(("id", "quantity", "by", "at", "before", "after", "raw zero"),
                 [(r["id"], r["quantity"], r["by"], r["at"], _side(r["before"]),
                   _side(r["after"]), describe(r["native"]) if r.get("native") else "-")
                  for r in rows]))
    if out.get("note"):
        print(out["note"])
    return 0


def _side(s: dict[str, Any]) -> str:
    if "zero" in s:  # a native re-zero: the main output, with the raw zero beside
        return f"{s['quantity']} {_g(s['value'])} {s['units'][s['quantity']]}"
    return f"{_g(s['value'])} (gain {s['gain']:.6g}, offset {s['offset']:.6g})"


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
