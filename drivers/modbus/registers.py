"""Register references, read planning and one-poll snapshots shared by the Modbus drivers.

A driver describes *where* each number lives (:class:`RegisterRef`: kind, address, data
type, word order). :func:`plan_reads` merges references of one kind whose registers touch
or overlap into as few requests as possible (at most 125 registers each, the Modbus limit
for function codes 3 and 4); a gap between references is never bridged, since the
registers in a gap may not exist on the device (and ``one_request_per_register`` gives each
reference its own request, for devices that reject block reads). :meth:`RegisterReader.read`
performs the planned requests and returns a :class:`Snapshot` from which each reference is
decoded; with ``partial=True`` a request answered by a Modbus exception (02 illegal data
address, ...) marks only its own references failed (:meth:`Snapshot.failure`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from daq.modbus import (
    BYTE_ORDERS,
    DATA_TYPES,
    WORD_ORDERS,
    ModbusProtocolError,
    decode,
    read_registers,
)
from daq.modbus_frame import MAX_COUNT
from daq.schema import Field, Schema

MAX_REGISTERS_PER_READ = 125  # Modbus application protocol, function codes 3 and 4


@dataclass(frozen=True)
class RegisterRef:
    """Where one number lives: ``kind`` ("holding"/"input" registers, "coil"/"discrete"
    bits), first ``address`` (0-based, as on the wire), ``data_type`` and ``word_order``
    (a byte order, see :func:`daq.modbus.decode`)."""

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
        ``word_order``/``byte_order`` keys; the arguments are the defaults for missing keys
        (``byte_order`` wins over ``word_order``; a bit kind is always ``bool``)."""
        k = opts.get("kind", kind)
        return cls(kind=k, address=int(opts["address"]),
                   data_type="bool" if k in ("coil", "discrete") else opts.get("type", data_type),
                   word_order=opts.get("byte_order") or opts.get("word_order", word_order))


@dataclass(frozen=True)
class ReadRequest:
    kind: str
    address: int
    count: int


def plan_reads(refs: Iterable[RegisterRef], max_count: int | None = None,
               one_per_ref: bool = False) -> list[ReadRequest]:
    """Group references into requests: contiguous or overlapping registers of one kind share
    a request of at most ``max_count`` items (default: the protocol's limit, 125 registers
    or 2000 bits). ``one_per_ref``: one request per reference. Sorted by kind, address."""
    if one_per_ref:
        return sorted({ReadRequest(r.kind, r.address, r.count) for r in refs},
                      key=lambda q: (q.kind, q.address, q.count))
    out: list[ReadRequest] = []
    by_kind: dict[str, list[RegisterRef]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref)
    for kind in sorted(by_kind):
        limit = max_count or MAX_COUNT[kind]
        start = end = -1
        for ref in sorted(by_kind[kind], key=lambda r: (r.address, r.end)):
            if start >= 0 and ref.address <= end and max(end, ref.end) - start <= limit:
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
        self.failed: list[tuple[ReadRequest, ModbusProtocolError]] = []

    def failure(self, ref: RegisterRef) -> ModbusProtocolError | None:
        """The exception reply that left ``ref`` unread, or None if it was read."""
        for req, err in self.failed:
            if req.kind == ref.kind and req.address <= ref.address < req.address + req.count:
                return err
        return None

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

    def __init__(self, refs: Iterable[RegisterRef], one_per_ref: bool = False) -> None:
        self.requests = plan_reads(refs, one_per_ref=one_per_ref)

    def read(self, link: Any, unit: int, partial: bool = False) -> Snapshot:
        """Perform every planned request; NoResponse/ProtocolError propagate unchanged,
        except that with ``partial`` an exception reply is kept in the snapshot (the other
        requests still run) unless every request got one."""
        snap = Snapshot()
        for req in self.requests:
            try:
                words = read_registers(link, req.kind, req.address, req.count, unit)
            except ModbusProtocolError as err:
                if not partial or err.kind != "exception":
                    raise
                snap.failed.append((req, err))
                continue
            snap.add(req.kind, req.address, words)
        if snap.failed and len(snap.failed) == len(self.requests):
            raise snap.failed[0][1]
        return snap


NUMBER_TYPES = tuple(t for t in DATA_TYPES if t != "bool")


def ref_fields(default_type: str = "uint16", default_kind: str | None = None,
               types: tuple[str, ...] = NUMBER_TYPES,
               kinds: tuple[str, ...] = ("holding", "input")) -> dict[str, Field]:
    """Schema fields locating one number: address, kind, type, word_order, byte_order.

    ``default_kind=None`` leaves ``kind`` unset so a device-wide default can apply."""
    kind = (Field("str", choices=kinds) if default_kind is None
            else Field("str", default=default_kind, choices=kinds))
    return {
        "address": Field("int", required=True, min=0, max=65535,
                         doc="first register, 0-based as on the wire"),
        "kind": kind,
        "type": Field("str", default=default_type, choices=types),
        "word_order": Field("str", default="big", choices=WORD_ORDERS,
                            doc="big: first register holds the high word (ABCD); little: CDAB"),
        "byte_order": Field("str", choices=BYTE_ORDERS,
                            doc="ABCD, CDAB, BADC or DCBA (overrides word_order)"),
    }


def ref_schema(default_type: str = "uint16", default_kind: str | None = None,
               types: tuple[str, ...] = NUMBER_TYPES, **extra: Field) -> Schema:
    """A schema for a mapping locating one number, plus ``extra`` fields."""
    return Schema({**ref_fields(default_type, default_kind, types), **extra})
