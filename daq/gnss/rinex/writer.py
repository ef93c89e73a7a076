"""RINEX 3.04 export of observations and of mixed navigation data (readable by RTKLIB).

``obs_to_text`` / ``nav_to_text`` build the file text (sans-I/O); ``write_obs`` /
``write_nav`` save it. Numbers are written with the precision RINEX defines (F14.3 for
observations, D19.12 for navigation), which reproduces every value read from a RINEX file
exactly. A value too large for its field is written blank and counted in the return value
of :func:`obs_to_text` (``ExportStats``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daq.gnss.obs import (
    GPS_EPOCH,
    GlonassEphemeris,
    GNSSTime,
    KeplerEphemeris,
    NavData,
    ObsData,
    ObsEpoch,
)

from .obs_format import format_records

VERSION = 3.04
PROGRAM = "damwatch-daq"


@dataclass
class ExportStats:
    """What an export wrote: epochs, satellite records, blanks forced by overflow."""

    epochs: int = 0
    records: int = 0
    overflow: int = 0


def _line(body: str, label: str) -> str:
    return f"{body:<60.60}{label:<20}"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d %H%M%S UTC")


def _calendar(t: GNSSTime) -> tuple[int, int, int, int, int, float]:
    """Calendar fields in the time's own scale, seconds rounded to 0.1 µs."""
    sow = round(t.sow, 7)
    days, sod = divmod(sow, 86400.0)
    base = GPS_EPOCH if t.scale != "BDT" else dt.datetime(2006, 1, 1)
    date = base + dt.timedelta(days=t.week * 7 + int(days))
    hour, rem = divmod(sod, 3600.0)
    minute, sec = divmod(rem, 60.0)
    return date.year, date.month, date.day, int(hour), int(minute), sec


def observed_types(data: ObsData) -> dict[str, tuple[str, ...]]:
    """Codes to write per system: the header's list, or (for a system the header does not
    list, e.g. epochs from a decoder) the codes that have a value in some epoch."""
    systems: set[str] = set()
    seen: dict[str, set[str]] = {}
    listed = data.header.obs_types
    for ep in data.epochs:
        first = {s[0] for s in ep.sats}
        systems |= first
        for sys_ in first - listed.keys():
            rows = [i for i, s in enumerate(ep.sats) if s[0] == sys_]
            has = ~np.isnan(ep.values[rows]).all(axis=0)
            seen.setdefault(sys_, set()).update(c for c, h in zip(ep.codes, has, strict=True)
                                                if h)
    order = tuple(dict.fromkeys(c for ep in data.epochs for c in ep.codes)) if seen else ()
    return {sys_: listed.get(sys_) or tuple(c for c in order if c in seen.get(sys_, ()))
            for sys_ in sorted(systems, key="GRECJSI".find)}


def _obs_header(data: ObsData, types: dict[str, tuple[str, ...]]) -> list[str]:
    h = data.header
    out = [_line(f"{VERSION:9.2f}{'':11}{'OBSERVATION DATA':<20}{'M: Mixed':<20}",
                 "RINEX VERSION / TYPE"),
           _line(f"{PROGRAM:<20}{'':<20}{_stamp():<20}", "PGM / RUN BY / DATE")]
    out += [_line(c, "COMMENT") for c in h.comments]
    out.append(_line(h.marker_name, "MARKER NAME"))
    if h.marker_number:
        out.append(_line(h.marker_number, "MARKER NUMBER"))
    out.append(_line("", "OBSERVER / AGENCY"))
    out.append(_line("".join(f"{x:<20.20}" for x in h.receiver), "REC # / TYPE / VERS"))
    out.append(_line("".join(f"{x:<20.20}" for x in h.antenna), "ANT # / TYPE"))
    out.append(_line("".join(f"{x:14.4f}" for x in h.approx_xyz), "APPROX POSITION XYZ"))
    out.append(_line("".join(f"{x:14.4f}" for x in h.antenna_delta_hen),
                     "ANTENNA: DELTA H/E/N"))
    for sys_, codes in types.items():
        for k in range(0, max(len(codes), 1), 13):
            head = f"{sys_}  {len(codes):3d}" if k == 0 else " " * 6
            out.append(_line(head + "".join(f" {c:<3}" for c in codes[k:k + 13]),
                             "SYS / # / OBS TYPES"))
    if h.interval:
        out.append(_line(f"{h.interval:10.3f}", "INTERVAL"))
    first = h.time_of_first or next((e.time for e in data.epochs if e.sats), None)
    if first is not None:
        y, mo, d, hh, mi, s = _calendar(first.to_scale("GPST"))
        out.append(_line(f"{y:6d}{mo:6d}{d:6d}{hh:6d}{mi:6d}{s:13.7f}     GPS",
                         "TIME OF FIRST OBS"))
    out += [_line(p, "SYS / PHASE SHIFT") for p in h.phase_shifts]
    if "R" in types:
        slots = sorted(h.glonass_slots.items())
        for k in range(0, max(len(slots), 1), 8):
            head = f"{len(slots):3d} " if k == 0 else " " * 4
            cells = "".join(f"{s} {n:2d} " for s, n in slots[k:k + 8])
            out.append(_line(head + cells, "GLONASS SLOT / FRQ #"))
        out.append(_line(h.glonass_cod_phs_bis, "GLONASS COD/PHS/BIS"))
    if h.leap_seconds is not None:
        out.append(_line(f"{h.leap_seconds:6d}", "LEAP SECONDS"))
    out.append(_line("", "END OF HEADER"))
    return out


def _epoch_head(ep: ObsEpoch) -> str:
    y, mo, d, hh, mi, s = _calendar(ep.time.to_scale("GPST"))
    return f"> {y:4d} {mo:02d} {d:02d} {hh:02d} {mi:02d} {s:010.7f}  {ep.flag:1d}"


def obs_to_text(data: ObsData) -> tuple[str, ExportStats]:
    """The RINEX 3.04 observation file text for ``data`` and what was written."""
    types = observed_types(data)
    records, overflow = format_records(data.epochs, types)
    st = ExportStats(overflow=overflow)
    lines = _obs_header(data, types)
    for ep, recs in zip(data.epochs, records, strict=True):
        head = _epoch_head(ep)
        if ep.flag in (2, 3, 4, 5):  # header events: keep comments only (types are fixed)
            ev = [ln for ln in ep.event_lines
                  if ep.flag != 4 or ln[60:].strip() == "COMMENT"]
            lines += [f"{head}{len(ev):3d}", *ev]
        else:
            clock = f"{'':6}{ep.clock_offset:15.12f}" if ep.clock_offset is not None else ""
            lines.append(f"{head}{len(recs):3d}{clock}")
            lines += recs
            st.records += len(recs)
        st.epochs += 1
    return "\n".join(lines) + "\n", st


def write_obs(data: ObsData, path: str | Path) -> ExportStats:
    """Write ``data`` as a RINEX 3.04 observation file."""
    text, st = obs_to_text(data)
    Path(path).write_text(text, "ascii", errors="replace")
    return st


def _d19(x: float) -> str:
    return f"{x:19.12E}"


def _kepler_values(e: KeplerEphemeris) -> list[float]:
    sys_ = e.system
    x6 = e.iodc if sys_ in "GJ" else e.tgd2 if sys_ in "CE" else 0.0
    y7 = e.iodc if sys_ == "C" else e.fit
    return [e.af0, e.af1, e.af2, e.iode, e.crs, e.deltan, e.m0, e.cuc, e.e, e.cus, e.sqrta,
            e.toe, e.cic, e.omega0, e.cis, e.i0, e.crc, e.omega, e.omegadot, e.idot,
            e.codes, float(e.week), e.l2p_flag, e.sva, e.svh, e.tgd, x6, e.ttr, y7]


def _nav_record(sat: str, cal: dt.datetime, values: list[float]) -> list[str]:
    head = f"{sat} {cal:%Y %m %d %H %M %S}" + "".join(_d19(v) for v in values[:3])
    rest = values[3:]
    return [head] + ["    " + "".join(_d19(v) for v in rest[k:k + 4])
                     for k in range(0, len(rest), 4)]


def nav_to_text(nav: NavData) -> str:
    """The RINEX 3.04 mixed navigation file text for ``nav``."""
    out = [_line(f"{VERSION:9.2f}{'':11}{'N: GNSS NAV DATA':<20}{'M: Mixed':<20}",
                 "RINEX VERSION / TYPE"),
           _line(f"{PROGRAM:<20}{'':<20}{_stamp():<20}", "PGM / RUN BY / DATE")]
    for key, coef in nav.ionospheric.items():
        out.append(_line(f"{key:<4} " + "".join(f"{c:12.4E}" for c in coef),
                         "IONOSPHERIC CORR"))
    out += [_line(t, "TIME SYSTEM CORR") for t in nav.time_corrections
            if t[:4] in ("GPUT", "GAUT", "GAGP", "BDUT", "GLUT", "GLGP", "QZUT", "QZGP",
                         "SBUT", "IRUT", "IRGP", "BDGP")]
    if nav.leap_seconds is not None:
        out.append(_line(f"{nav.leap_seconds:6d}", "LEAP SECONDS"))
    out.append(_line("", "END OF HEADER"))
    for e in nav.ephemerides:
        if isinstance(e, KeplerEphemeris):
            out += _nav_record(e.sat, e.toc.to_calendar(), _kepler_values(e))
        else:
            out += _nav_record(e.sat, e.toc, _glonass_values(e))
    return "\n".join(out) + "\n"


def _glonass_values(e: GlonassEphemeris) -> list[float]:
    return [e.minus_taun, e.gamman, e.tk, e.x, e.vx, e.ax, e.health, e.y, e.vy, e.ay,
            float(e.k), e.z, e.vz, e.az, e.age]


def write_nav(nav: NavData, path: str | Path) -> int:
    """Write ``nav`` as a RINEX 3.04 mixed navigation file; returns records written."""
    Path(path).write_text(nav_to_text(nav), "ascii")
    return len(nav.ephemerides)
