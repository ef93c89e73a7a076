"""u-blox UBX payload decoding: RXM-RAWX, old RXM-RAW, RXM-SFRBX/SFRB, NAV-PVT.

:class:`UbxDecoder` takes a checked frame's ``(class, id)`` and payload (see
:mod:`daq.gnss.streams.framing`). RAWX gives pseudorange (m), carrier phase (cycles), Doppler (Hz,
positive approaching), C/N0 (dB-Hz) and lock time (ms) per signal; ``trkStat`` bit 0/1
say whether pseudorange/phase are valid, bit 2 whether the half-cycle ambiguity is
resolved (if not: ``half_cycle`` True, RINEX LLI bit 1). Loss of lock is a lock time
that went down or is zero. Navigation subframes go to :mod:`daq.gnss.streams.ubx_nav`, which
assembles GPS LNAV, BeiDou D1 and Galileo I/NAV ephemerides.

u-blox numbering → RINEX: gnssId 0 GPS, 2 Galileo, 3 BeiDou, 5 QZSS, 6 GLONASS (1 SBAS
is skipped); sigId → code per the u-blox interface description (F9 HPG 1.32).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .bits import DecodeError
from .records import ObsEpoch, SignalObs, Unsupported
from .signals import wavelength
from .ubx_nav import NavAssembler

RXM_RAWX, RXM_RAW, RXM_SFRBX, RXM_SFRB, NAV_PVT = (2, 0x15), (2, 0x10), (2, 0x13), (2, 0x11), (1, 7)

GNSS_SYS = {0: "G", 2: "E", 3: "C", 5: "J", 6: "R"}
SIG_CODE = {
    "G": {0: "1C", 3: "2L", 4: "2S", 6: "5I", 7: "5Q"},
    "E": {0: "1C", 1: "1B", 3: "5I", 4: "5Q", 5: "7I", 6: "7Q"},
    "C": {0: "2I", 1: "2I", 2: "7I", 3: "7I", 5: "1P", 6: "1D", 7: "5P", 8: "5D"},
    "J": {0: "1C", 1: "1Z", 4: "2S", 5: "2L", 8: "5I", 9: "5Q"},
    "R": {0: "1C", 2: "2C"},
}
_RAWX_HEAD = struct.Struct("<dHbBBB2x")
_RAWX_MEAS = struct.Struct("<ddfBBBBHBBBBBx")
_RAW_HEAD = struct.Struct("<ihBx")
_RAW_MEAS = struct.Struct("<ddfBbbB")
_PVT = struct.Struct("<IHBBBBBBIiBBBBiiiiIIiiiiiIIH")


@dataclass(slots=True)
class NavPvt:
    """NAV-PVT: GPS time of week (s), UTC date-time, fix, position (deg, m), accuracy (m).

    ``carrier``: 0 none, 1 RTK float, 2 RTK fixed (flags bits 6–7).
    """

    tow: float
    utc: tuple[int, int, int, int, int, float]
    fix_type: int
    carrier: int
    num_sv: int
    lat: float
    lon: float
    height: float        # above the ellipsoid, m
    h_msl: float         # above mean sea level, m
    h_acc: float
    v_acc: float


class UbxDecoder:
    """Stateful UBX payload decoder (one per stream: lock times, subframe assembly)."""

    def __init__(self) -> None:
        self._lock: dict[tuple[str, int, str], int] = {}
        self.nav = NavAssembler()

    def decode(self, msg: object, payload: bytes) -> Any:
        """``msg`` is the frame's ``(class, id)``; returns a record or Unsupported."""
        if msg == RXM_RAWX:
            return self._rawx(payload)
        if msg == RXM_RAW:
            return self._raw(payload)
        if msg == RXM_SFRBX:
            return self.nav.sfrbx(payload)
        if msg == RXM_SFRB:
            return self.nav.sfrb(payload)
        if msg == NAV_PVT:
            return self._pvt(payload)
        return Unsupported("ubx", msg)

    def _slip(self, key: tuple[str, int, str], lock_ms: int) -> bool:
        prev = self._lock.get(key)
        self._lock[key] = lock_ms
        return lock_ms == 0 or (prev is not None and lock_ms < prev)

    def _rawx(self, p: bytes) -> ObsEpoch:
        if len(p) < 16:
            raise DecodeError("short", f"RXM-RAWX of {len(p)} bytes")
        tow, week, _leap, n, _stat, _ver = _RAWX_HEAD.unpack_from(p)
        if len(p) != 16 + 32 * n:
            raise DecodeError("length", f"RXM-RAWX: {n} measurements in {len(p)} bytes")
        out = ObsEpoch("ubx_rawx", "M", tow, week)
        for i in range(n):
            (pr, cp, do, gnss, sv, sig, freq, lock, cno, _prs, _cps, _dos, trk
             ) = _RAWX_MEAS.unpack_from(p, 16 + 32 * i)
            sys = GNSS_SYS.get(gnss)
            code = SIG_CODE.get(sys or "", {}).get(sig, "")
            if not sys or not code:
                continue   # SBAS or a signal we have no RINEX code for
            k = freq - 7 if sys == "R" else None
            cp_ok = bool(trk & 2) and cp != 0.0 and wavelength(sys, code, k) is not None
            out.signals.append(SignalObs(
                sys, sv, code, pr if trk & 1 else None, cp if cp_ok else None,
                float(do), float(cno) or None, lock, self._slip((sys, sv, code), lock),
                not trk & 4))
        return out

    def _raw(self, p: bytes) -> ObsEpoch:
        if len(p) < 8:
            raise DecodeError("short", f"RXM-RAW of {len(p)} bytes")
        itow, week, n = _RAW_HEAD.unpack_from(p)
        if len(p) != 8 + 24 * n:
            raise DecodeError("length", f"RXM-RAW: {n} measurements in {len(p)} bytes")
        out = ObsEpoch("ubx_raw", "G", itow * 1e-3, week)
        for i in range(n):
            cp, pr, do, sv, _qi, cno, lli = _RAW_MEAS.unpack_from(p, 8 + 24 * i)
            if not 1 <= sv <= 32:
                continue   # SBAS
            out.signals.append(SignalObs("G", sv, "1C", pr or None, cp or None, float(do),
                                         float(cno) or None, None, bool(lli & 1),
                                         bool(lli & 2)))
        return out

    def _pvt(self, p: bytes) -> NavPvt:
        if len(p) < _PVT.size:
            raise DecodeError("short", f"NAV-PVT of {len(p)} bytes")
        f = _PVT.unpack_from(p)
        (itow, year, month, day, hour, minute, sec, _valid, _tacc, nano, fix, flags,
         _flags2, nsv, lon, lat, height, hmsl, hacc, vacc) = f[:20]
        return NavPvt(itow * 1e-3, (year, month, day, hour, minute, sec + nano * 1e-9), fix,
                      (flags >> 6) & 3, nsv, lat * 1e-7, lon * 1e-7, height * 1e-3,
                      hmsl * 1e-3, hacc * 1e-3, vacc * 1e-3)
