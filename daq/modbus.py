"""Modbus helpers shared by every Modbus driver: value types, byte orders, one read call.

Register decoding is a pure function of the words, tested with vectors. :func:`read_registers`
is the one call that touches the link: on the daemon's own masters (:mod:`daq.modbus_link`)
every reply is checked against its request; on a pymodbus client (tests, tools) the
function code and count are checked here. Failures raise :class:`ModbusNoResponse` /
:class:`ModbusProtocolError`, whose ``kind`` ``daq status`` counts (see
:mod:`daq.modbus_frame`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from .errors import NoResponse, ProtocolError

# data type -> (registers, struct format for big-endian bytes); "bool" is one coil/input bit
DATA_TYPES: dict[str, tuple[int, str]] = {
    "bool": (1, ""),
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
    "int64": (4, ">q"),
    "uint64": (4, ">Q"),
    "float64": (4, ">d"),
}
# byte orders name the bytes of a 32-bit value as the wire carries them (A = most
# significant); 64-bit values follow the same pattern (ABCD: ABCDEFGH, CDAB: GHEFCDAB,
# BADC: BADCFEHG, DCBA: HGFEDCBA). "big"/"little" are the older word_order names.
BYTE_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
WORD_ORDERS = ("big", "little")
_ALIASES = {"big": "ABCD", "little": "CDAB"}
REGISTER_KINDS = ("holding", "input")
BIT_KINDS = ("coil", "discrete")
ALL_KINDS = REGISTER_KINDS + BIT_KINDS


class ModbusNoResponse(NoResponse):
    """No answer in time; ``kind``: timeout, gateway_no_response (0x0B), gateway_path (0x0A)."""

    def __init__(self, message: str, *, kind: str = "timeout") -> None:
        super().__init__(message)
        self.kind = kind


class ModbusProtocolError(ProtocolError):
    """An answer that is not this request's; ``kind``: crc, garbled, exception (``code``)."""

    def __init__(self, message: str, *, kind: str = "garbled", code: int | None = None,
                 data: bytes = b"") -> None:
        super().__init__(message, data=data)
        self.kind = kind
        self.code = code


def _order(words: Sequence[int], byte_order: str) -> bytes:
    """Big-endian bytes of the value from register words in ``byte_order``."""
    order = _ALIASES.get(byte_order, byte_order)
    if order not in BYTE_ORDERS:
        raise ValueError(f"unknown byte order {byte_order!r}")
    ws = [int(w) & 0xFFFF for w in words]
    if order in ("CDAB", "DCBA"):
        ws.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in ws)
    if order in ("BADC", "DCBA"):
        raw = b"".join(raw[i + 1:i + 2] + raw[i:i + 1] for i in range(0, len(raw), 2))
    return raw


def decode(words: Sequence[int], data_type: str, word_order: str = "big") -> float:
    """Decode 16-bit register words (or one bit) into a number.

    ``word_order`` is a byte order (``ABCD``, ``CDAB``, ``BADC``, ``DCBA``) or the older
    ``big`` (= ABCD: first register holds the most significant word, bytes big-endian as
    the Modbus specification says) / ``little`` (= CDAB: word-swapped).
    """
    count, fmt = DATA_TYPES[data_type]
    if len(words) != count:
        raise ValueError(f"{data_type} needs {count} registers, got {len(words)}")
    if data_type == "bool":
        return 1 if words[0] else 0
    return struct.unpack(fmt, _order(words, word_order))[0]


def encode(value: float, data_type: str, word_order: str = "big") -> list[int]:
    """The inverse of :func:`decode` (used by simulators and tests)."""
    _, fmt = DATA_TYPES[data_type]
    if data_type == "bool":
        return [1 if value else 0]
    if fmt[-1] in "hHiIqQ":
        value = round(value)
    raw = struct.pack(fmt, value)
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    # every byte order is its own inverse on the word level
    back = _order(words, word_order)
    return [int.from_bytes(back[i:i + 2], "big") for i in range(0, len(back), 2)]


def read_registers(link: Any, kind: str, address: int, count: int, unit: int) -> list[int]:
    """Read ``count`` registers (or bits of a coil/discrete kind) of ``unit``.

    No answer → :class:`ModbusNoResponse`; an answer that is not this request's, or an
    exception reply → :class:`ModbusProtocolError` (``kind`` says which)."""
    own = getattr(link, "read_items", None)
    if own is not None:
        return list(own(kind, address, count, unit))
    return _read_pymodbus(link, kind, address, count, unit)


_PYMODBUS_CALLS = {"holding": ("read_holding_registers", 3),
                   "input": ("read_input_registers", 4),
                   "coil": ("read_coils", 1), "discrete": ("read_discrete_inputs", 2)}


def _read_pymodbus(link: Any, kind: str, address: int, count: int, unit: int) -> list[int]:
    from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

    from .modbus_frame import EXCEPTION_NAMES, exception_kind

    name, fc = _PYMODBUS_CALLS[kind]
    try:
        reply = getattr(link, name)(address, count=count, device_id=unit)
    except (ModbusIOException, ConnectionException) as err:
        raise ModbusNoResponse(f"no answer from unit {unit}: {err}") from err
    except ModbusException as err:
        raise ModbusProtocolError(f"unit {unit}: {err}") from err
    if reply.isError():
        code = int(getattr(reply, "exception_code", 0) or 0)
        text = (f"unit {unit} answered exception {code:02X} "
                f"({EXCEPTION_NAMES.get(code, 'unknown')}) for {kind} {address}+{count}")
        if exception_kind(code) != "exception":
            raise ModbusNoResponse(text, kind=exception_kind(code))
        raise ModbusProtocolError(text, kind="exception", code=code)
    if getattr(reply, "function_code", fc) != fc:
        raise ModbusProtocolError(f"unit {unit} answered function {reply.function_code} to "
                                  f"function {fc}")
    if kind in BIT_KINDS:
        items = list(reply.bits)
        short = len(items) != (count + 7) // 8 * 8
        items = items[:count]
    else:
        items = list(reply.registers)
        short = len(items) != count
    if short:
        raise ModbusProtocolError(f"unit {unit} returned {len(items)} items, asked {count}")
    return [int(bool(b)) for b in items] if kind in BIT_KINDS else items
