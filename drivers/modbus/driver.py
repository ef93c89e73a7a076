"""The generic Modbus driver: named registers → scaled values (RTU and TCP alike).

Each configured register becomes one channel: ``value = decoded × scale + offset`` in the
configured ``unit``. Registers of one kind that touch are read in one transaction (at most
125 registers or 2000 bits), or each on its own with ``one_request_per_register``. A float
that is NaN or ±inf is returned with quality ``bad``, flag ``not_finite`` and value
``None`` (the register words are kept in ``raw``). A request answered by a Modbus
exception (02 illegal data address, ...) leaves only its own channels ``missing`` (flags
``protocol_error``, ``exception_NN``); the other requests' channels stay good.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem
from daq.modbus import ALL_KINDS, BIT_KINDS, DATA_TYPES
from daq.model import ChannelValue, Quality
from daq.schema import Field, ListOf, Schema

from .registers import RegisterReader, RegisterRef, ref_fields

REGISTER = Schema({
    "name": Field("str", required=True, doc="channel name, unique within the device"),
    **ref_fields(default_type="uint16", default_kind="holding", types=tuple(DATA_TYPES),
                 kinds=ALL_KINDS),
    "scale": Field("float", default=1.0, doc="value = decoded × scale + offset"),
    "offset": Field("float", default=0.0),
    "unit": Field("str", default="", doc="unit of the scaled value (m, kPa, mm, ...)"),
    "quantity": Field("str", default="", doc="what is measured: water_level, pressure, ..."),
})

OPTIONS = Schema({
    "registers": Field(ListOf(Field(REGISTER)), required=True),
    "one_request_per_register": Field("bool", default=False,
                                      doc="one request per register entry, for devices "
                                          "that reject block reads"),
})


class ModbusDriver(Driver):
    """Reads named holding/input registers of one Modbus unit (RTU or TCP)."""

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = ("generic Modbus registers and bits (16/32/64-bit integers "
                                  "and floats, four byte orders, coils, discrete inputs)")

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        regs = options.get("registers") or []
        problems = []
        if not regs:
            problems.append(ConfigProblem("registers", "at least one register is needed"))
        seen: set[str] = set()
        for i, reg in enumerate(regs):
            if reg["name"] in seen:
                problems.append(ConfigProblem(f"registers[{i}].name",
                                              f"duplicate channel name {reg['name']!r}"))
            seen.add(reg["name"])
            bit = reg["kind"] in BIT_KINDS
            if bit and reg.get("type", "bool") not in ("bool", "uint16"):
                problems.append(ConfigProblem(f"registers[{i}].type",
                                              f"a {reg['kind']} is one bit: type bool"))
            if not bit and reg.get("type") == "bool":
                problems.append(ConfigProblem(f"registers[{i}].type",
                                              "bool is for kind coil or discrete"))
        if problems:
            raise ConfigError(problems)
        self._regs = [(reg, RegisterRef.from_options(reg)) for reg in regs]
        self._reader = RegisterReader((ref for _, ref in self._regs),
                                      one_per_ref=bool(options.get("one_request_per_register")))

    def transactions(self) -> list[int]:
        """Registers of each request one poll makes (what the bus budget needs to know)."""
        return [r.count for r in self._reader.requests]

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(reg["name"], reg["quantity"], reg["unit"]) for reg, _ in self._regs]

    def poll(self, link: Any) -> list[ChannelValue]:
        snap = self._reader.read(link, self.address if self.address is not None else 1,
                                 partial=True)
        out = []
        for reg, ref in self._regs:
            failed = snap.failure(ref)
            if failed is not None:
                out.append(ChannelValue(reg["name"], None, reg["unit"], Quality.MISSING,
                                        reg["quantity"],
                                        ("protocol_error", f"exception_{failed.code or 0:02d}")))
                continue
            words = snap.raw(ref)
            value = snap.value(ref)
            raw = {"registers": words}
            if not math.isfinite(value):
                out.append(ChannelValue(reg["name"], None, reg["unit"], Quality.BAD,
                                        reg["quantity"], ("not_finite",), raw))
                continue
            out.append(ChannelValue(reg["name"], value * reg["scale"] + reg["offset"],
                                    reg["unit"], Quality.GOOD, reg["quantity"], (), raw))
        return out
