"""The generic Modbus driver: named registers → scaled values (RTU and TCP alike).

Each configured register becomes one channel: ``value = decoded × scale + offset`` in the
configured ``unit``. Registers of one kind that touch are read in one transaction (at most
125 registers). A float32 that is NaN or ±inf is returned with quality ``bad``, flag
``not_finite`` and value ``None`` (the register words are kept in ``raw``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem
from daq.model import ChannelValue, Quality
from daq.schema import Field, ListOf, Schema

from .registers import RegisterReader, RegisterRef, ref_fields

REGISTER = Schema({
    "name": Field("str", required=True, doc="channel name, unique within the device"),
    **ref_fields(default_type="uint16", default_kind="holding"),
    "scale": Field("float", default=1.0, doc="value = decoded × scale + offset"),
    "offset": Field("float", default=0.0),
    "unit": Field("str", default="", doc="unit of the scaled value (m, kPa, mm, ...)"),
    "quantity": Field("str", default="", doc="what is measured: water_level, pressure, ..."),
})

OPTIONS = Schema({
    "registers": Field(ListOf(Field(REGISTER)), required=True),
})


class ModbusDriver(Driver):
    """Reads named holding/input registers of one Modbus unit (RTU or TCP)."""

    link_kind: ClassVar[str] = "modbus"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = "generic Modbus registers (int16/uint16/int32/uint32/float32)"

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
        if problems:
            raise ConfigError(problems)
        self._regs = [(reg, RegisterRef.from_options(reg)) for reg in regs]
        self._reader = RegisterReader(ref for _, ref in self._regs)

    def transactions(self) -> list[int]:
        """Registers of each request one poll makes (what the bus budget needs to know)."""
        return [r.count for r in self._reader.requests]

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(reg["name"], reg["quantity"], reg["unit"]) for reg, _ in self._regs]

    def poll(self, link: Any) -> list[ChannelValue]:
        snap = self._reader.read(link, self.address if self.address is not None else 1)
        out = []
        for reg, ref in self._regs:
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
