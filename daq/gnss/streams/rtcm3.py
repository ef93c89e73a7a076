"""RTCM 3 message decoding (RTCM 10403.3): MSM4–7 and legacy 1004/1012 observations,
1005/1006 station, 1013 system time, and the dispatch (ephemerides: :mod:`.rtcm3_eph`).

:class:`Rtcm3Decoder` is sans-I/O and keeps the little state a stream needs: GLONASS
frequency channels (from 1020 or MSM5/7 extended satellite info) and the previous lock
time per signal, from which loss of lock is derived (lock time went down, or is zero).
``decode(payload)`` takes one checked frame's payload (see :mod:`daq.gnss.streams.framing`) and
returns an :class:`~daq.gnss.streams.records.ObsEpoch`,
:class:`~daq.gnss.streams.records.Ephemeris`, :class:`~daq.gnss.streams.records.Station` or
:class:`~daq.gnss.streams.records.Unsupported`; contents
that do not decode raise :class:`~daq.gnss.streams.bits.DecodeError` with a reason.

Units: pseudorange m, phase cycles (MSM phase range / wavelength), Doppler Hz
(−range rate / wavelength), CNR dB-Hz. Epoch time is converted to GPS seconds of week:
BeiDou adds 14 s, GLONASS subtracts 3 h and adds ``leap_seconds`` (GPS − UTC).
"""

from __future__ import annotations

from typing import Any

from . import rtcm3_eph
from .bits import Bits, DecodeError
from .records import Ephemeris, ObsEpoch, SignalObs, Station, SystemTime, Unsupported
from .signals import CLIGHT, msm_signal, wavelength

RANGE_MS = CLIGHT * 1e-3          # metres per millisecond of range
P2_10, P2_24, P2_29, P2_31 = 2.0**-10, 2.0**-24, 2.0**-29, 2.0**-31
WEEK_S = 604800.0

# message number // 10 → system letter (1071–1077 GPS, 1081… GLONASS, 1091… Galileo,
# 1111… QZSS, 1121… BeiDou)
MSM_SYSTEMS = {107: "G", 108: "R", 109: "E", 111: "J", 112: "C"}


def _lock_ex_table() -> list[int]:
    """DF407 (10-bit lock indicator) → minimum lock time in ms (RTCM table 3.5-76)."""
    table = list(range(64))
    value, step = 64, 2
    for i in range(64, 705):
        if i > 64 and (i - 64) % 32 == 0:
            step *= 2
        table.append(value)
        value += step
    table[704] = 67108864
    table.extend([67108864] * (1024 - len(table)))
    return table


LOCK_EX_MS = _lock_ex_table()
LOCK_MS = [0] + [1 << (i + 4) for i in range(1, 16)]   # DF402: 0, 32 ms, 64 ms … 2^19 ms


def msm_gps_tow(sys: str, b: Bits, leap_seconds: int) -> tuple[float | None, int]:
    """Read the MSM epoch field; return (GPS seconds of week or None, raw value)."""
    if sys == "R":
        dow, tod_ms = b.u(3), b.u(27)
        if dow == 7:
            return None, tod_ms
        return (dow * 86400.0 + tod_ms * 1e-3 - 10800.0 + leap_seconds) % WEEK_S, tod_ms
    tow_ms = b.u(30)
    if sys == "C":
        return (tow_ms * 1e-3 + 14.0) % WEEK_S, tow_ms
    return tow_ms * 1e-3, tow_ms


class Rtcm3Decoder:
    """Stateful RTCM 3 payload decoder (one per stream)."""

    def __init__(self, leap_seconds: int = 18) -> None:
        self.leap_seconds = leap_seconds              # GPS − UTC, for GLONASS epochs
        self.glo_fcn: dict[int, int] = {}             # GLONASS slot → frequency channel k
        self._lock: dict[tuple[int, str, int, str], int] = {}

    def decode(self, payload: bytes) -> Any:
        if not payload:
            return Unsupported("rtcm3", 0)   # empty keep-alive frame (NTRIP casters send them)
        if len(payload) < 2:
            raise DecodeError("short", "no message number")
        b = Bits(payload)
        msg = b.u(12)
        if msg // 10 in MSM_SYSTEMS and 4 <= msg % 10 <= 7:
            return self._msm(b, msg)
        if msg in rtcm3_eph.DECODERS:
            eph: Ephemeris = rtcm3_eph.DECODERS[msg](b)
            if msg == 1020:
                self.glo_fcn[eph.prn] = int(eph.fields["FreqNum"])
            return eph
        if msg in (1005, 1006):
            return self._station(b, msg)
        if msg in (1004, 1012):
            return _legacy(b, msg, self)
        if msg == 1013:
            return system_time(b)
        return Unsupported("rtcm3", msg)

    def lock_slip(self, key: tuple[int, str, int, str], lock_ms: int) -> bool:
        """Loss of lock since the previous epoch of this signal (RINEX LLI bit 0)."""
        prev = self._lock.get(key)
        self._lock[key] = lock_ms
        return lock_ms == 0 or (prev is not None and lock_ms < prev)

    def _station(self, b: Bits, msg: int) -> Station:
        station = b.u(12)
        itrf = b.u(6)
        b.skip(4)
        x = b.s(38) * 1e-4
        b.skip(2)
        y = b.s(38) * 1e-4
        b.skip(2)
        z = b.s(38) * 1e-4
        height = b.u(16) * 1e-4 if msg == 1006 else None
        return Station(station, x, y, z, height, itrf)

    def _msm(self, b: Bits, msg: int) -> ObsEpoch:
        sys = MSM_SYSTEMS[msg // 10]
        kind = msg % 10
        station = b.u(12)
        tow, _raw = msm_gps_tow(sys, b, self.leap_seconds)
        more = bool(b.u(1))
        b.skip(3 + 7 + 2 + 2 + 1 + 3)   # IODS, reserved, clock steering, ext clock, smoothing
        sat_mask, sig_mask = b.u(64), b.u(32)
        sats = [i + 1 for i in range(64) if sat_mask >> (63 - i) & 1]
        sigs = [i + 1 for i in range(32) if sig_mask >> (31 - i) & 1]
        if len(sats) * len(sigs) > 64:
            raise DecodeError("msm_mask", f"{len(sats)} satellites x {len(sigs)} signals > 64")
        cell_mask = b.u(len(sats) * len(sigs))
        ncell_bits = len(sats) * len(sigs)
        cells = [(si, gi) for si in range(len(sats)) for gi in range(len(sigs))
                 if cell_mask >> (ncell_bits - 1 - (si * len(sigs) + gi)) & 1]
        ext = kind in (5, 7)
        n = len(sats)
        rr_int = [b.u(8) for _ in range(n)]
        info = [b.u(4) for _ in range(n)] if ext else [15] * n
        rr_mod = [b.u(10) for _ in range(n)]
        rate = [b.s(14) for _ in range(n)] if ext else [-8192] * n
        m = len(cells)
        hi = kind in (6, 7)
        if hi:
            pr_f = [b.s(20) for _ in range(m)]
            cp_f = [b.s(24) for _ in range(m)]
            lock = [LOCK_EX_MS[b.u(10)] for _ in range(m)]
        else:
            pr_f = [b.s(15) for _ in range(m)]
            cp_f = [b.s(22) for _ in range(m)]
            lock = [LOCK_MS[b.u(4)] for _ in range(m)]
        half = [b.u(1) for _ in range(m)]
        cnr = [b.u(10) * 0.0625 for _ in range(m)] if hi else [float(b.u(6)) for _ in range(m)]
        rate_f = [b.s(15) for _ in range(m)] if ext else [-16384] * m
        if b.left() >= 8:
            raise DecodeError("length", f"{b.left()} bits left after MSM{kind} {msg}")
        pr_bad, cp_bad = (-524288, -8388608) if hi else (-16384, -2097152)
        pr_scale, cp_scale = (P2_29, P2_31) if hi else (P2_24, P2_29)
        out = ObsEpoch(f"rtcm{msg}", sys, tow, None, station, more)
        for c, (si, gi) in enumerate(cells):
            prn = sats[si]
            code = msm_signal(sys, sigs[gi])
            if not code:
                continue   # unassigned signal ID: skip the cell, keep the rest
            k = None
            if sys == "R":
                k = info[si] - 7 if info[si] <= 13 else self.glo_fcn.get(prn)
            lam = wavelength(sys, code, k)
            valid_sat = rr_int[si] != 255
            r = (rr_int[si] + rr_mod[si] * P2_10) * RANGE_MS
            pr = r + pr_f[c] * pr_scale * RANGE_MS if valid_sat and pr_f[c] != pr_bad else None
            cp = None
            if valid_sat and cp_f[c] != cp_bad and lam:
                cp = (r + cp_f[c] * cp_scale * RANGE_MS) / lam
            dop = None
            if ext and rate[si] != -8192 and rate_f[c] != -16384 and lam:
                dop = -(rate[si] + rate_f[c] * 1e-4) / lam
            slip = self.lock_slip((station, sys, prn, code), lock[c])
            out.signals.append(SignalObs(sys, prn, code, pr, cp, dop, cnr[c] or None,
                                         lock[c], slip, bool(half[c])))
        return out


_MJD_GPS0 = 44244          # MJD of 1980-01-06, GPS week 0


def system_time(b: Bits) -> SystemTime:
    """RTCM 1013 (system parameters) after its message number → its GPST instant.

    DF003 station (12 bits), DF051 MJD (16), DF052 UTC seconds of day (17), DF053 count (5),
    DF054 leap seconds GPS − UTC (8)."""
    b.skip(12)
    mjd, sod = b.u(16), b.u(17)
    b.skip(5)
    leap = b.u(8)
    if mjd <= _MJD_GPS0 or sod >= 86400:
        raise DecodeError("1013_bad_time", f"MJD {mjd}, {sod} s")
    return SystemTime("rtcm1013", (mjd - _MJD_GPS0) * 86400.0 + sod + leap)


PRUNIT = {"G": 299792.458, "R": 599584.916}
_L1_CODE = {"G": ("1C", "1P"), "R": ("1C", "1P")}
_L2_CODE = {"G": ("2C", "2P", "2W", "2W"), "R": ("2C", "2P", "2P", "2P")}


def _lock_ms(indicator: int) -> int:
    """DF013/DF019 lock-time indicator (0–127) → minimum lock time in ms (RTCM table 3.4-2)."""
    if indicator < 24:
        return indicator * 1000
    if indicator < 48:
        return (indicator * 2 - 24) * 1000
    if indicator < 72:
        return (indicator * 4 - 120) * 1000
    if indicator < 96:
        return (indicator * 8 - 408) * 1000
    if indicator < 120:
        return (indicator * 16 - 1176) * 1000
    if indicator < 127:
        return (indicator * 32 - 3096) * 1000
    return 937000


def _legacy(b: Bits, msg: int, state: Rtcm3Decoder) -> ObsEpoch:
    """1004 (GPS L1/L2) / 1012 (GLONASS L1/L2): L1 pseudorange = modulus ambiguity ×
    (299 792.458 m GPS, 599 584.916 m GLONASS) + the transmitted remainder (0.02 m); L2 code
    and both phases are differences to it (0.02 m, 0.0005 m), phase in cycles of the carrier
    (GLONASS: the message's own frequency channel); lock indicators DF013/DF019 (7 bits)
    compared with the previous epoch for loss of lock, as for MSM."""
    sys = "G" if msg == 1004 else "R"
    station = b.u(12)
    # GPS: TOW in ms; GLONASS: time of day in UTC(SU) only (no day of week): tow None
    tow = b.u(30) * 1e-3 if sys == "G" else (b.u(27), None)[1]
    more = bool(b.u(1))
    nsat = b.u(5)
    b.skip(4)                                    # smoothing indicator and interval
    out = ObsEpoch(f"rtcm{msg}", sys, tow, None, station, more)
    for _ in range(nsat):
        prn = b.u(6)
        code1 = b.u(1)
        k = b.u(5) - 7 if sys == "R" else None
        pr1 = b.u(24 if sys == "G" else 25)
        ppr1 = b.s(20)
        lock1 = b.u(7)
        amb = b.u(8 if sys == "G" else 7)
        cnr1 = b.u(8)
        code2 = b.u(2)
        pr21 = b.s(14)
        ppr2 = b.s(20)
        lock2 = b.u(7)
        cnr2 = b.u(8)
        if sys == "R" and k is not None:
            state.glo_fcn.setdefault(prn, k)
        p1 = pr1 * 0.02 + amb * PRUNIT[sys]
        sat_sys = sys
        if sys == "G" and prn >= 40:          # DF009 40–58: SBAS PRN 120–138 (RINEX S20–S38)
            sat_sys, prn = "S", prn - 20
        p2 = p1 + pr21 * 0.02 if pr21 != -8192 else None
        for code, pr, ppr, lock, cnr in ((_L1_CODE[sys][code1], p1, ppr1, lock1, cnr1),
                                         (_L2_CODE[sys][code2], p2, ppr2, lock2, cnr2)):
            lam = wavelength(sat_sys, code, k)
            cp = (p1 + ppr * 0.0005) / lam if lam and ppr != -524288 else None
            lock_ms = _lock_ms(lock)
            slip = state.lock_slip((station, sat_sys, prn, code), lock_ms)
            out.signals.append(SignalObs(sat_sys, prn, code, pr, cp, None,
                                         cnr * 0.25 or None, lock_ms, slip))
    if b.left() >= 8:
        raise DecodeError("length", f"{b.left()} bits left after {msg}")
    return out
