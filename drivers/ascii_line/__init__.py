"""Generic ASCII line-protocol driver: request, regex reply, checksum (see README.md)."""

from .codec import LineCodec, LineError
from .driver import AsciiLineDriver

__all__ = ["AsciiLineDriver", "LineCodec", "LineError"]
