"""BeiDou D1 navigation message (MEO/IGSO satellites, B1I): subframes 1–3 → ephemeris.

A D1 subframe is ten 30-bit words (300 bits, parity bits included, as u-blox RXM-SFRBX
delivers them and RTKLIB reads them). Fields split by parity bits are read in two parts
(BeiDou ICD B1I v3.0 §5.2.4; bit positions as RTKLIB ``decode_bds_d1``). The result has
the same names and units as RTCM 1042 (:data:`daq.gnss.streams.rtcm3_eph.BDS_1042`): seconds of
BDT week, radians (ICD π), SI units; TGD in seconds.

The three subframes must agree: ids 1, 2, 3, SOW 6 s apart, toc = toe. GEO satellites
(C01–C05, C59–C63) broadcast D2 (ten times faster, paged): recognised, not decoded.
"""

from __future__ import annotations

from .bits import Bits
from .rtcm3_eph import SC

P2_6, P2_19, P2_31, P2_33, P2_43, P2_50, P2_66 = (2.0**-6, 2.0**-19, 2.0**-31, 2.0**-33,
                                                    2.0**-43, 2.0**-50, 2.0**-66)


def is_geo(prn: int) -> bool:
    return prn <= 5 or prn >= 59


def subframe_bits(words: tuple[int, ...]) -> bytes:
    """Ten 30-bit words (low bits of each u32) → 38 bytes, word i at bit 30·i."""
    value = 0
    for w in words:
        value = value << 30 | (w & 0x3FFFFFFF)
    return (value << 4).to_bytes(38, "big")


def _u(data: bytes, pos: int, n: int) -> int:
    b = Bits(data, pos)
    return b.u(n)


def _u2(data: bytes, p1: int, n1: int, p2: int, n2: int) -> int:
    return _u(data, p1, n1) << n2 | _u(data, p2, n2)


def _s2(data: bytes, p1: int, n1: int, p2: int, n2: int) -> int:
    v = _u2(data, p1, n1, p2, n2)
    n = n1 + n2
    return v - (1 << n) if v >> (n - 1) else v


def _s(data: bytes, pos: int, n: int) -> int:
    return Bits(data, pos).s(n)


def subframe_id(data: bytes) -> int:
    return _u(data, 15, 3)


def sow(data: bytes) -> int:
    """Seconds of BDT week at the start of the subframe."""
    return _u2(data, 18, 8, 30, 12)


def decode_d1(sf1: bytes, sf2: bytes, sf3: bytes) -> dict[str, float] | None:
    """Ephemeris fields from subframes 1, 2, 3 (38 bytes each); None if inconsistent."""
    if (subframe_id(sf1), subframe_id(sf2), subframe_id(sf3)) != (1, 2, 3):
        return None
    if not (sow(sf2) == sow(sf1) + 6 and sow(sf3) == sow(sf2) + 6):
        return None
    f: dict[str, float] = {
        "SatH1": _u(sf1, 42, 1), "AODC": _u(sf1, 43, 5), "SVacc": _u(sf1, 48, 4),
        "BDTWeek": _u(sf1, 60, 13), "Toc": _u2(sf1, 73, 9, 90, 8) * 8.0,
        "TGD1": _s(sf1, 98, 10) * 1e-10, "TGD2": _s2(sf1, 108, 4, 120, 6) * 1e-10,
        "SVclockDriftRate": _s(sf1, 214, 11) * P2_66,
        "SVclockBias": _s2(sf1, 225, 7, 240, 17) * P2_33,
        "SVclockDrift": _s2(sf1, 257, 5, 270, 17) * P2_50, "AODE": _u(sf1, 287, 5),
        "DeltaN": _s2(sf2, 42, 10, 60, 6) * P2_43 * SC, "Cuc": _s2(sf2, 66, 16, 90, 2) * P2_31,
        "M0": _s2(sf2, 92, 20, 120, 12) * P2_31 * SC,
        "Eccentricity": _u2(sf2, 132, 10, 150, 22) * P2_33, "Cus": _s(sf2, 180, 18) * P2_31,
        "Crc": _s2(sf2, 198, 4, 210, 14) * P2_6, "Crs": _s2(sf2, 224, 8, 240, 10) * P2_6,
        "sqrtA": _u2(sf2, 250, 12, 270, 20) * P2_19,
        "Toe": (_u(sf2, 290, 2) << 15 | _u2(sf3, 42, 10, 60, 5)) * 8.0,
        "Io": _s2(sf3, 65, 17, 90, 15) * P2_31 * SC, "Cic": _s2(sf3, 105, 7, 120, 11) * P2_31,
        "OmegaDot": _s2(sf3, 131, 11, 150, 13) * P2_43 * SC,
        "Cis": _s2(sf3, 163, 9, 180, 9) * P2_31,
        "IDOT": _s2(sf3, 189, 13, 210, 1) * P2_43 * SC,
        "Omega0": _s2(sf3, 211, 21, 240, 11) * P2_31 * SC,
        "omega": _s2(sf3, 251, 11, 270, 21) * P2_31 * SC,
    }
    if f["Toc"] != f["Toe"]:
        return None
    return {k: float(v) for k, v in f.items()}
