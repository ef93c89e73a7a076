"""On-disk format of a GNSS session: an append-only file of CRC-checked records.

Why not SQLite (as the outbox uses): a session is written once, in time order, and read
whole; appending a 1–5 kB epoch to a file writes those bytes and nothing else, where a
SQLite commit writes pages, WAL frames and checkpoints (FIELD-NOTES: ~11 kB per
single-row commit) on an RTU's flash. A torn tail after kill -9 or power loss is found by
the CRC and cut off on reopen, so a crash loses at most the record being written, never
the session.

Record: ``b"DW"`` | type (1 byte) | payload length (uint32 LE) | payload | CRC-32 (uint32
LE) of type + length + payload. Types:
- ``S`` session meta (JSON: point, start, end, format version), always first;
- ``H`` observation header (JSON; the last one wins);
- ``O`` observation epoch: uint32 LE JSON-meta length, JSON meta (week, sow, flag, sats,
  codes, clock, events), a bitmap (np.packbits, row-major) of the cells present, then
  those cells' float64 LE values, uint8 LLI, uint8 SSI;
- ``N`` broadcast ephemeris (JSON of the dataclass fields).
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from daq.gnss.obs import Ephemeris, GlonassEphemeris, GNSSTime, KeplerEphemeris, ObsEpoch, ObsHeader

MAGIC = b"DW"
_HEAD = struct.Struct("<2scI")
_CRC = struct.Struct("<I")
MAX_PAYLOAD = 16 << 20  # a larger length field is damage, not data
FORMAT_VERSION = 1


def frame(kind: bytes, payload: bytes) -> bytes:
    """One record, ready to append."""
    head = _HEAD.pack(MAGIC, kind, len(payload))
    return head + payload + _CRC.pack(zlib.crc32(head[2:] + payload))


def scan(f: BinaryIO) -> Iterator[tuple[bytes, bytes, int]]:
    """Yield (type, payload, end offset) of each intact record; stop at the first bad one.

    The caller learns where the good data ends from the last ``end offset`` (0 if none).
    """
    while True:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return
        magic, kind, size = _HEAD.unpack(head)
        if magic != MAGIC or size > MAX_PAYLOAD:
            return
        payload = f.read(size)
        crc = f.read(_CRC.size)
        if len(payload) < size or len(crc) < _CRC.size:
            return
        if _CRC.unpack(crc)[0] != zlib.crc32(head[2:] + payload):
            return
        yield kind, payload, f.tell()


def valid_length(path: Path) -> tuple[int, int]:
    """(bytes of intact records, bytes after them) of a session file."""
    end = 0
    with path.open("rb") as f:
        for record in scan(f):
            end = record[2]
    return end, path.stat().st_size - end


# --- payloads -----------------------------------------------------------------------

def encode_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_epoch(ep: ObsEpoch) -> bytes:
    """An epoch as its present cells only: a bitmap of cells with a value, LLI or SSI, then
    those cells' values (float64), LLI and SSI in row-major order."""
    present = ~np.isnan(ep.values) | (ep.lli != 0) | (ep.ssi != 0)
    meta = encode_json({
        "w": ep.time.week, "s": ep.time.sow, "f": ep.flag, "sats": list(ep.sats),
        "codes": list(ep.codes), "clk": ep.clock_offset, "ev": list(ep.event_lines)})
    return b"".join((struct.pack("<I", len(meta)), meta, np.packbits(present).tobytes(),
                     ep.values[present].astype("<f8").tobytes(),
                     ep.lli[present].astype(np.uint8).tobytes(),
                     ep.ssi[present].astype(np.uint8).tobytes()))


def decode_epoch(payload: bytes, shared: dict[Any, Any] | None = None) -> ObsEpoch:
    """``shared`` (one dict per file read): equal satellite ids, code names and their
    tuples become one object each instead of one per epoch (a 4-hour 1 Hz session of
    30 satellites would otherwise hold ~0.5 M copies of a few dozen strings)."""
    (n,) = struct.unpack_from("<I", payload)
    meta = json.loads(payload[4:4 + n])
    sats, codes = tuple(meta["sats"]), tuple(meta["codes"])
    if shared is not None:
        sats = _shared(shared, sats)
        codes = _shared(shared, codes)
    ep = ObsEpoch.empty(GNSSTime(meta["w"], meta["s"]), sats, codes, meta["f"])
    ep.clock_offset, ep.event_lines = meta["clk"], tuple(meta["ev"])
    cells = len(sats) * len(codes)
    at = 4 + n
    nbytes = (cells + 7) // 8
    bits = np.frombuffer(payload, np.uint8, nbytes, at)
    present = np.unpackbits(bits, count=cells).astype(bool).reshape(ep.values.shape)
    k = int(present.sum())
    at += nbytes
    ep.values[present] = np.frombuffer(payload, "<f8", k, at)
    ep.lli[present] = np.frombuffer(payload, np.uint8, k, at + 8 * k)
    ep.ssi[present] = np.frombuffer(payload, np.uint8, k, at + 9 * k)
    return ep


def keep_systems(ep: ObsEpoch, systems: str, shared: dict[Any, Any]) -> ObsEpoch:
    """The epoch's satellites of ``systems`` only, without the codes none of them has a
    value, LLI or SSI in (what a solver of those systems reads, and less to hold)."""
    rows = [i for i, s in enumerate(ep.sats) if s[0] in systems]
    if not ep.sats:
        return ep
    if len(rows) == len(ep.sats) and not np.isnan(ep.values).all(axis=0).any():
        return ep
    v, lli, ssi = ep.values[rows], ep.lli[rows], ep.ssi[rows]
    cols = np.nonzero((~np.isnan(v) | (lli != 0) | (ssi != 0)).any(axis=0))[0]
    out = ObsEpoch(ep.time, _shared(shared, tuple(ep.sats[i] for i in rows)),
                   _shared(shared, tuple(ep.codes[j] for j in cols)),
                   np.ascontiguousarray(v[:, cols]), np.ascontiguousarray(lli[:, cols]),
                   np.ascontiguousarray(ssi[:, cols]), ep.flag)
    out.clock_offset, out.event_lines = ep.clock_offset, ep.event_lines
    return out


def _shared(shared: dict[Any, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    got: tuple[str, ...] | None = shared.get(names)
    if got is None:
        got = shared[names] = tuple(shared.setdefault(x, x) for x in names)
    return got


def encode_header(h: ObsHeader) -> bytes:
    d = dataclasses.asdict(h)
    d["time_of_first"] = [h.time_of_first.week, h.time_of_first.sow] if h.time_of_first else None
    return encode_json(d)


def decode_header(payload: bytes) -> ObsHeader:
    d = json.loads(payload)
    tof = d.pop("time_of_first")
    h = ObsHeader(**d)
    h.obs_types = {k: tuple(v) for k, v in h.obs_types.items()}
    h.receiver = tuple(h.receiver)  # type: ignore[assignment]
    h.antenna = tuple(h.antenna)  # type: ignore[assignment]
    h.approx_xyz = tuple(h.approx_xyz)  # type: ignore[assignment]
    h.antenna_delta_hen = tuple(h.antenna_delta_hen)  # type: ignore[assignment]
    h.phase_shifts, h.comments = tuple(h.phase_shifts), tuple(h.comments)
    h.time_of_first = GNSSTime(tof[0], tof[1]) if tof else None
    return h


def encode_ephemeris(e: Ephemeris) -> bytes:
    d = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
    if isinstance(e, KeplerEphemeris):
        d["toc"] = [e.toc.week, e.toc.sow, e.toc.scale]
    else:
        d["toc"] = e.toc.isoformat()
        d["extra"] = list(e.extra)
    return encode_json(d)


def decode_ephemeris(payload: bytes) -> Ephemeris:
    d = json.loads(payload)
    if d["sat"][0] == "R":
        d["toc"] = datetime.fromisoformat(d["toc"])
        d["extra"] = tuple(d["extra"])
        return GlonassEphemeris(**d)
    d["toc"] = GNSSTime(*d["toc"])
    return KeplerEphemeris(**d)


def ephemeris_key(e: Ephemeris) -> tuple[str, str, float]:
    """Identity of a broadcast message: satellite, toc, and IODE / tk."""
    if isinstance(e, KeplerEphemeris):
        return e.sat, f"{e.toc.week}:{e.toc.sow}", e.iode
    return e.sat, e.toc.isoformat(), e.tk
