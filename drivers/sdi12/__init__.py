"""SDI-12 v1.4 driver: measurement commands, D/R data, CRC (see README.md)."""

from .driver import SDI12Driver
from .protocol import Identification, MeasurementStart

__all__ = ["Identification", "MeasurementStart", "SDI12Driver"]
