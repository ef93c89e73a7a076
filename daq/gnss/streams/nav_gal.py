"""Galileo I/NAV (E1-B / E5b-I) from u-blox RXM-SFRBX pages → ephemeris.

An RXM-SFRBX Galileo message is one nominal page: eight 32-bit words holding the even
part (even/odd bit, page type bit, 112 data bits, …) and the odd part (…, 16 data bits,
…, CRC-24Q over the 4-bit-padded 114 + 82 bits). Together they carry one 128-bit *word*
(word type 0–10; Galileo OS SIS ICD §4.3.5). Words 0–5 of one IODnav make an ephemeris;
field layout and scales as RTKLIB ``decode_gal_inav`` and RTCM 1046: names and units as
:data:`daq.gnss.streams.rtcm3_eph.GAL_1046` (radians with the ICD π, s, m).
"""

from __future__ import annotations

from .bits import Bits
from .framing import crc24q
from .rtcm3_eph import SC

DATA_SOURCE_INAV_E1B = 513.0   # RINEX "data sources": bit 0 I/NAV E1-B, bit 9 clock for E5b/E1


def page_word(words: tuple[int, ...]) -> tuple[int, bytes] | None:
    """Eight page words → (word type, 128-bit word as 16 bytes); None for alert pages,
    wrong even/odd order or a CRC failure."""
    value = 0
    for w in words:
        value = value << 32 | (w & 0xFFFFFFFF)
    page = value.to_bytes(32, "big")
    even, odd = Bits(page[:16]), Bits(page[16:])
    part1, alert1 = even.u(1), even.u(1)
    part2, alert2 = odd.u(1), odd.u(1)
    if alert1 or alert2 or part1 != 0 or part2 != 1:
        return None
    even_bits = int.from_bytes(page[:16], "big") >> (128 - 114)
    odd_all = int.from_bytes(page[16:], "big")
    odd_bits = odd_all >> (128 - 82)
    crc = (odd_all >> (128 - 106)) & 0xFFFFFF
    if crc24q(((even_bits << 82) | odd_bits).to_bytes(25, "big")) != crc:
        return None
    data = ((even_bits & ((1 << 112) - 1)) << 16) | ((odd_bits >> 64) & 0xFFFF)
    word = data.to_bytes(16, "big")
    return word[0] >> 2, word


def decode_inav(w: dict[int, bytes]) -> dict[str, float] | None:
    """Words 0–5 (16 bytes each) → ephemeris fields; None if not one consistent set."""
    if any(k not in w for k in range(6)):
        return None
    b0 = Bits(w[0], 6)
    if b0.u(2) != 2:                     # time field must be valid (WN and TOW present)
        return None
    b0.skip(88)
    f: dict[str, float] = {"GALWeek": b0.u(12)}
    iod = []
    b = Bits(w[1], 6)
    iod.append(b.u(10))
    f.update(Toe=b.u(14) * 60.0, M0=b.s(32) * 2.0**-31 * SC, Eccentricity=b.u(32) * 2.0**-33,
             sqrtA=b.u(32) * 2.0**-19)
    b = Bits(w[2], 6)
    iod.append(b.u(10))
    f.update(Omega0=b.s(32) * 2.0**-31 * SC, Io=b.s(32) * 2.0**-31 * SC,
             omega=b.s(32) * 2.0**-31 * SC, IDOT=b.s(14) * 2.0**-43 * SC)
    b = Bits(w[3], 6)
    iod.append(b.u(10))
    f.update(OmegaDot=b.s(24) * 2.0**-43 * SC, DeltaN=b.s(16) * 2.0**-43 * SC,
             Cuc=b.s(16) * 2.0**-29, Cus=b.s(16) * 2.0**-29, Crc=b.s(16) * 2.0**-5,
             Crs=b.s(16) * 2.0**-5, SISA=b.u(8))
    b = Bits(w[4], 6)
    iod.append(b.u(10))
    f["prn"] = b.u(6)
    f.update(Cic=b.s(16) * 2.0**-29, Cis=b.s(16) * 2.0**-29, Toc=b.u(14) * 60.0,
             SVclockBias=b.s(31) * 2.0**-34, SVclockDrift=b.s(21) * 2.0**-46,
             SVclockDriftRate=b.s(6) * 2.0**-59)
    b = Bits(w[5], 6 + 41)             # skip the ionospheric parameters
    f.update(BGDe5a=b.s(10) * 2.0**-32, BGDe5b=b.s(10) * 2.0**-32, E5bHS=b.u(2),
             E1BHS=b.u(2), E5bDVS=b.u(1), E1BDVS=b.u(1))
    if len(set(iod)) != 1:
        return None
    f["IODnav"] = iod[0]
    f["DataSrc"] = DATA_SOURCE_INAV_E1B
    return {k: float(v) for k, v in f.items()}
