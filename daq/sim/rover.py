"""A simulated RTK rover on a monitoring pier: NMEA 0183 epochs as a pure function of
(seed, time).

The pier sits at ``reference`` (WGS84 lat/lon deg, ellipsoidal height m). Its true
offset from there, in mm: east ``2.0·sin(2πt/1 d + φ)``, north ``−1.5·sin(2πt/1 d + φ)``
(a daily thermal sway of the dam crest), up ``3.0·sin(2πt/365 d + φ)``; φ from the seed.
Each second the receiver reports that position with Gaussian noise (σ 3 mm horizontal,
6 mm vertical) as RTK fixed, except with probability ``float_rate`` an RTK float epoch
(noise 0.3 m). Every epoch is a GGA (high-precision NMEA: 7 decimals of arc-minutes, as
u-blox ``CFG-NMEA-HIGHPREC`` gives), a GST (the σ the receiver claims), an RMC, a GSA and
three GSV sentences: about 700 bytes a second, as a real receiver at 1 Hz sends.
"""

from __future__ import annotations

import datetime
import math
import random
from dataclasses import dataclass

from daq.gnss.streams.framing import nmea_checksum

DAY = 86400.0
YEAR = 365.25 * DAY
WGS84_A = 6378137.0
WGS84_E2 = (1.0 / 298.257223563) * (2.0 - 1.0 / 298.257223563)
GEOID_SEP = -41.5  # m: the geoid above the ellipsoid, as the receiver reports it


def sentence(body: str) -> bytes:
    """``$body*hh\\r\\n`` with its checksum."""
    return f"${body}*{nmea_checksum(body.encode()):02X}\r\n".encode()


@dataclass(frozen=True)
class Epoch:
    t: int                 # UTC epoch second
    quality: int           # 4 RTK fixed, 5 RTK float
    east: float            # reported offset from the reference, m
    north: float
    up: float
    truth: tuple[float, float, float]   # true offset (m), noise free


class Rover:
    def __init__(self, seed: int = 0, reference: tuple[float, float, float] = (
            36.1, 117.2, 60.0), float_rate: float = 0.0) -> None:
        self.seed = seed
        self.reference = reference
        self.float_rate = float_rate
        self.phase = random.Random(seed).uniform(0.0, 2.0 * math.pi)

    def truth(self, t: float) -> tuple[float, float, float]:
        """The pier's true (east, north, up) offset from the reference at ``t``, m."""
        d = math.sin(2.0 * math.pi * t / DAY + self.phase)
        y = math.sin(2.0 * math.pi * t / YEAR + self.phase)
        return 0.002 * d, -0.0015 * d, 0.003 * y

    def epoch(self, t: int) -> Epoch:
        rng = random.Random(self.seed * 1_000_003 + t)
        e0, n0, u0 = self.truth(t)
        floating = rng.random() < self.float_rate
        sh, sv = (0.3, 0.3) if floating else (0.003, 0.006)
        return Epoch(t, 5 if floating else 4, e0 + rng.gauss(0.0, sh),
                     n0 + rng.gauss(0.0, sh), u0 + rng.gauss(0.0, sv), (e0, n0, u0))

    def position(self, ep: Epoch) -> tuple[float, float, float]:
        """(lat deg, lon deg, ellipsoidal h m) of an epoch (small offsets: local radii)."""
        lat, lon, h = self.reference
        phi = math.radians(lat)
        w = math.sqrt(1.0 - WGS84_E2 * math.sin(phi) ** 2)
        r_n = WGS84_A * (1.0 - WGS84_E2) / w ** 3 + h     # meridian radius
        r_e = (WGS84_A / w + h) * math.cos(phi)           # parallel radius
        return (lat + math.degrees(ep.north / r_n), lon + math.degrees(ep.east / r_e),
                h + ep.up)

    def nmea(self, t: int) -> bytes:
        """The sentences of the epoch at UTC second ``t``."""
        ep = self.epoch(t)
        lat, lon, h = self.position(ep)
        sod = t % 86400
        hms = f"{sod // 3600:02d}{sod % 3600 // 60:02d}{sod % 60:02d}.00"
        date = datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%d%m%y")
        la, lo = abs(lat), abs(lon)
        lat_s = f"{int(la):02d}{(la - int(la)) * 60:010.7f},{'N' if lat >= 0 else 'S'}"
        lon_s = f"{int(lo):03d}{(lo - int(lo)) * 60:010.7f},{'E' if lon >= 0 else 'W'}"
        msl = h - GEOID_SEP
        sig = (0.3, 0.3, 0.5) if ep.quality == 5 else (0.004, 0.004, 0.008)
        out = [
            sentence(f"GNGGA,{hms},{lat_s},{lon_s},{ep.quality},14,0.62,{msl:.4f},M,"
                     f"{GEOID_SEP:.1f},M,1.0,0000"),
            sentence(f"GNGST,{hms},0.012,{sig[0]:.3f},{sig[1]:.3f},0.0,{sig[0]:.3f},"
                     f"{sig[1]:.3f},{sig[2]:.3f}"),
            sentence(f"GNRMC,{hms},A,{lat_s},{lon_s},0.002,,{date},,,R,V"),
            sentence("GNGSA,A,3,02,05,12,13,15,18,20,25,29,,,,1.10,0.62,0.91,1"),
        ]
        for k in range(3):
            sats = ",".join(f"{2 + 8 * k + j:02d},{30 + 5 * j:02d},{(40 * j + 90 * k) % 360:03d},"
                            f"{40 + j}" for j in range(4))
            out.append(sentence(f"GPGSV,3,{k + 1},12,{sats},1"))
        return b"".join(out)
