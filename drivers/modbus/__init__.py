"""Generic Modbus driver (holding/input registers, RTU and TCP) and shared register helpers."""

from .driver import ModbusDriver
from .registers import RegisterReader, RegisterRef, Snapshot, plan_reads

__all__ = ["ModbusDriver", "RegisterReader", "RegisterRef", "Snapshot", "plan_reads"]
