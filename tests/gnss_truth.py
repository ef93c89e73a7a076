"""Known-truth GNSS sessions: a displacement injected into real F9P rover observations.

The rover of ``shared/data/gnss/ppk_f9p_4h`` is moved by a known offset (ENU at the base,
metres) by adding the change of every satellite's geometric range, |xs − (xr + d)| −
|xs − xr|, to each pseudorange (m) and carrier phase (that change / wavelength, cycles)
of the rover. Satellite positions come from the session's broadcast ephemerides at the
signal's transmission time; xr is the rover's 4-h fixed position. The shifted session is
written as RINEX 3.04 and read back (re-encoded at RINEX resolution), then solved with
the project's solver. GLONASS (not used by the solver here) is left unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from daq.gnss.obs import GNSSTime, NavData, ObsData, ObsEpoch, wavelength
from daq.gnss.rinex import read_nav, read_obs, write_obs
from daq.gnss.solver.baseline import BaselineSolution, SolverOptions, solve_baseline
from daq.gnss.solver.ephemeris import BroadcastOrbits
from daq.gnss.solver.geodesy import ecef_to_geodetic, enu_rotation


def _gnss_data() -> Path:
    """``shared/data/gnss`` beside the repository (or beside a worktree's parent)."""
    repo = Path(__file__).resolve().parents[1]
    for up in (repo.parent, repo.parent.parent):
        if (up / "shared" / "data" / "gnss").is_dir():
            return up / "shared" / "data" / "gnss"
    return repo.parent / "shared" / "data" / "gnss"


GNSS = _gnss_data()
F9P = GNSS / "ppk_f9p_4h"
F9P_BASE = np.array((2078720.6329, -5683487.5402, 2007608.6397))
HOURS = (13, 14, 15, 16)        # the four 1-h windows 13:27–17:27 GPST


def gpst(h: int, m: int, s: int = 0) -> float:
    return GNSSTime.from_calendar(datetime(2022, 2, 25, h, m, s), "GPST").gps_seconds


def window(k: int) -> tuple[float, float]:
    """The k-th 1-h window of the 4-h file (k = 0…3)."""
    h = HOURS[k]
    return gpst(h, 27), gpst(h + 1, 27) - 1.0


@dataclass
class F9PData:
    rover: ObsData
    base: ObsData
    nav: NavData


def load() -> F9PData:
    return F9PData(read_obs(F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"),
                   read_obs(F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"),
                   read_nav(F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"))


def solve(d: F9PData, rover: ObsData, start: float | None = None,
          end: float | None = None) -> BaselineSolution:
    return solve_baseline(rover, d.base, d.nav, F9P_BASE, SolverOptions(systems="GC"),
                          start=start, end=end)


def enu_to_ecef(enu: np.ndarray) -> np.ndarray:
    lat, lon, _ = ecef_to_geodetic(F9P_BASE)
    return np.asarray(enu, dtype=float) @ enu_rotation(lat, lon)


def shifted_epochs(d: F9PData, rover_xyz: np.ndarray, offset_enu_m: np.ndarray,
                   start: float, end: float) -> list[ObsEpoch]:
    """The rover's epochs in [start, end) moved by ``offset_enu_m`` (ENU at the base, m)."""
    orbits = BroadcastOrbits(d.nav, 0.0)
    dxyz = enu_to_ecef(offset_enu_m)
    epochs: list[ObsEpoch] = []
    for ep in d.rover.epochs:
        t = ep.time.gps_seconds
        if not start <= t < end:
            continue
        new = ObsEpoch(ep.time, ep.sats, ep.codes, ep.values.copy(), ep.lli.copy(),
                       ep.ssi.copy(), ep.flag, ep.clock_offset, ep.event_lines)
        sats = list(ep.sats)
        pr = np.full(len(sats), np.nan)
        for j, c in enumerate(ep.codes):      # the first code column observed, per satellite
            if c[0] == "C":
                pr = np.where(np.isnan(pr), ep.values[:, j], pr)
        pos, _, ok = orbits.transmission_states(sats, np.full(len(sats), t),
                                                np.nan_to_num(pr, nan=2.2e7))
        for i, sat in enumerate(sats):
            if not ok[i] or sat[0] not in "GEC":
                continue
            drho = (float(np.linalg.norm(pos[i] - (rover_xyz + dxyz)))
                    - float(np.linalg.norm(pos[i] - rover_xyz)))
            for j, c in enumerate(ep.codes):
                if not math.isfinite(ep.values[i, j]):
                    continue
                if c[0] == "C":
                    new.values[i, j] += drho
                elif c[0] == "L":
                    new.values[i, j] += drho / wavelength(sat[0], c)
        epochs.append(new)
    return epochs


def write_shifted(d: F9PData, rover_xyz: np.ndarray,
                  windows: list[tuple[float, float, np.ndarray]], path: Path) -> Path:
    """One RINEX 3.04 file of the rover, each window (start, end, offset) moved by its own
    offset: the "re-encoding" (RINEX resolution: 1 mm code, 0.001 cycle phase)."""
    epochs = [e for start, end, off in windows
              for e in shifted_epochs(d, rover_xyz, off, start, end)]
    write_obs(ObsData(d.rover.header, epochs), path)
    return path


def shifted(d: F9PData, rover_xyz: np.ndarray, offset_enu_m: np.ndarray, start: float,
            end: float, tmp: Path) -> ObsData:
    """One window moved by ``offset_enu_m``, written as RINEX and read back."""
    path = tmp / f"rover_{start:.0f}_{abs(hash(tuple(offset_enu_m))) % 10**8}.obs"
    return read_obs(write_shifted(d, rover_xyz, [(start, end + 1e-3, offset_enu_m)], path))


def dam_to_enu(dam: np.ndarray, azimuth_deg: float) -> np.ndarray:
    """(along, downstream, vertical) → ENU for a dam with ``downstream_side='right'``."""
    a = math.radians(azimuth_deg)
    along = np.array([math.sin(a), math.cos(a), 0.0])
    down = np.array([math.cos(a), -math.sin(a), 0.0])
    return dam[0] * along + dam[1] * down + np.array([0.0, 0.0, dam[2]])
