"""RTCM 3 broadcast ephemerides: 1019 GPS, 1020 GLONASS, 1042 BeiDou, 1045/1046 Galileo.

Each message is a fixed sequence of fields; the tables below give, per field, its
georinex RINEX-navigation name, width in bits, signedness and scale to SI units. Angles
broadcast in semicircles are converted to radians with the ICD value of π
(3.1415926535898, as GPS/Galileo/BeiDou ICDs and RTKLIB use); rates to rad/s.
GLONASS fields (sign-magnitude) are converted to metres, m/s, m/s².
"""

from __future__ import annotations

from collections.abc import Callable

from .bits import Bits
from .records import Ephemeris

GPS_PI = 3.1415926535898
SC = GPS_PI          # semicircles → radians

# (name, bits, kind, scale); kind "u" unsigned, "s" two's complement; name "" = skipped
Field = tuple[str, int, str, float]

_KEPLER_TAIL_GPS: list[Field] = [
    ("Crs", 16, "s", 2.0**-5), ("DeltaN", 16, "s", 2.0**-43 * SC),
    ("M0", 32, "s", 2.0**-31 * SC), ("Cuc", 16, "s", 2.0**-29),
    ("Eccentricity", 32, "u", 2.0**-33), ("Cus", 16, "s", 2.0**-29),
    ("sqrtA", 32, "u", 2.0**-19), ("Toe", 16, "u", 16.0), ("Cic", 16, "s", 2.0**-29),
    ("Omega0", 32, "s", 2.0**-31 * SC), ("Cis", 16, "s", 2.0**-29),
    ("Io", 32, "s", 2.0**-31 * SC), ("Crc", 16, "s", 2.0**-5),
    ("omega", 32, "s", 2.0**-31 * SC), ("OmegaDot", 24, "s", 2.0**-43 * SC),
]

GPS_1019: list[Field] = [
    ("prn", 6, "u", 1), ("GPSWeek", 10, "u", 1), ("SVacc", 4, "u", 1),
    ("CodesL2", 2, "u", 1), ("IDOT", 14, "s", 2.0**-43 * SC), ("IODE", 8, "u", 1),
    ("Toc", 16, "u", 16.0), ("SVclockDriftRate", 8, "s", 2.0**-55),
    ("SVclockDrift", 16, "s", 2.0**-43), ("SVclockBias", 22, "s", 2.0**-31),
    ("IODC", 10, "u", 1), *_KEPLER_TAIL_GPS,
    ("TGD", 8, "s", 2.0**-31), ("health", 6, "u", 1), ("L2Pflag", 1, "u", 1),
    ("FitIntvl", 1, "u", 1),
]

BDS_1042: list[Field] = [
    ("prn", 6, "u", 1), ("BDTWeek", 13, "u", 1), ("SVacc", 4, "u", 1),
    ("IDOT", 14, "s", 2.0**-43 * SC), ("AODE", 5, "u", 1), ("Toc", 17, "u", 8.0),
    ("SVclockDriftRate", 11, "s", 2.0**-66), ("SVclockDrift", 22, "s", 2.0**-50),
    ("SVclockBias", 24, "s", 2.0**-33), ("AODC", 5, "u", 1),
    ("Crs", 18, "s", 2.0**-6), ("DeltaN", 16, "s", 2.0**-43 * SC),
    ("M0", 32, "s", 2.0**-31 * SC), ("Cuc", 18, "s", 2.0**-31),
    ("Eccentricity", 32, "u", 2.0**-33), ("Cus", 18, "s", 2.0**-31),
    ("sqrtA", 32, "u", 2.0**-19), ("Toe", 17, "u", 8.0), ("Cic", 18, "s", 2.0**-31),
    ("Omega0", 32, "s", 2.0**-31 * SC), ("Cis", 18, "s", 2.0**-31),
    ("Io", 32, "s", 2.0**-31 * SC), ("Crc", 18, "s", 2.0**-6),
    ("omega", 32, "s", 2.0**-31 * SC), ("OmegaDot", 24, "s", 2.0**-43 * SC),
    ("TGD1", 10, "s", 1e-10), ("TGD2", 10, "s", 1e-10), ("SatH1", 1, "u", 1),
]

_GAL_HEAD: list[Field] = [
    ("prn", 6, "u", 1), ("GALWeek", 12, "u", 1), ("IODnav", 10, "u", 1),
    ("SISA", 8, "u", 1), ("IDOT", 14, "s", 2.0**-43 * SC), ("Toc", 14, "u", 60.0),
    ("SVclockDriftRate", 6, "s", 2.0**-59), ("SVclockDrift", 21, "s", 2.0**-46),
    ("SVclockBias", 31, "s", 2.0**-34),
    ("Crs", 16, "s", 2.0**-5), ("DeltaN", 16, "s", 2.0**-43 * SC),
    ("M0", 32, "s", 2.0**-31 * SC), ("Cuc", 16, "s", 2.0**-29),
    ("Eccentricity", 32, "u", 2.0**-33), ("Cus", 16, "s", 2.0**-29),
    ("sqrtA", 32, "u", 2.0**-19), ("Toe", 14, "u", 60.0), ("Cic", 16, "s", 2.0**-29),
    ("Omega0", 32, "s", 2.0**-31 * SC), ("Cis", 16, "s", 2.0**-29),
    ("Io", 32, "s", 2.0**-31 * SC), ("Crc", 16, "s", 2.0**-5),
    ("omega", 32, "s", 2.0**-31 * SC), ("OmegaDot", 24, "s", 2.0**-43 * SC),
    ("BGDe5a", 10, "s", 2.0**-32),
]
GAL_1045: list[Field] = [*_GAL_HEAD, ("E5aHS", 2, "u", 1), ("E5aDVS", 1, "u", 1)]
GAL_1046: list[Field] = [*_GAL_HEAD, ("BGDe5b", 10, "s", 2.0**-32), ("E5bHS", 2, "u", 1),
                         ("E5bDVS", 1, "u", 1), ("E1BHS", 2, "u", 1), ("E1BDVS", 1, "u", 1)]


def _read(b: Bits, table: list[Field]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, n, kind, scale in table:
        raw = b.s(n) if kind == "s" else b.u(n)
        if name:
            out[name] = raw * scale if scale != 1 else float(raw)
    return out


def _kepler(source: str, sys: str, week_key: str, table: list[Field]) -> Callable[[Bits],
                                                                               Ephemeris]:
    def decode(b: Bits) -> Ephemeris:
        f = _read(b, table)
        prn = int(f.pop("prn"))
        week = int(f[week_key])
        if sys == "G":
            f["FitIntvl"] = 0.0 if f["FitIntvl"] else 4.0   # flag 0: 4 h fit (ICD)
        if sys == "E":
            # RINEX data source bits: 1045 F/NAV (E5a), 1046 I/NAV (E1-B/E5b)
            f["DataSrc"] = 258.0 if source == "rtcm1045" else 517.0
        return Ephemeris(source, sys, prn, week, f["Toc"], f)
    return decode


def decode_glonass(b: Bits) -> Ephemeris:
    """1020: position (m), velocity (m/s), lunisolar acceleration (m/s²) in PZ-90 at tb."""
    f: dict[str, float] = {}
    prn = b.u(6)
    f["FreqNum"] = float(b.u(5) - 7)
    f["AlmHealth"], f["AlmHealthAvail"] = float(b.u(1)), float(b.u(1))
    b.skip(2)                                                    # P1
    f["MessageFrameTime"] = b.u(5) * 3600.0 + b.u(6) * 60.0 + b.u(1) * 30.0   # tk, s of day
    f["health"] = float(b.u(1))                                  # Bn (MSB)
    b.skip(1)                                                    # P2
    f["tb"] = b.u(7) * 900.0                                     # s of the UTC(SU) day
    for axis in ("X", "Y", "Z"):
        f[f"d{axis}"] = b.g(24) * 2.0**-20 * 1e3
        f[axis] = b.g(27) * 2.0**-11 * 1e3
        f[f"d{axis}2"] = b.g(5) * 2.0**-30 * 1e3
    b.skip(1)                                                    # P3
    f["SVrelFreqBias"] = b.g(11) * 2.0**-40                      # γn
    b.skip(2 + 1)                                                # P, ln
    f["SVclockBias"] = -b.g(22) * 2.0**-30                       # RINEX stores −τn
    b.skip(5)                                                    # Δτn
    f["AgeOpInfo"] = float(b.u(5))                               # En, days
    return Ephemeris("rtcm1020", "R", prn, 0, f["tb"], f)


DECODERS: dict[int, Callable[[Bits], Ephemeris]] = {
    1019: _kepler("rtcm1019", "G", "GPSWeek", GPS_1019),
    1020: decode_glonass,
    1042: _kepler("rtcm1042", "C", "BDTWeek", BDS_1042),
    1045: _kepler("rtcm1045", "E", "GALWeek", GAL_1045),
    1046: _kepler("rtcm1046", "E", "GALWeek", GAL_1046),
}
