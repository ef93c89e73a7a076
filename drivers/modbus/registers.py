"""Register references, read planning and one-poll snapshots shared by the Modbus drivers.

A driver describes *where* each number lives (:class:`RegisterRef`: kind, address, data
type, word order). :func:`plan_reads` merges references of one kind whose registers touch
or overlap into as few requests as possible (at most 125 registers each, the Modbus limit
for function codes 3 and 4); a gap between references is never bridged, since the
registers in a gap may not exist on the device. :meth:`RegisterReader.read` performs the
planned requests and returns a :class:`Snapshot` from which each reference is decoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from daq.modbus import DATA_TYPES, REGISTER_KINDS, WORD_ORDERS, decode, read_registers
from daq.schema import Field, Schema

MAX_REGISTERS_PER_READ = 125  # Modbus application protocol, function codes 3 and 4


@dataclass(frozen=True)
class RegisterRef:
    """Where one number lives: register ``kind`` ("holding"/"input"), first ``address``
    (0-based, as on the wire), ``data_type`` and ``word_order`` (see :func:`daq.modbus.decode`)."""

    kind: str
    address: int
    data_type: str = "uint16"
    word_order: str = "big"

    @property
    def count(self) -> int:
        return DATA_TYPES[self.data_type][0]

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.count

    @classmethod
    def from_options(cls, opts: dict[str, Any], kind: str = "holding",
                     data_type: str = "uint16", word_order: str = "big") -> RegisterRef:
        """Build from a checked mapping with ``address`` and optional ``kind``/``type``/
        ``word_order`` keys; the arguments are the defaults for missing keys."""
        return cls(kind=opts.get("kind", kind), address=int(opts["address"]),
                   data_type=opts.get("type", data_type),
                   word_order=opts.get("word_order", word_order))


@dataclass(frozen=True)
class ReadRequest:
    kind: str
    address: int
    count: int


def plan_reads(refs: Iterable[RegisterRef],
               max_count: int = MAX_REGISTERS_PER_READ) -> list[ReadRequest]:
    """Group references into requests: contiguous or overlapping registers of one kind share
    a request of at most ``max_count`` registers. Sorted by kind, then address."""
    out: list[ReadRequest] = []
    by_kind: dict[str, list[RegisterRef]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref)
    for kind in sorted(by_kind):
        start = end = -1
        for ref in sorted(by_kind[kind], key=lambda r: (r.address, r.end)):
            if start >= 0 and ref.address <= end and max(end, ref.end) - start <= max_count:
                end = max(end, ref.end)
                continue
            if start >= 0:
                out.append(ReadRequest(kind, start, end - start))
            start, end = ref.address, ref.end
        if start >= 0:
            out.append(ReadRequest(kind, start, end - start))
    return out


class Snapshot:
    """The registers read in one poll, by (kind, address)."""

    def __init__(self) -> None:
        self.words: dict[tuple[str, int], int] = {}

    def add(self, kind: str, address: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            self.words[(kind, address + i)] = w

    def raw(self, ref: RegisterRef) -> list[int]:
        """The register words of ``ref`` (KeyError if they were not read)."""
        return [self.words[(ref.kind, ref.address + i)] for i in range(ref.count)]

    def value(self, ref: RegisterRef) -> float:
        """The decoded number (may be NaN or ±inf for float32)."""
        return decode(self.raw(ref), ref.data_type, ref.word_order)


class RegisterReader:
    """Reads a fixed set of references with the fewest requests (planned once)."""

    def __init__(self, refs: Iterable[RegisterRef]) -> None:
        self.requests = plan_reads(refs)

    def read(self, link: Any, unit: int) -> Snapshot:
        """Perform every planned request; NoResponse/ProtocolError propagate unchanged."""
        snap = Snapshot()
        for req in self.requests:
            snap.add(req.kind, req.address,
                     read_registers(link, req.kind, req.address, req.count, unit))
        return snap


def ref_fields(default_type: str = "uint16", default_kind: str | None = None,
               types: tuple[str, ...] = tuple(DATA_TYPES)) -> dict[str, Field]:
    """Schema fields locating one number: address, kind, type, word_order.

    ``default_kind=None`` leaves ``kind`` unset so a device-wide default can apply."""
    kind = (Field("str", choices=REGISTER_KINDS) if default_kind is None
            else Field("str", default=default_kind, choices=REGISTER_KINDS))
    return {
        "address": Field("int", required=True, min=0, max=65535,
                         doc="first register, 0-based as on the wire"),
        "kind": kind,
        "type": Field("str", default=default_type, choices=types),
        "word_order": Field("str", default="big", choices=WORD_ORDERS,
                            doc="big: first register holds the high word (ABCD); little: CDAB"),
    }


def ref_schema(default_type: str = "uint16", default_kind: str | None = None,
               types: tuple[str, ...] = tuple(DATA_TYPES), **extra: Field) -> Schema:
    """A schema for a mapping locating one number, plus ``extra`` fields."""
    return Schema({**ref_fields(default_type, default_kind, types), **extra})
