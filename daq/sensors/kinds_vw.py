"""Sensor kinds ``vw_piezometer``, ``thermistor`` and ``barometer``: config and compute.

VW piezometer chain (units: the sheet's ``pressure_unit``, then kPa, m):
reading R1 in the sheet's ``reading_unit`` (digits f²/1000 or LC-2 f²·10⁻⁶) from the
``frequency`` (Hz), ``period`` (µs), ``digits`` or ``lc2`` input → linear
``G·(R1 − R0)`` / ``G·(R0 − R1)`` or polynomial ``A·R1² + B·R1 + C`` (C from the field
zero R0 when not given) → + temperature term (Geokon ``+K·ΔT``, Roctest ``−CT·ΔT``) →
kPa → − (S1 − S0) for an open standpipe only → head ``P/(ρ·g)`` → elevation tip + head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..convert import (
    PRESSURE_UNITS_KPA,
    barometric_correction,
    head_from_pressure,
    linear_pressure,
    piezometric_elevation,
    polynomial_pressure,
    polynomial_zero_offset,
    reading_from_input,
    steinhart_hart,
    temperature_correction,
    to_kpa,
)
from ..convert._check import finite
from ..convert.vw import READING_UNITS, SIGN_CONVENTIONS, TEMPERATURE_CONVENTIONS
from ..schema import Ctx, Field, Schema, join
from .common import (
    DENSITY,
    GRAVITY,
    Dep,
    Events,
    Output,
    Sample,
    density_needs_temperature,
    density_term,
    derive,
    val,
)

VW_PRIMARY = ("frequency", "period", "digits", "lc2")
_PRESSURE_UNITS = tuple(PRESSURE_UNITS_KPA)

STEINHART_HART = Schema({
    "a": Field("float", required=True),
    "b": Field("float", required=True),
    "c": Field("float", required=True),
    "d": Field("float", default=0.0, doc="4th term on (ln R)⁵; 0 for the 3-term form"),
    "kelvin_offset": Field("float", required=True, choices=(273.15, 273.2)),
}, name="steinhart_hart")

TEMPERATURE_CORRECTION = Schema({
    "convention": Field("str", required=True, choices=TEMPERATURE_CONVENTIONS,
                        doc="geokon: +K·(T1−T0); roctest: −CT·(T1−T0)"),
    "factor": Field("float", required=True, doc="K or CT, pressure_unit per °C"),
    "zero_temperature": Field("float", required=True, doc="T0 in °C at the field zero"),
}, name="temperature_correction")

BAROMETRIC_CORRECTION = Schema({
    "unit": Field("str", required=True, choices=_PRESSURE_UNITS,
                  doc="unit of the barometer input and of zero"),
    "zero": Field("float", required=True, doc="S0, the barometer at the field zero"),
}, name="barometric_correction")

VW_FIELDS: dict[str, Field] = {
    "reading_unit": Field("str", required=True, choices=READING_UNITS,
                          doc="unit of zero_reading and of the sheet's coefficients"),
    "pressure_unit": Field("str", required=True, choices=("kPa", "MPa", "psi", "bar"),
                           doc="unit the sheet's G / polynomial gives"),
    "method": Field("str", required=True, choices=("linear", "polynomial")),
    "gauge_factor": Field("float", doc="G, pressure_unit per reading unit"),
    "sign": Field("str", choices=SIGN_CONVENTIONS),
    "zero_reading": Field("float", min=0.0, doc="R0, the field zero"),
    "a": Field("float"),
    "b": Field("float"),
    "c": Field("float", doc="omitted: C = −(A·R0² + B·R0)"),
    "temperature_correction": Field(TEMPERATURE_CORRECTION),
    "steinhart_hart": Field(STEINHART_HART),
    "installation": Field("str", default="sealed", choices=("sealed", "standpipe")),
    "barometric_correction": Field(BAROMETRIC_CORRECTION),
    "density": Field(DENSITY, required=True),
    "gravity": GRAVITY,
    "tip_elevation": Field("float", doc="m; gives the elevation output"),
}

THERMISTOR_FIELDS: dict[str, Field] = {"steinhart_hart": Field(STEINHART_HART, required=True)}

BAROMETER_FIELDS: dict[str, Field] = {
    "unit": Field("str", required=True, choices=_PRESSURE_UNITS, doc="unit of the input"),
    "offset": Field("float", default=0.0, doc="kPa added after conversion"),
}


def check_vw(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    """Cross-field rules of a ``vw_piezometer`` entry."""
    inputs = out["inputs"]
    ipath = join(path, "inputs")
    line = lines.get("inputs")

    def need(key: str, why: str) -> None:
        if key not in out:
            ctx.add(join(path, key), f"is required {why}", lines.get("method", line))

    def unused(key: str, why: str) -> None:
        if key in out:
            ctx.add(join(path, key), f"is not used {why}", lines.get(key))

    primary = [r for r in VW_PRIMARY if r in inputs]
    if len(primary) != 1:
        ctx.add(ipath, "give exactly one of " + ", ".join(VW_PRIMARY) +
                (f" (got {', '.join(primary)})" if primary else ""), line)
    if "thermistor" in inputs and "temperature" in inputs:
        ctx.add(join(ipath, "temperature"), "give thermistor (Ω) or temperature (°C), not both",
                line)
    if "thermistor" in inputs:
        need("steinhart_hart", "with inputs.thermistor")
    else:
        unused("steinhart_hart", "without inputs.thermistor")
    has_temp = "thermistor" in inputs or "temperature" in inputs
    if "temperature_correction" in out and not has_temp:
        ctx.add(join(path, "temperature_correction"),
                "needs a thermistor or temperature input", lines.get("temperature_correction"))
    if "barometer" in inputs:
        if out.get("installation") != "standpipe":
            ctx.add(join(ipath, "barometer"),
                    "a piezometer sealed at depth is never barometrically corrected", line,
                    "set installation: standpipe for an open standpipe")
        need("barometric_correction", "with inputs.barometer")
    else:
        unused("barometric_correction", "without inputs.barometer")
    if out.get("method") == "linear":
        for key in ("gauge_factor", "sign", "zero_reading"):
            need(key, "with method: linear")
        for key in ("a", "b", "c"):
            unused(key, "with method: linear (polynomial only)")
    elif out.get("method") == "polynomial":
        need("a", "with method: polynomial")
        need("b", "with method: polynomial")
        if "c" not in out and "zero_reading" not in out:
            ctx.add(join(path, "zero_reading"), "is required when c is not given "
                    "(C = −(A·R0² + B·R0))", lines.get("method"))
        for key in ("gauge_factor", "sign"):
            unused(key, "with method: polynomial")
    if density_needs_temperature(out.get("density", {})) and not has_temp:
        ctx.add(join(join(path, "density"), "temperature"),
                "is required: tanaka2001 without a temperature input needs a fixed °C",
                lines.get("density"))


def vw_temperature(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> Output | None:
    if "thermistor" in s:
        sh = cfg["steinhart_hart"]
        th = s["thermistor"]
        return derive("temperature", "degC", [th], lambda: steinhart_hart(
            val(th), sh["a"], sh["b"], sh["c"], sh["d"], kelvin_offset=sh["kelvin_offset"]), ev)
    if "temperature" in s:
        t = s["temperature"]
        return derive("temperature", "degC", [t], lambda: finite(val(t), "temperature"), ev)
    return None


def compute_vw(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> list[Output]:
    role = next(r for r in VW_PRIMARY if r in s)
    unit = cfg["reading_unit"]
    inp = s[role]
    reading = derive("reading", unit, [inp],
                     lambda: reading_from_input(val(inp), role, unit), ev)
    temp = vw_temperature(cfg, s, ev)
    tc = cfg.get("temperature_correction")
    baro = s.get("barometer")
    deps: list[Dep] = [reading]
    if tc is not None and temp is not None:
        deps.append(temp)
    if baro is not None:
        deps.append(baro)

    def pressure_kpa() -> float:
        r1 = val(reading)
        if cfg["method"] == "linear":
            p = linear_pressure(r1, cfg["zero_reading"], cfg["gauge_factor"], cfg["sign"])
        else:
            a, b = cfg["a"], cfg["b"]
            c = cfg.get("c")
            if c is None:
                c = polynomial_zero_offset(a, b, cfg["zero_reading"])
            p = polynomial_pressure(r1, a, b, c)
        if tc is not None and temp is not None:
            p += temperature_correction(val(temp), tc["zero_temperature"], tc["factor"],
                                        tc["convention"])
        kpa = to_kpa(p, cfg["pressure_unit"])
        if baro is not None:
            bc = cfg["barometric_correction"]
            kpa += barometric_correction(to_kpa(val(baro), bc["unit"]),
                                         to_kpa(bc["zero"], bc["unit"]))
        return kpa

    pressure = derive("pressure", "kPa", deps, pressure_kpa, ev)
    rho_deps, rho = density_term(cfg["density"], temp)
    g = cfg["gravity"]
    head = derive("head", "m", [pressure, *rho_deps],
                  lambda: head_from_pressure(val(pressure), rho(), g), ev)
    outs = [pressure, head]
    if "tip_elevation" in cfg:
        tip = cfg["tip_elevation"]
        outs.append(derive("elevation", "m", [head],
                           lambda: piezometric_elevation(tip, val(head)), ev))
    if temp is not None:
        outs.append(temp)
    return outs


def compute_thermistor(cfg: Mapping[str, Any], s: Mapping[str, Sample],
                       ev: Events) -> list[Output]:
    sh = cfg["steinhart_hart"]
    r = s["resistance"]
    return [derive("temperature", "degC", [r], lambda: steinhart_hart(
        val(r), sh["a"], sh["b"], sh["c"], sh["d"], kelvin_offset=sh["kelvin_offset"]), ev)]


def compute_barometer(cfg: Mapping[str, Any], s: Mapping[str, Sample],
                      ev: Events) -> list[Output]:
    p = s["pressure"]
    return [derive("pressure", "kPa", [p],
                   lambda: to_kpa(val(p), cfg["unit"]) + cfg["offset"], ev)]
