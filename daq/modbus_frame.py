"""Modbus frames, sans I/O: build read requests and check replies (RTU and TCP/MBAP).

A reply is accepted only if it answers *this* request: same unit, same function code (or
its exception form, code | 0x80), the byte count the request implies, a valid CRC (RTU) or
the request's transaction id, protocol id 0 and a consistent length (TCP). Anything else
raises :class:`FrameError` with a ``kind`` that ``daq status`` counts:

========================  ================================================================
``crc``                   RTU frame with a wrong CRC (noise on the line, a collision)
``garbled``               wrong unit, function code, byte count or length field; a
                          truncated frame; random bytes
``exception``             the unit answered a Modbus exception (``code`` holds it)
``gateway_path``          exception 0x0A: the gateway has no path to the unit
``gateway_no_response``   exception 0x0B: the unit behind the gateway did not answer
========================  ================================================================
"""

from __future__ import annotations

import struct

# register/bit kind -> read function code; "write_coil" is function 5 (write single coil),
# whose ``count`` carries the value (0/1) and whose reply echoes address and value
WRITE_COIL = "write_coil"
FUNCTION_CODES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4, WRITE_COIL: 5}
BIT_KINDS = frozenset(("coil", "discrete"))
MAX_COUNT = {"coil": 2000, "discrete": 2000, "holding": 125, "input": 125}
EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address",
                   3: "illegal data value", 4: "server device failure", 5: "acknowledge",
                   6: "server device busy", 8: "memory parity error",
                   10: "gateway path unavailable",
                   11: "gateway target device failed to respond"}
MBAP_HEADER = 7


class FrameError(Exception):
    """A reply that does not answer the request; ``kind`` says how (see module doc)."""

    def __init__(self, kind: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


def exception_kind(code: int) -> str:
    return {10: "gateway_path", 11: "gateway_no_response"}.get(code, "exception")


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF)."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def read_pdu(kind: str, address: int, count: int) -> bytes:
    """The PDU of a read request (function 1, 2, 3 or 4), or of a single-coil write."""
    if kind == WRITE_COIL:
        return struct.pack(">BHH", 5, address, 0xFF00 if count else 0)
    if not 1 <= count <= MAX_COUNT[kind]:
        raise ValueError(f"{kind} reads take 1..{MAX_COUNT[kind]} items, not {count}")
    return struct.pack(">BHH", FUNCTION_CODES[kind], address, count)


def data_bytes(kind: str, count: int) -> int:
    """The byte count a correct reply to a read of ``count`` items carries."""
    if kind == WRITE_COIL:
        return 4  # the echo: address and value
    return (count + 7) // 8 if kind in BIT_KINDS else 2 * count


def rtu_reply_length(kind: str, count: int) -> int:
    if kind == WRITE_COIL:
        return 8  # unit, function, address, value, CRC: no byte-count field
    return 3 + data_bytes(kind, count) + 2


def rtu_request(unit: int, kind: str, address: int, count: int) -> bytes:
    return with_crc(bytes([unit]) + read_pdu(kind, address, count))


def tcp_request(tid: int, unit: int, kind: str, address: int, count: int) -> bytes:
    pdu = read_pdu(kind, address, count)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def check_pdu(pdu: bytes, kind: str, count: int) -> bytes:
    """The data bytes of a reply PDU (function code first), or :class:`FrameError`."""
    fc = FUNCTION_CODES[kind]
    if not pdu:
        raise FrameError("garbled", "empty reply")
    if pdu[0] == fc | 0x80:
        if len(pdu) != 2:
            raise FrameError("garbled", f"exception reply of {len(pdu)} bytes")
        code = pdu[1]
        name = EXCEPTION_NAMES.get(code, "unknown")
        raise FrameError(exception_kind(code), f"exception {code:02X} ({name})", code)
    if pdu[0] != fc:
        raise FrameError("garbled", f"function code {pdu[0]} answers no request of ours "
                                    f"(sent {fc})")
    if kind == WRITE_COIL:
        if len(pdu) != 5:
            raise FrameError("garbled", f"a {len(pdu)}-byte answer to a coil write (5 expected)")
        return pdu[1:]
    want = data_bytes(kind, count)
    if len(pdu) < 2 or pdu[1] != want or len(pdu) != 2 + want:
        got = pdu[1] if len(pdu) > 1 else None
        raise FrameError("garbled", f"byte count {got} in a {len(pdu)}-byte PDU; the request "
                                    f"implies {want}")
    return pdu[2:]


def check_rtu(frame: bytes, unit: int, kind: str, count: int) -> bytes:
    """Check a complete RTU reply frame: unit, function code, byte count, then CRC."""
    if len(frame) < 5:
        raise FrameError("garbled", f"truncated frame of {len(frame)} bytes")
    if frame[0] != unit:
        raise FrameError("garbled", f"reply from unit {frame[0]}, asked {unit}")
    fc = FUNCTION_CODES[kind]
    if frame[1] not in (fc, fc | 0x80):
        raise FrameError("garbled", f"function code {frame[1]} answers no request of ours "
                                    f"(sent {fc})")
    if frame[1] == fc and kind != WRITE_COIL and frame[2] != data_bytes(kind, count):
        raise FrameError("garbled", f"byte count {frame[2]}; the request implies "
                                    f"{data_bytes(kind, count)}")
    if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise FrameError("crc", f"CRC error in a {len(frame)}-byte frame")
    return check_pdu(frame[1:-2], kind, count)


def rtu_expected(header: bytes, kind: str, count: int) -> int:
    """Total frame length implied by the first three bytes received (unit, function code,
    byte count or exception code): 5 for an exception, else what the request implies."""
    if len(header) >= 2 and header[1] & 0x80:
        return 5
    return rtu_reply_length(kind, count)


def check_rtu_header(header: bytes, unit: int, kind: str, count: int) -> None:
    """Refuse a reply by its first three bytes, before waiting for the rest."""
    fc = FUNCTION_CODES[kind]
    if header[0] != unit:
        raise FrameError("garbled", f"reply from unit {header[0]}, asked {unit}")
    if header[1] not in (fc, fc | 0x80):
        raise FrameError("garbled", f"function code {header[1]} answers no request of ours "
                                    f"(sent {fc})")
    if header[1] == fc and kind != WRITE_COIL and header[2] != data_bytes(kind, count):
        raise FrameError("garbled", f"byte count {header[2]}; the request implies "
                                    f"{data_bytes(kind, count)}")


def check_mbap(header: bytes, tid: int, unit: int) -> int:
    """Check a 7-byte MBAP header; returns the PDU length that follows."""
    got_tid, proto, length, got_unit = struct.unpack(">HHHB", header)
    if got_tid != tid:
        raise FrameError("garbled", f"transaction id {got_tid}, expected {tid}")
    if proto != 0:
        raise FrameError("garbled", f"protocol id {proto} is not Modbus")
    if not 2 <= length <= 254:
        raise FrameError("garbled", f"absurd MBAP length {length}")
    if got_unit != unit:
        raise FrameError("garbled", f"reply from unit {got_unit}, asked {unit}")
    return length - 1


def registers(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def values(data: bytes, kind: str, count: int) -> list[int]:
    return bits(data, count) if kind in BIT_KINDS else registers(data)  # write: [addr, value]
