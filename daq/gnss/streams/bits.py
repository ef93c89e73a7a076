"""Read big-endian bit fields (RTCM 3, GPS/BeiDou navigation words) from a byte string.

Bit 0 is the most significant bit of the first byte. Reading past the end raises
:class:`Truncated`, a :class:`DecodeError` (itself a ``ValueError``); the stream
decoder counts it as a "truncated" message and carries on: it never escapes.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """A checked frame whose contents do not decode; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Truncated(DecodeError):
    """A field lies beyond the end of the message."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("truncated", detail)


class Bits:
    """Sequential reader: ``u(n)`` unsigned, ``s(n)`` two's complement, ``g(n)`` sign-magnitude."""

    __slots__ = ("nbits", "pos", "value")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.value = int.from_bytes(data, "big")
        self.nbits = len(data) * 8
        self.pos = pos

    def u(self, n: int) -> int:
        end = self.pos + n
        if end > self.nbits:
            raise Truncated(f"field at bit {self.pos}+{n} beyond {self.nbits} bits")
        self.pos = end
        return (self.value >> (self.nbits - end)) & ((1 << n) - 1)

    def s(self, n: int) -> int:
        v = self.u(n)
        return v - (1 << n) if v >> (n - 1) else v

    def g(self, n: int) -> int:
        """Sign-magnitude (GLONASS fields): the top bit is the sign."""
        v = self.u(n)
        mag = v & ((1 << (n - 1)) - 1)
        return -mag if v >> (n - 1) else mag

    def skip(self, n: int) -> None:
        if n:
            self.u(n)

    def left(self) -> int:
        return self.nbits - self.pos
