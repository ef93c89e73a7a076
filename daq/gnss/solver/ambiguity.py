"""Integer ambiguity resolution: LAMBDA decorrelation and MLAMBDA search, with validation.

Method: Teunissen's LAMBDA (LtDL factorisation, integer Gauss decorrelation, permutations)
and the modified search of Chang, Yang & Zhou (2005), as in RTKLIB's ``lambda.c``. The
search returns the ``m`` best integer vectors and their squared distances
``s = (a − z)ᵀ Q⁻¹ (a − z)`` (cycles², ascending).

Validation (``validate_fix``): the ratio test ``s[1] / s[0] ≥ threshold`` (RTKLIB's
``pos2-arthres``, 3 by default) and a minimum number of ambiguities. A fix that fails is
reported with its reason; it is never returned as fixed.

Kernels are private, pure and write into preallocated arrays; the public functions
validate their input (STYLE.md habit 9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

LOOP_MAX = 10000          # search steps before giving up (RTKLIB's LOOPMAX)


@njit(cache=True, nogil=True)
def _ld_factor(q: NDArray[np.float64], lmat: NDArray[np.float64],
               d: NDArray[np.float64]) -> int:
    """Q = Lᵀ diag(D) L with L unit lower triangular; returns −1 if Q is not positive."""
    n = q.shape[0]
    a = q.copy()
    for i in range(n - 1, -1, -1):
        d[i] = a[i, i]
        if d[i] <= 0.0:
            return -1
        s = np.sqrt(d[i])
        for j in range(i + 1):
            lmat[i, j] = a[i, j] / s
        for j in range(i):
            for k in range(j + 1):
                a[j, k] -= lmat[i, k] * lmat[i, j]
        piv = lmat[i, i]
        for j in range(i + 1):
            lmat[i, j] /= piv
    return 0


@njit(cache=True, nogil=True)
def _reduce(lmat: NDArray[np.float64], d: NDArray[np.float64], z: NDArray[np.float64]) -> None:
    """Decorrelate in place: integer Gauss transforms and permutations (Z accumulates)."""
    n = d.shape[0]
    j = n - 2
    k = n - 2
    while j >= 0:
        if j <= k:
            for i in range(j + 1, n):
                mu = np.floor(lmat[i, j] + 0.5)
                if mu != 0.0:
                    for r in range(i, n):
                        lmat[r, j] -= mu * lmat[r, i]
                    for r in range(n):
                        z[r, j] -= mu * z[r, i]
        delta = d[j] + lmat[j + 1, j] * lmat[j + 1, j] * d[j + 1]
        if delta + 1e-6 < d[j + 1]:
            eta = d[j] / delta
            lam = d[j + 1] * lmat[j + 1, j] / delta
            d[j] = eta * d[j + 1]
            d[j + 1] = delta
            for r in range(j):
                a0 = lmat[j, r]
                a1 = lmat[j + 1, r]
                lmat[j, r] = -lmat[j + 1, j] * a0 + a1
                lmat[j + 1, r] = eta * a0 + lam * a1
            lmat[j + 1, j] = lam
            for r in range(j + 2, n):
                tmp = lmat[r, j]
                lmat[r, j] = lmat[r, j + 1]
                lmat[r, j + 1] = tmp
            for r in range(n):
                tmp = z[r, j]
                z[r, j] = z[r, j + 1]
                z[r, j + 1] = tmp
            k = j
            j = n - 2
        else:
            j -= 1


@njit(cache=True, nogil=True)
def _sgn(x: float) -> float:
    return -1.0 if x <= 0.0 else 1.0


@njit(cache=True, nogil=True)
def _search(lmat: NDArray[np.float64], d: NDArray[np.float64], zs: NDArray[np.float64],
            zn: NDArray[np.float64], s: NDArray[np.float64]) -> int:
    """MLAMBDA depth-first search for the m = zn.shape[1] best candidates; −1 on overrun."""
    n = d.shape[0]
    m = zn.shape[1]
    big_s = np.zeros((n, n))
    dist = np.zeros(n)
    zb = np.zeros(n)
    zc = np.zeros(n)
    step = np.zeros(n)
    nn = 0
    imax = 0
    maxdist = 1e99
    k = n - 1
    zb[k] = zs[k]
    zc[k] = np.floor(zb[k] + 0.5)
    y = zb[k] - zc[k]
    step[k] = _sgn(y)
    c = 0
    while c < LOOP_MAX:
        c += 1
        newdist = dist[k] + y * y / d[k]
        if newdist < maxdist:
            if k != 0:
                k -= 1
                dist[k] = newdist
                for i in range(k + 1):
                    big_s[k, i] = big_s[k + 1, i] + (zc[k + 1] - zb[k + 1]) * lmat[k + 1, i]
                zb[k] = zs[k] + big_s[k, k]
                zc[k] = np.floor(zb[k] + 0.5)
                y = zb[k] - zc[k]
                step[k] = _sgn(y)
            else:
                if nn < m:
                    if nn == 0 or newdist > s[imax]:
                        imax = nn
                    zn[:, nn] = zc
                    s[nn] = newdist
                    nn += 1
                else:
                    if newdist < s[imax]:
                        zn[:, imax] = zc
                        s[imax] = newdist
                        imax = 0
                        for i in range(m):
                            if s[imax] < s[i]:
                                imax = i
                    maxdist = s[imax]
                zc[0] += step[0]
                y = zb[0] - zc[0]
                step[0] = -step[0] - _sgn(step[0])
        else:
            if k == n - 1:
                break
            k += 1
            zc[k] += step[k]
            y = zb[k] - zc[k]
            step[k] = -step[k] - _sgn(step[k])
    for i in range(m - 1):
        for j in range(i + 1, m):
            if s[i] < s[j]:
                continue
            tmp = s[i]
            s[i] = s[j]
            s[j] = tmp
            for r in range(n):
                tz = zn[r, i]
                zn[r, i] = zn[r, j]
                zn[r, j] = tz
    return -1 if c >= LOOP_MAX else 0


@dataclass(frozen=True)
class IntegerSolution:
    """The best (``fixed[:, 0]``) and runner-up integer vectors, in the input's order."""

    candidates: NDArray[np.float64]   # shape (n, m), integers as floats (cycles)
    sq_norms: NDArray[np.float64]     # shape (m,), ascending (cycles²)

    @property
    def best(self) -> NDArray[np.float64]:
        return self.candidates[:, 0]

    @property
    def ratio(self) -> float:
        """s₂ / s₁ (inf when the best candidate is exact)."""
        if self.sq_norms.shape[0] < 2:
            return float("nan")
        if self.sq_norms[0] <= 0.0:
            return float("inf")
        return float(self.sq_norms[1] / self.sq_norms[0])


class AmbiguityError(ValueError):
    """The float ambiguities or their covariance cannot be searched."""


def lambda_search(a_float: NDArray[np.float64], q: NDArray[np.float64],
                  n_candidates: int = 2) -> IntegerSolution:
    """Integer least-squares candidates for float ambiguities ``a_float`` (cycles).

    ``q`` is their covariance (cycles²), symmetric positive definite.
    Raises :class:`AmbiguityError` on bad shapes, non-finite values, a covariance that is
    not positive definite, or a search that overruns.
    """
    a = np.ascontiguousarray(a_float, dtype=np.float64)
    qm = np.ascontiguousarray(q, dtype=np.float64)
    n = a.shape[0]
    if a.ndim != 1 or n == 0 or qm.shape != (n, n):
        raise AmbiguityError(f"need a (n,) vector and an (n, n) covariance, got {a.shape}, "
                             f"{qm.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(qm))):
        raise AmbiguityError("float ambiguities or covariance not finite")
    if n_candidates < 1:
        raise AmbiguityError("n_candidates must be ≥ 1")
    qm = 0.5 * (qm + qm.T)
    lmat = np.zeros((n, n))
    d = np.zeros(n)
    if _ld_factor(qm, lmat, d) != 0:
        raise AmbiguityError("ambiguity covariance is not positive definite")
    zmat = np.eye(n)
    _reduce(lmat, d, zmat)
    zs = zmat.T @ a
    zn = np.zeros((n, n_candidates))
    s = np.zeros(n_candidates)
    if _search(lmat, d, zs, zn, s) != 0:
        raise AmbiguityError("integer search did not converge")
    fixed = np.linalg.solve(zmat.T, zn)
    return IntegerSolution(candidates=np.round(fixed), sq_norms=s)


@dataclass(frozen=True)
class FixVerdict:
    """Outcome of the validation: ``accepted`` and, when not, why."""

    accepted: bool
    reason: str          # "fixed", "ratio too low", "too few ambiguities"
    ratio: float
    n_ambiguities: int


def validate_fix(solution: IntegerSolution, ratio_threshold: float = 3.0,
                 min_ambiguities: int = 4) -> FixVerdict:
    """Accept an integer solution only if ratio ≥ threshold and enough ambiguities exist."""
    n = solution.candidates.shape[0]
    ratio = solution.ratio
    if n < min_ambiguities:
        return FixVerdict(False, "too few ambiguities", ratio, n)
    if not ratio >= ratio_threshold:
        return FixVerdict(False, "ratio too low", ratio, n)
    return FixVerdict(True, "fixed", ratio, n)
