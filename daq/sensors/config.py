"""The schema of the ``sensors`` config key: one entry per sensor id, checked per ``kind``.

Every conversion convention is a key here (sign, reading unit, Kelvin offset, density
model, g ...), never a hidden constant. Cross-field problems (a linear sheet without a
gauge factor, a barometer input on a sealed piezometer ...) are reported with the other
problems, each with its dotted path and line. Whether an input channel exists is checked
by :meth:`daq.sensors.SensorSet.build`, which knows the devices' channels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from ..schema import MISSING, Ctx, Field, MapOf, Schema, join
from .kinds_level import LEVEL_FIELDS, RAIN_FIELDS, check_level
from .kinds_vw import (
    BAROMETER_FIELDS,
    STEINHART_HART,
    THERMISTOR_FIELDS,
    VW_FIELDS,
    check_vw,
)
from .kinds_weir import WEIR_FIELDS, check_weir

Validator = Callable[[dict[str, Any], str, Mapping[str, Any], Ctx], None]


def _check_calibration(out: dict[str, Any], path: str, lines: Mapping[str, Any],
                       ctx: Ctx) -> None:
    date = out.get("date")
    if isinstance(date, dt.date):
        out["date"] = date.isoformat()
    elif date is not None and not isinstance(date, str):
        ctx.add(join(path, "date"), f"expected a date like 2024-03-01, got {date!r}",
                lines.get("date"))


CALIBRATION = Schema({
    "id": Field("str", required=True, doc="calibration sheet / certificate id"),
    "date": Field("any", doc="date of the calibration (YYYY-MM-DD)"),
}, name="calibration", validator=_check_calibration)


def _check_limit(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    lo, hi = out.get("min"), out.get("max")
    if lo is None and hi is None:
        ctx.add(path, "give min, max or both")
    elif lo is not None and hi is not None and lo >= hi:
        ctx.add(join(path, "max"), f"max {hi} must be above min {lo}", lines.get("max"))


LIMIT = Schema({"min": Field("float"), "max": Field("float")}, name="limit",
               validator=_check_limit)


def _kind_schema(kind: str, inputs: tuple[str, ...], fields: dict[str, Field],
                 outputs: tuple[str, ...], check: Validator | None) -> Schema:
    def check_inputs(out: dict[str, Any], path: str, lines: Mapping[str, Any],
                     ctx: Ctx) -> None:
        for role, ref in out.items():
            dev, _, ch = str(ref).partition("/")
            if not dev or not ch:
                ctx.add(join(path, role), f"{ref!r} is not a 'device/channel' name",
                        lines.get(role), "e.g. vw1/ch07.freq")

    def validate(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
        limits = out.get("limits") or {}
        for quantity in limits:
            if quantity not in outputs:
                ctx.add(join(join(path, "limits"), quantity),
                        f"{kind} has no output {quantity!r}", lines.get("limits"),
                        "outputs: " + ", ".join(outputs))
        if check is not None and "inputs" in out:
            check(out, path, lines, ctx)

    input_schema = Schema({r: Field("str") for r in inputs}, name=f"{kind}.inputs",
                          validator=check_inputs)
    all_fields = {
        "kind": Field("str", required=True, choices=(kind,)),
        "calibration": Field(CALIBRATION, required=True),
        "inputs": Field(input_schema, required=True),
        "limits": Field(MapOf(Field(LIMIT)), default=dict,
                        doc="physical min/max per output quantity; outside → quality bad"),
        "input_max_age": Field("duration", default=3600.0, min=0.0,
                               doc="oldest value of an input polled on another device"),
        "description": Field("str", default=""),
        **fields,
    }
    return Schema(all_fields, name=kind, validator=validate)


KIND_OUTPUTS: dict[str, tuple[str, ...]] = {
    "vw_piezometer": ("pressure", "head", "elevation", "temperature"),
    "thermistor": ("temperature",),
    "weir": ("head", "flow"),
    "water_level": ("level",),
    "rain": ("rainfall",),
    "barometer": ("pressure",),
}

KINDS: dict[str, Schema] = {
    "vw_piezometer": _kind_schema(
        "vw_piezometer",
        ("frequency", "period", "digits", "lc2", "thermistor", "temperature", "barometer"),
        VW_FIELDS, KIND_OUTPUTS["vw_piezometer"], check_vw),
    "thermistor": _kind_schema("thermistor", ("resistance",), THERMISTOR_FIELDS,
                               KIND_OUTPUTS["thermistor"], None),
    "weir": _kind_schema("weir", ("level",), WEIR_FIELDS, KIND_OUTPUTS["weir"], check_weir),
    "water_level": _kind_schema(
        "water_level",
        ("pressure", "barometer", "temperature", "distance", "echo_time", "air_temperature",
         "counts", "current"),
        LEVEL_FIELDS, KIND_OUTPUTS["water_level"], check_level),
    "rain": _kind_schema("rain", ("rain",), RAIN_FIELDS, KIND_OUTPUTS["rain"], None),
    "barometer": _kind_schema("barometer", ("pressure",), BAROMETER_FIELDS,
                              KIND_OUTPUTS["barometer"], None),
}

# every kind needs its primary input
_REQUIRED_INPUT = {"thermistor": "resistance", "weir": "level", "rain": "rain",
                   "barometer": "pressure"}


class CheckedSensor(dict[str, Any]):
    """A sensor entry that has passed the schema (its problems, if any, were reported).

    :meth:`~daq.sensors.SensorSet.build` re-checks only entries that are not of this type,
    so a config checked once is never reported twice.
    """


class _ByKind(Schema):
    """A sensor entry: its ``kind`` selects the schema the rest is checked against."""

    def __init__(self, kinds: dict[str, Schema]) -> None:
        super().__init__(fields={}, name="sensor")
        self.kinds = kinds

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            ctx.add(path, f"expected a mapping, got {type(value).__name__}", line)
            return MISSING
        lines = getattr(value, "key_lines", {})
        kind = value.get("kind")
        if kind is None:
            ctx.add(join(path, "kind"), "is required", line,
                    "one of " + ", ".join(self.kinds))
            return MISSING
        if not isinstance(kind, str) or kind not in self.kinds:
            import difflib

            close = difflib.get_close_matches(str(kind), list(self.kinds), 1)
            ctx.add(join(path, "kind"), f"unknown sensor kind {kind!r}", lines.get("kind", line),
                    f"did you mean {close[0]!r}?" if close else
                    "one of " + ", ".join(self.kinds))
            return MISSING
        out = self.kinds[kind].check(value, path, line, ctx)
        if out is MISSING:
            return out
        role = _REQUIRED_INPUT.get(kind)
        if role and role not in out.get("inputs", {role: 1}):
            ctx.add(join(join(path, "inputs"), role), "is required", lines.get("inputs", line))
        return CheckedSensor(out)


# no "." in a sensor id: published channels are "<id>.<output>", e.g. "P07.elevation"
SENSORS_FIELD = Field(MapOf(Field(_ByKind(KINDS)), key_pattern=r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$",
                            key_rule="a sensor id may hold only letters, digits, _ and -"),
                      default=dict,
                      doc="sensor id → sensor (kind, calibration, inputs, conversion)")

__all__ = ["CALIBRATION", "KINDS", "KIND_OUTPUTS", "SENSORS_FIELD", "STEINHART_HART",
           "CheckedSensor"]
