"""Level gauges over Modbus: 4–20 mA input modules, radar/ultrasonic distance, shaft encoders.

``sensor`` selects the device:

``analog``
    A 4–20 mA analogue-input module; each of ``inputs`` is one loop. The register holds
    ``encoding`` ``ua`` (integer µA, the same as mA·1000), ``ma_float`` (float32 mA) or
    ``scaled`` (integer counts, linear from ``raw_4ma`` to ``raw_20ma``). The loop current
    maps linearly onto ``low``…``high`` (4 mA → low, 20 mA → high) in ``unit``. Below
    ``wire_break_ma`` (3.6 mA, NAMUR NE 43) → ``bad`` ``wire_break`` with value ``None``;
    above ``over_range_ma`` (20.5 mA) → ``bad`` ``over_range`` with the scaled value kept.
    The loop current is kept in ``raw["mA"]``.
``radar``
    ``distance`` register × ``scale`` = distance from the sensor zero to the water in m.
    With ``zero_elevation`` (m) a ``level`` channel = zero_elevation − distance is added.
    A distance that is ≤ 0 or not finite → ``bad`` ``no_echo``.
``ultrasonic``
    As radar; optionally ``air_temperature`` (°C) and ``time_of_flight`` (× scale = s).
    With a time of flight, distance = c·t/2 with c = 331.45 + 0.607·T m/s, T the air
    temperature read (or ``default_air_temperature`` when not mapped).
``encoder``
    A float shaft encoder: ``counts`` (int32/uint32). With ``pulses_per_rev``,
    ``circumference`` (m) and ``reference`` (m, the level at ``counts0``), a ``level``
    channel = reference + (counts − counts0)·circumference/pulses_per_rev is added.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem
from daq.modbus import REGISTER_KINDS
from daq.model import ChannelValue, Quality
from daq.schema import Field, ListOf, Schema

from ..modbus.registers import RegisterReader, RegisterRef, Snapshot, ref_fields

SENSORS = ("analog", "radar", "ultrasonic", "encoder")
ENCODINGS = ("ua", "ma_float", "scaled")


def _num(default_type: str, types: tuple[str, ...] | None = None, **extra: Field) -> Schema:
    fields = ref_fields(default_type) if types is None else ref_fields(default_type, None, types)
    return Schema({**fields, "scale": Field("float", default=1.0), **extra})


INPUT = Schema({
    "name": Field("str", required=True),
    **ref_fields("uint16"),
    "encoding": Field("str", default="ua", choices=ENCODINGS),
    "raw_4ma": Field("float", doc="encoding scaled: register value at 4 mA"),
    "raw_20ma": Field("float", doc="encoding scaled: register value at 20 mA"),
    "low": Field("float", required=True, doc="engineering value at 4 mA"),
    "high": Field("float", required=True, doc="engineering value at 20 mA"),
    "unit": Field("str", default=""),
    "quantity": Field("str", default=""),
})

OPTIONS = Schema({
    "sensor": Field("str", required=True, choices=SENSORS),
    "kind": Field("str", default="holding", choices=REGISTER_KINDS,
                  doc="register kind unless a number says otherwise"),
    "inputs": Field(ListOf(Field(INPUT)), default=list),
    "wire_break_ma": Field("float", default=3.6, min=0.0),
    "over_range_ma": Field("float", default=20.5, min=4.0),
    "distance": Field(_num("float32")),
    "air_temperature": Field(_num("float32")),
    "time_of_flight": Field(_num("uint32"), doc="× scale = seconds (two-way)"),
    "default_air_temperature": Field("float", default=20.0, doc="°C"),
    "zero_elevation": Field("float", doc="m; adds level = zero_elevation − distance"),
    "counts": Field(_num("int32", ("int32", "uint32", "int16", "uint16"))),
    "counts0": Field("float", default=0.0),
    "reference": Field("float", doc="m: the level at counts0"),
    "circumference": Field("float", doc="m per revolution of the float pulley"),
    "pulses_per_rev": Field("float", min=1.0),
})

_NEEDS = {"analog": ("inputs",), "radar": ("distance",), "encoder": ("counts",)}


def speed_of_sound(air_temperature: float) -> float:
    """c = 331.45 + 0.607·T (m/s, T in °C): the linear approximation used by gauge makers."""
    return 331.45 + 0.607 * air_temperature


def loop_ma(x: float, spec: dict[str, Any]) -> float:
    """The loop current in mA from the register value ``x`` and the input's encoding."""
    enc = spec.get("encoding", "ua")
    if enc == "ua":
        return x / 1000.0
    if enc == "ma_float":
        return x
    lo, hi = float(spec["raw_4ma"]), float(spec["raw_20ma"])
    return 4.0 + 16.0 * (x - lo) / (hi - lo)


class LevelGaugeDriver(Driver):
    """4–20 mA input modules, radar/ultrasonic distance sensors and float shaft encoders."""

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = "level gauges: 4-20 mA, radar, ultrasonic, shaft encoder"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        self.sensor = options["sensor"]
        self._check(options)
        kind = options.get("kind", "holding")
        self._refs: dict[str, RegisterRef] = {}
        for key in ("distance", "air_temperature", "time_of_flight", "counts"):
            if key in options:
                self._refs[key] = RegisterRef.from_options(options[key], kind=kind)
        for i, spec in enumerate(options.get("inputs") or []):
            self._refs[f"input{i}"] = RegisterRef.from_options(spec, kind=kind)
        self._reader = RegisterReader(self._refs.values())

    def _check(self, o: dict[str, Any]) -> None:
        problems = [ConfigProblem(key, f"sensor {self.sensor} needs {key}")
                    for key in _NEEDS.get(self.sensor, ()) if not o.get(key)]
        if self.sensor == "ultrasonic" and "distance" not in o and "time_of_flight" not in o:
            problems.append(ConfigProblem("distance", "ultrasonic needs distance or "
                                          "time_of_flight"))
        for i, spec in enumerate(o.get("inputs") or []):
            if spec["encoding"] == "scaled" and (spec.get("raw_4ma") is None
                                                 or spec.get("raw_20ma") is None
                                                 or spec["raw_4ma"] == spec["raw_20ma"]):
                problems.append(ConfigProblem(f"inputs[{i}]", "encoding scaled needs "
                                              "distinct raw_4ma and raw_20ma"))
        enc = [k for k in ("reference", "circumference", "pulses_per_rev") if k in o]
        if 0 < len(enc) < 3:
            problems.append(ConfigProblem("reference", "a level from counts needs reference, "
                                          "circumference and pulses_per_rev together"))
        if problems:
            raise ConfigError(problems)

    def transactions(self) -> list[int]:
        """Registers of each request one poll makes (the bus budget)."""
        return [r.count for r in self._reader.requests]

    @property
    def channels(self) -> list[ChannelSpec]:
        o = self.options
        if self.sensor == "analog":
            return [ChannelSpec(s["name"], s["quantity"], s["unit"]) for s in o["inputs"]]
        out = []
        if self.sensor in ("radar", "ultrasonic"):
            out.append(ChannelSpec("distance", "distance", "m"))
            if "air_temperature" in o:
                out.append(ChannelSpec("air_temperature", "air_temperature", "degC"))
            if "zero_elevation" in o:
                out.append(ChannelSpec("level", "water_level", "m"))
        else:
            out.append(ChannelSpec("counts", "counts", ""))
            if "reference" in o:
                out.append(ChannelSpec("level", "water_level", "m"))
        return out

    def poll(self, link: Any) -> list[ChannelValue]:
        snap = self._reader.read(link, self.address if self.address is not None else 1)
        if self.sensor == "analog":
            return [self._analog(i, spec, snap)
                    for i, spec in enumerate(self.options["inputs"])]
        if self.sensor == "encoder":
            return self._encoder(snap)
        return self._distance(snap)

    def _scaled(self, key: str, snap: Snapshot) -> float:
        return snap.value(self._refs[key]) * float(self.options[key].get("scale", 1.0))

    def _analog(self, i: int, spec: dict[str, Any], snap: Snapshot) -> ChannelValue:
        ref = self._refs[f"input{i}"]
        x = snap.value(ref)
        ma = loop_ma(x, spec) if math.isfinite(x) else math.nan
        raw = {"mA": ma if math.isfinite(ma) else None, "registers": snap.raw(ref)}
        name, unit, qty = spec["name"], spec["unit"], spec["quantity"]
        if not math.isfinite(ma) or ma < self.options["wire_break_ma"]:
            return ChannelValue(name, None, unit, Quality.BAD, qty, ("wire_break",), raw)
        value = spec["low"] + (ma - 4.0) / 16.0 * (spec["high"] - spec["low"])
        if ma > self.options["over_range_ma"]:
            return ChannelValue(name, value, unit, Quality.BAD, qty, ("over_range",), raw)
        return ChannelValue(name, value, unit, Quality.GOOD, qty, (), raw)

    def _distance(self, snap: Snapshot) -> list[ChannelValue]:
        o = self.options
        out: list[ChannelValue] = []
        temp = o["default_air_temperature"]
        raw: dict[str, Any] = {}
        if "air_temperature" in self._refs:
            temp = self._scaled("air_temperature", snap)
            ok = math.isfinite(temp)
            out.append(ChannelValue("air_temperature", temp if ok else None, "degC",
                                    Quality.GOOD if ok else Quality.BAD, "air_temperature",
                                    () if ok else ("not_finite",)))
        if "time_of_flight" in self._refs:
            tof = self._scaled("time_of_flight", snap)
            raw = {"time_of_flight_s": tof, "air_temperature": temp}
            dist = speed_of_sound(temp) * tof / 2.0 if math.isfinite(temp) else math.nan
        else:
            dist = self._scaled("distance", snap)
        if not math.isfinite(dist) or dist <= 0:
            value = dist if math.isfinite(dist) else None
            out.insert(0, ChannelValue("distance", value, "m", Quality.BAD, "distance",
                                       ("no_echo",), raw or None))
            if "zero_elevation" in o:
                out.append(ChannelValue("level", None, "m", Quality.BAD, "water_level",
                                        ("no_echo",)))
            return out
        out.insert(0, ChannelValue("distance", dist, "m", Quality.GOOD, "distance", (),
                                   raw or None))
        if "zero_elevation" in o:
            out.append(ChannelValue("level", o["zero_elevation"] - dist, "m", Quality.GOOD,
                                    "water_level", (), {"distance": dist}))
        return out

    def _encoder(self, snap: Snapshot) -> list[ChannelValue]:
        o = self.options
        counts = snap.value(self._refs["counts"])
        out = [ChannelValue("counts", counts, "", Quality.GOOD, "counts")]
        if "reference" in o:
            level = o["reference"] + (counts - o["counts0"]) * o["circumference"] \
                / o["pulses_per_rev"]
            out.append(ChannelValue("level", level, "m", Quality.GOOD, "water_level", (),
                                    {"counts": counts}))
        return out
