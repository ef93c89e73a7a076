"""One receiver's bytes → the session store (sans-I/O: the recorder thread owns the port).

:class:`StreamIngest` feeds a :class:`~daq.gnss.streams.stream.GnssStream`, assembles observation
records into whole epochs (:class:`~daq.gnss.streams.to_model.EpochAssembler`), converts broadcast
ephemerides and RTCM 1005/1006 station positions, and appends everything to the
:class:`~daq.gnss.sessions.store.SessionStore` under the stream's point. Nothing here raises on
bad input: undecodable frames, epochs without a usable time and late epochs are counted.

Time: RTCM MSM messages carry only the time of week. The week comes from the data itself
(a UBX epoch's week, an RTCM 1013's MJD, a GPS/BeiDou ephemeris), then follows the epochs
(so a week rollover is followed); until one is seen, records wait (up to ``max_pending``),
then the system clock decides (logged once). A replayed old log is so dated by its own
content, a live receiver by its first ephemeris or, failing that, the clock. A time from
the clock is provisional: the first time the data carries (1013, ephemeris, UBX week)
replaces it, and if they disagree by more than ``CLOCK_TRUST_S`` (half a week: only then
was a week wrong; a stale ephemeris hours old is no reason) the epochs dated by the
wrong clock are set aside (the open session, renamed ``.misdated``; counted, logged).

An epoch more than ``JUMP_S`` after the previous one (a receiver glitch, a corrupt time
that passed the CRC) is held until ``CONFIRM_EPOCHS`` epochs confirm the new timeline (a
receiver back after an outage); an epoch back on the old timeline drops the held ones
(counted), so one future-dated epoch can neither close a session early nor move the
daemon's data clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from daq.gnss import obs
from daq.gnss.streams.framing import Frame
from daq.gnss.streams.records import Ephemeris, ObsEpoch, Station, SystemTime
from daq.gnss.streams.stream import GnssStream
from daq.gnss.streams.to_model import EpochAssembler, glonass_ephemeris, kepler_ephemeris

from .store import SessionStore

log = structlog.get_logger("daq.gnss.sessions.ingest")

WEEK_S = 604800.0
CLOCK_TRUST_S = WEEK_S / 2  # a clock off by less still gives every epoch its right week
JUMP_S = 600.0              # an epoch this far past the previous one needs confirming ...
CONFIRM_EPOCHS = 3          # ... by this many consecutive epochs (itself included)
_KINDS = {"rtcm3": ("rtcm3",), "ubx": ("ubx",), "auto": ("rtcm3", "ubx")}


def clock_gps_seconds() -> float:
    """The system clock as GPST seconds since 1980-01-06 (leap seconds from the table)."""
    from datetime import UTC, datetime

    return obs.GNSSTime.from_utc(datetime.now(UTC).replace(tzinfo=None)).gps_seconds


@dataclass
class IngestCounters:
    """What one stream delivered; ``decode_errors`` by ``kind:reason``."""

    bytes: int = 0
    frames: int = 0
    epochs: int = 0
    epochs_dropped: int = 0      # late, out of order, or no usable time
    ephemerides: int = 0
    stations: int = 0
    ignored_frames: int = 0      # frames of a format the stream is not configured for
    decode_errors: dict[str, int] = field(default_factory=dict)
    last_epoch_gps: float | None = None
    time_source: str | None = None   # ubx | rtcm1013 | ephemeris | clock
    time_corrections: int = 0        # clock-dated stream re-dated by its data
    time_jumps_rejected: int = 0     # future-dated epochs not confirmed by the next ones

    def to_json(self) -> dict[str, Any]:
        last = (None if self.last_epoch_gps is None else
                obs.GNSSTime.from_seconds(self.last_epoch_gps).to_utc().isoformat() + "Z")
        return {"bytes": self.bytes, "frames": self.frames, "epochs": self.epochs,
                "epochs_dropped": self.epochs_dropped, "ephemerides": self.ephemerides,
                "stations": self.stations, "ignored_frames": self.ignored_frames,
                "decode_errors": dict(self.decode_errors), "last_epoch": last,
                "time_source": self.time_source, "time_corrections": self.time_corrections,
                "time_jumps_rejected": self.time_jumps_rejected}


class StreamIngest:
    """Bytes of one receiver in, session-store records out (one instance per stream)."""

    def __init__(self, name: str, point: str, store: SessionStore, *, fmt: str = "auto",
                 leap_seconds: int = 18, max_pending: int = 600,
                 clock: Callable[[], float] = clock_gps_seconds) -> None:
        self.name, self.point, self.store = name, point, store
        self.kinds = _KINDS[fmt]
        self.stream = GnssStream(leap_seconds)
        self.assembler = EpochAssembler()
        self.clock, self.max_pending = clock, max_pending
        self.counters = IngestCounters()
        self.station: Station | None = None
        self._ref: float | None = None          # a GPST instant near the data (s)
        self._pending: list[ObsEpoch] = []
        self._pending_eph: list[Ephemeris] = []
        self._last_t: float | None = None       # GPST s of the last stored epoch
        self._held: list[obs.ObsEpoch] = []     # epochs after a jump, waiting for confirmation
        self.on_epoch: Callable[[float], None] | None = None   # GPST s of each stored epoch

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.counters.bytes += len(data)
        pairs = self.stream.feed(data)
        self._handle(pairs)

    def flush(self) -> None:
        """At the end of input: decode what the framer holds, store the last epoch."""
        self._handle(self.stream.flush())
        for ep in self.assembler.flush():
            self._store_epoch(ep)
        if self._held:          # never confirmed: a lone future session would block the store
            self._reject_held()

    def _handle(self, pairs: list[tuple[Frame, Any]]) -> None:
        for frame, record in pairs:
            self.counters.frames += 1
            if frame.kind == "nmea" or frame.kind not in self.kinds:
                self.counters.ignored_frames += 1
                continue
            try:
                self._record(frame, record)
            except Exception as err:  # a conversion bug costs one record, never the stream
                key = f"{frame.kind}:convert_{type(err).__name__}"
                self.counters.decode_errors[key] = self.counters.decode_errors.get(key, 0) + 1
        self.counters.decode_errors.update(self.stream.decode_errors)

    def _record(self, frame: Frame, record: Any) -> None:
        if isinstance(record, ObsEpoch):
            self._observation(record)
        elif isinstance(record, Ephemeris):
            self._ephemeris(record)
        elif isinstance(record, Station):
            self._station(record)
        elif isinstance(record, SystemTime) and self._time_provisional():
            self._set_time(record.gps_seconds, record.source)

    # -- time -----------------------------------------------------------------------------

    def _time_provisional(self) -> bool:
        return self._ref is None or self.counters.time_source == "clock"

    def _set_time(self, gps_seconds: float, source: str) -> None:
        if self._ref is not None and self.counters.time_source == "clock" and source != "clock":
            self._correct_clock(gps_seconds, source)
            return
        first = self._ref is None
        self._ref = gps_seconds
        if first:
            self.counters.time_source = source
            log.info("gnss_stream_time_known", stream=self.name, source=source)
            pending, self._pending = self._pending, []
            for rec in pending:
                self._observation(rec)
            eph, self._pending_eph = self._pending_eph, []
            for e in eph:
                self._ephemeris(e)

    def _correct_clock(self, gps_seconds: float, source: str) -> None:
        """The data's own time replaces the clock's; far apart, the clock-dated epochs go."""
        assert self._ref is not None
        offset = gps_seconds - self._ref
        self.counters.time_source = source
        if abs(offset) <= CLOCK_TRUST_S:
            return                                # the clock was right: now confirmed
        self.counters.time_corrections += 1
        log.warning("gnss_stream_time_corrected", stream=self.name, source=source,
                    offset_s=round(offset), hint="the system clock is wrong; check NTP/RTC")
        self.counters.epochs_dropped += len(self.assembler.flush()) + len(self._held)
        self.assembler.week = None
        self._held, self._last_t, self._ref = [], None, gps_seconds
        self.store.set_aside(self.point, "misdated")

    def _observation(self, rec: ObsEpoch) -> None:
        if rec.week is not None and rec.tow is not None:
            self._set_time(rec.week * WEEK_S + rec.tow, "ubx")
        if self._ref is None:
            self._pending.append(rec)
            if len(self._pending) > self.max_pending:
                log.warning("gnss_stream_time_from_clock", stream=self.name,
                            hint="no week in the data (RTCM 1013, ephemeris, UBX) yet")
                self._set_time(self.clock(), "clock")
            return
        if rec.tow is None:
            self.counters.epochs_dropped += 1
            return
        week = round((self._ref - rec.tow) / WEEK_S)
        if self.assembler.week is not None and week != self.assembler.week:
            for ep in self.assembler.flush():   # the previous epoch keeps its own week
                self._store_epoch(ep)
        self.assembler.week = week
        for ep in self.assembler.add(rec):
            self._store_epoch(ep)

    def _store_epoch(self, ep: obs.ObsEpoch) -> None:
        t = ep.time.gps_seconds
        if self._last_t is not None and t - self._last_t > JUMP_S:
            held = self._held
            if held and 0 < t - held[-1].time.gps_seconds <= JUMP_S:
                held.append(ep)
            else:
                if held:
                    self._reject_held()
                self._held = [ep]
            if len(self._held) >= CONFIRM_EPOCHS:
                log.info("gnss_stream_time_jump", stream=self.name, gap_s=round(
                    self._held[0].time.gps_seconds - self._last_t))
                held, self._held, self._last_t = self._held, [], None
                for h in held:
                    self._commit(h)
            return
        if self._held:               # back on the old timeline: the jump was a bad epoch
            self._reject_held()
        self._commit(ep)

    def _reject_held(self) -> None:
        self.counters.epochs_dropped += len(self._held)
        self.counters.time_jumps_rejected += 1
        log.warning("gnss_epoch_time_jump_rejected", stream=self.name, epochs=len(self._held),
                    gap_s=round(self._held[0].time.gps_seconds - (self._last_t or 0.0)))
        self._held = []

    def _commit(self, ep: obs.ObsEpoch) -> None:
        t = ep.time.gps_seconds
        self._ref = self._last_t = t
        if self.store.add_epoch(self.point, ep):
            self.counters.epochs += 1
            self.counters.last_epoch_gps = t
            if self.on_epoch is not None:
                self.on_epoch(t)
        else:
            self.counters.epochs_dropped += 1

    # -- ephemerides and stations ---------------------------------------------------------

    def _ephemeris(self, e: Ephemeris) -> None:
        ref_week = int((self._ref if self._ref is not None else self.clock()) // WEEK_S)
        if e.sys == "R":
            if self._ref is None:
                self._pending_eph.append(e)
                return
            utc = obs.GNSSTime.from_seconds(self._ref).to_utc()
            eph: obs.Ephemeris = glonass_ephemeris(e, utc)
        else:
            k = kepler_ephemeris(e, ref_week)
            eph = k
            if self._time_provisional() and e.sys in "GCE":
                self._set_time(k.toe_time.to_scale("GPST").gps_seconds, "ephemeris")
        self.counters.ephemerides += 1
        self.store.add_ephemeris(self.point, eph)

    def _station(self, st: Station) -> None:
        self.counters.stations += 1
        old = self.station
        self.station = st
        if old is None or (old.x, old.y, old.z, old.height) != (st.x, st.y, st.z, st.height):
            header = obs.ObsHeader(marker_name=self.point, approx_xyz=(st.x, st.y, st.z),
                                   antenna_delta_hen=(st.height or 0.0, 0.0, 0.0))
            self.store.set_header(self.point, header)
            log.info("gnss_station_position", stream=self.name, point=self.point,
                     x=st.x, y=st.y, z=st.z, height=st.height)
