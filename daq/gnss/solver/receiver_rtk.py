"""Receiver-RTK sessions: ENU offsets from a reference point and session statistics.

Geodesy: WGS84 ellipsoid; latitude/longitude in degrees, ellipsoidal height in m; ENU
(east, north, up) in m in the local frame at the reference point. Session statistics use
RTK-fixed epochs only (GGA quality 4): per component the median, the robust σ
(1.4826 × MAD), the mean of the inliers (|x − median| ≤ k·max(σ, min_sigma), k = 3),
their spread (max − min) and how many epochs were rejected; plus the fixed ratio of the
session. ``min_sigma`` (default 5 mm) keeps quantised positions from being thrown out when
MAD is 0: GGA with 5 decimals of arc-minutes resolves only ≈ 1.9 cm.

Plain Python (``math``, ``statistics``), no NumPy: the ``nmea`` driver needs only this
module, and a site whose only GNSS is a receiver reporting NMEA must not load NumPy for a
few hundred numbers per session (the formulas are those of :mod:`.geodesy`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daq.gnss.streams.nmea import RTK_FIXED

MAD_TO_SIGMA = 1.4826
WGS84_A = 6378137.0                    # as in .geodesy (which needs NumPy)
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def _ecef(lat: float, lon: float, h: float) -> tuple[float, float, float]:
    """(lat rad, lon rad, height m) → ECEF (m): :func:`.geodesy.geodetic_to_ecef`."""
    sinp, cosp = math.sin(lat), math.cos(lat)
    v = WGS84_A / math.sqrt(1.0 - WGS84_E2 * sinp * sinp)
    return ((v + h) * cosp * math.cos(lon), (v + h) * cosp * math.sin(lon),
            (v * (1.0 - WGS84_E2) + h) * sinp)


def geodetic_to_ecef(lat: float, lon: float, h: float) -> tuple[float, float, float]:
    """WGS84 geodetic (deg, deg, m) → ECEF (m); :func:`daq.gnss.solver.geodesy.geodetic_to_ecef`
    takes radians."""
    return _ecef(math.radians(lat), math.radians(lon), h)


def enu_offset(lat: float, lon: float, h: float,
               ref: tuple[float, float, float]) -> tuple[float, float, float]:
    """(east, north, up) in m of a point from ``ref`` = (lat, lon, h), WGS84 (deg, m)."""
    phi, lam = math.radians(ref[0]), math.radians(ref[1])
    p = _ecef(math.radians(lat), math.radians(lon), h)
    o = _ecef(phi, lam, ref[2])
    dx, dy, dz = p[0] - o[0], p[1] - o[1], p[2] - o[2]
    sl, cl, sp, cp = math.sin(lam), math.cos(lam), math.sin(phi), math.cos(phi)
    # the rows of .geodesy.enu_rotation
    return (-sl * dx + cl * dy, -sp * cl * dx - sp * sl * dy + cp * dz,
            cp * cl * dx + cp * sl * dy + sp * dz)


@dataclass(frozen=True, slots=True)
class EnuFix:
    """One epoch: GGA fix quality and its ENU offset (m) from the reference."""

    quality: int
    e: float
    n: float
    u: float


@dataclass(frozen=True, slots=True)
class ComponentStats:
    median: float        # m
    mean: float          # m, mean of the inliers
    sigma: float         # m, 1.4826 × MAD
    spread: float        # m, max − min of the inliers
    rejected: int        # fixed epochs outside median ± k·σ


@dataclass(frozen=True, slots=True)
class SessionStats:
    epochs: int          # all epochs offered
    fixed: int           # RTK-fixed epochs used
    fixed_ratio: float   # fixed / epochs (0 when there are none)
    e: ComponentStats | None
    n: ComponentStats | None
    u: ComponentStats | None


def _component(x: list[float], k: float, min_sigma: float) -> ComponentStats:
    med = statistics.median(x)
    sigma = MAD_TO_SIGMA * statistics.median([abs(v - med) for v in x])
    keep = [v for v in x if abs(v - med) <= k * max(sigma, min_sigma)]
    return ComponentStats(med, math.fsum(keep) / len(keep), sigma, max(keep) - min(keep),
                          len(x) - len(keep))


def session_stats(fixes: Sequence[EnuFix] | Iterable[EnuFix], k: float = 3.0,
                  min_sigma: float = 0.005) -> SessionStats:
    """Robust statistics of a session's RTK-fixed epochs (float, single, no-fix ignored)."""
    fixes = list(fixes)
    fixed = [f for f in fixes if f.quality == RTK_FIXED and
             all(math.isfinite(v) for v in (f.e, f.n, f.u))]
    ratio = len(fixed) / len(fixes) if fixes else 0.0
    if not fixed:
        return SessionStats(len(fixes), 0, ratio, None, None, None)
    e, n, u = (_component(list(c), k, min_sigma)
               for c in zip(*((f.e, f.n, f.u) for f in fixed), strict=True))
    return SessionStats(len(fixes), len(fixed), ratio, e, n, u)
