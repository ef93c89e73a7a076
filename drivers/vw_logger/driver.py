"""Vibrating-wire datalogger over Modbus: wire readings as Hz, thermistors as Ω.

Register maps differ between loggers, so the map is configuration. A regular map puts
channel ``ch`` (1-based) at ``base + stride·(ch − 1)`` plus a per-value ``offset``;
explicit ``channels`` entries give absolute addresses and override the regular map.

The wire reading may be served in one of four forms (``form``), converted to frequency:

=========  =================================  ===========================
form       register holds                     frequency f (Hz)
=========  =================================  ===========================
frequency  f, Hz                              x
period     T = 10⁶/f, µs                      10⁶ / x
digits     R = f²/1000                        √(1000·x)
lc2        f²·10⁻⁶ (Geokon LC-2)              √(10⁶·x)
=========  =================================  ===========================

(after ``x = decoded × scale``). Output channels, ``NN`` the two-digit channel number:
``chNN.freq`` (Hz, the logger's own number kept in ``raw``), ``chNN.therm`` (Ω) and, if
mapped, ``chNN.amplitude``, ``chNN.snr``, ``chNN.decay`` (in the logger's units). Quality:
0 Hz or a non-positive reading → ``bad`` ``no_signal`` with value 0 Hz (NaN/inf: value
``None``); a resistance ≤ 0 Ω, above
``open_circuit_ohm`` or not finite → ``bad`` ``open_circuit``; a signal-quality value
outside its ``min``/``max`` → the frequency is ``suspect`` with flag ``<name>_low`` or
``<name>_high``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem
from daq.modbus import DATA_TYPES, REGISTER_KINDS, WORD_ORDERS
from daq.model import ChannelValue, Quality
from daq.schema import Field, ListOf, Schema

from ..modbus.registers import RegisterReader, RegisterRef, Snapshot

FORMS = ("frequency", "period", "digits", "lc2")
SIGNALS = ("amplitude", "snr", "decay")
_SIGNAL_UNITS = {"amplitude": "mV", "snr": "", "decay": ""}


def _num(where: str, form: bool = False, limits: bool = False) -> dict[str, Field]:
    """Fields of one mapped number; ``where`` is "offset" (regular map) or "address"."""
    fields = {
        where: Field("int", required=True, min=0, max=65535),
        "type": Field("str", default="float32", choices=tuple(DATA_TYPES)),
        "word_order": Field("str", default="big", choices=WORD_ORDERS),
        "scale": Field("float", default=1.0, doc="x = decoded × scale, before conversion"),
    }
    if form:
        fields["form"] = Field("str", default="frequency", choices=FORMS)
    if limits:
        fields["min"] = Field("float", doc="below → frequency suspect, flag <name>_low")
        fields["max"] = Field("float", doc="above → frequency suspect, flag <name>_high")
    return fields


def _group(where: str) -> dict[str, Field]:
    return {"wire": Field(Schema(_num(where, form=True)), required=where == "offset"),
            "therm": Field(Schema(_num(where))),
            **{s: Field(Schema(_num(where, limits=True))) for s in SIGNALS}}


_F32 = {"type": "float32", "word_order": "big", "scale": 1.0}
DEFAULT_MAP: dict[str, dict[str, Any]] = {
    "wire": {"offset": 0, "form": "frequency", **_F32},  # Hz
    "therm": {"offset": 2, **_F32},                      # Ω
    "amplitude": {"offset": 4, **_F32},                  # mV
    "snr": {"offset": 6, **_F32},
}

OPTIONS = Schema({
    "kind": Field("str", default="holding", choices=REGISTER_KINDS),
    "count": Field("int", default=0, min=0, max=64, doc="channels 1..count on the regular map"),
    "base": Field("int", default=0, min=0, max=65535),
    "stride": Field("int", default=8, min=1, max=1000),
    "map": Field(Schema(_group("offset")), doc="offsets within a channel's block; "
                 "default: wire 0 (frequency float32), therm 2, amplitude 4, snr 6"),
    "channels": Field(ListOf(Field(Schema({"ch": Field("int", required=True, min=1, max=999),
                                           **_group("address")}))), default=list),
    "open_circuit_ohm": Field("float", default=1.0e6, min=0.0),
})


@dataclass(frozen=True)
class _Num:
    ref: RegisterRef
    scale: float
    form: str = ""
    min: float | None = None
    max: float | None = None


def wire_to_hz(x: float, form: str) -> float:
    """Convert a wire reading in ``form`` (see the module table) to Hz; NaN if impossible."""
    if not math.isfinite(x) or x <= 0:
        return math.nan
    if form == "frequency":
        return x
    if form == "period":
        return 1e6 / x
    if form == "digits":
        return math.sqrt(1000.0 * x)
    return math.sqrt(1e6 * x)  # lc2


class VWLoggerDriver(Driver):
    """Reads vibrating-wire channels (frequency, thermistor, signal quality) of one logger."""

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = "vibrating-wire datalogger over Modbus (Hz, Ω, signal quality)"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        kind = options.get("kind", "holding")
        self._open_ohm = float(options.get("open_circuit_ohm", 1.0e6))
        layout: dict[int, dict[str, _Num]] = {}
        regular = options.get("map") or DEFAULT_MAP
        base, stride = int(options.get("base", 0)), int(options.get("stride", 8))
        for ch in range(1, int(options.get("count", 0)) + 1):
            start = base + stride * (ch - 1)
            layout[ch] = {key: self._num(spec, kind, start + spec["offset"])
                          for key, spec in regular.items()}
        for entry in options.get("channels") or []:
            given = {k: self._num(v, kind, v["address"]) for k, v in entry.items() if k != "ch"}
            layout[entry["ch"]] = {**layout.get(entry["ch"], {}), **given}
        problems = [ConfigProblem("channels", f"channel {ch} has no wire register")
                    for ch, nums in layout.items() if "wire" not in nums]
        if int(options.get("count", 0)) > 1:
            problems += [ConfigProblem(f"map.{key}.offset", f"{key} at offset {spec['offset']}"
                                       f" runs past the stride {stride} into the next channel")
                         for key, spec in regular.items()
                         if spec["offset"] + RegisterRef("holding", 0, spec.get(
                             "type", "float32")).count > stride]
        if not layout:
            problems.append(ConfigProblem("count", "no channels: set count or channels"))
        if problems:
            raise ConfigError(problems)
        self._layout = dict(sorted(layout.items()))
        self._reader = RegisterReader(n.ref for nums in self._layout.values()
                                      for n in nums.values())

    @staticmethod
    def _num(spec: dict[str, Any], kind: str, address: int) -> _Num:
        ref = RegisterRef(kind, address, spec.get("type", "float32"),
                          spec.get("word_order", "big"))
        return _Num(ref, float(spec.get("scale", 1.0)), spec.get("form", ""),
                    spec.get("min"), spec.get("max"))

    def transactions(self) -> list[int]:
        """Registers of each request one poll makes (the bus budget)."""
        return [r.count for r in self._reader.requests]

    @property
    def channels(self) -> list[ChannelSpec]:
        out = []
        for ch, nums in self._layout.items():
            out.append(ChannelSpec(f"ch{ch:02d}.freq", "frequency", "Hz"))
            if "therm" in nums:
                out.append(ChannelSpec(f"ch{ch:02d}.therm", "resistance", "ohm"))
            out += [ChannelSpec(f"ch{ch:02d}.{s}", s, _SIGNAL_UNITS[s])
                    for s in SIGNALS if s in nums]
        return out

    def poll(self, link: Any) -> list[ChannelValue]:
        snap = self._reader.read(link, self.address if self.address is not None else 1)
        out: list[ChannelValue] = []
        for ch, nums in self._layout.items():
            out += self._channel(ch, nums, snap)
        return out

    def _channel(self, ch: int, nums: dict[str, _Num], snap: Snapshot) -> list[ChannelValue]:
        tag = f"ch{ch:02d}"
        values = {k: snap.value(n.ref) * n.scale for k, n in nums.items()}
        signal_out, quality_flags = [], []
        for s in SIGNALS:
            if s not in nums:
                continue
            v, n = values[s], nums[s]
            if not math.isfinite(v):
                signal_out.append(ChannelValue(f"{tag}.{s}", None, _SIGNAL_UNITS[s],
                                               Quality.BAD, s, ("not_finite",)))
                quality_flags.append(f"{s}_low")
                continue
            if n.min is not None and v < n.min:
                quality_flags.append(f"{s}_low")
            if n.max is not None and v > n.max:
                quality_flags.append(f"{s}_high")
            signal_out.append(ChannelValue(f"{tag}.{s}", v, _SIGNAL_UNITS[s], Quality.GOOD, s))
        wire = nums["wire"]
        x = values["wire"]
        f = wire_to_hz(x, wire.form)
        raw: dict[str, Any] = {wire.form: x if math.isfinite(x) else None,
                               "registers": snap.raw(wire.ref)}
        if math.isnan(f):
            freq = ChannelValue(f"{tag}.freq", 0.0 if math.isfinite(x) else None, "Hz",
                                Quality.BAD, "frequency", ("no_signal",), raw)
        elif quality_flags:
            freq = ChannelValue(f"{tag}.freq", f, "Hz", Quality.SUSPECT, "frequency",
                                tuple(quality_flags), raw)
        else:
            freq = ChannelValue(f"{tag}.freq", f, "Hz", Quality.GOOD, "frequency", (), raw)
        out = [freq]
        if "therm" in nums:
            r = values["therm"]
            if not math.isfinite(r) or r <= 0 or r > self._open_ohm:
                out.append(ChannelValue(f"{tag}.therm", r if math.isfinite(r) else None,
                                        "ohm", Quality.BAD, "resistance", ("open_circuit",)))
            else:
                out.append(ChannelValue(f"{tag}.therm", r, "ohm", Quality.GOOD, "resistance"))
        return out + signal_out
