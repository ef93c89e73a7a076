"""Least-squares machinery of the baseline solver: the observation model at a rover
position, the ambiguity datum, and Gauss–Newton iterations over the whole session.

Parameters: rover ECEF position (m) in columns 0–2, then one single-difference ambiguity
(cycles) per estimated arc. One arc per connected group of arcs (per system and band) is
*held* at its starting value: the datum. The estimated ambiguities minus their datum's
value are then double-difference integers, which is what LAMBDA searches.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from daq.gnss.obs import CLIGHT

from .ephemeris import geometric_range
from .geodesy import ecef_to_geodetic
from .kernels import accumulate_normals, dd_residuals
from .session_arrays import SessionArrays
from .troposphere import slant_hydrostatic_delay

ModelTerms = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                   NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]
PhaseTerms = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]
CHUNK_ROWS = 16384        # rows of model terms computed at a time (memory bound)


def elevation(unit: NDArray[np.float64], xyz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Elevation (rad) of receiver→satellite unit vectors (n, 3) at ECEF ``xyz``."""
    lat, lon, _ = ecef_to_geodetic(xyz)
    up = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    return np.arcsin(np.clip(unit @ up, -1.0, 1.0))


class SessionModel:
    """Rover-position-dependent model terms over the assembled arrays.

    The terms are computed ``CHUNK_ROWS`` rows (whole epochs) at a time and streamed into
    the normal equations, so a 1 Hz session (10⁵ rows) never holds the full set of model
    terms: only the phase residuals and their validity (:meth:`phase_terms`) are kept
    whole, for the slip screening and the residual statistics."""

    def __init__(self, arr: SessionArrays, mask_rad: float, sigma_a: float, sigma_b: float,
                 code_factor: float) -> None:
        self.arr = arr
        self.mask = mask_rad
        self.sigma = (sigma_a, sigma_b, code_factor)
        self.arc_ok = np.ones(arr.n_arcs, dtype=np.bool_)
        self.lam0 = np.nan_to_num(arr.lam)     # the kernels' wavelengths (0: no signal)

    def chunks(self) -> list[tuple[int, int]]:
        """(first epoch, end epoch) ranges of at most ``CHUNK_ROWS`` rows (one epoch at
        least)."""
        starts = self.arr.epoch_start
        n_ep = starts.shape[0] - 1
        out = []
        e0 = 0
        while e0 < n_ep:
            e1 = int(np.searchsorted(starts, starts[e0] + CHUNK_ROWS, side="right")) - 1
            e1 = min(max(e1, e0 + 1), n_ep)
            out.append((e0, e1))
            e0 = e1
        return out

    def terms(self, xr: NDArray[np.float64], amb: NDArray[np.float64], lo: int = 0,
              hi: int | None = None) -> ModelTerms:
        """(el, unit, y_ph, y_cd, valid_phase, valid_code) of rows ``lo:hi`` at rover
        position ``xr`` (m) with SD ambiguities ``amb`` (cycles, one per arc)."""
        a = self.arr
        rows = slice(lo, hi)
        sat_pos = a.sat_pos[rows]
        rng, unit = geometric_range(sat_pos, np.broadcast_to(xr, sat_pos.shape))
        el = elevation(unit, xr)
        lat, _, h = ecef_to_geodetic(xr)
        rover_model = rng - CLIGHT * a.sat_clk[rows] + slant_hydrostatic_delay(
            el, lat, h, a.doy[rows])
        sd_model = (rover_model - a.base_model[rows])[:, None]
        del rng, rover_model
        y_cd = a.sd_code[rows] - sd_model
        arc = a.arc[rows]
        has = arc >= 0
        idx = np.maximum(arc, 0)
        amb_rows = amb[idx]
        amb_rows[~has] = np.nan
        amb_rows *= a.lam[rows]
        y_ph = a.sd_phase[rows] - sd_model
        y_ph -= amb_rows
        del amb_rows
        arc_ok = self.arc_ok[idx]
        del idx
        arc_ok &= has
        seen = ((el >= self.mask) & (a.base_el[rows] >= self.mask))[:, None]
        valid_cd = seen & np.isfinite(y_cd)
        valid_ph = valid_cd & np.isfinite(y_ph) & arc_ok
        return el, unit, y_ph, y_cd, valid_ph, valid_cd

    def phase_terms(self, xr: NDArray[np.float64], amb: NDArray[np.float64]) -> PhaseTerms:
        """(el, y_ph, valid_phase) of every row, computed chunk by chunk."""
        n = self.arr.sat.shape[0]
        el = np.empty(n)
        y_ph = np.empty((n, 2))
        vph = np.empty((n, 2), dtype=np.bool_)
        starts = self.arr.epoch_start
        for e0, e1 in self.chunks():
            lo, hi = int(starts[e0]), int(starts[e1])
            t = self.terms(xr, amb, lo, hi)
            el[lo:hi], y_ph[lo:hi], vph[lo:hi] = t[0], t[2], t[4]
        return el, y_ph, vph

    def normals(self, xr: NDArray[np.float64], amb: NDArray[np.float64],
                col: NDArray[np.int64], npar: int, use_phase: bool
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Normal matrix and right-hand side at ``xr``/``amb``, epochs in order (the sums
        are those of one pass over the session)."""
        nmat = np.zeros((npar, npar))
        rhs = np.zeros(npar)
        a, b, f = self.sigma
        arr = self.arr
        for e0, e1 in self.chunks():
            lo, hi = int(arr.epoch_start[e0]), int(arr.epoch_start[e1])
            el, unit, y_ph, y_cd, vph, vcd = self.terms(xr, amb, lo, hi)
            accumulate_normals(arr.epoch_start[e0:e1 + 1] - lo, arr.system[lo:hi],
                               vph if use_phase else vcd, el,
                               np.nan_to_num(y_ph, copy=False),
                               np.nan_to_num(y_cd, copy=False), unit, self.lam0[lo:hi],
                               col[lo:hi], a, b, f, use_phase, nmat, rhs)
        return nmat, rhs

    def residual_rms(self, t: PhaseTerms) -> float:
        """RMS (m) of the DD phase residuals at the terms' position and ambiguities."""
        el, y_ph, vph = t
        out = np.empty_like(y_ph)
        dd_residuals(self.arr.epoch_start, self.arr.system, vph, el, np.nan_to_num(y_ph), out)
        v = out[np.isfinite(out)]
        return float(np.sqrt(np.mean(v * v))) if v.size else float("nan")

    def gauss_newton(self, xr: NDArray[np.float64], amb: NDArray[np.float64],
                     arc_col: NDArray[np.int64], npar: int, use_phase: bool = True,
                     max_iter: int = 8, tol: float = 1e-5
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                NDArray[np.float64] | None]:
        """Iterate position (and the ambiguities with a column in ``arc_col``) to
        convergence; returns (position, ambiguities, covariance) or covariance None when
        the normal matrix is singular."""
        xr = xr.copy()
        amb = amb.copy()
        col = np.where(self.arr.arc >= 0, arc_col[np.maximum(self.arr.arc, 0)], -1)
        est = np.nonzero(arc_col >= 0)[0]
        qmat: NDArray[np.float64] | None = None
        for _ in range(max_iter):
            nmat, rhs = self.normals(xr, amb, col, npar, use_phase)
            if np.linalg.cond(nmat) > 1e14:
                return xr, amb, None
            qmat = np.asarray(np.linalg.inv(nmat), dtype=np.float64)
            dx = qmat @ rhs
            xr += dx[:3]
            amb[est] += dx[arc_col[est]]
            if np.max(np.abs(dx[:3])) < tol:
                break
        return xr, amb, qmat


def datums(arr: SessionArrays, valid: NDArray[np.bool_], arc_ok: NDArray[np.bool_]
           ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per arc: the datum arc of its connected group (−1: unused arc) and its parameter
    column (3 + k), −1 for datum and unused arcs. Two arcs are connected when they form
    a double difference at some epoch; the datum is the group's longest arc."""
    parent = np.arange(arr.n_arcs)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    counts = np.zeros(arr.n_arcs, dtype=np.int64)
    for e in range(len(arr.epoch_times)):
        lo, hi = arr.epoch_start[e], arr.epoch_start[e + 1]
        for b in range(2):
            rows = np.nonzero(valid[lo:hi, b])[0] + lo
            for sysc in range(3):
                arcs = arr.arc[rows[arr.system[rows] == sysc], b]
                if arcs.shape[0] < 2:
                    continue
                counts[arcs] += 1
                r0 = find(int(arcs[0]))
                for k in arcs[1:]:
                    rk = find(int(k))
                    if rk != r0:
                        parent[rk] = r0
    roots = np.array([find(i) for i in range(arr.n_arcs)], dtype=np.int64)
    used = arc_ok & (counts > 0)
    datum = np.full(arr.n_arcs, -1, dtype=np.int64)
    for r in np.unique(roots[used]):
        members = np.nonzero((roots == r) & used)[0]
        datum[members] = members[np.argmax(counts[members])]
    col = np.full(arr.n_arcs, -1, dtype=np.int64)
    k = 3
    for i in range(arr.n_arcs):
        if datum[i] >= 0 and datum[i] != i:
            col[i] = k
            k += 1
    return datum, col


def residual_jumps(arr: SessionArrays, t: PhaseTerms) -> tuple[NDArray[np.int64],
                                                              NDArray[np.int64],
                                                              NDArray[np.float64]]:
    """Epoch-to-epoch jumps of each arc's phase residual, for cycle-slip screening.

    The single-difference phase residuals (m, at the current solution) are centred per
    epoch, system and band (which removes what double differencing removes); a slip the
    observation screening missed then shows as a step in its arc's series. Returns, for
    every consecutive pair of an arc's valid rows: the later row, the band, |jump| (m).
    """
    _, y_ph, vph = t
    epoch_of = np.repeat(np.arange(len(arr.epoch_times)), np.diff(arr.epoch_start))
    rows_out: list[NDArray[np.int64]] = []
    bands_out: list[NDArray[np.int64]] = []
    jumps_out: list[NDArray[np.float64]] = []
    for b in range(2):
        rows = np.nonzero(vph[:, b])[0]
        if rows.shape[0] < 2:
            continue
        key = epoch_of[rows] * 3 + arr.system[rows]
        uniq, inv = np.unique(key, return_inverse=True)
        mean = np.bincount(inv, weights=y_ph[rows, b], minlength=uniq.shape[0]) / \
            np.bincount(inv, minlength=uniq.shape[0])
        r = y_ph[rows, b] - mean[inv]
        arcs = arr.arc[rows, b]
        order = np.lexsort((rows, arcs))
        same = arcs[order][1:] == arcs[order][:-1]
        jump = np.abs(np.diff(r[order]))[same]
        rows_out.append(rows[order][1:][same])
        bands_out.append(np.full(int(same.sum()), b, dtype=np.int64))
        jumps_out.append(jump)
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows_out), np.concatenate(bands_out), np.concatenate(jumps_out)
