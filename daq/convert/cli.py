"""``daq convert KIND --param NAME=VALUE ... VALUE``: one conversion, for a technician.

Examples::

    daq convert vw-digits 2828.427
    daq convert vw-linear --param G=-0.1795 --param R0=9082 6749
    daq convert weir-usbr-90 --unit ft 1.0
    daq convert list

Parameter names are case-insensitive. Exit codes: 0 ok, 2 unknown kind, missing or bad
parameter, or an impossible value.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import convert as cv

Result = list[tuple[str, Any, str]]  # (name, value, unit)
P = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    help: str
    value: tuple[str, str]  # name and unit of the positional VALUE
    compute: Callable[[float, P, str], Result]
    required: tuple[str, ...] = ()
    optional: dict[str, Any] = field(default_factory=dict)
    one_of: tuple[str, ...] = ()  # exactly one of these is required
    units: tuple[str, ...] = ()  # allowed --unit values, first is the default
    text: tuple[str, ...] = ()  # parameters that are words, not numbers


def _weir(flow: cv.WeirFlow, unit: str) -> Result:
    base = [("flow", flow.flow, "m³/s" if unit == "m" else "cfs")]
    if unit == "m":
        base.append(("flow_lps", flow.flow * 1000.0, "L/s"))
    return [*base, ("in_range", flow.in_range, ""),
            ("valid_range", f"{flow.h_min:g}–{flow.h_max:g}", unit)]


def _density(p: P) -> float:
    return float(p["rho"]) if "rho" in p else cv.water_density_tanaka(p["t"])


def _head(v: float, p: P, u: str) -> Result:
    h = cv.head_from_pressure(v, _density(p), p["g"])
    out: Result = [("density", _density(p), "kg/m³"), ("head", h, "m")]
    if "tip" in p:
        out.append(("elevation", cv.piezometric_elevation(p["tip"], h), "m"))
    return out


def _poly(v: float, p: P, u: str) -> Result:
    if "c" not in p and "r0" not in p:
        raise KeyError("give C or R0 (then C = −(A·R0² + B·R0))")
    c = p["c"] if "c" in p else cv.polynomial_zero_offset(p["a"], p["b"], p["r0"])
    return [("C", c, ""), ("pressure", cv.polynomial_pressure(v, p["a"], p["b"], c),
                           "sheet unit")]


def _level_pressure(v: float, p: P, u: str) -> Result:
    kpa = v - p["baro"] if "baro" in p else v
    return [("level", cv.level_from_pressure(kpa, p["z"], _density(p), p["g"], p["offset"]),
             "m")]


def _ma(v: float, p: P, u: str) -> Result:
    out = cv.scale_4_20ma(v, p["low"], p["high"])
    return [("value", out.value, p["unit"]), ("status", out.status, "")]


KINDS: dict[str, Kind] = {
    "vw-digits": Kind("VW digits R = f²/1000 and period", ("f", "Hz"), lambda v, p, u: [
        ("digits", cv.digits_from_frequency(v), "digits"),
        ("period", cv.period_us_from_frequency(v), "µs")]),
    "vw-period": Kind("VW frequency and digits from a period", ("T", "µs"), lambda v, p, u: [
        ("frequency", cv.frequency_from_period_us(v), "Hz"),
        ("digits", cv.digits_from_period_us(v), "digits")]),
    "vw-lc2": Kind("Geokon LC-2 units f²·10⁻⁶", ("f", "Hz"), lambda v, p, u: [
        ("lc2", cv.lc2_from_frequency(v), "f²·10⁻⁶"),
        ("digits", cv.digits_from_frequency(v), "digits")]),
    "vw-linear": Kind("linear G·(R1 − R0), or G·(R0 − R1) with sign=r0_minus_r1",
                      ("R1", "digits"), lambda v, p, u: [("pressure", cv.linear_pressure(
                          v, p["r0"], p["g"], p["sign"]), "unit of G")],
                      ("G", "R0"), {"sign": "r1_minus_r0"}, text=("sign",)),
    "vw-poly": Kind("polynomial A·R² + B·R + C (C from R0 if not given)", ("R1", "digits"),
                    _poly, ("A", "B"), {"C": None, "R0": None}),
    "vw-temp": Kind("temperature term: geokon +K·(T1−T0), roctest −CT·(T1−T0)", ("T1", "°C"),
                    lambda v, p, u: [("correction", cv.temperature_correction(
                        v, p["t0"], p["k"], p["convention"]), "unit of K")],
                    ("K", "T0"), {"convention": "geokon"}, text=("convention",)),
    "thermistor": Kind("Steinhart–Hart 1/(A + B·lnR + C·lnR³ + D·lnR⁵) − offset", ("R", "Ω"),
                       lambda v, p, u: [("temperature", cv.steinhart_hart(
                           v, p["a"], p["b"], p["c"], p["d"], kelvin_offset=p["offset"]), "°C")],
                       ("A", "B", "C", "offset"), {"D": 0.0}),
    "water-density": Kind("ρ(T) of water, Tanaka et al. 2001 (0–40 °C)", ("T", "°C"),
                          lambda v, p, u: [("density", cv.water_density_tanaka(v), "kg/m³")]),
    "head": Kind("head P/(ρ·g) and elevation tip + head; rho= or T= for ρ(T)", ("P", "kPa"),
                 _head, ("g",), {"tip": None}, one_of=("rho", "T")),
    "weir-usbr-90": Kind("USBR 90° V-notch 2.49·h^2.48 (valid 0.2–1.25 ft)", ("h", "unit"),
                         lambda v, p, u: _weir(cv.v_notch_usbr_90(v, u), u), units=("ft", "m")),
    "weir-ks": Kind("Kindsvater–Shen V-notch; Ce and kh from the angle unless given",
                    ("h", "unit"), lambda v, p, u: _weir(cv.v_notch_kindsvater_shen(
                        v, p["angle"], gravity=p["g"], ce=p["ce"], kh=p["kh"], unit=u), u),
                    ("g",), {"angle": 90.0, "Ce": None, "kh": None}, units=("m", "ft")),
    "weir-sl-90": Kind("SL/DL 90° triangular weir 1.4·H^2.5 (m³/s, m)", ("H", "m"),
                       lambda v, p, u: _weir(cv.v_notch_sl_90(v), "m")),
    "weir-francis": Kind("Francis C·(L − 0.1·n·h)·h^1.5, C 1.838 (m) / 3.33 (ft)",
                         ("h", "unit"), lambda v, p, u: _weir(cv.rectangular_francis(
                             v, p["l"], unit=u, contractions=int(p["n"])), u),
                         ("L",), {"n": 2}, units=("m", "ft")),
    "weir-kc": Kind("Kindsvater–Carter Ce·(2/3)·√(2g)·(L + kb)·(h + kh)^1.5", ("h", "unit"),
                    lambda v, p, u: _weir(cv.rectangular_kindsvater_carter(
                        v, p["l"], ce=p["ce"], kb=p["kb"], kh=p["kh"], gravity=p["g"],
                        unit=u), u), ("L", "Ce", "kb", "kh", "g"), units=("m", "ft")),
    "weir-cipolletti": Kind("Cipolletti 1.86·L·h^1.5 (m) / 3.367·L·h^1.5 (ft)", ("h", "unit"),
                            lambda v, p, u: _weir(cv.cipolletti(v, p["l"], unit=u), u),
                            ("L",), units=("m", "ft")),
    "level-pressure": Kind("level z + P/(ρ·g) + offset; baro= (kPa) for unvented",
                           ("P", "kPa"), _level_pressure, ("z", "g"),
                           {"offset": 0.0, "baro": None}, one_of=("rho", "T")),
    "level-distance": Kind("radar level zero − distance + offset", ("d", "m"),
                           lambda v, p, u: [("level", cv.level_from_distance(
                               p["zero"], v, p["offset"]), "m")], ("zero",), {"offset": 0.0}),
    "level-ultrasonic": Kind("ultrasonic c = 331.45 + 0.607·T, d = c·t/2, zero − d",
                             ("t", "s"), lambda v, p, u: [
                                 ("speed_of_sound", cv.speed_of_sound_air(p["t"]), "m/s"),
                                 ("distance", cv.ultrasonic_distance(v, p["t"]), "m"),
                                 ("level", cv.level_from_distance(
                                     p["zero"], cv.ultrasonic_distance(v, p["t"]),
                                     p["offset"]), "m")], ("zero", "T"), {"offset": 0.0}),
    "level-encoder": Kind("encoder reference + (counts − counts0)·circumference/ppr",
                          ("counts", ""), lambda v, p, u: [("level", cv.level_from_encoder(
                              v, p["counts0"], p["reference"], p["circumference"], p["ppr"],
                              p["offset"]), "m")],
                          ("reference", "counts0", "circumference", "ppr"), {"offset": 0.0}),
    "ma": Kind("4–20 mA scaling with NAMUR NE 43 status; unit= names the range's unit",
               ("I", "mA"), _ma, ("low", "high"), {"unit": ""}, text=("unit",)),
}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter (repeat)")
    parser.add_argument("--unit", help="length unit for weirs: m or ft")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def register(subparsers: Any) -> None:
    """Add ``convert`` to the ``daq`` subcommands."""
    parser = subparsers.add_parser(
        "convert", help="one engineering conversion (VW, thermistor, weir, level, 4–20 mA)",
        description=__doc__.splitlines()[0], epilog="KINDs: " + ", ".join(KINDS))
    _options(parser)
    parser.add_argument("kind", metavar="KIND", help="conversion, or 'list' to see them all")
    # options may follow KIND and come between it and VALUE: run() parses the rest itself
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="[--param NAME=VALUE] VALUE")
    parser.set_defaults(func=run)


class _Usage(Exception):
    pass


class _RestParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # report through run(), exit code 2
        raise _Usage(message)


def _rest(args: argparse.Namespace) -> argparse.Namespace:
    parser = _RestParser(prog="daq convert", add_help=False)
    _options(parser)
    parser.add_argument("value", nargs="?")
    ns = parser.parse_intermixed_args(getattr(args, "rest", []) or [])
    ns.param = [*getattr(args, "param", []), *ns.param]
    ns.unit = ns.unit or getattr(args, "unit", None)
    ns.json = ns.json or getattr(args, "json", False)
    ns.kind = args.kind
    return ns


def _fail(message: str) -> int:
    print(f"daq convert: {message}", file=sys.stderr)
    return 2


def _params(kind: Kind, items: list[str]) -> P:
    names = {n.lower(): n for n in (*kind.required, *kind.optional, *kind.one_of)}
    given: P = {}
    for item in items:
        name, sep, text = item.partition("=")
        key = name.strip().lower()
        if not sep or key not in names:
            close = difflib.get_close_matches(key, list(names), 1)
            hint = f"; did you mean {names[close[0]]}?" if close else ""
            raise ValueError(f"unknown parameter {item!r} (takes "
                             f"{', '.join(names.values()) or 'none'}){hint}")
        given[key] = text.strip() if key in kind.text else _number(text, names[key])
    missing = [n for n in kind.required if n.lower() not in given]
    if missing:
        raise ValueError("missing parameter(s) " + ", ".join(f"{n}=…" for n in missing))
    if kind.one_of and sum(n.lower() in given for n in kind.one_of) != 1:
        raise ValueError("give exactly one of " + ", ".join(f"{n}=…" for n in kind.one_of))
    for n, default in kind.optional.items():
        given.setdefault(n.lower(), default)
    return {k: v for k, v in given.items() if v is not None or k in ("ce", "kh")}


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"parameter {name} must be a number, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Run one conversion; print the result with units (or JSON). Returns the exit code."""
    try:
        args = _rest(args)
    except _Usage as err:
        return _fail(str(err))
    if args.kind == "list":
        for name, k in KINDS.items():
            print(f"{name:17} {k.value[0]} [{k.value[1]}]  {k.help}")
        return 0
    kind = KINDS.get(args.kind)
    if kind is None:
        close = difflib.get_close_matches(args.kind, list(KINDS), 1)
        return _fail(f"unknown kind {args.kind!r}" + (f"; did you mean {close[0]}?" if close
                                                      else "; see 'daq convert list'"))
    unit = args.unit or (kind.units[0] if kind.units else "")
    if args.unit and args.unit not in kind.units:
        return _fail(f"{args.kind} takes no --unit {args.unit!r}"
                     + (f" (use {' or '.join(kind.units)})" if kind.units else ""))
    if args.value is None:
        return _fail(f"{args.kind} needs VALUE: {kind.value[0]} in {kind.value[1] or 'counts'}")
    try:
        params = _params(kind, args.param)
        value = _number(args.value, kind.value[0])
        results = kind.compute(value, params, unit)
    except (ValueError, KeyError) as err:  # a KeyError's str() is its repr: use the text
        return _fail(str(err.args[0]) if err.args else type(err).__name__)
    in_unit = unit if kind.value[1] == "unit" else kind.value[1]
    if args.json:
        print(json.dumps({"kind": args.kind, "input": {"name": kind.value[0], "value": value,
                                                      "unit": in_unit},
                          "params": params,
                          "results": {n: {"value": v, "unit": u} for n, v, u in results}},
                         ensure_ascii=False))
        return 0
    print(f"{args.kind}: {kind.value[0]} = {value:.10g} {in_unit}".rstrip())
    for name, v, u in results:
        shown = ("yes" if v else "no") if isinstance(v, bool) else (
            f"{v:.6g}" if isinstance(v, float) else str(v))
        print(f"  {name:15} {shown} {u}".rstrip())
    return 0
