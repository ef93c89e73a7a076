"""RTK receiver reporting NMEA 0183 (GGA, GST, RMC, ZDA) on a serial port.

Each poll reads what the receiver has sent since the previous poll (``in_waiting`` bytes,
at most ``max_read``), frames and checks the sentences (a partial sentence waits for the
next poll; a bad checksum is counted and skipped) and reports the latest state:

* ``latitude`` / ``longitude`` (deg), ``height`` (m, ellipsoidal = GGA altitude + geoid
  separation), ``fix_quality`` (GGA: 0 none, 1 single, 2 DGNSS, 4 RTK fixed, 5 RTK float),
  ``satellites``, ``age_of_corrections`` (s);
* ``sigma_lat`` / ``sigma_lon`` / ``sigma_h`` (m) from the latest GST;
* ``east`` / ``north`` / ``up`` (mm): the latest RTK-*fixed* position of this poll from the
  configured reference point (WGS84; missing when no reference or no fixed epoch).

Quality: RTK fixed is ``good``; float, single and DGNSS are ``suspect`` (flag names the
fix); no fix is ``bad``. Nothing received, or no complete GGA yet (a sentence split at the
poll boundary waits for the next poll), raises :class:`~daq.errors.NoResponse`; bytes with
damaged sentences (checksum, format) and no valid GGA raise
:class:`~daq.errors.ProtocolError`. :attr:`NmeaDriver.fixes`
keeps the last ``keep_fixes`` GGA epochs' ENU offsets (compact columns: 13 bytes an epoch,
:class:`FixColumns`); at the first GGA of a new session window (``session``,
default 4 h, aligned to UTC midnight) the finished session's statistics over its RTK-fixed
epochs (:func:`daq.gnss.solver.receiver_rtk.session_stats`: robust mean, σ, spread in mm, fixed
ratio) are returned as result-lane values on topic ``gnss/{device}``; a session with too
few fixed epochs is published ``bad``, never as millimetres: fewer than ``min_fixed_ratio``
of the epochs received, or of the epochs the session should hold at the GGA rate (a
session joined near its end, flag ``partial_session``).
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable, Iterator
from itertools import pairwise
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import NoResponse, ProtocolError
from daq.gnss.solver.receiver_rtk import EnuFix, enu_offset, session_stats
from daq.gnss.streams import nmea
from daq.gnss.streams.stream import GnssStream
from daq.model import ChannelValue, Lane, Quality
from daq.schema import Field, Schema

REFERENCE = Schema({
    "lat": Field("float", required=True, min=-90.0, max=90.0, doc="deg, WGS84"),
    "lon": Field("float", required=True, min=-180.0, max=180.0, doc="deg, WGS84"),
    "height": Field("float", required=True, doc="m above the WGS84 ellipsoid"),
})
OPTIONS = Schema({
    "reference": Field(REFERENCE, doc="point the ENU offsets are measured from"),
    "max_read": Field("int", default=65536, min=128, doc="bytes read per poll at most"),
    "keep_fixes": Field("int", default=86400, min=0, doc="GGA epochs kept for sessions"),
    "session": Field("duration", default=14400.0, min=60, max=86400,
                     doc="session length, aligned to UTC midnight (must divide 24 h)"),
    "min_fixed_ratio": Field("float", default=0.5, min=0, max=1,
                             doc="a session with fewer RTK-fixed epochs is published bad"),
})

_FIX_FLAGS = {0: "no_fix", 1: "single", 2: "dgnss", 3: "pps", 5: "rtk_float",
              6: "dead_reckoning", 7: "manual", 8: "simulation"}
_POSITION = [("latitude", "latitude", "deg"), ("longitude", "longitude", "deg"),
             ("height", "ellipsoidal_height", "m"), ("fix_quality", "gnss_fix_quality", ""),
             ("satellites", "satellites_used", "count"),
             ("age_of_corrections", "correction_age", "s")]
_SIGMA = [("sigma_lat", "position_sigma_north", "m"), ("sigma_lon", "position_sigma_east", "m"),
          ("sigma_h", "position_sigma_up", "m")]
_ENU = [("east", "displacement_east", "mm"), ("north", "displacement_north", "mm"),
        ("up", "displacement_up", "mm")]


class FixColumns:
    """GGA epochs as columns: the fix quality (1 byte) and the ENU offset (m); iterated,
    :class:`EnuFix` items (what ``session_stats`` takes).

    ``typecode`` ``"d"`` keeps the offsets exactly (8 bytes each: a session's epochs, whose
    statistics are published); ``"f"`` in 4 bytes (the day's history ``fixes``: within
    0.25 µm for offsets under 4 m, 1 µm under 16 m, far below GGA's 0.19-mm quantum at 7
    decimals of arc-minutes). ``keep``: only the last so many are kept (None: all); the
    dropped head is cut off in blocks, so an append costs O(1) on average.
    A day at 1 Hz: 86,400 epochs in 1.1 MB (as :class:`EnuFix` objects: 11 MB)."""

    def __init__(self, typecode: str = "d", keep: int | None = None) -> None:
        self.quality = array("B")
        self.e: array[float] = array(typecode)
        self.n: array[float] = array(typecode)
        self.u: array[float] = array(typecode)
        self.keep = keep
        self._start = 0  # the epochs before this index are dropped, not yet cut off

    def append(self, fix: EnuFix) -> None:
        self.quality.append(min(max(fix.quality, 0), 255))
        self.e.append(fix.e)
        self.n.append(fix.n)
        self.u.append(fix.u)
        if self.keep is not None and len(self) > self.keep:
            self._start = len(self.quality) - self.keep
            if self._start >= max(1024, self.keep // 8):
                for col in (self.quality, self.e, self.n, self.u):
                    del col[:self._start]
                self._start = 0

    def __len__(self) -> int:
        return len(self.quality) - self._start

    def __iter__(self) -> Iterator[EnuFix]:
        q, e, n, u = self.quality, self.e, self.n, self.u
        for i in range(self._start, len(q)):
            yield EnuFix(q[i], e[i], n[i], u[i])

    def nbytes(self) -> int:
        """Bytes the columns hold (their allocation, the head not yet cut off included)."""
        return sum(c.buffer_info()[1] * c.itemsize
                   for c in (self.quality, self.e, self.n, self.u))


class NmeaDriver(Driver):
    """GGA/GST/RMC/ZDA from an RTK receiver → position, fix, σ and ENU offsets (mm)."""

    link_kind: ClassVar[str] = "serial"
    options_schema: ClassVar[Schema] = OPTIONS
    description: ClassVar[str] = "RTK GNSS receiver, NMEA 0183 GGA/GST (receiver RTK mode)"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        self.session = float(options.get("session", 14400.0))
        if 86400 % self.session:
            from daq.errors import ConfigError, ConfigProblem

            raise ConfigError([ConfigProblem("session", "must divide 24 h (e.g. 1h, 2h, 4h)")])
        self.min_fixed_ratio = float(options.get("min_fixed_ratio", 0.5))
        self.window: int | None = None  # index of the current session in the UTC day
        self.session_fixes = FixColumns("d")
        self.session_times = array("d")   # GGA times (s of the UTC day) of those
        ref = options.get("reference")
        self.reference = (ref["lat"], ref["lon"], ref["height"]) if ref else None
        self.max_read = int(options.get("max_read", 65536))
        self.keep_fixes = int(options.get("keep_fixes", 86400))
        self.stream = GnssStream()
        self.fixes = FixColumns("f", keep=self.keep_fixes)
        self.gga: nmea.Gga | None = None
        self.gst: nmea.Gst | None = None
        self.rmc: nmea.Rmc | None = None
        self.zda: nmea.Zda | None = None

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(n, q, u) for n, q, u in _POSITION + _SIGMA + _ENU]

    def poll(self, link: Any) -> list[ChannelValue]:
        waiting = int(getattr(link, "in_waiting", 0) or 0)
        data = link.read(min(waiting, self.max_read)) if waiting else b""
        if not data:
            raise NoResponse("no NMEA data since the previous poll", device=self.name)
        return self.feed(data)

    def feed(self, data: bytes) -> list[ChannelValue]:
        """Decode received bytes and report (the pure part of ``poll``)."""
        fixed_enu: tuple[float, float, float] | None = None
        got_gga = False
        closed: list[ChannelValue] = []
        rejected_before = sum(self.stream.framer.rejected.values())
        errors_before = sum(self.stream.decode_errors.values())
        for _frame, rec in self.stream.feed(data):
            if isinstance(rec, nmea.Gga):
                got_gga = True
                self.gga = rec
                closed += self._session_turn(rec)
                enu = self._enu(rec)
                if enu is not None:
                    fix = EnuFix(rec.quality, *enu)
                    self.fixes.append(fix)
                    if rec.time is not None:  # an epoch without a time has no session
                        self.session_fixes.append(fix)
                        self.session_times.append(rec.time)
                    if rec.quality == nmea.RTK_FIXED:
                        fixed_enu = enu
            elif isinstance(rec, nmea.Gst):
                self.gst = rec
            elif isinstance(rec, nmea.Rmc):
                self.rmc = rec
            elif isinstance(rec, nmea.Zda):
                self.zda = rec
        if not got_gga or self.gga is None:
            damaged = (sum(self.stream.framer.rejected.values()) - rejected_before
                       + sum(self.stream.decode_errors.values()) - errors_before)
            if damaged:
                raise ProtocolError(f"no valid GGA since the previous poll ({damaged} damaged "
                                    "sentences)", device=self.name, data=data[-256:])
            raise NoResponse("no complete GGA since the previous poll", device=self.name)
        return self._values(self.gga, fixed_enu) + closed

    def _session_turn(self, g: nmea.Gga) -> list[ChannelValue]:
        """At the first GGA of a new session window, the statistics of the one that ended."""
        if g.time is None:
            return []
        window = int(g.time // self.session)
        if self.window is None or window == self.window:
            self.window = window
            return []
        ended, fixes, times = self.window, self.session_fixes, self.session_times
        self.window = window
        self.session_fixes, self.session_times = FixColumns("d"), array("d")
        return self.session_values(ended, fixes, times)

    def session_values(self, window: int, fixes: Iterable[EnuFix],
                       times: Iterable[float] | None = None) -> list[ChannelValue]:
        """A finished session as result values (lane result, topic ``gnss/{device}``).

        ``times``: the GGA times of ``fixes``; with them, the fixed epochs must also be
        ``min_fixed_ratio`` of what the session holds at the GGA rate (median spacing)."""
        stats = session_stats(fixes)
        ok = stats.fixed > 0 and stats.fixed_ratio >= self.min_fixed_ratio
        partial = ok and times is not None and not self._whole(stats.fixed, times)
        ok = ok and not partial
        quality = Quality.GOOD if ok else Quality.BAD
        flags = (() if ok else ("partial_session",) if partial else
                 ("no_rtk_fix",) if not stats.fixed else ("few_rtk_fixed",))
        info = {"session_start_s": window * self.session, "session_s": self.session,
                "epochs": stats.epochs, "fixed": stats.fixed,
                "fixed_ratio": round(stats.fixed_ratio, 4)}
        out = [ChannelValue("session.fixed_ratio", stats.fixed_ratio, "1", Quality.GOOD,
                            "rtk_fixed_ratio", (), info, Lane.RESULT, f"gnss/{self.name}")]
        for axis, comp in (("east", stats.e), ("north", stats.n), ("up", stats.u)):
            parts = (("", None if comp is None else comp.mean),
                     ("_sigma", None if comp is None else comp.sigma),
                     ("_spread", None if comp is None else comp.spread))
            for what, value in parts:
                name = f"session.{axis}{what}"
                if value is None or not ok:
                    out.append(ChannelValue(name, None, "mm", Quality.BAD if stats.epochs
                                            else Quality.MISSING, f"displacement_{axis}{what}",
                                            flags, info, Lane.RESULT, f"gnss/{self.name}"))
                else:
                    out.append(ChannelValue(name, value * 1000.0, "mm", quality,
                                            f"displacement_{axis}{what}", flags, info,
                                            Lane.RESULT, f"gnss/{self.name}"))
        return out

    def _whole(self, fixed: int, times: Iterable[float]) -> bool:
        """Enough fixed epochs for the session's length at the receiver's GGA rate."""
        if self.min_fixed_ratio == 0:
            return True
        steps = [b - a for a, b in pairwise(times) if b > a]
        if not steps:
            return False                    # one instant of a session is not a session
        expected = self.session / statistics.median(steps)
        return fixed >= self.min_fixed_ratio * expected

    def _enu(self, g: nmea.Gga) -> tuple[float, float, float] | None:
        if self.reference is None or g.lat is None or g.lon is None or g.height is None:
            return None
        return enu_offset(g.lat, g.lon, g.height, self.reference)

    def _values(self, g: nmea.Gga, enu: tuple[float, float, float] | None
                ) -> list[ChannelValue]:
        flags: tuple[str, ...] = ()
        if g.quality == nmea.RTK_FIXED:
            quality = Quality.GOOD
        elif g.quality == 0:
            quality, flags = Quality.BAD, ("no_fix",)
        else:
            quality, flags = Quality.SUSPECT, (_FIX_FLAGS.get(g.quality, "unknown_fix"),)
        raw = {"fix_quality": g.quality, "time": g.time, "talker": g.talker}
        pos = [g.lat, g.lon, g.height, float(g.quality),
               None if g.satellites is None else float(g.satellites), g.age]
        out = [self._value(n, q, u, v, quality, flags, raw)
               for (n, q, u), v in zip(_POSITION[:3], pos[:3], strict=True)]
        out += [ChannelValue(n, v, u, Quality.GOOD if v is not None else Quality.MISSING, q)
                for (n, q, u), v in zip(_POSITION[3:], pos[3:], strict=True)]
        s = self.gst
        sig = [s.sigma_lat, s.sigma_lon, s.sigma_h] if s else [None, None, None]
        out += [self._value(n, q, u, v, Quality.GOOD, (), None)
                for (n, q, u), v in zip(_SIGMA, sig, strict=True)]
        if enu is None:
            why = "no_reference" if self.reference is None else "no_rtk_fix"
            out += [ChannelValue(n, None, u, Quality.MISSING, q, (why,)) for n, q, u in _ENU]
        else:
            out += [ChannelValue(n, v * 1000.0, u, Quality.GOOD, q)
                    for (n, q, u), v in zip(_ENU, enu, strict=True)]
        return out

    @staticmethod
    def _value(name: str, quantity: str, unit: str, value: float | None, quality: Quality,
               flags: tuple[str, ...], raw: dict[str, Any] | None) -> ChannelValue:
        if value is None:
            return ChannelValue(name, None, unit, Quality.MISSING, quantity, flags, raw)
        return ChannelValue(name, value, unit, quality, quantity, flags, raw)
