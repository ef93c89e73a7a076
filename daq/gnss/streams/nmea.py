"""NMEA 0183 sentences an RTK receiver reports: GGA, GST, RMC, ZDA.

Input is one checked sentence from :mod:`daq.gnss.streams.framing` (``$`` to the checksum
digits). Any talker is accepted (GP, GN, BD, GB, GA, GL …). Empty fields decode to None;
a field that is present but malformed raises :class:`~daq.gnss.streams.bits.DecodeError`
(reason ``nmea_field``), which the stream decoder counts.

Units: latitude/longitude in decimal degrees (north, east positive), heights in m, time of
day in seconds since 00:00 UTC, σ in m, age of corrections in s. GGA ``quality``:
0 invalid, 1 GNSS, 2 DGNSS, 4 RTK fixed, 5 RTK float, 6 dead reckoning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .bits import DecodeError
from .records import Unsupported

RTK_FIXED, RTK_FLOAT = 4, 5


@dataclass(frozen=True, slots=True)
class Gga:
    talker: str
    time: float | None          # s of the UTC day
    lat: float | None           # deg
    lon: float | None           # deg
    quality: int
    satellites: int | None
    hdop: float | None
    alt_msl: float | None       # m above mean sea level (geoid)
    geoid_sep: float | None     # m, geoid above ellipsoid
    age: float | None           # s since the last differential correction
    station: str | None

    @property
    def height(self) -> float | None:
        """Ellipsoidal height (m): MSL altitude + geoid separation."""
        if self.alt_msl is None:
            return None
        return self.alt_msl + (self.geoid_sep or 0.0)


@dataclass(frozen=True, slots=True)
class Gst:
    talker: str
    time: float | None
    rms: float | None
    sigma_major: float | None
    sigma_minor: float | None
    orientation: float | None   # deg from true north
    sigma_lat: float | None     # m
    sigma_lon: float | None     # m
    sigma_h: float | None       # m


@dataclass(frozen=True, slots=True)
class Rmc:
    talker: str
    time: float | None
    valid: bool
    lat: float | None
    lon: float | None
    speed_knots: float | None
    course: float | None
    date: tuple[int, int, int] | None   # (year, month, day)
    mode: str | None                    # A D F R E N (NMEA 2.3+)


@dataclass(frozen=True, slots=True)
class Zda:
    talker: str
    time: float | None
    date: tuple[int, int, int] | None


def _f(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DecodeError("nmea_field", f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DecodeError("nmea_field", f"not a finite number: {text!r}")
    return value


def _i(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise DecodeError("nmea_field", f"not an integer: {text!r}") from None


def _time(text: str) -> float | None:
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise DecodeError("nmea_field", f"bad time {text!r}")
    h, m, s = int(text[:2]), int(text[2:4]), _f(text[4:]) or 0.0
    if h > 23 or m > 59 or s >= 61:
        raise DecodeError("nmea_field", f"bad time {text!r}")
    return h * 3600.0 + m * 60.0 + s


def _angle(text: str, hemi: str, deg_digits: int) -> float | None:
    if not text:
        return None
    if hemi not in ("N", "S", "E", "W") or len(text) < deg_digits + 2:
        raise DecodeError("nmea_field", f"bad coordinate {text!r}{hemi}")
    deg = _i(text[:deg_digits]) or 0
    minutes = _f(text[deg_digits:]) or 0.0
    if minutes >= 60.0 or deg > (90 if deg_digits == 2 else 180):
        raise DecodeError("nmea_field", f"bad coordinate {text!r}{hemi}")
    value = deg + minutes / 60.0
    return -value if hemi in ("S", "W") else value


def _need(fields: list[str], n: int, sid: str) -> None:
    if len(fields) < n:
        raise DecodeError("nmea_short", f"{sid} with {len(fields)} fields, needs {n}")


def decode(sentence: bytes) -> Any:
    """Decode ``$ttSSS,…*hh`` into Gga / Gst / Rmc / Zda, or Unsupported."""
    text = sentence.decode("ascii", "replace")
    body = text[1:text.rindex("*")] if "*" in text else text[1:]
    fields = body.split(",")
    sid = fields[0]
    kind = sid[2:] if len(sid) == 5 else sid
    talker = sid[:2]
    f = fields[1:]
    if kind == "GGA":
        _need(f, 14, sid)
        return Gga(talker, _time(f[0]), _angle(f[1], f[2], 2), _angle(f[3], f[4], 3),
                   _i(f[5]) or 0, _i(f[6]), _f(f[7]), _f(f[8]), _f(f[10]), _f(f[12]),
                   f[13] or None)
    if kind == "GST":
        _need(f, 8, sid)
        return Gst(talker, _time(f[0]), *(_f(x) for x in f[1:8]))
    if kind == "RMC":
        _need(f, 9, sid)
        return Rmc(talker, _time(f[0]), f[1] == "A", _angle(f[2], f[3], 2),
                   _angle(f[4], f[5], 3), _f(f[6]), _f(f[7]), _ddmmyy(f[8]),
                   f[11] if len(f) > 11 and f[11] else None)
    if kind == "ZDA":
        _need(f, 4, sid)
        day, month, year = _i(f[1]), _i(f[2]), _i(f[3])
        if not (day and month and year):
            return Zda(talker, _time(f[0]), None)
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise DecodeError("nmea_field", f"bad date {f[1:4]}")
        return Zda(talker, _time(f[0]), (year, month, day))
    return Unsupported("nmea", sid)


def _ddmmyy(text: str) -> tuple[int, int, int] | None:
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise DecodeError("nmea_field", f"bad date {text!r}")
    day, month, yy = int(text[:2]), int(text[2:4]), int(text[4:])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise DecodeError("nmea_field", f"bad date {text!r}")
    return (2000 + yy if yy < 80 else 1900 + yy, month, day)
