"""Navigation subframes from u-blox RXM-SFRBX / RXM-SFRB → GPS LNAV ephemerides.

A GPS L1 C/A subframe is ten 30-bit words; u-blox delivers them with the data bits
already de-inverted, the 24 data bits in bits 29–6 of each RXM-SFRBX word (bits 23–0 in the
old RXM-SFRB). Subframes 1, 2 and 3 of one satellite are kept until all three carry the
same issue of data (IODC low 8 bits = IODE in 2 and 3), then decoded into one
:class:`~daq.gnss.streams.records.Ephemeris` with the same field names and units as RTCM 1019
(IS-GPS-200 §20.3.3; semicircles → radians with the ICD π).

BeiDou D1 subframes 1–3 (MEO/IGSO) are decoded by :mod:`daq.gnss.streams.nav_bds`, Galileo
I/NAV words 0–5 by :mod:`daq.gnss.streams.nav_gal`. Other subframes (BeiDou D2 of GEO satellites,
GLONASS strings, GPS CNAV) are recognised and returned as :class:`Subframe` records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import nav_bds, nav_gal
from .bits import Bits, DecodeError
from .records import Ephemeris
from .rtcm3_eph import SC

GNSS_SYS = {0: "G", 1: "S", 2: "E", 3: "C", 5: "J", 6: "R"}
_PREAMBLE = 0x8B

# (name, bits, signed, scale) after the 48 bits of TLM and HOW, per subframe
_SF: dict[int, list[tuple[str, int, bool, float]]] = {
    1: [("GPSWeek", 10, False, 1), ("CodesL2", 2, False, 1), ("SVacc", 4, False, 1),
        ("health", 6, False, 1), ("IODC_hi", 2, False, 1), ("L2Pflag", 1, False, 1),
        ("", 87, False, 1), ("TGD", 8, True, 2.0**-31), ("IODC_lo", 8, False, 1),
        ("Toc", 16, False, 16.0), ("SVclockDriftRate", 8, True, 2.0**-55),
        ("SVclockDrift", 16, True, 2.0**-43), ("SVclockBias", 22, True, 2.0**-31)],
    2: [("IODE", 8, False, 1), ("Crs", 16, True, 2.0**-5), ("DeltaN", 16, True, 2.0**-43 * SC),
        ("M0", 32, True, 2.0**-31 * SC), ("Cuc", 16, True, 2.0**-29),
        ("Eccentricity", 32, False, 2.0**-33), ("Cus", 16, True, 2.0**-29),
        ("sqrtA", 32, False, 2.0**-19), ("Toe", 16, False, 16.0), ("FitIntvl", 1, False, 1)],
    3: [("Cic", 16, True, 2.0**-29), ("Omega0", 32, True, 2.0**-31 * SC),
        ("Cis", 16, True, 2.0**-29), ("Io", 32, True, 2.0**-31 * SC),
        ("Crc", 16, True, 2.0**-5), ("omega", 32, True, 2.0**-31 * SC),
        ("OmegaDot", 24, True, 2.0**-43 * SC), ("IODE", 8, False, 1),
        ("IDOT", 14, True, 2.0**-43 * SC)],
}


@dataclass(slots=True)
class Subframe:
    """A navigation subframe that did not (yet) complete an ephemeris."""

    sys: str
    prn: int
    subframe: int         # GPS/BeiDou subframe id, Galileo word type; 0 not decoded,
                          # −1 a Galileo page rejected (alert, order, CRC)
    tow: float | None     # GPS: HOW TOW (start of the next subframe); BeiDou: SOW; s


class NavAssembler:
    """Collects subframes per satellite; emits each new consistent ephemeris once."""

    def __init__(self) -> None:
        self._sf: dict[int, dict[int, dict[str, float]]] = {}
        self._bds_sf: dict[int, dict[int, bytes]] = {}
        self._gal_words: dict[int, dict[int, bytes]] = {}
        self._last: dict[tuple[str, int], tuple[float, float]] = {}  # → (IOD, Toe) emitted

    def sfrbx(self, p: bytes) -> Ephemeris | Subframe:
        if len(p) < 8:
            raise DecodeError("short", f"RXM-SFRBX of {len(p)} bytes")
        gnss, sv, sig, _freq, nwords = p[0], p[1], p[2], p[3], p[4]
        if len(p) != 8 + 4 * nwords:
            raise DecodeError("length", f"RXM-SFRBX: {nwords} words in {len(p)} bytes")
        sys = GNSS_SYS.get(gnss, "?")
        if sys == "C" and nwords == 10:
            return self._bds(sv, struct.unpack_from("<10I", p, 8))
        if sys == "E" and nwords >= 8:
            return self._gal(sv, struct.unpack_from("<8I", p, 8))
        if sys != "G" or sig != 0 or nwords != 10:   # sigId 0: L1 C/A LNAV (L2C is CNAV)
            return Subframe(sys, sv, 0, None)
        words = struct.unpack_from("<10I", p, 8)
        return self._gps(sv, bytes(b for w in words for b in ((w >> 6) & 0xFFFFFF).to_bytes(3)))

    def _gal(self, prn: int, words: tuple[int, ...]) -> Ephemeris | Subframe:
        page = nav_gal.page_word(words)
        if page is None:
            return Subframe("E", prn, -1, None)      # alert page, odd/even order, CRC
        wtype, word = page
        if wtype > 5:
            return Subframe("E", prn, wtype, None)
        sat = self._gal_words.setdefault(prn, {})
        sat[wtype] = word
        f = nav_gal.decode_inav(sat)
        if f is None or self._last.get(("E", prn)) == (f["IODnav"], f["Toe"]):
            return Subframe("E", prn, wtype, None)
        self._last[("E", prn)] = (f["IODnav"], f["Toe"])
        del f["prn"]
        return Ephemeris("ubx_sfrbx", "E", prn, int(f["GALWeek"]), f["Toc"], f)

    def _bds(self, prn: int, words: tuple[int, ...]) -> Ephemeris | Subframe:
        data = nav_bds.subframe_bits(words)
        sfid = nav_bds.subframe_id(data)
        if nav_bds.is_geo(prn) or sfid not in (1, 2, 3):
            return Subframe("C", prn, sfid, None)
        sat = self._bds_sf.setdefault(prn, {})
        sat[sfid] = data
        tow = float(nav_bds.sow(data))
        if sfid != 3 or len(sat) < 3:
            return Subframe("C", prn, sfid, tow)
        f = nav_bds.decode_d1(sat[1], sat[2], sat[3])
        if f is None or self._last.get(("C", prn)) == (f["AODE"], f["Toe"]):
            return Subframe("C", prn, sfid, tow)
        self._last[("C", prn)] = (f["AODE"], f["Toe"])
        return Ephemeris("ubx_sfrbx", "C", prn, int(f["BDTWeek"]), f["Toc"], f)

    def sfrb(self, p: bytes) -> Ephemeris | Subframe:
        if len(p) != 42:
            raise DecodeError("length", f"RXM-SFRB of {len(p)} bytes")
        sv = p[1]
        if not 1 <= sv <= 32:
            return Subframe("S", sv, 0, None)
        words = struct.unpack_from("<10I", p, 2)
        return self._gps(sv, bytes(b for w in words for b in (w & 0xFFFFFF).to_bytes(3)))

    def _gps(self, prn: int, data: bytes) -> Ephemeris | Subframe:
        b = Bits(data)
        if b.u(8) != _PREAMBLE:
            raise DecodeError("gps_preamble", f"G{prn:02d} subframe without 0x8B preamble")
        b.pos = 24
        tow = b.u(17) * 6.0
        b.skip(2)
        sfid = b.u(3)
        if sfid not in _SF:
            return Subframe("G", prn, sfid, tow)
        b.pos = 48
        fields: dict[str, float] = {}
        for name, n, signed, scale in _SF[sfid]:
            raw = b.s(n) if signed else b.u(n)
            if name:
                fields[name] = raw * scale if scale != 1 else float(raw)
        sat = self._sf.setdefault(prn, {})
        sat[sfid] = fields
        return self._assemble(prn, sat) or Subframe("G", prn, sfid, tow)

    def _assemble(self, prn: int, sat: dict[int, dict[str, float]]) -> Ephemeris | None:
        if len(sat) < 3:
            return None
        s1, s2, s3 = sat[1], sat[2], sat[3]
        iodc = int(s1["IODC_hi"]) << 8 | int(s1["IODC_lo"])
        if not (s2["IODE"] == s3["IODE"] == (iodc & 0xFF)):
            return None
        key = (s2["IODE"], s2["Toe"])
        if self._last.get(("G", prn)) == key:
            return None
        self._last[("G", prn)] = key
        f = {k: v for k, v in s1.items() if not k.startswith("IODC_")}
        f["IODC"] = float(iodc)
        f.update(s2)
        f.update(s3)
        f["FitIntvl"] = 0.0 if f["FitIntvl"] else 4.0
        return Ephemeris("ubx_sfrbx", "G", prn, int(f["GPSWeek"]), f["Toc"], f)
