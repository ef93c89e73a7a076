"""RINEX navigation import: 2.10/2.11 GPS (``N``) and GLONASS (``G``), 3.00–3.05 mixed.

Numbers may use ``D`` or ``E`` exponents and may be written without a leading digit
(``.712368637323D-05``); blank fields read as 0. Records are recognised by their first
line (RINEX 3: a system letter in column 1; RINEX 2: fixed line counts). A record that does
not decode is skipped and counted (``NavData.skipped``, reason in ``problems``).
Epochs (``toc``) stay in the system's own time scale: GPST, GST, BDT; GLONASS in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from daq.gnss.obs import (
    Ephemeris,
    GlonassEphemeris,
    GNSSTime,
    KeplerEphemeris,
    NavData,
    parse_sat,
)

_FIELD = 19  # width of one D19.12 number


def _num(text: str) -> float:
    text = text.strip().replace("D", "E").replace("d", "e")
    return float(text) if text else 0.0


def _values(first: str, rest: list[str], first_at: int, cont_at: int) -> list[float]:
    """All numbers of a record: three on the first line, four per continuation line."""
    out = [_num(first[first_at + _FIELD * k: first_at + _FIELD * (k + 1)]) for k in range(3)]
    for ln in rest:
        out += [_num(ln[cont_at + _FIELD * k: cont_at + _FIELD * (k + 1)]) for k in range(4)]
    return out


def toc_time(sat: str, cal: dt.datetime) -> GNSSTime:
    """A Keplerian record's toc as :class:`GNSSTime` in the satellite system's scale."""
    scale = {"E": "GST", "C": "BDT"}.get(sat[0], "GPST")
    return GNSSTime.from_calendar(cal, scale)


def _kepler(sat: str, cal: dt.datetime, v: list[float]) -> KeplerEphemeris:
    """Map the 31 numbers of a GPS/Galileo/BeiDou/QZSS/NavIC record to named fields."""
    if len(v) < 29:
        raise ValueError(f"{len(v)} numbers, need at least 29")
    v = v + [0.0] * (31 - len(v))
    sys_ = sat[0]
    x6, y7 = v[26], v[28]  # BO6 4th and BO7 2nd: meaning depends on the system
    iodc, tgd2, fit = (x6, 0.0, y7) if sys_ in "GJ" else (
        (y7, x6, 0.0) if sys_ == "C" else (0.0, x6, y7) if sys_ == "E" else (0.0, 0.0, y7))
    return KeplerEphemeris(
        sat=sat, toc=toc_time(sat, cal), af0=v[0], af1=v[1], af2=v[2],
        iode=v[3], crs=v[4], deltan=v[5], m0=v[6], cuc=v[7], e=v[8], cus=v[9], sqrta=v[10],
        toe=v[11], cic=v[12], omega0=v[13], cis=v[14], i0=v[15], crc=v[16], omega=v[17],
        omegadot=v[18], idot=v[19], codes=v[20], week=int(v[21]), l2p_flag=v[22],
        sva=v[23], svh=v[24], tgd=v[25], tgd2=tgd2, iodc=iodc, ttr=v[27], fit=fit)


def _glonass(sat: str, cal: dt.datetime, v: list[float]) -> GlonassEphemeris:
    if len(v) < 15:
        raise ValueError(f"{len(v)} numbers, need 15")
    return GlonassEphemeris(
        sat=sat, toc=cal, minus_taun=v[0], gamman=v[1], tk=v[2], x=v[3], vx=v[4], ax=v[5],
        health=v[6], y=v[7], vy=v[8], ay=v[9], k=int(v[10]), z=v[11], vz=v[12], az=v[13],
        age=v[14], extra=tuple(v[15:19]) if len(v) > 15 and any(v[15:19]) else ())


def _header(nav: NavData, lines: list[str]) -> tuple[int, str]:
    """Parse the header; returns the first data line index and the file type letter."""
    ftype = "N"
    for i, raw in enumerate(lines):
        line = raw.ljust(80)
        label, body = line[60:80].strip(), line[:60]
        if label == "END OF HEADER":
            return i + 1, ftype
        try:
            ftype = _header_line(nav, label, body, ftype)
        except (ValueError, IndexError) as err:
            nav.problems.append(f"line {i + 1}: {label or 'header line'} not understood ({err})")
    raise ValueError("no END OF HEADER: not a RINEX navigation file")


def _header_line(nav: NavData, label: str, body: str, ftype: str) -> str:
    """Apply one header line; returns the (possibly updated) file type letter."""
    if label == "RINEX VERSION / TYPE":
        nav.version = _num(body[:9])
        ftype = body[20:21].upper()
        if nav.version >= 3 and ftype == "N":
            ftype = body[40:41].upper() or "M"
    elif label == "IONOSPHERIC CORR":
        key = body[:4].strip()
        nav.ionospheric[key] = tuple(_num(body[5 + 12 * k: 17 + 12 * k]) for k in range(4))
    elif label in ("ION ALPHA", "ION BETA"):
        key = "GPSA" if label == "ION ALPHA" else "GPSB"
        nav.ionospheric[key] = tuple(_num(body[2 + 12 * k: 14 + 12 * k]) for k in range(4))
    elif label in ("TIME SYSTEM CORR", "DELTA-UTC: A0,A1,T,W", "CORR TO SYSTEM TIME"):
        nav.time_corrections += (body.rstrip(),)
    elif label == "LEAP SECONDS":
        nav.leap_seconds = int(_num(body[:6]))
    return ftype


def _record_v3(first: str, rest: list[str]) -> Ephemeris | None:
    sat = parse_sat(first[:3])
    f = first[4:23].split()
    cal = dt.datetime(int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[5]))
    v = _values(first, rest, 23, 4)
    if sat[0] in "RS":
        return _glonass(sat, cal, v) if sat[0] == "R" else None
    return _kepler(sat, cal, v)


def _record_v2(first: str, rest: list[str], system: str) -> Ephemeris:
    sat = parse_sat(first[:2], system)
    yy = int(first[2:5])
    f = first[5:22].split()
    sec = float(f[4])
    cal = dt.datetime(yy + (1900 if yy >= 80 else 2000), int(f[0]), int(f[1]), int(f[2]),
                      int(f[3]), int(sec), round((sec % 1) * 1e6))
    v = _values(first, rest, 22, 3)
    if system != "R":
        return _kepler(sat, cal, v)
    # RINEX 2 gives tk in seconds of the UTC day, RINEX 3 in seconds of the UTC week
    toc_sow = ((cal.weekday() + 1) % 7) * 86400 + cal.hour * 3600 + cal.minute * 60
    tk = (toc_sow // 86400) * 86400 + v[2]
    tk += 86400 if tk - toc_sow < -43200 else -86400 if tk - toc_sow > 43200 else 0
    v[2] = tk % 604800
    return _glonass(sat, cal, v)


def read_nav(source: str | Path | Iterable[str]) -> NavData:
    """Read a RINEX 2.1x (GPS or GLONASS) or 3.0x (any mix) navigation file."""
    lines = (Path(source).read_text("latin-1").splitlines()
             if isinstance(source, str | Path) else [ln.rstrip("\n") for ln in source])
    nav = NavData()
    i, ftype = _header(nav, lines)
    v2_system = {"N": "G", "G": "R", "H": "S"}.get(ftype, "G")
    while i < len(lines):
        first = lines[i].ljust(80)
        if not first.strip():
            i += 1
            continue
        j = i + 1
        if nav.version >= 3:
            while j < len(lines) and lines[j][:1] == " ":
                j += 1
        else:
            j = i + (8 if v2_system == "G" else 4)
        rest = [ln.ljust(80) for ln in lines[i + 1: j]]
        try:
            eph = _record_v3(first, rest) if nav.version >= 3 else _record_v2(
                first, rest, v2_system)
            if eph is None:
                nav.skipped += 1
                nav.problems.append(f"line {i + 1}: {first[:3]} record not supported, skipped")
            else:
                nav.ephemerides.append(eph)
        except (ValueError, IndexError) as err:
            nav.skipped += 1
            nav.problems.append(f"line {i + 1}: bad record skipped ({err})")
        i = j
    return nav


__all__ = ["read_nav", "toc_time"]
