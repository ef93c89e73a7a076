"""Modbus RTU slave framing, sans-I/O: request bytes in, reply bytes (or silence) out.

Only what the simulated line needs: function codes 3 (read holding registers) and 4 (read
input registers). A frame with a bad CRC, for a unit nobody answers to, or broadcast
(unit 0) gets no reply, as on a real RS-485 line. A known unit answers every other
function code with exception 01 (illegal function), a count outside 1…125 with 03
(illegal data value), and registers outside its map with 02 (illegal data address).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 1, 2, 3
KIND_BY_CODE = {3: "holding", 4: "input"}


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(body: bytes) -> bytes:
    """Append the CRC (low byte first, as RTU sends it)."""
    return body + struct.pack("<H", crc16(body))


def check_crc(data: bytes) -> bool:
    return len(data) >= 4 and crc16(data[:-2]) == struct.unpack("<H", data[-2:])[0]


@dataclass(frozen=True)
class Request:
    unit: int
    function: int
    address: int = 0
    count: int = 0


def request_length(buf: bytes) -> int | None:
    """Length of the request frame at the start of ``buf``; None while it is incomplete."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (15, 16):
        return None if len(buf) < 7 else 9 + buf[6]
    return 8 if fc in (1, 2, 3, 4, 5, 6) else len(buf)


def parse_request(data: bytes) -> Request | None:
    """Decode one complete request frame; None when the CRC is wrong (no reply then)."""
    if not check_crc(data):
        return None
    if data[1] in KIND_BY_CODE and len(data) == 8:
        address, count = struct.unpack(">HH", data[2:6])
        return Request(data[0], data[1], address, count)
    return Request(data[0], data[1])


def read_request(unit: int, function: int, address: int, count: int) -> bytes:
    """Encode a read request (used by tests and diagnostics)."""
    return frame(struct.pack(">BBHH", unit, function, address, count))


def exception_reply(unit: int, function: int, code: int) -> bytes:
    return frame(bytes((unit, function | 0x80, code)))


def registers_reply(unit: int, function: int, words: list[int]) -> bytes:
    body = struct.pack(f">BBB{len(words)}H", unit, function, 2 * len(words),
                       *(w & 0xFFFF for w in words))
    return frame(body)


# (kind, address, count) -> the words, or None when the range is not in the map
RegisterSource = Callable[[str, int, int], list[int] | None]


def answer(req: Request, source: RegisterSource | None) -> bytes | None:
    """The reply of the unit ``req`` is for; ``source`` is None when no such unit answers."""
    if source is None or req.unit == 0:
        return None
    kind = KIND_BY_CODE.get(req.function)
    if kind is None:
        return exception_reply(req.unit, req.function, ILLEGAL_FUNCTION)
    if not 1 <= req.count <= 125:
        return exception_reply(req.unit, req.function, ILLEGAL_VALUE)
    words = source(kind, req.address, req.count)
    if words is None:
        return exception_reply(req.unit, req.function, ILLEGAL_ADDRESS)
    return registers_reply(req.unit, req.function, words)
