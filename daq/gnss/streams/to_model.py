"""Decoded stream records → the shared GNSS data model (:mod:`daq.gnss.obs`).

- :class:`EpochAssembler` gathers the observation records of one epoch (RTCM MSM sends one
  message per system, with the "multiple message" bit set on all but the last; UBX RAWX is
  one message) into one dense :class:`daq.gnss.obs.ObsEpoch` in GPST, with RINEX codes
  ``C L D S`` + signal, LLI bit 0 = loss of lock, bit 1 = half-cycle unresolved.
  RTCM MSM carries no week number: the assembler takes it from ``week`` (set it from a
  UBX epoch, an ephemeris or the system clock).
- :func:`kepler_ephemeris` / :func:`glonass_ephemeris` convert RTCM 1019/1042/1045/1046 /
  1020 and UBX subframe ephemerides. Broadcast weeks are truncated (GPS 10 bits, Galileo
  12 bits): they are completed with the nearest full week to ``ref_week`` (GPS week).
  Galileo's week is written GPS-continuous as RINEX does (GST week + 1024).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from daq.gnss import obs

from .records import Ephemeris, ObsEpoch

# IS-GPS-200 §20.3.3.3.1.3 nominal URA: 2^(1 + N/2) for N ≤ 6, 2^(N − 2) above
_URA_M = [2.0, 2.8, 4.0, 5.7, 8.0, 11.3, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
          2048.0, 4096.0, 8192.0]


def ura_metres(index: float) -> float:
    """GPS/BeiDou URA index → nominal metres, as RINEX writers (convbin) record it."""
    return _URA_M[int(index) & 15]


def sisa_metres(index: float) -> float:
    """Galileo SISA index → metres (OS SIS ICD §5.1.12); 255 (no accuracy) → −1."""
    n = int(index)
    if n < 50:
        return n * 0.01
    if n < 75:
        return 0.5 + (n - 50) * 0.02
    if n < 100:
        return 1.0 + (n - 75) * 0.04
    if n < 126:
        return 2.0 + (n - 100) * 0.16
    return -1.0


def full_week(truncated: int, bits: int, ref_week: int) -> int:
    """Complete a broadcast week of ``bits`` bits with the one nearest ``ref_week``."""
    span = 1 << bits
    return truncated + span * round((ref_week - truncated) / span)


def kepler_ephemeris(e: Ephemeris, ref_week: int) -> obs.KeplerEphemeris:
    """RTCM 1019/1042/1045/1046 or UBX-subframe ephemeris → :class:`obs.KeplerEphemeris`.

    ``ref_week``: a GPS week near the ephemeris (from the observations or the clock).
    ``ttr`` (transmission time, unknown in these messages) is set to ``toe``.
    """
    f = e.fields
    if e.sys == "C":
        week = int(f["BDTWeek"])                       # 13 bits, BDT weeks, no rollover yet
        scale, iode, iodc, tgd, tgd2 = "BDT", f["AODE"], f["AODC"], f["TGD1"], f["TGD2"]
        sva, svh, codes, l2p, fit = ura_metres(f["SVacc"]), f["SatH1"], 0.0, 0.0, 0.0
    elif e.sys == "E":
        week = full_week(int(f["GALWeek"]), 12, ref_week - 1024) + 1024
        scale, iode, iodc, tgd = "GST", f["IODnav"], 0.0, f["BGDe5a"]
        tgd2 = f.get("BGDe5b", 0.0)
        sva, codes, l2p, fit = sisa_metres(f["SISA"]), f["DataSrc"], 0.0, 0.0
        svh = (f.get("E1BDVS", 0.0) + 2 * f.get("E1BHS", 0.0) + 8 * f.get("E5aDVS", 0.0)
               + 16 * f.get("E5aHS", 0.0) + 64 * f.get("E5bDVS", 0.0) + 128 * f.get("E5bHS", 0.0))
    else:
        week = full_week(int(f["GPSWeek"]), 10, ref_week)
        scale, iode, iodc, tgd, tgd2 = "GPST", f["IODE"], f["IODC"], f["TGD"], 0.0
        sva, svh, codes = ura_metres(f["SVacc"]), f["health"], f["CodesL2"]
        l2p, fit = f["L2Pflag"], f["FitIntvl"]
    toc_week = week + (1 if f["Toc"] - f["Toe"] < -302400 else
                       -1 if f["Toc"] - f["Toe"] > 302400 else 0)
    return obs.KeplerEphemeris(
        sat=obs.sat_id(e.sys, e.prn), toc=obs.GNSSTime(toc_week, f["Toc"], scale),
        af0=f["SVclockBias"], af1=f["SVclockDrift"], af2=f["SVclockDriftRate"], iode=iode,
        crs=f["Crs"], deltan=f["DeltaN"], m0=f["M0"], cuc=f["Cuc"], e=f["Eccentricity"],
        cus=f["Cus"], sqrta=f["sqrtA"], toe=f["Toe"], cic=f["Cic"], omega0=f["Omega0"],
        cis=f["Cis"], i0=f["Io"], crc=f["Crc"], omega=f["omega"], omegadot=f["OmegaDot"],
        idot=f["IDOT"], codes=codes, week=week, l2p_flag=l2p, sva=sva, svh=svh, tgd=tgd,
        tgd2=tgd2, iodc=iodc, ttr=f["Toe"], fit=fit)


def glonass_ephemeris(e: Ephemeris, utc_near: datetime) -> obs.GlonassEphemeris:
    """RTCM 1020 → :class:`obs.GlonassEphemeris` (km, km/s, km/s²; toc in UTC).

    1020 gives tb and tk as times of the Moscow day only; ``utc_near`` (a UTC instant
    within ±12 h of the ephemeris, e.g. the epoch being decoded) supplies the date.
    """
    f = e.fields
    toc = _utc_near(utc_near, f["tb"])
    tof = _utc_near(utc_near, f["MessageFrameTime"])
    sunday = datetime(tof.year, tof.month, tof.day) - timedelta(days=(tof.weekday() + 1) % 7)
    tk = (tof - sunday).total_seconds()          # s of the UTC week, as RINEX writes it
    return obs.GlonassEphemeris(
        sat=obs.sat_id("R", e.prn), toc=toc, minus_taun=f["SVclockBias"],
        gamman=f["SVrelFreqBias"], tk=tk,
        x=f["X"] / 1e3, vx=f["dX"] / 1e3, ax=f["dX2"] / 1e3, health=f["health"],
        y=f["Y"] / 1e3, vy=f["dY"] / 1e3, ay=f["dY2"] / 1e3, k=int(f["FreqNum"]),
        z=f["Z"] / 1e3, vz=f["dZ"] / 1e3, az=f["dZ2"] / 1e3, age=f["AgeOpInfo"])


def _utc_near(utc_near: datetime, msk_seconds_of_day: float) -> datetime:
    """The UTC instant nearest ``utc_near`` whose Moscow time of day is the one given."""
    utc_near = utc_near.replace(tzinfo=None)
    midnight = datetime(utc_near.year, utc_near.month, utc_near.day)
    t = midnight + timedelta(seconds=msk_seconds_of_day - 10800.0)
    shift = round((utc_near - t).total_seconds() / 86400.0)
    return t + timedelta(days=shift)


class EpochAssembler:
    """Collects observation records into whole epochs (sans-I/O: ``add`` returns epochs)."""

    def __init__(self, week: int | None = None) -> None:
        self.week = week            # GPS week for messages that carry none (RTCM MSM)
        self._tow: float | None = None
        self._parts: list[ObsEpoch] = []
        self.dropped = 0            # records without a usable time (counted, not fatal)

    def add(self, rec: ObsEpoch) -> list[obs.ObsEpoch]:
        if rec.week is not None:
            self.week = rec.week
        if rec.tow is None or self.week is None:
            self.dropped += 1
            return []
        out = []
        if self._tow is not None and abs(rec.tow - self._tow) > 1e-4:
            out += self.flush()
        self._tow = rec.tow
        self._parts.append(rec)
        if not rec.more:
            out += self.flush()
        return out

    def flush(self) -> list[obs.ObsEpoch]:
        if not self._parts or self._tow is None or self.week is None:
            return []
        parts, tow = self._parts, self._tow
        self._parts, self._tow = [], None
        return [to_obs_epoch(parts, self.week, tow)]


def to_obs_epoch(parts: list[ObsEpoch], week: int, tow: float) -> obs.ObsEpoch:
    """Records of one epoch → one dense :class:`obs.ObsEpoch` (GPST ``week``, ``tow``)."""
    cells: dict[tuple[str, str], float] = {}
    lli: dict[tuple[str, str], int] = {}
    sats: dict[str, None] = {}
    codes: dict[str, None] = {}
    for rec in parts:
        for s in rec.signals:
            sat = obs.sat_id(s.sys, s.prn)
            sats[sat] = None
            for kind, value in (("C", s.pr), ("L", s.cp), ("D", s.doppler), ("S", s.cnr)):
                if value is None or not math.isfinite(value):
                    continue
                code = kind + s.code
                codes[code] = None
                cells[(sat, code)] = value
                if kind == "L":
                    lli[(sat, code)] = int(s.slip) | (2 if s.half_cycle else 0)
    sat_order = tuple(sorted(sats))
    code_order = tuple(sorted(codes, key=lambda c: (c[1:], "CLDS".index(c[0]))))
    epoch = obs.ObsEpoch.empty(obs.GNSSTime(week, tow % obs.SECONDS_PER_WEEK), sat_order,
                               code_order)
    row = {s: i for i, s in enumerate(sat_order)}
    col = {c: j for j, c in enumerate(code_order)}
    for (sat, code), value in cells.items():
        epoch.values[row[sat], col[code]] = value
    for (sat, code), flag in lli.items():
        epoch.lli[row[sat], col[code]] = np.uint8(flag)
    return epoch
