"""RTCM 3 message decoding (RTCM 10403.3): MSM4–7 observations and message dispatch.

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

from . import rtcm3_eph, rtcm3_legacy
from .bits import Bits, DecodeError
from .records import Ephemeris, ObsEpoch, SignalObs, Station, Unsupported
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
            return rtcm3_legacy.decode(b, msg, self)
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
