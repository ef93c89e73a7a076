"""One receiver stream, bytes in, decoded records out, everything counted.

:class:`GnssStream` chains the :class:`~daq.gnss.streams.framing.Framer` with the RTCM 3, UBX and
NMEA decoders. ``feed(chunk)`` returns ``(frame, record)`` pairs; a frame whose contents
do not decode is counted in :attr:`GnssStream.decode_errors` under
``"<kind>:<reason>"`` and skipped, and any unexpected exception inside a decoder is
counted as ``"<kind>:bug"`` rather than allowed to stop the stream. :class:`StreamStats`
sums a whole log for ``daq gnss decode``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import nmea
from .bits import DecodeError
from .framing import Frame, Framer
from .records import Ephemeris, ObsEpoch, Station
from .rtcm3 import Rtcm3Decoder
from .ubx import UbxDecoder

WEEK_S = 604800.0
UBX_NAMES = {(1, 1): "NAV-POSECEF", (1, 2): "NAV-POSLLH", (1, 7): "NAV-PVT",
             (1, 0x13): "NAV-HPPOSECEF", (1, 0x14): "NAV-HPPOSLLH", (2, 0x10): "RXM-RAW",
             (2, 0x11): "RXM-SFRB", (2, 0x13): "RXM-SFRBX", (2, 0x15): "RXM-RAWX"}


def frame_name(frame: Frame) -> str:
    """A message type's display name: ``RTCM 1077``, ``UBX RXM-RAWX``, ``NMEA GGA``."""
    if frame.kind == "rtcm3":
        return f"RTCM {frame.msg}"
    if frame.kind == "ubx":
        cls_id = frame.msg if isinstance(frame.msg, tuple) else (0, 0)
        return "UBX " + UBX_NAMES.get(cls_id, f"{cls_id[0]:02X}-{cls_id[1]:02X}")
    sid = str(frame.msg)
    return "NMEA " + (sid[2:] if len(sid) == 5 and not sid.startswith("P") else sid)


class GnssStream:
    """Framer + decoders for one receiver port (sans-I/O)."""

    def __init__(self, leap_seconds: int = 18) -> None:
        self.framer = Framer()
        self.rtcm3 = Rtcm3Decoder(leap_seconds)
        self.ubx = UbxDecoder()
        self.decoded: Counter[str] = Counter()
        self.decode_errors: Counter[str] = Counter()

    def feed(self, data: bytes) -> list[tuple[Frame, Any]]:
        return self._decode_all(self.framer.feed(data))

    def flush(self) -> list[tuple[Frame, Any]]:
        return self._decode_all(self.framer.flush())

    def _decode_all(self, frames: list[Frame]) -> list[tuple[Frame, Any]]:
        out = []
        for frame in frames:
            record = self.decode(frame)
            if record is not None:
                out.append((frame, record))
        return out

    def decode(self, frame: Frame) -> Any:
        """Decode one checked frame; None (and counted) when its contents are bad."""
        try:
            if frame.kind == "rtcm3":
                record = self.rtcm3.decode(frame.payload)
            elif frame.kind == "ubx":
                record = self.ubx.decode(frame.msg, frame.payload)
            else:
                record = nmea.decode(frame.payload)
        except DecodeError as err:
            self.decode_errors[f"{frame.kind}:{err.reason}"] += 1
            return None
        except Exception:  # a decoder bug must cost one frame, never the stream
            self.decode_errors[f"{frame.kind}:bug"] += 1
            return None
        self.decoded[frame.kind] += 1
        return record


@dataclass
class StreamStats:
    """Summary of a raw log, like convbin's: what is in it and what was wrong with it."""

    bytes: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    systems: Counter[str] = field(default_factory=Counter)     # signal observations
    satellites: dict[str, set[int]] = field(default_factory=dict)
    ephemerides: Counter[str] = field(default_factory=Counter)
    epochs: set[float] = field(default_factory=set)
    stations: list[Station] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    decode_errors: Counter[str] = field(default_factory=Counter)
    skipped_bytes: int = 0
    _weeks: int = field(default=0, repr=False)          # week rollovers seen so far
    _last: float | None = field(default=None, repr=False)

    def add(self, frame: Frame, record: Any) -> None:
        self.messages[frame_name(frame)] += 1
        if isinstance(record, ObsEpoch):
            if record.tow is not None:
                self.epochs.add(round(self._unwrap(record.tow), 3))
            for s in record.signals:
                self.systems[s.sys] += 1
                self.satellites.setdefault(s.sys, set()).add(s.prn)
        elif isinstance(record, Ephemeris):
            self.ephemerides[record.sys] += 1
        elif isinstance(record, Station) and not any(
                (st.x, st.y, st.z) == (record.x, record.y, record.z) for st in self.stations):
            self.stations.append(record)

    def _unwrap(self, tow: float) -> float:
        """Seconds of week → seconds since the first epoch's week, across week rollovers
        (a jump back of more than half a week is the next week; forward, the previous)."""
        if self._last is not None:
            step = tow + self._weeks * WEEK_S - self._last
            if step < -WEEK_S / 2:
                self._weeks += 1
            elif step > WEEK_S / 2:
                self._weeks -= 1
        t = tow + self._weeks * WEEK_S
        self._last = t
        return t

    def to_json(self) -> dict[str, Any]:
        span = (min(self.epochs), max(self.epochs)) if self.epochs else None
        first, last = (round(span[0] % WEEK_S, 3), round(span[1] % WEEK_S, 3)) if span else (
            None, None)
        return {
            "bytes": self.bytes,
            "messages": dict(sorted(self.messages.items())),
            "observations_per_system": dict(sorted(self.systems.items())),
            "satellites": {k: sorted(v) for k, v in sorted(self.satellites.items())},
            "ephemerides": dict(sorted(self.ephemerides.items())),
            "epochs": len(self.epochs),
            "tow_first": first,
            "tow_last": last,
            "span_s": round(span[1] - span[0], 3) if span else None,
            "stations": [{"station": s.station, "x": s.x, "y": s.y, "z": s.z,
                          "height": s.height} for s in self.stations],
            "rejected_frames": dict(sorted(self.rejected.items())),
            "decode_errors": dict(sorted(self.decode_errors.items())),
            "skipped_bytes": self.skipped_bytes,
        }


def summarise(data: bytes, chunk: int = 4096, leap_seconds: int = 18) -> StreamStats:
    """Decode a whole raw log held in memory and summarise it."""
    stream = GnssStream(leap_seconds)
    stats = StreamStats()
    for i in range(0, len(data), chunk):
        for frame, record in stream.feed(data[i:i + chunk]):
            stats.add(frame, record)
    for frame, record in stream.flush():
        stats.add(frame, record)
    stats.bytes = len(data)
    stats.rejected = Counter(stream.framer.rejected)
    stats.decode_errors = Counter(stream.decode_errors)
    stats.skipped_bytes = stream.framer.bytes_skipped
    return stats
