"""Vibrating-wire datalogger driver (Modbus): frequency in Hz, thermistor Ω, signal quality."""

from .driver import DEFAULT_MAP, FORMS, VWLoggerDriver, wire_to_hz

__all__ = ["DEFAULT_MAP", "FORMS", "VWLoggerDriver", "wire_to_hz"]
