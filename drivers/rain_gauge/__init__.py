"""Tipping-bucket rain gauge driver (Modbus counter with rollover and reset handling)."""

from .driver import RainGaugeDriver

__all__ = ["RainGaugeDriver"]
