"""Numba kernels of the double-difference solver: normal equations and residuals.

Conventions (shared with ``baseline.py``):
- Rows are (epoch, satellite); columns 0/1 are frequency bands. ``y_ph``/``y_cd`` are
  single-differenced (rover − base) observed-minus-modelled phase/code in metres, the phase
  already reduced by λ·(current ambiguity value).
- Within each epoch, system and band, the satellite with the highest rover elevation is
  the reference; each other satellite j gives the DD row ``v = y_ref − y_j`` with design
  ``(−e_ref + e_j)`` for the rover position (e: unit vector receiver → satellite) and
  ``+λ_ref``/``−λ_j`` for the reference's/j's ambiguity column (phase rows only).
- Single-difference variances as RTKLIB's ``varerr``: ``2·f²·(a² + b²/sin²el)`` (m²) with
  f = 1 for phase and ``code_factor`` for code, el the rover elevation; the DD covariance
  of a block is ``R_ref·11ᵀ + diag(R_j)``, inverted exactly per block.
- ``col`` gives the parameter column of a row's ambiguity (3 + k), or −1 when the
  ambiguity is held (datum or fixed).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def _sd_var(el: float, a: float, b: float, fact: float) -> float:
    s = np.sin(el)
    return 2.0 * fact * fact * (a * a + b * b / (s * s))


@njit(cache=True, nogil=True)
def _block(idx: NDArray[np.int64], m: int, band: int, is_phase: bool,
           el: NDArray[np.float64], y: NDArray[np.float64], unit: NDArray[np.float64],
           lam: NDArray[np.float64], col: NDArray[np.int64], a: float, b: float,
           fact: float, hl: NDArray[np.float64], gcol: NDArray[np.int64],
           v: NDArray[np.float64], w: NDArray[np.float64]) -> int:
    """Fill the local design ``hl`` (m−1, 4+m−1), global columns, residuals and weight
    matrix of one block of ``m`` valid rows; returns the reference's position in idx."""
    ref = 0
    for k in range(1, m):
        if el[idx[k]] > el[idx[ref]]:
            ref = k
    r = idx[ref]
    nr = m - 1
    ncol = 4 + nr
    for i in range(nr):
        for c in range(ncol):
            hl[i, c] = 0.0
    gcol[0] = 0
    gcol[1] = 1
    gcol[2] = 2
    gcol[3] = col[r, band] if is_phase else -1
    ri = _sd_var(el[r], a, b, fact)
    rj = np.empty(nr)
    i = 0
    for k in range(m):
        if k == ref:
            continue
        j = idx[k]
        v[i] = y[r, band] - y[j, band]
        for c in range(3):
            hl[i, c] = -unit[r, c] + unit[j, c]
        if is_phase:
            hl[i, 3] = lam[r, band]
            hl[i, 4 + i] = -lam[j, band]
            gcol[4 + i] = col[j, band]
        else:
            gcol[4 + i] = -1
        rj[i] = _sd_var(el[j], a, b, fact)
        i += 1
    # inverse of R_ref·11ᵀ + diag(R_j) (Sherman–Morrison)
    s = 0.0
    for i in range(nr):
        s += 1.0 / rj[i]
    g = ri / (1.0 + ri * s)
    for i in range(nr):
        for k in range(nr):
            w[i, k] = -g / (rj[i] * rj[k])
        w[i, i] += 1.0 / rj[i]
    return ref


@njit(cache=True, nogil=True)
def accumulate_normals(epoch_start: NDArray[np.int64], system: NDArray[np.int64],
                       valid: NDArray[np.bool_], el: NDArray[np.float64],
                       y_ph: NDArray[np.float64], y_cd: NDArray[np.float64],
                       unit: NDArray[np.float64], lam: NDArray[np.float64],
                       col: NDArray[np.int64], a: float, b: float, code_factor: float,
                       use_phase: bool, nmat: NDArray[np.float64], rhs: NDArray[np.float64]
                       ) -> float:
    """Add every epoch's DD phase (if ``use_phase``) and code rows to ``nmat``/``rhs``
    (zeroed by the caller); returns vᵀ W v of the phase rows (weighted, unitless)."""
    n = el.shape[0]
    maxm = 64
    idx = np.empty(maxm, np.int64)
    hl = np.zeros((maxm, maxm + 4))
    gcol = np.empty(maxm + 4, np.int64)
    v = np.empty(maxm)
    w = np.empty((maxm, maxm))
    hw = np.empty((maxm + 4, maxm))
    vtpv = 0.0
    for e in range(epoch_start.shape[0] - 1):
        lo = epoch_start[e]
        hi = epoch_start[e + 1]
        for sysc in range(3):
            for band in range(2):
                for kind in range(2):
                    is_phase = kind == 0
                    if is_phase and not use_phase:
                        continue
                    m = 0
                    for r in range(lo, min(hi, n)):
                        if system[r] == sysc and valid[r, band] and m < maxm:
                            idx[m] = r
                            m += 1
                    if m < 2:
                        continue
                    fact = 1.0 if is_phase else code_factor
                    yy = y_ph if is_phase else y_cd
                    _block(idx, m, band, is_phase, el, yy, unit, lam, col, a, b, fact,
                           hl, gcol, v, w)
                    nr = m - 1
                    ncol = 4 + nr
                    # hw = Hᵀ W (ncol × nr), then N += hw H and rhs += hw v
                    for c1 in range(ncol):
                        for k in range(nr):
                            acc = 0.0
                            for i in range(nr):
                                acc += hl[i, c1] * w[i, k]
                            hw[c1, k] = acc
                    for c1 in range(ncol):
                        g1 = gcol[c1]
                        if g1 < 0:
                            continue
                        acc = 0.0
                        for k in range(nr):
                            acc += hw[c1, k] * v[k]
                        rhs[g1] += acc
                        for c2 in range(ncol):
                            g2 = gcol[c2]
                            if g2 < 0:
                                continue
                            acc = 0.0
                            for k in range(nr):
                                acc += hw[c1, k] * hl[k, c2]
                            nmat[g1, g2] += acc
                    if is_phase:
                        for i in range(nr):
                            for k in range(nr):
                                vtpv += v[i] * w[i, k] * v[k]
    return vtpv


@njit(cache=True, nogil=True)
def dd_residuals(epoch_start: NDArray[np.int64], system: NDArray[np.int64],
                 valid: NDArray[np.bool_], el: NDArray[np.float64],
                 y_ph: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """DD phase residual of each non-reference row (m) into ``out`` (NaN elsewhere)."""
    n = el.shape[0]
    for r in range(n):
        out[r, 0] = np.nan
        out[r, 1] = np.nan
    for e in range(epoch_start.shape[0] - 1):
        lo = epoch_start[e]
        hi = epoch_start[e + 1]
        for sysc in range(3):
            for band in range(2):
                ref = -1
                cnt = 0
                for r in range(lo, hi):
                    if system[r] == sysc and valid[r, band]:
                        cnt += 1
                        if ref < 0 or el[r] > el[ref]:
                            ref = r
                if cnt < 2:
                    continue
                for r in range(lo, hi):
                    if r != ref and system[r] == sysc and valid[r, band]:
                        out[r, band] = y_ph[ref, band] - y_ph[r, band]
