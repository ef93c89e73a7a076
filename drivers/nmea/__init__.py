"""RTK GNSS receiver over NMEA 0183 (GGA/GST/RMC/ZDA): receiver-RTK mode (see README.md)."""

from .driver import NmeaDriver

__all__ = ["NmeaDriver"]
