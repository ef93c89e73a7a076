"""RINEX 3.04 export of observations and of mixed navigation data (readable by RTKLIB).

``obs_to_text`` / ``nav_to_text`` build the file text (sans-I/O); ``write_obs`` /
``write_nav`` save it. Numbers are written with the precision RINEX defines (F14.3 for
observations, D19.12 for navigation), which reproduces every value read from a RINEX file
exactly. A value too large for its field is written blank and counted in the return value
of :func:`obs_to_text` (``ExportStats``).
"""

from __future__ import annotations

import datetime as dt
import math
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
    """Codes to write per system: the header's list, or the codes seen in the epochs."""
    present: dict[str, set[str]] = {}
    for ep in data.epochs:
        if not ep.sats:
            continue
        seen = ~np.isnan(ep.values)
        for i, sat in enumerate(ep.sats):
            present.setdefault(sat[0], set()).update(
                c for c, ok in zip(ep.codes, seen[i], strict=True) if ok)
    order = data.epochs[0].codes if data.epochs else ()
    out: dict[str, tuple[str, ...]] = {}
    for sys_ in sorted(present, key="GRECJSI".find):
        listed = data.header.obs_types.get(sys_)
        out[sys_] = listed if listed else tuple(c for c in order if c in present[sys_])
    return out


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


def _epoch_lines(ep: ObsEpoch, types: dict[str, tuple[str, ...]], st: ExportStats) -> list[str]:
    y, mo, d, hh, mi, s = _calendar(ep.time.to_scale("GPST"))
    head = f"> {y:4d} {mo:02d} {d:02d} {hh:02d} {mi:02d} {s:010.7f}  {ep.flag:1d}"
    if ep.flag in (2, 3, 4, 5):
        ev = [ln for ln in ep.event_lines if ep.flag != 4 or ln[60:].strip() == "COMMENT"]
        return [f"{head}{len(ev):3d}", *ev]
    col = {c: j for j, c in enumerate(ep.codes)}
    recs = []
    for i, sat in enumerate(ep.sats):
        codes = types.get(sat[0])
        if not codes:
            continue
        parts = [sat]
        for c in codes:
            j = col.get(c)
            if j is None:
                parts.append(" " * 16)
                continue
            v = ep.values[i, j]
            txt = f"{v:14.3f}" if not math.isnan(v) else " " * 14
            if len(txt) > 14:
                st.overflow += 1
                txt = " " * 14
            # LLI and SSI are kept even beside a blank value (receivers write them so)
            li, si = int(ep.lli[i, j]), int(ep.ssi[i, j])
            parts.append(txt + (str(li) if li else " ") + (str(si) if si else " "))
        recs.append("".join(parts).rstrip())
    clock = f"{'':6}{ep.clock_offset:15.12f}" if ep.clock_offset is not None else ""
    st.records += len(recs)
    return [f"{head}{len(recs):3d}{clock}", *recs]


def obs_to_text(data: ObsData) -> tuple[str, ExportStats]:
    """The RINEX 3.04 observation file text for ``data`` and what was written."""
    types = observed_types(data)
    st = ExportStats()
    lines = _obs_header(data, types)
    for ep in data.epochs:
        lines += _epoch_lines(ep, types, st)
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
