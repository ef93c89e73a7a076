"""Legacy RTCM 3 observations: 1004 (GPS L1/L2) and 1012 (GLONASS L1/L2).

L1 pseudorange = modulus ambiguity × (299 792.458 m GPS, 599 584.916 m GLONASS) + the
transmitted remainder (0.02 m units); L2 code and both phases are differences to it
(0.02 m and 0.0005 m units), phase converted to cycles with the carrier wavelength
(GLONASS: the message's own frequency channel). Lock-time indicators (DF013/DF019, 7
bits) are compared with the previous epoch for loss of lock, as for MSM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bits import Bits, DecodeError
from .records import ObsEpoch, SignalObs
from .signals import wavelength

if TYPE_CHECKING:
    from .rtcm3 import Rtcm3Decoder

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


def decode(b: Bits, msg: int, state: Rtcm3Decoder) -> ObsEpoch:
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
