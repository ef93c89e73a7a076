"""Satellite positions and clocks from broadcast Keplerian ephemerides (GPS, Galileo, BeiDou).

What it computes, following IS-GPS-200 (§20.3.3.4.3), the Galileo OS SIS ICD and the BeiDou
ICD, in the form RTKLIB 2.4.3 uses (``ephemeris.c``), so that both agree to the millimetre:

- orbit: Kepler's equation (Newton, 1e-13 rad), harmonic corrections, ECEF at the
  transmission time. Earth constants per system (GPS μ 3.9860050e14, Ω̇e 7.2921151467e-5;
  Galileo μ 3.986004418e14; BeiDou μ 3.986004418e14, Ω̇e 7.292115e-5).
- BeiDou GEO satellites (C01–C05, C59–C63): the orbit is computed in an inertial-like
  frame inclined by −5° and rotated to ECEF (BeiDou ICD §5.2.4.12).
- clock: ``af0 + af1·Δt + af2·Δt²`` with Δt from ``toc``, plus the relativistic term
  ``−2·√(μ·A)·e·sin E / c²``. The group delay (TGD/BGD) is *not* in the clock: it
  depends on the signal, see :func:`group_delay`.
- signal travel time: the transmission time is ``t_rx − P/c − dtˢ`` (pseudorange P),
  see :meth:`BroadcastOrbits.at_transmission`; the Earth's rotation during travel is the
  Sagnac term in :func:`geometric_range`.

Times: every time here is **GPST seconds relative to a reference** ``t0`` chosen by the
caller (an integer second near the session), so that float64 keeps 1e-12 s resolution.
BeiDou toe/toc (BDT) are converted to GPST (BDT = GPST − 14 s).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit
from numpy.typing import NDArray

from daq.gnss.obs import CLIGHT, KeplerEphemeris, NavData

OMGE_GPS = 7.2921151467e-5       # Earth rotation rate (rad/s), also WGS84/Galileo
OMGE_BDS = 7.292115e-5           # CGCS2000
MU_GPS = 3.9860050e14            # m³/s², as IS-GPS-200
MU_GAL = 3.986004418e14
MU_BDS = 3.986004418e14

SYSTEM_CODE = {"G": 0, "E": 1, "C": 2, "J": 3}
MAX_AGE_S = {"G": 7201.0, "J": 7201.0, "E": 10800.0, "C": 21601.0}   # |t − toe| allowed
CHUNK_ROWS = 16384               # rows per pass of transmission_states (memory bound)
_SIN_5 = -0.0871557427476582     # sin(−5°)
_COS_5 = 0.9961946980917456      # cos(−5°)

# column layout of one ephemeris row (float64)
(_SYS, _GEO, _TOE, _TOC, _AF0, _AF1, _AF2, _SQRTA, _E, _I0, _OMG0, _OMG, _M0, _DELN,
 _OMGD, _IDOT, _CUC, _CUS, _CRC, _CRS, _CIC, _CIS, _TOES, _NCOL) = range(24)


@njit(cache=True, nogil=True)
def _kepler_states(eph: NDArray[np.float64], t: NDArray[np.float64],
                   pos: NDArray[np.float64], clk: NDArray[np.float64]) -> None:
    """Position (m, ECEF) and clock bias (s, relativity included) of row i at t[i]."""
    for k in range(t.shape[0]):
        row = eph[k]
        sysc = row[_SYS]
        if sysc == 1.0:
            mu, omge = 3.986004418e14, 7.2921151467e-5
        elif sysc == 2.0:
            mu, omge = 3.986004418e14, 7.292115e-5
        else:
            mu, omge = 3.9860050e14, 7.2921151467e-5
        a = row[_SQRTA] * row[_SQRTA]
        e = row[_E]
        tk = t[k] - row[_TOE]
        m = row[_M0] + (np.sqrt(mu / (a * a * a)) + row[_DELN]) * tk
        ea = m
        ek = 0.0
        n = 0
        while abs(ea - ek) > 1e-13 and n < 30:
            ek = ea
            ea -= (ea - e * np.sin(ea) - m) / (1.0 - e * np.cos(ea))
            n += 1
        sin_e = np.sin(ea)
        cos_e = np.cos(ea)
        u = np.arctan2(np.sqrt(1.0 - e * e) * sin_e, cos_e - e) + row[_OMG]
        r = a * (1.0 - e * cos_e)
        inc = row[_I0] + row[_IDOT] * tk
        sin2u = np.sin(2.0 * u)
        cos2u = np.cos(2.0 * u)
        u += row[_CUS] * sin2u + row[_CUC] * cos2u
        r += row[_CRS] * sin2u + row[_CRC] * cos2u
        inc += row[_CIS] * sin2u + row[_CIC] * cos2u
        x = r * np.cos(u)
        y = r * np.sin(u)
        cosi = np.cos(inc)
        if row[_GEO] != 0.0:
            om = row[_OMG0] + row[_OMGD] * tk - omge * row[_TOES]
            sin_o = np.sin(om)
            cos_o = np.cos(om)
            xg = x * cos_o - y * cosi * sin_o
            yg = x * sin_o + y * cosi * cos_o
            zg = y * np.sin(inc)
            sino = np.sin(omge * tk)
            coso = np.cos(omge * tk)
            pos[k, 0] = xg * coso + yg * sino * _COS_5 + zg * sino * _SIN_5
            pos[k, 1] = -xg * sino + yg * coso * _COS_5 + zg * coso * _SIN_5
            pos[k, 2] = -yg * _SIN_5 + zg * _COS_5
        else:
            om = row[_OMG0] + (row[_OMGD] - omge) * tk - omge * row[_TOES]
            sin_o = np.sin(om)
            cos_o = np.cos(om)
            pos[k, 0] = x * cos_o - y * cosi * sin_o
            pos[k, 1] = x * sin_o + y * cosi * cos_o
            pos[k, 2] = y * np.sin(inc)
        tc = t[k] - row[_TOC]
        clk[k] = (row[_AF0] + row[_AF1] * tc + row[_AF2] * tc * tc
                  - 2.0 * np.sqrt(mu * a) * e * sin_e / (299792458.0 * 299792458.0))


@njit(cache=True, nogil=True)
def _polynomial_clock(eph: NDArray[np.float64], t: NDArray[np.float64],
                      clk: NDArray[np.float64]) -> None:
    """Clock polynomial (s) at the time given by the *satellite* clock (2 iterations)."""
    for k in range(t.shape[0]):
        row = eph[k]
        tc = t[k] - row[_TOC]
        for _ in range(2):
            tc -= row[_AF0] + row[_AF1] * tc + row[_AF2] * tc * tc
        clk[k] = row[_AF0] + row[_AF1] * tc + row[_AF2] * tc * tc


def _is_inav(eph: KeplerEphemeris) -> bool:
    """Galileo I/NAV record: RINEX data-source bit 9 (clock for E5b/E1) set."""
    return bool(int(eph.codes) & (1 << 9))


def is_beidou_geo(sat: str) -> bool:
    """BeiDou GEO satellites: C01–C05 (BDS-2) and C59–C63 (BDS-3)."""
    if sat[0] != "C":
        return False
    prn = int(sat[1:])
    return prn <= 5 or prn >= 59


def _gpst_seconds(week: int, sow: float, scale: str) -> float:
    """Seconds of GPST since 1980-01-06 for a week/sow in GPST, GST or BDT."""
    if scale == "BDT":
        return (week + 1356) * 604800.0 + sow + 14.0
    return week * 604800.0 + sow


def _row(eph: KeplerEphemeris, t0: float) -> NDArray[np.float64]:
    scale = eph.time_scale
    row = np.zeros(_NCOL)
    row[_SYS] = SYSTEM_CODE[eph.sat[0]]
    row[_GEO] = 1.0 if is_beidou_geo(eph.sat) else 0.0
    toe = _gpst_seconds(eph.week, eph.toe, scale)
    # RINEX "week" goes with toe; toc carries its own week (GNSSTime)
    toc = _gpst_seconds(eph.toc.week, eph.toc.sow, eph.toc.scale)
    row[_TOE] = toe - t0
    row[_TOC] = toc - t0
    row[_AF0], row[_AF1], row[_AF2] = eph.af0, eph.af1, eph.af2
    row[_SQRTA], row[_E], row[_I0] = eph.sqrta, eph.e, eph.i0
    row[_OMG0], row[_OMG], row[_M0], row[_DELN] = eph.omega0, eph.omega, eph.m0, eph.deltan
    row[_OMGD], row[_IDOT] = eph.omegadot, eph.idot
    row[_CUC], row[_CUS], row[_CRC], row[_CRS] = eph.cuc, eph.cus, eph.crc, eph.crs
    row[_CIC], row[_CIS] = eph.cic, eph.cis
    row[_TOES] = eph.toe
    return row


class BroadcastOrbits:
    """The usable broadcast ephemerides of one or more navigation files, ready to evaluate.

    ``t0``: the reference (GPST seconds since 1980-01-06) of every time argument.
    Records that are unhealthy (``svh`` ≠ 0), of a system other than G/E/C/J, or with a
    non-physical orbit (``sqrta`` < 1000 m^½, e ≥ 1) are skipped and counted in
    :attr:`skipped`.
    """

    def __init__(self, navs: NavData | Iterable[NavData], t0: float) -> None:
        if isinstance(navs, NavData):
            navs = [navs]
        self.t0 = float(t0)
        self.skipped = 0
        rows: dict[str, list[tuple[NDArray[np.float64], KeplerEphemeris]]] = {}
        for nav in navs:
            for eph in nav.ephemerides:
                if not isinstance(eph, KeplerEphemeris) or eph.sat[0] not in SYSTEM_CODE:
                    self.skipped += 1
                    continue
                if eph.svh != 0 or not (eph.sqrta > 1000.0 and 0.0 <= eph.e < 1.0):
                    self.skipped += 1
                    continue
                rows.setdefault(eph.sat, []).append((_row(eph, self.t0), eph))
        self._rows: dict[str, NDArray[np.float64]] = {}
        self._records: dict[str, list[KeplerEphemeris]] = {}
        for sat, lst in rows.items():
            if sat[0] == "E" and any(_is_inav(e) for _, e in lst):
                lst = [item for item in lst if _is_inav(item[1])]
            lst.sort(key=lambda item: float(item[0][_TOE]))
            self._rows[sat] = np.array([r for r, _ in lst])
            self._records[sat] = [e for _, e in lst]

    @property
    def satellites(self) -> list[str]:
        return sorted(self._rows)

    def select(self, sat: str, t: float) -> int:
        """Index of the record whose toe is nearest to ``t`` (later one on a tie), or −1
        when none is within the system's validity (2 h GPS/QZSS, 3 h Galileo, 6 h BeiDou).

        As RTKLIB 2.4.3: Galileo uses I/NAV records when the file has any (their clock
        refers to E1/E5b) and only records already issued (toe before ``t``).
        """
        return int(self.select_many(sat, np.array([t]))[0])

    def select_many(self, sat: str, t: NDArray[np.float64]) -> NDArray[np.int64]:
        """:meth:`select` for many times of one satellite at once."""
        t = np.asarray(t, dtype=np.float64)
        rows = self._rows.get(sat)
        if rows is None:
            return np.full(t.shape[0], -1, dtype=np.int64)
        signed = t[:, None] - rows[None, :, _TOE]
        d = np.abs(signed)
        ok = d <= MAX_AGE_S[sat[0]]
        if sat[0] == "E":
            ok &= signed > 0.0
        d = np.where(ok, d, np.inf)
        k = d.shape[1] - 1 - np.argmin(d[:, ::-1], axis=1)    # the later one on a tie
        found = np.isfinite(d[np.arange(d.shape[0]), k])
        return np.where(found, k, -1).astype(np.int64)

    def record(self, sat: str, index: int) -> KeplerEphemeris:
        """The ephemeris record behind :meth:`select`'s index."""
        return self._records[sat][index]

    def rows_for(self, sats: list[str], t_select: float) -> tuple[NDArray[np.float64],
                                                                   NDArray[np.bool_]]:
        """Rows selected at ``t_select`` for each satellite, and which ones exist."""
        out = np.zeros((len(sats), _NCOL))
        ok = np.zeros(len(sats), dtype=np.bool_)
        for i, sat in enumerate(sats):
            j = self.select(sat, t_select)
            if j >= 0:
                out[i] = self._rows[sat][j]
                ok[i] = True
        return out, ok

    def at_transmission(self, sats: list[str], t_rx: float, pseudorange: NDArray[np.float64]
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Satellite states at the transmission time of signals received at ``t_rx``.

        ``t_rx`` (s, rel. to t0) is the receiver's epoch time tag, ``pseudorange`` (m) one
        per satellite. The transmission time is ``t_rx − P/c`` corrected by the satellite
        clock polynomial, as RTKLIB's ``satposs``. Returns positions (m), clock biases
        (s, relativity included), validity (False without ephemeris or pseudorange).
        """
        pr = np.asarray(pseudorange, dtype=np.float64)
        if pr.shape != (len(sats),):
            raise ValueError("need one pseudorange per satellite")
        return self.transmission_states(sats, np.full(len(sats), float(t_rx)), pr)

    def transmission_states(self, sats: list[str], t_rx: NDArray[np.float64],
                            pseudorange: NDArray[np.float64]
                            ) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                       NDArray[np.bool_]]:
        """:meth:`at_transmission` for rows of (satellite, receive time, pseudorange),
        e.g. a whole session at once; the ephemeris is selected at each row's ``t_rx``.

        Rows are computed ``CHUNK_ROWS`` at a time (each row on its own, so the result
        does not depend on the chunking): a whole 1 Hz session would otherwise hold two
        (rows, 24) float64 copies of the selected ephemerides at once."""
        t_rx = np.asarray(t_rx, dtype=np.float64)
        pr = np.asarray(pseudorange, dtype=np.float64)
        n = len(sats)
        if t_rx.shape != (n,) or pr.shape != (n,):
            raise ValueError("need one receive time and one pseudorange per row")
        if n <= CHUNK_ROWS:
            return self._states(sats, t_rx, pr)
        pos = np.empty((n, 3))
        clk = np.empty(n)
        ok = np.empty(n, dtype=np.bool_)
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            pos[lo:hi], clk[lo:hi], ok[lo:hi] = self._states(sats[lo:hi], t_rx[lo:hi],
                                                             pr[lo:hi])
        return pos, clk, ok

    def _states(self, sats: list[str], t_rx: NDArray[np.float64], pr: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        n = len(sats)
        rows = np.zeros((n, _NCOL))
        ok = np.zeros(n, dtype=np.bool_)
        names = np.array(sats, dtype=object)
        for sat in set(sats):
            mine = np.nonzero(names == sat)[0]
            idx = self.select_many(sat, t_rx[mine])
            have = idx >= 0
            if have.any():
                rows[mine[have]] = self._rows[sat][idx[have]]
                ok[mine[have]] = True
        ok &= np.isfinite(pr) & (pr > 0.0)
        pos = np.full((n, 3), np.nan)
        clk = np.full(n, np.nan)
        if ok.any():
            sel = np.ascontiguousarray(rows[ok])
            t_tx = t_rx[ok] - pr[ok] / CLIGHT
            poly = np.zeros(t_tx.shape[0])
            _polynomial_clock(sel, t_tx, poly)
            t_tx = t_tx - poly
            p = np.zeros((t_tx.shape[0], 3))
            c = np.zeros(t_tx.shape[0])
            _kepler_states(sel, t_tx, p, c)
            pos[ok], clk[ok] = p, c
        return pos, clk, ok


def geometric_range(sat_xyz: NDArray[np.float64], rcv_xyz: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Range (m) including the Earth's rotation during signal travel (Sagnac term), and
    the receiver-to-satellite unit vectors (n, 3)."""
    d = np.asarray(sat_xyz, dtype=float) - np.asarray(rcv_xyz, dtype=float)
    rng = np.linalg.norm(d, axis=-1)
    unit = d / rng[..., None]
    sagnac = OMGE_GPS * (sat_xyz[..., 0] * rcv_xyz[..., 1]
                         - sat_xyz[..., 1] * rcv_xyz[..., 0]) / CLIGHT
    return rng + sagnac, unit


def group_delay(eph: KeplerEphemeris, code: str) -> float:
    """Group delay (s) to *subtract* from the broadcast clock for a code pseudorange.

    GPS L1 (C1x): TGD; L2: (f1/f2)²·TGD. Galileo E1: BGD(E5a/E1) (``tgd``); E5b: scaled
    BGD(E5b/E1). BeiDou B1I (C2I): TGD1; B2I (C7I): TGD2; B3I (C6I): 0 (the clock's
    reference signal). Other codes: 0.
    """
    sys_, band = eph.sat[0], code[1]
    if sys_ in "GJ":
        if band == "1":
            return eph.tgd
        if band == "2":
            return (1575.42 / 1227.60) ** 2 * eph.tgd
        return 0.0
    if sys_ == "E":
        if band == "1":
            return eph.tgd
        if band == "7":
            return (1575.42 / 1207.14) ** 2 * eph.tgd2
        return 0.0
    if sys_ == "C":
        return {"2": eph.tgd, "7": eph.tgd2}.get(band, 0.0)
    return 0.0
