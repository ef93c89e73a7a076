"""Sensor kinds ``water_level`` and ``rain``: config and compute.

Water level (m): ``method`` vented / unvented / radar / ultrasonic / encoder / current
(4–20 mA scaled to a depth, distance or pressure), plus the staff-gauge ``offset``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..convert import (
    PRESSURE_UNITS_KPA,
    level_from_distance,
    level_from_encoder,
    level_from_pressure,
    level_from_pressure_factor,
    scale_4_20ma,
    to_kpa,
    ultrasonic_distance,
)
from ..convert._check import finite
from ..model import Quality
from ..schema import Ctx, Field, Schema, join
from .common import (
    DENSITY,
    LENGTH_UNITS_M,
    TIME_UNITS_S,
    Dep,
    Events,
    Output,
    Sample,
    density_needs_temperature,
    density_term,
    derive,
    val,
)

# method: (required inputs, optional inputs, required keys, optional keys)
LEVEL_METHODS: dict[str, tuple[tuple[str, ...], ...]] = {
    "vented": (("pressure",), ("temperature",),
               ("pressure_unit", "sensor_elevation", "density", "gravity"), ()),
    "unvented": (("pressure", "barometer"), ("temperature",),
                 ("pressure_unit", "barometer_unit", "sensor_elevation", "density", "gravity"),
                 ()),
    "radar": (("distance",), (), ("distance_unit", "zero_elevation"), ()),
    "ultrasonic": (("echo_time",), ("air_temperature",), ("echo_time_unit", "zero_elevation"),
                   ("air_temperature",)),
    "encoder": (("counts",), (), ("encoder",), ()),
    "current": (("current",), ("temperature",), ("current",),
                ("sensor_elevation", "zero_elevation", "pressure_unit", "density", "gravity")),
}
_LEVEL_KEYS = ("pressure_unit", "barometer_unit", "sensor_elevation", "zero_elevation",
               "distance_unit", "echo_time_unit", "air_temperature", "encoder", "current",
               "density", "gravity")
_CURRENT_NEEDS = {"depth": ("sensor_elevation",), "distance": ("zero_elevation",),
                  "pressure": ("sensor_elevation", "pressure_unit", "density", "gravity")}

_PRESSURE_UNITS = tuple(PRESSURE_UNITS_KPA)
LEVEL_FIELDS: dict[str, Field] = {
    "method": Field("str", required=True, choices=tuple(LEVEL_METHODS)),
    "pressure_unit": Field("str", choices=_PRESSURE_UNITS),
    "barometer_unit": Field("str", choices=_PRESSURE_UNITS),
    "sensor_elevation": Field("float", doc="m, elevation of the pressure sensor"),
    "zero_elevation": Field("float", doc="m, elevation of the radar/ultrasonic zero "
                                         "(daq calibrate zero sets it)"),
    "distance_unit": Field("str", choices=tuple(LENGTH_UNITS_M)),
    "echo_time_unit": Field("str", choices=tuple(TIME_UNITS_S)),
    "air_temperature": Field("float", doc="°C, fixed, when there is no air temperature input"),
    "encoder": Field(Schema({
        "reference": Field("float", required=True, doc="m, level when counts0 was read"),
        "counts0": Field("float", required=True, doc="counts at reference; daq calibrate zero"),
        "circumference": Field("float", required=True, min=0.0, doc="m per revolution"),
        "pulses_per_rev": Field("float", required=True, min=1.0),
    }, name="encoder")),
    "current": Field(Schema({
        "low": Field("float", required=True, doc="value at 4 mA"),
        "high": Field("float", required=True, doc="value at 20 mA"),
        "measures": Field("str", required=True, choices=tuple(_CURRENT_NEEDS),
                          doc="depth (m above the sensor), distance (m), pressure"),
        "zero_ma": Field("float", default=4.0, min=3.8, max=12.0,
                         doc="mA at low: 4, or the field zero (daq calibrate zero)"),
    }, name="current")),
    "density": Field(DENSITY),
    "gravity": Field("float", min=9.7, max=9.9, doc="m/s²"),
    "head_factor": Field(Schema({
        "value": Field("float", required=True, min=0.0, doc="head per unit of pressure"),
        "unit": Field("str", required=True, choices=tuple(LENGTH_UNITS_M),
                      doc="length unit of the head"),
        "per": Field("str", required=True, choices=_PRESSURE_UNITS, doc="pressure unit"),
    }, name="head_factor"), doc="a transducer sheet's factor in place of density and "
                                "gravity, e.g. {value: 2.31, unit: ft, per: psi}"),
    "offset": Field("float", default=0.0, doc="m, staff-gauge offset"),
}

RAIN_FIELDS: dict[str, Field] = {
    "mm_per_count": Field("float", min=0.0, doc="tipping-bucket size; omitted: input is mm"),
}


def check_level(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    method = out.get("method")
    if method not in LEVEL_METHODS:
        return
    req_in, opt_in, req_keys, opt_keys = LEVEL_METHODS[method]
    if method == "current" and "current" in out:
        req_keys = req_keys + _CURRENT_NEEDS[out["current"]["measures"]]
        opt_keys = ()
    inputs, ipath = out["inputs"], join(path, "inputs")
    for role in req_in:
        if role not in inputs:
            ctx.add(join(ipath, role), f"is required with method: {method}",
                    lines.get("inputs"))
    for role in inputs:
        if role not in req_in + opt_in:
            ctx.add(join(ipath, role), f"is not used by method: {method}", lines.get("inputs"))
    if "head_factor" in out:  # the sheet's factor stands for density and gravity
        if "sensor_elevation" not in req_keys:
            ctx.add(join(path, "head_factor"), f"is not used by method: {method}",
                    lines.get("head_factor"))
        for key in ("density", "gravity"):
            if key in out:
                ctx.add(join(path, key), "give density and gravity, or head_factor, not both",
                        lines.get(key))
        req_keys = tuple(k for k in req_keys if k not in ("density", "gravity"))
        opt_keys = tuple(k for k in opt_keys if k not in ("density", "gravity"))
    for key in req_keys:
        if key not in out:
            ctx.add(join(path, key), f"is required with method: {method}", lines.get("method"))
    for key in _LEVEL_KEYS:
        if key in out and key not in req_keys + opt_keys:
            ctx.add(join(path, key), f"is not used by method: {method}", lines.get(key))
    if method == "ultrasonic" and ("air_temperature" in inputs) == ("air_temperature" in out):
        ctx.add(join(path, "air_temperature"), "give an air_temperature input or a fixed "
                "air_temperature (°C), exactly one", lines.get("method"))
    if "density" in req_keys and density_needs_temperature(out.get("density", {})) \
            and "temperature" not in inputs:
        ctx.add(join(join(path, "density"), "temperature"), "is required: tanaka2001 "
                "without a temperature input needs a fixed °C", lines.get("density"))


def _pressure_level(cfg: Mapping[str, Any], s: Mapping[str, Sample], p: Dep,
                    ev: Events) -> Output:
    hf = cfg.get("head_factor")
    if hf is not None:  # P (kPa) in the factor's pressure unit, times the factor
        per_kpa = to_kpa(1.0, hf["per"])
        return derive("level", "m", [p], lambda: level_from_pressure_factor(
            val(p) / per_kpa, hf["value"], cfg["sensor_elevation"], cfg["offset"],
            LENGTH_UNITS_M[hf["unit"]]), ev)
    temp = s.get("temperature")
    rho_deps, rho = density_term(cfg["density"], temp)
    return derive("level", "m", [p, *rho_deps], lambda: level_from_pressure(
        val(p), cfg["sensor_elevation"], rho(), cfg["gravity"], cfg["offset"]), ev)


def compute_level(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> list[Output]:
    method, off = cfg["method"], cfg["offset"]
    if method in ("vented", "unvented"):
        raw = s["pressure"]
        deps: list[Dep] = [raw]
        if method == "unvented":
            deps.append(s["barometer"])

        def kpa() -> float:
            p = to_kpa(val(raw), cfg["pressure_unit"])
            if method == "unvented":
                p -= to_kpa(val(s["barometer"]), cfg["barometer_unit"])
            return p

        return [_pressure_level(cfg, s, derive("pressure", "kPa", deps, kpa, ev), ev)]
    if method == "radar":
        d = s["distance"]
        k = LENGTH_UNITS_M[cfg["distance_unit"]]
        return [derive("level", "m", [d], lambda: level_from_distance(
            cfg["zero_elevation"], val(d) * k, off), ev)]
    if method == "ultrasonic":
        t, k = s["echo_time"], TIME_UNITS_S[cfg["echo_time_unit"]]
        air = s.get("air_temperature")
        deps = [t] if air is None else [t, air]
        return [derive("level", "m", deps, lambda: level_from_distance(
            cfg["zero_elevation"], ultrasonic_distance(
                val(t) * k, cfg["air_temperature"] if air is None else val(air)), off), ev)]
    if method == "encoder":
        c, e = s["counts"], cfg["encoder"]
        return [derive("level", "m", [c], lambda: level_from_encoder(
            val(c), e["counts0"], e["reference"], e["circumference"], e["pulses_per_rev"],
            off), ev)]
    return [_current_level(cfg, s, ev)]


def _current_level(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> Output:
    i, spec = s["current"], cfg["current"]
    status: list[str] = []

    def scaled() -> float:
        out = scale_4_20ma(val(i), spec["low"], spec["high"],
                           zero_ma=spec.get("zero_ma", 4.0))
        status.append(out.status)
        return out.value

    value = derive("scaled", "", [i], scaled, ev)
    measures, off = spec["measures"], cfg["offset"]
    if measures == "pressure":
        p = derive("pressure", "kPa", [value],
                   lambda: to_kpa(val(value), cfg["pressure_unit"]), ev)
        level = _pressure_level(cfg, s, p, ev)
    elif measures == "depth":
        level = derive("level", "m", [value],
                       lambda: cfg["sensor_elevation"] + val(value) + off, ev)
    else:
        level = derive("level", "m", [value], lambda: level_from_distance(
            cfg["zero_elevation"], val(value), off), ev)
    if status and status[0] != "ok":
        ev.add(status[0])
        q = Quality.SUSPECT if status[0] == "under_range" else Quality.BAD
        level = level.flagged(q, status[0])
    return level


def compute_rain(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> list[Output]:
    r, k = s["rain"], cfg.get("mm_per_count")

    def mm() -> float:
        v = finite(val(r), "rain")
        if v < 0:
            raise ValueError(f"rain must not be negative, got {v}")
        return v if k is None else v * k

    return [derive("rainfall", "mm", [r], mm, ev)]
