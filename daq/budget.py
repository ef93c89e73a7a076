"""The wire budget of a bus: can it carry its devices at their intervals?

Modbus RTU time per read transaction = request (8 bytes) + reply (5 + 2·n bytes) + two
inter-frame gaps of 3.5 characters (fixed 1.75 ms each above 19200 baud, as the Modbus
serial line specification says), with 10 bits per character at 8N1 and 11 with parity or
two stop bits. Slave turnaround and USB-adapter latency come on top (FIELD-NOTES.md), so
"tight" starts at 70 %; above 100 % is "over budget": ``daq check`` exits 1 and ``daq run``
logs ``bus_over_budget`` once. TCP buses are not wire-limited at these rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import BusConfig, instantiate
from .driver import Driver


def char_bits(bus: BusConfig) -> int:
    return 1 + bus.bytesize + (0 if bus.parity == "N" else 1) + bus.stopbits


def transaction_seconds(bus: BusConfig, registers: int) -> float:
    bits = char_bits(bus)
    chars = 8 + 5 + 2 * registers
    gap = bus.frame_gap
    if gap is None:
        gap = 1.75e-3 if bus.baudrate > 19200 else 3.5 * bits / bus.baudrate
    return chars * bits / bus.baudrate + 2 * gap


def bus_load(bus: BusConfig, drivers: Mapping[str, Driver]) -> float:
    """Fraction of the wire the devices' polls need (device name → built driver);
    each device's ``pause`` counts as wire time too. TCP buses: 0."""
    load = 0.0
    if bus.protocol != "modbus_tcp":
        for dev in bus.devices:
            drv = drivers[dev.name]
            per_poll = sum(transaction_seconds(bus, n) + dev.pause for n in drv.transactions())
            load += per_poll / dev.interval
    return load


def bus_budget(bus: BusConfig, drivers: Mapping[str, type[Driver]]) -> dict[str, Any]:
    load = bus_load(bus, {dev.name: instantiate(dev, drivers) for dev in bus.devices})
    verdict = "ok" if load < 0.7 else ("tight" if load <= 1.0 else "over budget")
    return {"bus": bus.name, "protocol": bus.protocol, "devices": len(bus.devices),
            "load": round(load, 4), "verdict": verdict}
