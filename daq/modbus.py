"""Modbus helpers shared by every Modbus driver (pymodbus 3.10+ API: ``device_id=``).

Register decoding is a pure function of the words, tested with vectors; the one call that
touches the link maps pymodbus's failures onto :class:`NoResponse` / :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from .errors import NoResponse, ProtocolError

# data type -> (registers, struct format for big-endian bytes)
DATA_TYPES: dict[str, tuple[int, str]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
}
WORD_ORDERS = ("big", "little")
REGISTER_KINDS = ("holding", "input")


def decode(words: Sequence[int], data_type: str, word_order: str = "big") -> float:
    """Decode 16-bit register words into a number.

    ``word_order="big"``: the first register holds the most significant word (ABCD);
    ``"little"``: the first register holds the least significant word (CDAB). Bytes within
    a register are always big-endian, as the Modbus specification says.
    """
    count, fmt = DATA_TYPES[data_type]
    if len(words) != count:
        raise ValueError(f"{data_type} needs {count} registers, got {len(words)}")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    raw = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in ordered)
    return struct.unpack(fmt, raw)[0]


def encode(value: float, data_type: str, word_order: str = "big") -> list[int]:
    """The inverse of :func:`decode` (used by simulators and tests)."""
    _, fmt = DATA_TYPES[data_type]
    if fmt[-1] in "hHiI":
        value = round(value)
    raw = struct.pack(fmt, value)
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def read_registers(link: Any, kind: str, address: int, count: int, unit: int) -> list[int]:
    """Read ``count`` registers; no answer → NoResponse, an error reply → ProtocolError."""
    call = link.read_holding_registers if kind == "holding" else link.read_input_registers
    try:
        reply = call(address, count=count, device_id=unit)
    except (ModbusIOException, ConnectionException) as err:
        raise NoResponse(f"no answer from unit {unit}: {err}") from err
    except ModbusException as err:
        raise ProtocolError(f"unit {unit}: {err}") from err
    if reply.isError():
        code = getattr(reply, "exception_code", None)
        raise ProtocolError(f"unit {unit} answered exception {code} "
                            f"for {kind} {address}+{count}")
    regs = list(reply.registers)
    if len(regs) < count:
        raise ProtocolError(f"unit {unit} returned {len(regs)} of {count} registers")
    return regs[:count]
