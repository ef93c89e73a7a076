"""Every reading of a block of registers side by side, to identify an unknown layout.

Registers arrive as 16-bit words, each big-endian on the wire: two words are the bytes
``A B C D`` in the order received. The four orders a device may use:

- ``ABCD``: first word most significant, bytes as sent (big-endian, the spec's default);
- ``CDAB``: words swapped (first word least significant), bytes as sent;
- ``BADC``: words in order, the two bytes of each word swapped;
- ``DCBA``: both swapped (a little-endian device copying its memory).

For 64-bit types the same four rules apply to four words (``CDAB`` reverses the word
order). 16-bit types have two readings, ``AB`` and ``BA``. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

TYPES = {"int16": (1, "h"), "uint16": (1, "H"), "int32": (2, "i"), "uint32": (2, "I"),
         "float32": (2, "f"), "int64": (4, "q"), "uint64": (4, "Q"), "float64": (4, "d")}
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def orders_for(data_type: str) -> tuple[str, ...]:
    return ("ABCD", "BADC") if TYPES[data_type][0] == 1 else ORDERS


def order_name(data_type: str, order: str) -> str:
    """``ABCD``/``BADC`` read as ``AB``/``BA`` for a 16-bit type."""
    return {"ABCD": "AB", "BADC": "BA"}[order] if TYPES[data_type][0] == 1 else order


def decode(words: Sequence[int], data_type: str, order: str = "ABCD") -> float | int:
    """The value of ``words`` (exactly as many as the type needs) read in ``order``."""
    n, fmt = TYPES[data_type]
    if len(words) != n:
        raise ValueError(f"{data_type} needs {n} register(s), got {len(words)}")
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {', '.join(ORDERS)}")
    ws = [int(w) & 0xFFFF for w in words]
    if order in ("CDAB", "DCBA"):
        ws.reverse()
    raw = b"".join(w.to_bytes(2, "big" if order in ("ABCD", "CDAB") else "little")
                   for w in ws)
    value: float | int = struct.unpack(">" + fmt, raw)[0]
    return value


def plausible(value: float | int, data_type: str) -> bool:
    """A float that looks like a measurement: finite, 0 or between 1e-6 and 1e9 in size."""
    if not data_type.startswith("float"):
        return True
    return math.isfinite(value) and (value == 0 or 1e-6 <= abs(value) <= 1e9)


def decode_all(words: Sequence[int], address: int = 0,
               types: Sequence[str] = tuple(TYPES)) -> list[dict[str, object]]:
    """One row per (start register, type) that fits in ``words``: every order's value."""
    rows: list[dict[str, object]] = []
    for offset in range(len(words)):
        for t in types:
            n = TYPES[t][0]
            if offset + n > len(words):
                continue
            chunk = words[offset:offset + n]
            values = {order_name(t, o): decode(chunk, t, o) for o in orders_for(t)}
            rows.append({"address": address + offset, "type": t, "values": values,
                         "plausible": [k for k, v in values.items() if plausible(v, t)]})
    return rows


def fmt_value(value: float | int) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.7g}" if abs(value) < 1e15 else f"{value:.3e}"
    return str(value)
