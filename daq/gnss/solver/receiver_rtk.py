"""Receiver-RTK sessions: ENU offsets from a reference point and session statistics.

Geodesy: WGS84 ellipsoid; latitude/longitude in degrees, ellipsoidal height in m; ENU
(east, north, up) in m in the local frame at the reference point. Session statistics use
RTK-fixed epochs only (GGA quality 4): per component the median, the robust σ
(1.4826 × MAD), the mean of the inliers (|x − median| ≤ k·max(σ, min_sigma), k = 3),
their spread (max − min) and how many epochs were rejected; plus the fixed ratio of the
session. ``min_sigma`` (default 5 mm) keeps quantised positions from being thrown out when
MAD is 0: GGA with 5 decimals of arc-minutes resolves only ≈ 1.9 cm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from daq.gnss.streams.nmea import RTK_FIXED

from . import geodesy

MAD_TO_SIGMA = 1.4826


def geodetic_to_ecef(lat: float, lon: float, h: float) -> tuple[float, float, float]:
    """WGS84 geodetic (deg, deg, m) → ECEF (m); :func:`daq.gnss.solver.geodesy.geodetic_to_ecef`
    takes radians."""
    x, y, z = geodesy.geodetic_to_ecef(math.radians(lat), math.radians(lon), h)
    return float(x), float(y), float(z)


def enu_offset(lat: float, lon: float, h: float,
               ref: tuple[float, float, float]) -> tuple[float, float, float]:
    """(east, north, up) in m of a point from ``ref`` = (lat, lon, h), WGS84 (deg, m)."""
    phi, lam = math.radians(ref[0]), math.radians(ref[1])
    d = (geodesy.geodetic_to_ecef(math.radians(lat), math.radians(lon), h)
         - geodesy.geodetic_to_ecef(phi, lam, ref[2]))
    e, n, u = geodesy.enu_rotation(phi, lam) @ d
    return float(e), float(n), float(u)


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


def _component(x: np.ndarray, k: float, min_sigma: float) -> ComponentStats:
    med = float(np.median(x))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(x - med)))
    keep = x[np.abs(x - med) <= k * max(sigma, min_sigma)]
    return ComponentStats(med, float(keep.mean()), sigma, float(keep.max() - keep.min()),
                          int(x.size - keep.size))


def session_stats(fixes: Sequence[EnuFix] | Iterable[EnuFix], k: float = 3.0,
                  min_sigma: float = 0.005) -> SessionStats:
    """Robust statistics of a session's RTK-fixed epochs (float, single, no-fix ignored)."""
    fixes = list(fixes)
    fixed = [f for f in fixes if f.quality == RTK_FIXED and
             all(math.isfinite(v) for v in (f.e, f.n, f.u))]
    ratio = len(fixed) / len(fixes) if fixes else 0.0
    if not fixed:
        return SessionStats(len(fixes), 0, ratio, None, None, None)
    arr = np.array([(f.e, f.n, f.u) for f in fixed], dtype=float)
    e, n, u = (_component(arr[:, i], k, min_sigma) for i in range(3))
    return SessionStats(len(fixes), len(fixed), ratio, e, n, u)
