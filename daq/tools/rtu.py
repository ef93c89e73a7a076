"""Modbus frames for the technician's tools, sans-I/O: bytes in, classified answers out.

RTU frames (unit, function, data, CRC-16 low byte first) and Modbus TCP frames (the MBAP
header instead of a CRC). Only the read functions: 1 coils, 2 discrete inputs, 3 holding
registers, 4 input registers. A reply is classified the way a bus scan needs it:

- ``value``: a well-formed reply with the data asked for;
- ``exception``: the unit answered with an exception code (it is alive);
- ``bad_crc``: bytes came back but the CRC is wrong (noise, a second master, bad baud);
- ``garbled``: bytes that are not a reply to this request (wrong unit, wrong length);
- ``silent``: nothing at all within the timeout.

(The daemon's strict codec is daq/modbus_frame.py, whose CRC and exception names are
used here; this module classifies leniently, as a scan needs.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..modbus_frame import EXCEPTION_NAMES, crc16, with_crc

FUNCTIONS = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
KIND_OF = {v: k for k, v in FUNCTIONS.items()}
EXCEPTIONS = EXCEPTION_NAMES
MAX_COUNT = {1: 2000, 2: 2000, 3: 125, 4: 125}


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == struct.unpack("<H", frame[-2:])[0]


def read_pdu(function: int, address: int, count: int) -> bytes:
    if function not in KIND_OF:
        raise ValueError(f"function {function} is not a read function (1-4)")
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError(f"address {address}+{count} is outside 0…65535")
    if not 1 <= count <= MAX_COUNT[function]:
        raise ValueError(f"count {count} is outside 1…{MAX_COUNT[function]} for "
                         f"{KIND_OF[function]} reads")
    return struct.pack(">BHH", function, address, count)


def rtu_request(unit: int, function: int, address: int, count: int) -> bytes:
    if not 0 <= unit <= 255:
        raise ValueError(f"unit {unit} is outside 0…255")
    return with_crc(bytes([unit]) + read_pdu(function, address, count))


def mbap_request(transaction: int, unit: int, function: int, address: int,
                 count: int) -> bytes:
    pdu = read_pdu(function, address, count)
    return struct.pack(">HHHB", transaction & 0xFFFF, 0, len(pdu) + 1, unit) + pdu


@dataclass(frozen=True)
class Answer:
    """What came back for one request; ``values`` are 16-bit words or 0/1 bits."""

    outcome: str  # value | exception | bad_crc | garbled | silent
    raw: bytes = b""
    values: list[int] = field(default_factory=list)
    exception: int | None = None
    detail: str = ""

    def words(self) -> str:
        """The outcome in words, for a table."""
        if self.outcome == "value":
            return f"{len(self.values)} value(s)"
        if self.outcome == "exception":
            return f"exception {self.exception:02d} ({EXCEPTIONS.get(self.exception or 0, '?')})"
        return self.outcome.replace("_", " ") + (f": {self.detail}" if self.detail else "")


def rtu_reply_length(buf: bytes, function: int) -> int | None:
    """Bytes the reply at the start of ``buf`` will have; None while that is unknown."""
    if len(buf) < 3:
        return None
    if buf[1] == function | 0x80:
        return 5
    if buf[1] == function:
        return 5 + buf[2]
    return len(buf)  # not a reply to this request: take what came


def _payload(function: int, count: int, data: bytes) -> list[int] | str:
    """The values in a reply's data bytes (after the byte count), or why they are wrong."""
    if function in (3, 4):
        if len(data) != 2 * count:
            return f"{len(data)} data bytes for {count} registers"
        return list(struct.unpack(f">{count}H", data))
    if len(data) != (count + 7) // 8:
        return f"{len(data)} data bytes for {count} bits"
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def classify_rtu(reply: bytes, unit: int, function: int, count: int) -> Answer:
    if not reply:
        return Answer("silent")
    if len(reply) < 5:
        return Answer("garbled", reply, detail=f"only {len(reply)} byte(s)")
    if not crc_ok(reply):
        return Answer("bad_crc", reply, detail=f"CRC {reply[-2:].hex()} should be "
                      f"{struct.pack('<H', crc16(reply[:-2])).hex()}")
    if reply[0] != unit:
        return Answer("garbled", reply, detail=f"reply from unit {reply[0]}")
    if reply[1] == function | 0x80:
        return Answer("exception", reply, exception=reply[2])
    if reply[1] != function or reply[2] != len(reply) - 5:
        return Answer("garbled", reply, detail="not a reply to this request")
    values = _payload(function, count, reply[3:-2])
    if isinstance(values, str):
        return Answer("garbled", reply, detail=values)
    return Answer("value", reply, values)


def classify_mbap(reply: bytes, transaction: int, unit: int, function: int,
                  count: int) -> Answer:
    if not reply:
        return Answer("silent")
    if len(reply) < 9:
        return Answer("garbled", reply, detail=f"only {len(reply)} byte(s)")
    tid, proto, length, uid = struct.unpack(">HHHB", reply[:7])
    if tid != transaction & 0xFFFF or proto != 0 or length != len(reply) - 6 or uid != unit:
        return Answer("garbled", reply, detail="MBAP header does not match the request")
    pdu = reply[7:]
    if pdu[0] == function | 0x80:
        return Answer("exception", reply, exception=pdu[1])
    if pdu[0] != function or pdu[1] != len(pdu) - 2:
        return Answer("garbled", reply, detail="not a reply to this request")
    values = _payload(function, count, pdu[2:])
    if isinstance(values, str):
        return Answer("garbled", reply, detail=values)
    return Answer("value", reply, values)


def char_time(baudrate: int, bits_per_char: int = 11) -> float:
    """Seconds one character takes on the wire (start + 8 data + parity/stop = 11 bits)."""
    return bits_per_char / baudrate


def t35(baudrate: int) -> float:
    """The RTU inter-frame silence: 3.5 characters, fixed at 1.75 ms above 19200 baud."""
    return 0.00175 if baudrate > 19200 else 3.5 * char_time(baudrate)


def split_frames(chunk: bytes) -> list[bytes]:
    """Cut bytes received without a silence between them into frames, by CRC.

    The shortest prefix (≥ 4 bytes) whose CRC holds is taken as a frame; what remains
    without any valid CRC is returned as one last frame (the trace shows it as bad).
    """
    frames: list[bytes] = []
    start = 0
    while start < len(chunk):
        end = next((e for e in range(start + 4, len(chunk) + 1)
                    if crc_ok(chunk[start:e])), None)
        if end is None:
            frames.append(chunk[start:])
            break
        frames.append(chunk[start:end])
        start = end
    return frames


def describe(frame: bytes) -> str:
    """One RTU frame in words: a request, a reply or an exception (guessing which)."""
    if len(frame) < 4:
        return "fragment"
    unit, fc = frame[0], frame[1]
    if fc & 0x80 and len(frame) == 5:
        code = frame[2]
        return f"unit {unit} exception {code:02d} ({EXCEPTIONS.get(code, '?')}) to fc {fc & 0x7F}"
    if fc in KIND_OF and len(frame) == 8:
        address, count = struct.unpack(">HH", frame[2:6])
        return f"unit {unit} read {KIND_OF[fc]} {address}+{count}"
    if fc in KIND_OF and len(frame) == 5 + frame[2]:
        return f"unit {unit} reply {KIND_OF[fc]}, {frame[2]} data bytes"
    return f"unit {unit} function {fc}, {len(frame)} bytes"
